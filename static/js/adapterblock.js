// P8 Adapter block. One request brings the counts for every d × m on the sliders and every
// model; the controls only index into it. The state lives in the query string.
import { $, ACCENT, PLOT_CONFIG, drawEachFrame, errorBox, getJson, indexOfValue, readQuery, writeQuery } from "./lab.js";
import { moveShapes, react, redrawChanged, ring } from "./playground.js";
import { fmtInt } from "./format.js";

const showError = errorBox("adapter-error");
const root = document.getElementById("adapter-root");
const FROZEN = "#9aa3b2";
const TRAINED = "#e07b2a";
const fmtPct = (x) => `${(100 * x).toPrecision(3)}%`;

const hiddenSlider = $("hidden-slider");
const mSlider = $("bottleneck-slider");
const modelSelect = $("model-select");
const biasCheck = $("bias-check");
let data = null;
const state = { d: 0, m: 0, model: 0, bias: false };

// The largest m index that is still a bottleneck of d (m ≤ d).
function maxM(d) {
  const row = data.weights[d];
  let i = row.length - 1;
  while (row[i] === null) i -= 1;
  return i;
}

function writeUrl() {
  const p = new URLSearchParams({
    d: data.hidden_sizes[state.d], m: data.bottlenecks[state.m], model: state.model,
    biases: state.bias ? "1" : "0",
  });
  writeQuery(p);
}

function readUrl() {
  const q = readQuery();
  state.d = indexOfValue(data.hidden_sizes, q.get("d"), data.defaults.hidden);
  state.m = Math.min(indexOfValue(data.bottlenecks, q.get("m"), data.defaults.bottleneck), maxM(state.d));
  const model = Number(q.get("model"));
  state.model = Number.isInteger(model) && model >= 0 && model < data.models.length && q.has("model")
    ? model : data.defaults.model;
  state.bias = q.get("biases") === "1";
}

function syncControls() {
  hiddenSlider.max = data.hidden_sizes.length - 1;
  mSlider.max = maxM(state.d);
  hiddenSlider.value = state.d;
  mSlider.value = state.m;
  modelSelect.value = state.model;
  biasCheck.checked = state.bias;
}

// The diagram's one trace, invisible, spans the drawing. The same object every time: with only
// its shapes and notes changed, Plotly.react redraws just those, not the whole chart.
const DIAGRAM_FRAME = [{ x: [-1, 1], y: [-0.6, 4.6], mode: "markers", marker: { opacity: 0 },
  hoverinfo: "skip", showlegend: false }];

function drawDiagram() {
  const d = data.hidden_sizes[state.d];
  const m = data.bottlenecks[state.m];
  const ratio = data.ratio[state.d][state.m];
  const half = 0.5;
  const h = half * ratio;
  const bar = (y, w, color) => ({ type: "rect", x0: -w, x1: w, y0: y - 0.18, y1: y + 0.18,
    fillcolor: color, line: { color: "#333", width: 1 } });
  const trapezoid = (yTop, wTop, yBot, wBot) => ({ type: "path",
    path: `M ${-wTop} ${yTop} L ${wTop} ${yTop} L ${wBot} ${yBot} L ${-wBot} ${yBot} Z`,
    fillcolor: TRAINED, opacity: 0.75, line: { color: "#333", width: 1 } });
  const shapes = [
    bar(4, half, FROZEN),
    trapezoid(3.75, half, 2.25, h),
    bar(2, h, TRAINED),
    trapezoid(1.75, h, 0.25, half),
    bar(0, half, FROZEN),
    // The shortcut around the adapter: h is added back to its output.
    { type: "path", path: `M ${half} 4 C 0.85 4, 0.85 0, ${half} 0`, line: { color: ACCENT, width: 2, dash: "dot" } },
  ];
  const down = data.weights[state.d][state.m] / 2;
  const note = (y, text, x = 0, anchor = "center") => ({ x, y, text, showarrow: false, xanchor: anchor,
    font: { size: 12 }, bgcolor: "rgba(255,255,255,0.85)" });
  const annotations = [
    note(4.35, `input h: d = ${fmtInt(d)}`),
    note(3, `W<sub>down</sub>: d × m = ${fmtInt(down)}`),
    note(2.4, `bottleneck, nonlinearity f: m = ${fmtInt(m)}`),
    note(1, `W<sub>up</sub>: m × d = ${fmtInt(down)} (starts at 0)`),
    note(-0.35, `output h + W<sub>up</sub> f(W<sub>down</sub> h): d = ${fmtInt(d)}`),
    note(2, "+ h", 0.97, "right"),
  ];
  react("diagram", DIAGRAM_FRAME, {
    shapes, annotations, margin: { l: 10, r: 10, t: 10, b: 10 },
    xaxis: { visible: false, range: [-1, 1], fixedrange: true },
    yaxis: { visible: false, range: [-0.6, 4.6], fixedrange: true },
  }, PLOT_CONFIG);
}

function drawLayer() {
  const parts = data.layer[state.d][state.m];
  const names = { attention: "attention (4d²)", adapter_1: "adapter 1 (2dm)", feed_forward: "feed-forward (8d²)",
    adapter_2: "adapter 2 (2dm)", layer_norms: "layer norms (4d)" };
  const keys = Object.keys(names);
  const trained = (k) => k.startsWith("adapter");
  react("layer-chart", [
    { type: "bar", name: "frozen", x: keys.map((k) => names[k]), y: keys.map((k) => (trained(k) ? null : parts[k])),
      marker: { color: FROZEN }, hovertemplate: "%{x}: %{y:,}<extra>frozen</extra>" },
    { type: "bar", name: "trained", x: keys.map((k) => names[k]), y: keys.map((k) => (trained(k) ? parts[k] : null)),
      marker: { color: TRAINED }, hovertemplate: "%{x}: %{y:,}<extra>trained</extra>" },
  ], {
    barmode: "overlay", margin: { l: 70, r: 10, t: 30, b: 90 },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    xaxis: { title: { text: "part of one layer, in order" }, tickangle: -25 },
    yaxis: { title: { text: "parameters (log scale)" }, type: "log" },
  }, PLOT_CONFIG);
}

const shareKey = () => (state.bias ? "share_with_biases" : "share");

// The chosen m on the chosen model's curve (none where m > d); the m slider moves only this ring.
function shareRing() {
  const chosen = data.models[state.model][shareKey()][state.m];
  return chosen === null ? [] : [ring(data.bottlenecks[state.m], 100 * chosen)];
}

function drawShare() {
  const key = shareKey();
  const traces = data.models.map((model, i) => ({
    x: data.bottlenecks, y: model[key].map((v) => (v === null ? null : 100 * v)),
    mode: "lines+markers", name: `${model.name} (d = ${fmtInt(model.hidden)}, L = ${model.layers})`,
    line: { width: i === state.model ? 3.5 : 1.5 },
    hovertemplate: "m = %{x}: %{y:.3g}%<extra>" + model.name + "</extra>",
  }));
  react("share-chart", traces, {
    shapes: shareRing(),
    margin: { l: 70, r: 10, t: 10, b: 50 },
    legend: { x: 0.01, y: 0.99, bgcolor: "rgba(255,255,255,0.8)" },
    xaxis: { title: { text: "bottleneck size m (log scale)" }, type: "log", tickvals: data.bottlenecks },
    yaxis: { title: { text: "trained share of the model (%, log)" }, type: "log" },
  }, PLOT_CONFIG);
}

function drawReadouts() {
  const model = data.models[state.model];
  const w = data.weights[state.d][state.m];
  const wb = data.with_biases[state.d][state.m];
  $("hidden-value").textContent = fmtInt(data.hidden_sizes[state.d]);
  $("bottleneck-value").textContent = fmtInt(data.bottlenecks[state.m]);
  $("per-adapter").textContent = fmtInt(w);
  $("per-adapter-bias").textContent = fmtInt(wb);
  $("per-layer").textContent = fmtInt(data.adapters_per_layer * (state.bias ? wb : w));
  $("model-row-label").textContent = `${model.name}: ${model.adapters} adapters at d = ${fmtInt(model.hidden)}`;
  const total = (state.bias ? model.with_biases : model.weights)[state.m];
  const share = (state.bias ? model.share_with_biases : model.share)[state.m];
  $("model-trainable").textContent = total === null ? "m > d" : fmtInt(total);
  $("model-share").textContent = share === null ? "—" : fmtPct(share);
}

function drawNotes() {
  const s = data.source_check;
  const d1024 = data.hidden_sizes.indexOf(1024);
  const m64 = data.bottlenecks.indexOf(64);
  $("source-131k").textContent = fmtInt(data.weights[d1024][m64]);
  $("source-two").textContent = fmtPct(s.two_per_layer_share);
  $("source-one").textContent = fmtPct(s.one_per_layer_share);
  $("source-bert-adapters").textContent = fmtInt(s.bert_large_adapters);
  const large = data.models.find((x) => x.name === "BERT-large");
  $("bert-large-total").textContent = fmtInt(large.total);
}

// Each chart, the settings its traces read, and for the share chart the setting that only moves
// its chosen-m ring: a change redraws only the charts that read it, and moves the ring where that
// is all it changes.
const CHARTS = [
  [drawDiagram, ["d", "m"]],
  [drawLayer, ["d", "m"]],
  [drawShare, ["model", "bias"], () => moveShapes("share-chart", shareRing()), ["m"]],
];

// `changed`: the settings that changed (none given: every chart).
function draw(changed = null) {
  mSlider.max = maxM(state.d);
  drawReadouts();
  redrawChanged(CHARTS, changed);
  writeUrl();
  root.dataset.ready = "1";
}

async function start() {
  try {
    data = await getJson(root.dataset.apiUrl);
  } catch (err) {
    showError(`Could not load the adapter counts: ${err.message}`);
    return;
  }
  data.models.forEach((model, i) => modelSelect.add(new Option(model.name, i)));
  readUrl();
  syncControls();
  drawNotes();
  draw();
}

// A drag redraws at most once a frame, with the slider's latest value.
// Calls coalesced into one draw redraw what any of them changed.
const drawEachStep = drawEachFrame(draw, ([older], [newer]) => [[...new Set([...older, ...newer])]]);
hiddenSlider.addEventListener("input", () => {
  if (!data) return;
  const m = state.m;
  state.d = Number(hiddenSlider.value);
  state.m = Math.min(state.m, maxM(state.d));
  mSlider.max = maxM(state.d);
  mSlider.value = state.m;
  drawEachStep(state.m === m ? ["d"] : ["d", "m"]);
});
mSlider.addEventListener("input", () => { if (data) { state.m = Number(mSlider.value); drawEachStep(["m"]); } });
modelSelect.addEventListener("change", () => {
  if (!data) return;
  state.model = Number(modelSelect.value);
  // Picking a model shows its own hidden size in the diagram.
  state.d = data.hidden_sizes.indexOf(data.models[state.model].hidden);
  state.m = Math.min(state.m, maxM(state.d));
  syncControls();
  draw();
});
biasCheck.addEventListener("change", () => { if (data) { state.bias = biasCheck.checked; draw(["bias"]); } });

start();
