// P15 PEFT family map. One request brings every method's count on every model at every slider
// value, the parts each method trains and what it does there; the controls only index into it.
// The state lives in the query string.
import { $, ACCENT, PLOT_CONFIG, drawEachFrame, errorBox, readQuery, writeQuery } from "./lab.js";
import { latestFetcher, react } from "./playground.js";
import { fmtInt, fmtShare } from "./format.js";

const showError = errorBox("family-error");
const root = document.getElementById("family-root");
const FROZEN = "#c9ced8";
const TRAINED = "#e07b2a";
const HEAD = ACCENT;
const OTHER = "#8d9bb5";

const modelSelect = $("model-select");
const targetsSelect = $("targets-select");
const knobSlider = $("knob-slider");
let data = null;
// The knob value chosen for each knob (r is shared by LoRA and DoRA, n by prefix and prompt).
const state = { model: 0, method: "lora", targets: "QV", knobs: {}, part: null };
const KNOB_QUERY = { rank: "r", bottleneck: "m", virtual_tokens: "n" };

// Where each part sits in the drawing: centre x, centre y, width, height (axis units).
const LAYOUT = {
  head: [5, 12.0, 2.6, 0.6],
  ln2: [5, 10.9, 2.2, 0.5],
  adapter2: [5, 10.05, 2.2, 0.55],
  ffn_down: [5, 9.1, 3.0, 0.6],
  ffn_up: [5, 8.0, 3.0, 0.6],
  ln1: [5, 6.95, 2.2, 0.5],
  adapter1: [5, 6.1, 2.2, 0.55],
  o: [5, 5.15, 2.2, 0.6],
  attention: [5, 4.1, 5.4, 0.6],
  q: [3.0, 2.9, 1.3, 0.6],
  k: [5.0, 2.9, 1.3, 0.6],
  v: [7.0, 2.9, 1.3, 0.6],
  prefix: [1.05, 2.9, 1.5, 0.6],
  embeddings: [5, 1.2, 5.4, 0.6],
  prompt: [1.05, 1.2, 1.5, 0.6],
};
// Side parts: drawn next to the part they belong to, offset in x (and y).
const SIDE = {
  lora_q: ["q", 0.95, 0, 0.5], lora_k: ["k", 0.95, 0, 0.5], lora_v: ["v", 0.95, 0, 0.5],
  lora_o: ["o", 1.45, 0, 0.6], lora_ffn_up: ["ffn_up", 1.85, 0, 0.6], lora_ffn_down: ["ffn_down", 1.85, 0, 0.6],
  ia3_k: ["k", 0, 0.52, 0.5], ia3_v: ["v", 0, 0.52, 0.5], ia3_ffn: ["ffn_up", -1.95, 0.55, 0.7],
};
// Bias chips: at the lower left corner of each part that has a bias.
const BIASED = ["q", "k", "v", "o", "ffn_up", "ffn_down", "ln1", "ln2"];

const model = () => data.models[state.model];
const methodOf = (key) => data.methods.find((m) => m.key === key);
const method = () => methodOf(state.method);
const variantOf = (m) => (m.variants.includes(state.targets) ? state.targets : m.default_variant);
const knobIndex = (m) => (m.knob ? m.knob.values.indexOf(state.knobs[m.knob.param]) : 0);

function countOf(m, field = "counts") {
  return model()[field][m.key][variantOf(m)][knobIndex(m)];
}

function writeUrl() {
  const p = new URLSearchParams({ model: model().key, method: state.method, targets: state.targets });
  for (const [param, short] of Object.entries(KNOB_QUERY)) p.set(short, state.knobs[param]);
  writeQuery(p);
}

function readUrl() {
  const q = readQuery();
  const mi = data.models.findIndex((m) => m.key === (q.get("model") || data.defaults.model));
  state.model = mi >= 0 ? mi : 0;
  state.method = methodOf(q.get("method")) ? q.get("method") : data.defaults.method;
  const lora = methodOf("lora");
  state.targets = lora.variants.includes(q.get("targets")) ? q.get("targets") : lora.default_variant;
  for (const m of data.methods) {
    if (!m.knob) continue;
    const wanted = Number(q.get(KNOB_QUERY[m.knob.param]));
    state.knobs[m.knob.param] = m.knob.values.includes(wanted) ? wanted : m.knob.default;
  }
}

function buildControls() {
  $("method-group").append(...data.methods.map((m) => {
    const label = document.createElement("label");
    const input = Object.assign(document.createElement("input"), { type: "radio", name: "method", value: m.key });
    input.addEventListener("change", () => { state.method = m.key; state.part = null; render(); });
    label.append(input, m.label);
    return label;
  }));
  modelSelect.append(...data.models.map((m, i) => new Option(m.label, i)));
  targetsSelect.append(...Object.entries(data.target_sets).map(([k, v]) => new Option(`${k}: ${v.join(", ")}`, k)));
}

function syncControls() {
  const m = method();
  for (const input of root.querySelectorAll("input[name=method]")) input.checked = input.value === state.method;
  modelSelect.value = state.model;
  targetsSelect.value = state.targets;
  targetsSelect.disabled = m.variants.length < 2;
  knobSlider.disabled = !m.knob;
  $("knob-note").hidden = Boolean(m.knob);
  if (m.knob) {
    knobSlider.max = m.knob.values.length - 1;
    knobSlider.value = knobIndex(m);
    $("knob-label").textContent = `${m.label}: ${m.knob.label}`;
    $("knob-value").textContent = state.knobs[m.knob.param];
  } else {
    $("knob-label").textContent = `${m.label}: no size setting`;
    $("knob-value").textContent = "";
  }
}

// Each part's status under the chosen method: trained, frozen, head, or absent (not drawn).
function status(part) {
  const m = method();
  if (m.highlights[variantOf(m)][part] !== undefined) return "trained";
  const kind = data.parts[part].kind;
  if (kind === "head") return "head";
  return kind === "added" ? "absent" : "frozen";
}

function textOf(part) {
  const m = method();
  const own = m.highlights[variantOf(m)][part];
  const label = data.parts[part].label;
  return own ? `${label}, under ${m.label}: ${own}` : data.parts[part].frozen_text;
}

function geometry(part) {
  if (LAYOUT[part]) return LAYOUT[part];
  const [anchor, dx, dy, w] = SIDE[part];
  const [x, y, , h] = LAYOUT[anchor];
  return [x + dx + (dx > 0 ? LAYOUT[anchor][2] / 2 - 0.5 : 0), y + dy, w, dy ? 0.34 : h * 0.8];
}

function drawDiagram() {
  // Labels shrink with the drawing, so that they stay inside their boxes on a phone.
  const fontSize = Math.max(9, Math.min(12, $("block-diagram").clientWidth / 32));
  const shapes = [];
  const annotations = [];
  const hover = { x: [], y: [], text: [], customdata: [] };
  const colour = { trained: TRAINED, frozen: FROZEN, head: HEAD };
  const parts = [...Object.keys(LAYOUT), ...Object.keys(SIDE)];
  for (const part of parts) {
    const s = status(part);
    if (s === "absent") continue;
    const [x, y, w, h] = geometry(part);
    const added = data.parts[part].kind === "added";
    const chosen = state.part === part;
    shapes.push({ type: "rect", x0: x - w / 2, x1: x + w / 2, y0: y - h / 2, y1: y + h / 2,
      fillcolor: colour[s], opacity: part === "attention" && s !== "trained" ? 0.45 : 1,
      line: { color: chosen ? "#111" : "#4a5160", width: chosen ? 3 : 1, dash: added ? "dash" : "solid" } });
    annotations.push({ x, y, text: data.parts[part].short, showarrow: false,
      font: { size: fontSize, color: s === "frozen" ? "#222" : "#fff" } });
    hover.x.push(x); hover.y.push(y); hover.customdata.push(part);
    hover.text.push(`<b>${data.parts[part].label}</b><br>${s === "trained" ? "trains" : s === "head" ? "trains in every run" : "frozen"}`);
  }
  // Bias chips (one part: "biases").
  const bs = status("biases");
  for (const anchor of BIASED) {
    const [x, y, w, h] = LAYOUT[anchor];
    const bx = x - w / 2 - 0.22;
    shapes.push({ type: "rect", x0: bx - 0.16, x1: bx + 0.16, y0: y - h / 2, y1: y - h / 2 + 0.32,
      fillcolor: bs === "trained" ? TRAINED : FROZEN, line: { color: "#4a5160", width: 1 } });
    hover.x.push(bx); hover.y.push(y - h / 2 + 0.16); hover.customdata.push("biases");
    hover.text.push(`<b>${data.parts.biases.label}</b><br>${bs === "trained" ? "trains" : "frozen"}`);
  }
  // The repeated layers: a bracket from the projections to the second LayerNorm.
  shapes.push({ type: "path", path: "M 0.35 2.45 L 0.1 2.45 L 0.1 11.3 L 0.35 11.3", line: { color: "#6b7280", width: 1.5 } });
  annotations.push({ x: 0.05, y: 7, text: `× ${model().layers} layers`, textangle: -90, showarrow: false,
    font: { size: 12, color: "#444" }, xanchor: "right" });
  // Data flow arrows between the main stages.
  for (const [y0, y1] of [[1.5, 2.6], [3.2, 3.8], [4.4, 4.85], [5.45, 5.83], [6.38, 6.7], [7.2, 7.7], [8.3, 8.8], [9.4, 9.78], [10.33, 10.65], [11.15, 11.7]]) {
    annotations.push({ x: 5, y: y1, ax: 5, ay: y0, xref: "x", yref: "y", axref: "x", ayref: "y",
      showarrow: true, arrowhead: 2, arrowsize: 1, arrowwidth: 1.2, arrowcolor: "#6b7280", text: "" });
  }
  react("block-diagram", [{
    x: hover.x, y: hover.y, text: hover.text, customdata: hover.customdata, mode: "markers",
    marker: { size: 26, opacity: 0 }, hovertemplate: "%{text}<extra></extra>", showlegend: false,
  }], {
    shapes, annotations, margin: { l: 20, r: 10, t: 10, b: 10 }, hovermode: "closest", dragmode: false,
    xaxis: { visible: false, range: [-0.3, 9.8], fixedrange: true },
    yaxis: { visible: false, range: [0.6, 12.5], fixedrange: true },
  }, PLOT_CONFIG);
  $("diagram-method").textContent = method().label;
}

function drawPartButtons() {
  const box = $("part-buttons");
  const shown = Object.keys(data.parts).filter((p) => status(p) !== "absent");
  // Trained parts first: they are what the method is about.
  shown.sort((a, b) => (status(a) === "trained" ? 0 : 1) - (status(b) === "trained" ? 0 : 1));
  box.replaceChildren(...shown.map((part) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = data.parts[part].label;
    b.dataset.part = part;
    if (status(part) !== "trained") b.className = "frozen";
    b.setAttribute("aria-pressed", String(state.part === part));
    b.addEventListener("click", () => choosePart(part));
    return b;
  }));
  const part = state.part ?? shown[0];
  $("part-text").textContent = textOf(part);
}

function choosePart(part) {
  state.part = part;
  drawPartButtons();
  drawDiagram();
}

function drawCounts() {
  const rows = data.methods.map((m) => ({
    m, n: countOf(m), share: countOf(m, "shares"),
    setting: m.knob ? `${m.knob.symbol} = ${state.knobs[m.knob.param]}${m.variants.length > 1 ? `, ${variantOf(m)}` : ""}` : "",
  }));
  const names = rows.map((r) => (r.setting ? `${r.m.label} (${r.setting})` : r.m.label));
  react("count-chart", [{
    type: "bar", orientation: "h", y: names, x: rows.map((r) => r.n),
    marker: { color: rows.map((r) => (r.m.key === state.method ? TRAINED : OTHER)) },
    text: rows.map((r) => fmtShare(r.share)), textposition: "outside", cliponaxis: false,
    customdata: rows.map((r) => [fmtInt(r.n), fmtShare(r.share)]),
    hovertemplate: "%{y}: %{customdata[0]} trainable, %{customdata[1]} of the model<extra></extra>",
    name: "trainable parameters",
  }], {
    margin: { l: 10, r: 60, t: 10, b: 50 }, showlegend: false,
    xaxis: { title: { text: "trainable parameters (log scale)" }, type: "log", automargin: true },
    yaxis: { autorange: "reversed", automargin: true },
  }, PLOT_CONFIG);
}

function drawReadouts() {
  const m = method();
  const mod = model();
  $("trainable").textContent = fmtInt(countOf(m));
  $("share").textContent = fmtShare(countOf(m, "shares"));
  $("total-label").textContent = `Whole model (${mod.label})`;
  $("total").textContent = fmtInt(mod.total);
  $("mergeable").textContent = m.mergeable;
  $("latency").textContent = m.latency;
  $("prefix-ratio").textContent = mod.prefix_over_prompt;
  $("prefix-model").textContent = `${mod.label} (2 × ${mod.layers} layers)`;
  $("ia3-model").textContent = mod.label;
  $("ia3-paper").textContent = fmtInt(mod.counts.ia3.default[0]);
  $("ia3-peft").textContent = fmtInt(mod.ia3_peft_default);
  for (const tr of $("props-table").tBodies[0].rows) tr.classList.toggle("chosen", tr.dataset.method === state.method);
}

function buildProps() {
  $("props-table").tBodies[0].replaceChildren(...data.methods.map((m) => {
    const tr = document.createElement("tr");
    tr.dataset.method = m.key;
    const cells = [m.label, m.mergeable, m.latency_detail ? `${m.latency}; ${m.latency_detail}` : m.latency, m.why, m.source];
    tr.append(...cells.map((text) => Object.assign(document.createElement("td"), { textContent: text })));
    return tr;
  }));
  $("ia3-gap").textContent = data.ia3_merge_gap.toPrecision(2);
}

// `all` false: only a size setting changed, which the diagram and the part buttons do not show.
function render(all = true) {
  syncControls();
  if (all) {
    drawDiagram();
    drawPartButtons();
  }
  drawCounts();
  drawReadouts();
  writeUrl();
}

async function start() {
  try {
    const body = await latestFetcher(root)(root.dataset.apiUrl);
    if (!body) return;
    data = body;
    readUrl();
    buildControls();
    buildProps();
    render();
    $("block-diagram").on("plotly_click", (ev) => { const p = ev.points[0]; if (p) choosePart(p.customdata); });
    $("block-diagram").on("plotly_hover", (ev) => { const p = ev.points[0]; if (p) $("part-text").textContent = textOf(p.customdata); });
    root.dataset.ready = "1";
  } catch (err) {
    showError(err.message);
  }
}

modelSelect.addEventListener("change", () => { state.model = Number(modelSelect.value); render(); });
targetsSelect.addEventListener("change", () => { state.targets = targetsSelect.value; state.part = null; render(); });
// A drag redraws at most once a frame, with the slider's latest value.
const renderEachFrame = drawEachFrame(() => render(false));
knobSlider.addEventListener("input", () => {
  const m = method();
  if (!m.knob) return;
  state.knobs[m.knob.param] = m.knob.values[Number(knobSlider.value)];
  renderEachFrame();
});

start();
