// P18 Decision tree. The server walks the tree (simulations/decision.py) for the answers in the URL
// and returns the tree, the path and the scenario table; this file only draws them. On a leaf the
// lab can train, a button starts a real run of that method (its defaults) on the learner's task.
import { $, errorBox, getJson, postJson, readQuery, writeQuery } from "./lab.js";

const showError = errorBox("decide-error");
const root = document.getElementById("decide-root");
const apiUrl = root.dataset.apiUrl;
// Its fields redraw as they change: Enter in one must not submit the form (a reload). Here, not
// in an onsubmit attribute: the Content-Security-Policy allows no inline script.
$("decide-form").addEventListener("submit", (event) => event.preventDefault());
const SVGNS = "http://www.w3.org/2000/svg";
const BOX_W = 154, BOX_H = 58, COL = 160, ROW = 84, PAD = 20;

let answers = {};
let catalogue = null; // {methods, tasks} from the API, for the Train button
let chosenTask = null;

function readUrl() {
  answers = {};
  for (const [k, v] of readQuery()) if (/^q\d+$/.test(k)) answers[k] = v;
}

function writeUrl(used) {
  const params = new URLSearchParams(used);
  writeQuery(params);
}

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

function el(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function wrap(text, max) {
  const words = text.split(" "), lines = [""];
  for (const w of words) {
    const cur = lines[lines.length - 1];
    if ((cur + " " + w).trim().length > max && cur) lines.push(w);
    else lines[lines.length - 1] = (cur + " " + w).trim();
  }
  return lines;
}

function trainLink(method, label) {
  return `<a href="/train/?method=${encodeURIComponent(method)}" data-method="${esc(method)}">${esc(label)}</a>`;
}

function drawTree(tree, result) {
  const pos = Object.fromEntries(tree.nodes.map((n) => [n.id, n]));
  const X = (n) => PAD + n.x * COL + BOX_W / 2, Y = (n) => PAD + n.y * ROW + BOX_H / 2;
  const width = PAD * 2 + tree.width * COL + BOX_W, height = PAD * 2 + tree.depth * ROW + BOX_H;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "Decision tree; the highlighted path follows your answers" });
  const onEdges = new Set(result.edges.map((e) => `${e.source}>${e.target}`));
  const onNodes = new Set(result.path);
  for (const e of tree.edges) {
    const a = pos[e.source], b = pos[e.target];
    const g = el("g", { class: "edge" + (onEdges.has(`${e.source}>${e.target}`) ? " on" : ""),
      "data-edge": `${e.source}>${e.target}` }, svg);
    el("line", { x1: X(a), y1: Y(a) + BOX_H / 2, x2: X(b), y2: Y(b) - BOX_H / 2 }, g);
    const t = el("text", { x: (X(a) + X(b)) / 2 + 4, y: (Y(a) + Y(b)) / 2, "text-anchor": "start" }, g);
    t.textContent = e.answer;
  }
  for (const n of tree.nodes) {
    const cls = ["node", n.kind === "leaf" ? "leaf" : "question"];
    if (onNodes.has(n.id)) cls.push("on");
    if (n.id === result.next) cls.push("next");
    if (n.id === result.leaf) cls.push("chosen");
    const g = el("g", { class: cls.join(" "), "data-node": n.id }, svg);
    el("rect", { x: X(n) - BOX_W / 2, y: Y(n) - BOX_H / 2, width: BOX_W, height: BOX_H, rx: 6 }, g);
    const lines = wrap(n.kind === "leaf" ? n.text : n.short, 14);
    lines.forEach((line, i) => {
      const t = el("text", { x: X(n), y: Y(n) + (i - (lines.length - 1) / 2) * 21 + 6, "text-anchor": "middle" }, g);
      t.textContent = line;
    });
    const title = el("title", {}, g);
    title.textContent = n.kind === "leaf" ? `${n.text}: ${n.reason}` : n.text;
  }
  $("tree").replaceChildren(svg);
}

function drawForm(tree, result) {
  const byId = Object.fromEntries(tree.nodes.map((n) => [n.id, n]));
  const shown = result.path.filter((id) => byId[id].kind === "question");
  $("decide-form").innerHTML = shown.map((id) => {
    const q = byId[id], cur = result.used[id];
    const radio = (v) => `<label><input type="radio" name="${id}" value="${v}"${cur === v ? " checked" : ""}> ${v}</label>`;
    return `<fieldset class="${id === result.next ? "next" : ""}" data-question="${id}">
      <legend>${esc(q.text)}</legend><p class="muted">${esc(q.help)}</p>${radio("yes")}${radio("no")}</fieldset>`;
  }).join("");
}

function drawRecommendation(tree, result) {
  const box = $("recommendation");
  if (!result.leaf) {
    box.innerHTML = `<p class="muted">Answer the highlighted question to go on.</p>`;
    return;
  }
  const leaf = tree.nodes.find((n) => n.id === result.leaf);
  const train = leaf.trainable
    ? `${trainControls(leaf.method)}<p>${trainLink(leaf.method, "Or set the run up yourself on the training page")} →</p>`
    : `<p class="muted" id="no-train">Nothing to train: prompting changes only what goes into the model,
       not its weights, so there is no run for the lab to start.</p>`;
  box.innerHTML = `<p><strong id="recommended-method" data-method="${esc(leaf.method)}">${esc(leaf.text)}</strong></p>
    <p>${esc(leaf.reason)}</p>${train}`;
  if (leaf.trainable && catalogue) wireTrain(leaf.method);
}

// ---- the Train button: a real run of the recommended method on the chosen task -------------------
function trainControls(method) {
  if (!catalogue) return `<p class="muted">The list of tasks could not be loaded; use the training page.</p>`;
  const m = catalogue.methods.find((x) => x.name === method);
  const options = catalogue.tasks.map((t) => `<option value="${esc(t.name)}"${t.name === chosenTask ? " selected" : ""}>${esc(t.title)}</option>`).join("");
  return `<div class="train-now"><label for="decide-task">Your task</label><select id="decide-task">${options}</select>
    <button type="button" id="decide-train" data-method="${esc(method)}"></button>
    <p class="muted">A real run: ${esc(m.label)} with its default settings, ${m.steps.default} steps; the
    training page then follows it live.</p><p id="decide-train-error" class="error" role="alert" hidden></p></div>`;
}

function wireTrain(method) {
  const m = catalogue.methods.find((x) => x.name === method);
  const select = $("decide-task"), button = $("decide-train");
  const label = () => {
    chosenTask = select.value;
    button.textContent = `Train ${m.label} on ${select.selectedOptions[0].textContent}`;
  };
  label();
  select.addEventListener("change", label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const run = await postJson("/api/runs", { method, task: select.value, steps: m.steps.default,
                                                seed: m.seed.default, params: {} });
      location.assign(`/train/?run=${run.id}`);
    } catch (err) {
      $("decide-train-error").textContent = err.message;
      $("decide-train-error").hidden = false;
      button.disabled = false;
    }
  });
}

function drawScenarios(rows) {
  $("scenario-table").querySelector("tbody").innerHTML = rows.map((r) => {
    const qs = new URLSearchParams(r.answers).toString();
    const rec = r.trainable ? trainLink(r.method, r.label) : esc(r.label);
    return `<tr data-method="${esc(r.method)}"><td><a href="?${qs}" class="scenario-link">${esc(r.scenario)}</a>
      <span class="muted">(${esc(r.source_short)})</span></td><td>${esc(r.guide_choice)}</td><td>${rec}</td></tr>`;
  }).join("");
}

async function update() {
  let body;
  try {
    body = await getJson(`${apiUrl}?${new URLSearchParams(answers)}`);
  } catch (err) {
    // Answers the server refuses: say why, and start again from no answers.
    if (!Object.keys(answers).length) throw err;
    showError(err.message);
    answers = {};
    return update();
  }
  showError("");
  answers = { ...body.result.used };
  writeUrl(answers);
  drawTree(body.tree, body.result);
  drawForm(body.tree, body.result);
  drawRecommendation(body.tree, body.result);
  drawScenarios(body.scenarios);
  root.dataset.leaf = body.result.leaf || "";
  root.dataset.ready = "1";
}

$("decide-form").addEventListener("change", (ev) => {
  const t = ev.target;
  if (t.type !== "radio") return;
  answers[t.name] = t.value;
  root.dataset.ready = "0";
  update().then(() => {
    const next = document.querySelector(`#decide-form input[name="${t.name}"][value="${t.value}"]`);
    if (next) next.focus();
  });
});
$("decide-reset").addEventListener("click", () => { answers = {}; root.dataset.ready = "0"; update(); });

readUrl();
Promise.all([getJson("/api/methods"), getJson("/api/tasks")])
  .then(([methods, tasks]) => { catalogue = { methods, tasks }; chosenTask = tasks.length ? tasks[0].name : null; })
  .catch(() => { catalogue = null; })
  .finally(update);
