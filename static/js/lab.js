// What every page of the lab does the same way: find its elements, show an error, draw a Plotly
// chart with the lab's settings and colours, talk JSON to the API and keep its state in the URL.
// Playground-only helpers (the newest-answer fetcher, rings, partial redraws) are in playground.js,
// number formats in format.js.

export const $ = (id) => document.getElementById(id);

// The error box with this id (or this element): the returned function shows a message in it, and
// hides it for an empty one.
export function errorBox(idOrElement) {
  const box = typeof idOrElement === "string" ? $(idOrElement) : idOrElement;
  return (message) => {
    box.textContent = message || "";
    box.hidden = !message;
  };
}

// Every chart: no Plotly logo, and it follows its container's width. On a narrow screen (a phone,
// or a chapter's frame on one) no mode bar: its buttons would sit over the chart's title, and a
// finger zooms and pans without them.
export const NARROW = window.matchMedia("(max-width: 600px)").matches;
export const PLOT_CONFIG = { displaylogo: false, responsive: true, displayModeBar: NARROW ? false : "hover" };

// A colour static/css/lab.css names in :root (`cssColor("--accent")`), so that the charts use the
// page's own colours. The stylesheet is loaded before any module runs.
export function cssColor(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
export const ACCENT = cssColor("--accent");
export const GOOD = cssColor("--good");
export const BAD = cssColor("--bad");
export const WARN = cssColor("--warn");
export const MUTED = cssColor("--muted");
export const INK = cssColor("--ink");

// A message in the middle of a chart, in the muted colour, broken into lines that fit the width of
// the chart `el` (a Plotly annotation does not wrap by itself).
export function chartNote(el, text, size = 15) {
  const perLine = Math.max(16, Math.floor(((el.clientWidth || 600) - 40) / (0.55 * size)));
  const lines = [];
  for (const word of text.split(" ")) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + word.length <= perLine) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  return [{ text: lines.join("<br>"), showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5,
    font: { size, color: MUTED } }];
}

// The layout of a chart with nothing to show yet: `layout` with every axis hidden (no made-up
// ranges such as 0–400 % or −1…4), no legend, and `text` in the middle saying what to do next.
// The chart's next full draw with data brings its axes back.
export function emptyLayout(el, layout, text) {
  const axes = Object.keys({ xaxis: {}, yaxis: {}, ...layout }).filter((k) => /^[xy]axis\d*$/.test(k));
  const hidden = Object.fromEntries(axes.map((k) => [k, { ...layout[k], visible: false }]));
  return { ...layout, ...hidden, showlegend: false, annotations: chartNote(el, text) };
}

// Fill the list `list` with `items` (HTML of its <li>s); with none, hide it and say `empty` in a
// paragraph just after it instead (an empty numbered list would number its message "1.").
export function fillList(list, items, empty) {
  let note = list.nextElementSibling;
  if (!note || !note.classList.contains("empty-list")) {
    note = document.createElement("p");
    note.className = "muted empty-list";
    list.after(note);
  }
  list.innerHTML = items.join("");
  list.hidden = !items.length;
  note.textContent = empty;
  note.hidden = Boolean(items.length);
}

// One colour per training method, keyed by its name: the run pages' legends and the method
// spectrum use the same ones. They come from the method records (simulations/methods.py), which
// the server writes into every page (templates/base.html, #method-colours).
export const METHOD_COLOURS = JSON.parse(document.getElementById("method-colours")?.textContent || "{}");

// The API answers {"error": "..."}; ninja's own default is {"detail": ...}: accept both.
export function messageOf(body, status) {
  const msg = body && (body.error ?? body.detail);
  if (typeof msg === "string") return msg;
  if (Array.isArray(msg)) return msg.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  return `The server answered ${status}.`;
}

// Django's CSRF token (the csrftoken cookie), which a POST sends back as X-CSRFToken.
export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

// fetch() for the API: a request other than GET carries the CSRF token; resolves to the JSON body
// (null for 204 No Content) and throws the server's message (messageOf) on an error status.
export async function requestJson(url, options = {}) {
  const method = (options.method || "GET").toUpperCase();
  const headers = { ...(method === "GET" ? {} : { "X-CSRFToken": csrfToken() }), ...options.headers };
  const resp = await fetch(url, { ...options, headers });
  if (resp.status === 204) return null;
  const body = await resp.json().catch(() => null);
  if (!resp.ok) throw new Error(messageOf(body, resp.status));
  return body;
}

// GET url; `signal` aborts it.
export const getJson = (url, signal) => requestJson(url, signal ? { signal } : {});

// POST `body` as JSON.
export const postJson = (url, body) => requestJson(url, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});

// A page's state in its query string: read it, and replace it (no history entry) with `params`
// (URLSearchParams, or a query string without its "?"; empty: the bare path).
export const readQuery = () => new URLSearchParams(location.search);
export function writeQuery(params) {
  const query = String(params);
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

// The index in `list` of the query's value `value` (compared as text), else of `fallback`.
export function indexOfValue(list, value, fallback) {
  const i = list.map(String).indexOf(String(value));
  return i >= 0 ? i : list.indexOf(fallback);
}

// A draw for a slider's `input` events, at most one a frame while it is dragged: a call with no
// frame pending draws at once (a click or an arrow key redraws without waiting for a frame);
// calls that arrive before the next animation frame are coalesced into one draw at that frame,
// with the latest call's arguments. A drag fires `input` faster than the screen shows frames, and
// each Plotly redraw costs milliseconds: without this the charts fall behind the slider.
// `merge(older, newer)` (optional) makes the arguments of two waiting calls into one call's (say
// the union of the settings each changed); without it the newer call's arguments win.
export function drawEachFrame(draw, merge = (older, newer) => newer) {
  let pending = false; // a frame is requested: calls until then wait for it
  let queued = null; // the arguments of the newest call that waited
  const frame = () => {
    if (!queued) {
      pending = false;
      return;
    }
    const args = queued;
    queued = null;
    requestAnimationFrame(frame); // the next call after this draw waits a frame too
    draw(...args);
  };
  return (...args) => {
    if (pending) {
      queued = queued ? merge(queued, args) : args;
      return;
    }
    pending = true;
    requestAnimationFrame(frame);
    draw(...args);
  };
}
