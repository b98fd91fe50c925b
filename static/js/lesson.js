// Lesson links: a teacher shares a playground with some controls hidden (?hide=id1,id2), so a
// class sees exactly the knobs the lesson is about. The ids are those of the page's inputs.
// Playgrounds rewrite their query string as their state changes; the `hide` list is carried
// over every such rewrite, so a lesson link stays a lesson link.
const HIDE = "hide";
const params = new URLSearchParams(location.search);
const hidden = (params.get(HIDE) || "").split(",").filter(Boolean);

function keepHide(url) {
  if (!hidden.length || url === undefined || url === null) return url;
  const next = new URL(url, location.href);
  next.searchParams.set(HIDE, hidden.join(","));
  return next.pathname + next.search + next.hash;
}

for (const method of ["replaceState", "pushState"]) {
  const original = history[method].bind(history);
  history[method] = (state, title, url) => original(state, title, keepHide(url));
}

function controls() {
  return [...document.querySelectorAll("main input[id], main select[id]")]
    .filter((el) => el.type !== "hidden" && !el.closest("#lesson-link"))
    .map((el) => {
      const label = document.querySelector(`label[for="${el.id}"]`) || el.closest("label");
      return { el, label, text: (label ? label.textContent : el.id).trim().replace(/\s+/g, " ").slice(0, 60) };
    });
}

function hide() {
  for (const { el, label } of controls()) {
    if (!hidden.includes(el.id)) continue;
    el.hidden = true;
    el.setAttribute("aria-hidden", "true");
    if (label) label.hidden = true;
  }
}

function builder() {
  const host = document.getElementById("lesson-link");
  if (!host) return;
  const list = controls();
  if (!list.length) { host.remove(); return; }
  host.querySelector(".lesson-controls").innerHTML = list.map(({ el, text }) =>
    `<label class="row" style="margin:.15rem 0"><input type="checkbox" value="${el.id}"
      ${hidden.includes(el.id) ? "checked" : ""}> hide “${text}”</label>`).join("");
  const output = host.querySelector("input[type=text]");
  const update = () => {
    const chosen = [...host.querySelectorAll(".lesson-controls input:checked")].map((x) => x.value);
    const url = new URL(location.href);
    if (chosen.length) url.searchParams.set(HIDE, chosen.join(",")); else url.searchParams.delete(HIDE);
    output.value = url.toString();
  };
  host.addEventListener("change", update);
  host.addEventListener("toggle", update);
  host.querySelector("button").addEventListener("click", async () => {
    update();
    output.select();
    try { await navigator.clipboard.writeText(output.value); host.querySelector(".lesson-copied").textContent = "Copied."; }
    catch { host.querySelector(".lesson-copied").textContent = "Select the link and copy it."; }
  });
  update();
}

// Playgrounds build some controls after their first fetch: wait for the page's ready signal.
function whenReady(callback) {
  let done = false;
  const once = () => { if (!done) { done = true; observer.disconnect(); callback(); } };
  const ready = () => document.querySelector("[data-ready='1']");
  const observer = new MutationObserver(() => { if (ready()) once(); });
  if (ready()) return once();
  observer.observe(document.body, { attributes: true, subtree: true, attributeFilter: ["data-ready"] });
  setTimeout(once, 5000);  // a page that never signals ready still gets its lesson link
}

whenReady(() => { hide(); builder(); });
