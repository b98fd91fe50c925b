// P14 NF4 and double quantisation. One request brings every block size, sample size and model
// size; the sliders and toggles only index into it. The state lives in the query string.
import { $, ACCENT, PLOT_CONFIG, drawEachFrame, errorBox, getJson, readQuery, writeQuery } from "./lab.js";
import { moveShapes, react, recolourBars, redrawChanged, ring } from "./playground.js";
import { fmtInt } from "./format.js";

const showError = errorBox("qlora-error");
const root = document.getElementById("qlora-root");
const COLORS = { nf4: ACCENT, int4: "#d9823a" };
const MUTED = "#9aa3b2";
const fmt = (x, digits = 3) => Number(x).toPrecision(digits);
const gb = (x) => `${Number(x).toFixed(1)} GB`;

const sliders = { block: $("block-slider"), sample: $("sample-slider"), model: $("model-slider") };
const dqCheck = $("dq-check");
let data = null;
const state = { code: "nf4", block: 0, sample: 0, model: 0, dq: true };

function writeUrl() {
  const p = new URLSearchParams({
    code: state.code, blocksize: data.blocksizes[state.block],
    samples: data.sample_sizes[state.sample], model: data.memory.models[state.model],
    dq: state.dq ? "1" : "0",
  });
  writeQuery(p);
}

// A link's value if it is one of the choices, else the default's index.
function indexOf(list, value, fallback) {
  const i = list.map(String).indexOf(String(value));
  return i >= 0 ? i : list.map(String).indexOf(String(fallback));
}

function readUrl() {
  const q = readQuery();
  const d = data.defaults;
  state.code = ["nf4", "int4"].includes(q.get("code")) ? q.get("code") : d.code;
  state.block = indexOf(data.blocksizes, q.get("blocksize"), d.blocksize);
  state.sample = indexOf(data.sample_sizes, q.get("samples"), d.sample_size);
  state.model = indexOf(data.memory.models, q.get("model"), d.model);
  state.dq = q.get("dq") !== "0";
}

function syncControls() {
  sliders.block.max = data.blocksizes.length - 1;
  sliders.sample.max = data.sample_sizes.length - 1;
  sliders.model.max = data.memory.models.length - 1;
  sliders.block.value = state.block;
  sliders.sample.value = state.sample;
  sliders.model.value = state.model;
  $(`code-${state.code}`).checked = true;
  dqCheck.checked = state.dq;
}

const layout = (x, y, extra = {}) => ({
  margin: { l: 65, r: 10, t: 10, b: 50 },
  xaxis: { title: { text: x } },
  yaxis: { title: { text: y }, automargin: true },
  legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
  ...extra,
});

function drawLevels() {
  const e = data.error;
  const hist = e.normalized_hist[state.sample][state.block].map((v) => 100 * v);
  const codes = ["nf4", "int4"];
  react("levels-chart", [
    { type: "bar", x: e.normalized_centers, y: hist, name: "weights ÷ absmax", marker: { color: "#d6dbe6" },
      hovertemplate: "w/c ≈ %{x}: %{y:.2f}%<extra></extra>" },
    ...codes.map((c) => ({
      type: "scatter", mode: "markers", x: data.codes[c].levels,
      y: data.codes[c].levels.map(() => data.codes[c].label),
      yaxis: "y2", name: `${data.codes[c].label} codes`,
      marker: { size: c === state.code ? 11 : 8, color: COLORS[c], opacity: c === state.code ? 1 : 0.5 },
      hovertemplate: "%{x}<extra>%{y}</extra>",
    })),
  ], layout("value ÷ block absmax", "share of weights (%)", {
    yaxis: { title: { text: "share of weights (%)" }, domain: [0.32, 1] },
    yaxis2: { domain: [0, 0.22], type: "category", automargin: true },
    showlegend: false, bargap: 0.05,
  }), PLOT_CONFIG);
}

// The chosen block size on the chosen code's curve (the block slider moves only this ring).
function mseRing() {
  return [ring(data.blocksizes[state.block], data.error.mse[state.code][state.sample][state.block])];
}

function drawMse() {
  const e = data.error;
  const traces = [];
  for (const c of ["nf4", "int4"]) {
    traces.push({ x: data.blocksizes, y: e.mse[c][state.sample], mode: "lines+markers",
      name: `${data.codes[c].label}`, line: { color: COLORS[c], width: c === state.code ? 3 : 1.5 },
      hovertemplate: "B = %{x}: MSE %{y}<extra>" + data.codes[c].label + "</extra>" });
    traces.push({ x: data.blocksizes, y: e.mse_dq[c][state.sample], mode: "lines",
      name: `${data.codes[c].label} + double quant`, line: { color: COLORS[c], dash: "dot" },
      hovertemplate: "B = %{x}: MSE %{y}<extra>" + data.codes[c].label + " + DQ</extra>" });
  }
  react("mse-chart", traces, layout("block size B (weights, log scale)", "mean squared error (σ² = 1)", {
    shapes: mseRing(),
    xaxis: { title: { text: "block size B (weights, log scale)" }, type: "log", tickvals: data.blocksizes },
    yaxis: { title: { text: "MSE (weights' σ² = 1)" }, rangemode: "tozero", automargin: true },
    margin: { l: 65, r: 10, t: 60, b: 50 },
  }), PLOT_CONFIG);
}

function drawErrors() {
  const e = data.error;
  const traces = ["nf4", "int4"].map((c) => ({
    type: "bar", x: e.error_centers, y: e.error_hist[c][state.sample][state.block].map((v) => 100 * v),
    name: data.codes[c].label,
    marker: c === state.code
      ? { color: COLORS[c] }
      : { color: "rgba(0,0,0,0)", line: { color: COLORS[c], width: 1.5 } },
    hovertemplate: "error ≈ %{x}: %{y:.2f}%<extra>" + data.codes[c].label + "</extra>",
  }));
  react("error-chart", traces, layout("error ŵ − w (in units of σ)", "share of weights (%)", {
    barmode: "overlay", bargap: 0, margin: { l: 65, r: 10, t: 30, b: 50 },
  }), PLOT_CONFIG);
}

// The chosen block size on the curve of the chosen scales (the block slider and the double
// quantisation toggle move only this ring).
function bitsRing() {
  const b = data.bits;
  return [ring(data.blocksizes[state.block], (state.dq ? b.overhead_dq : b.overhead)[state.block])];
}

function drawBits() {
  const b = data.bits;
  react("bits-chart", [
    { x: data.blocksizes, y: b.overhead, mode: "lines+markers", name: "fp32 absmax per block",
      line: { color: MUTED }, hovertemplate: "B = %{x}: %{y} bits<extra></extra>" },
    { x: data.blocksizes, y: b.overhead_dq, mode: "lines+markers", name: "double quantised",
      line: { color: COLORS.nf4 }, hovertemplate: "B = %{x}: %{y} bits<extra></extra>" },
  ], layout("block size B (weights, log scale)", "scale overhead (bits per weight)", {
    shapes: bitsRing(),
    xaxis: { title: { text: "block size B (weights, log scale)" }, type: "log", tickvals: data.blocksizes },
    yaxis: { title: { text: "overhead (bits/weight, log)" }, type: "log", dtick: 1, automargin: true },
    margin: { l: 65, r: 10, t: 40, b: 50 },
  }), PLOT_CONFIG);
}

// The model picked is the bars at full opacity: the model slider alone only shades the bars again.
function drawMemory() {
  const opacity = data.memory.models.map((_, i) => (i === state.model ? 1 : 0.45));
  recolourBars("memory-chart", [{ opacity }, { opacity }], `${state.block}|${state.dq}`,
    () => drawMemoryWhole(opacity));
}

function drawMemoryWhole(opacity) {
  const m = data.memory;
  const fourBit = (state.dq ? m.nf4_dq_gb : m.nf4_gb).map((row) => row[state.block]);
  const label4 = state.dq ? "4-bit + double-quantised scales" : "4-bit + fp32 scales";
  const shapes = data.gpu_memory_gb.map((g) => ({
    type: "line", xref: "paper", x0: 0, x1: 1, y0: g, y1: g, line: { color: "#c44", dash: "dash", width: 1 },
  }));
  const annotations = data.gpu_memory_gb.map((g) => ({
    xref: "paper", x: 0, y: g, text: `${g} GB GPU`, showarrow: false, xanchor: "left", yanchor: "bottom",
    font: { size: 11, color: "#c44" },
  }));
  return react("memory-chart", [
    { type: "bar", x: m.models, y: m.fp16_gb, name: "fp16 (16 bits)", marker: { color: MUTED, opacity },
      hovertemplate: "%{x}: %{y:.1f} GB<extra>fp16</extra>" },
    { type: "bar", x: m.models, y: fourBit, name: label4, marker: { color: COLORS.nf4, opacity },
      hovertemplate: "%{x}: %{y:.1f} GB<extra>4-bit</extra>" },
  ], layout("model size (parameters)", "weight memory (GB)", {
    shapes, annotations, barmode: "group", margin: { l: 65, r: 10, t: 40, b: 50 } }),
  PLOT_CONFIG);
}

function drawReadouts() {
  const e = data.error;
  const other = state.code === "nf4" ? "int4" : "nf4";
  const m = data.memory;
  document.querySelectorAll(".code-name").forEach((el) => { el.textContent = data.codes[state.code].label; });
  $("block-value").textContent = data.blocksizes[state.block];
  $("sample-value").textContent = fmtInt(data.sample_sizes[state.sample]);
  $("model-value").textContent = m.models[state.model];
  $("mse-code").textContent = fmt(e.mse[state.code][state.sample][state.block]);
  $("mse-other").textContent = `${fmt(e.mse[other][state.sample][state.block])} (${data.codes[other].label})`;
  $("max-error").textContent = fmt(e.max_abs_error[state.code][state.sample][state.block]);
  const overhead = (state.dq ? data.bits.overhead_dq : data.bits.overhead)[state.block];
  $("overhead").textContent = fmt(overhead);
  $("bits").textContent = fmt((state.dq ? data.bits.per_param_dq : data.bits.per_param)[state.block], 4);
  $("model-name").textContent = m.models[state.model];
  $("mem-fp16").textContent = gb(m.fp16_gb[state.model]);
  $("mem-4bit").textContent = gb((state.dq ? m.nf4_dq_gb : m.nf4_gb)[state.model][state.block]);
  $("scale-count").textContent = fmtInt(m.scale_constants[state.model][state.block]);
  const B = data.blocksizes[state.block];
  const b = data.bits;
  $("overhead-formula").textContent = `${b.scale_bits}/${B} = ${fmt(b.overhead[state.block])} bits per weight`;
  $("dq-formula").textContent =
    `${b.dq_code_bits}/${B} + ${b.scale_bits}/(${B}·${b.dq_group}) = ${fmt(b.overhead_dq[state.block])} bits`;
}

function drawNotes() {
  const m = data.memory;
  const i65 = m.models.indexOf("65B");
  $("nf4-offset").textContent = data.nf4_offset;
  document.querySelectorAll(".dq-group").forEach((el) => { el.textContent = data.bits.dq_group; });
  $("note-65-fp16").textContent = gb(m.fp16_gb[i65]);
  $("note-65-4bit").textContent = gb(m.pure_4bit_gb["65B"]);
  $("note-65-nf4").textContent = gb(m.nf4_gb[i65][m.b64_index]);
  $("note-65-dq").textContent = gb(m.nf4_dq_gb[i65][m.b64_index]);
  $("note-70").textContent = gb(m.llama2_70b_4bit_gb);
  const l70 = m.lecture_70b;
  $("note-70-printed").textContent = fmtInt(l70.printed);
  $("note-70-formula").textContent = fmtInt(l70.formula);
  $("note-70-gpt3").textContent = fmtInt(l70.gpt3_qv_r4);
  $("note-70-card").textContent = gb(l70.card_bytes / 1e9);
  $("note-70-weights").textContent = gb(l70.weights_4bit_bytes / 1e9);
  $("note-70-weights-dq").textContent = gb(l70.weights_nf4_dq_bytes / 1e9);
  $("note-7b-count").textContent = fmtInt(m.scales_7b_b64);
  $("note-7b-mb").textContent = m.scales_7b_b64_mb;
  $("note-saving").textContent = data.bits.dq_saving_at_64;
}

// Each chart, the settings its traces read, and for a chart with a chosen-point ring, the ring and
// the settings that only move it: a change redraws only the charts that read it, and moves a ring
// where that is all it changes.
const CHARTS = [
  [drawLevels, ["sample", "block", "code"]],
  [drawMse, ["sample", "code"], () => moveShapes("mse-chart", mseRing()), ["block"]],
  [drawErrors, ["sample", "block", "code"]],
  [drawBits, [], () => moveShapes("bits-chart", bitsRing()), ["block", "dq"]],
  [drawMemory, ["model", "block", "dq"]],
];

// `changed`: the settings that changed (none given: every chart).
function draw(changed = null) {
  drawReadouts();
  redrawChanged(CHARTS, changed);
  writeUrl();
  root.dataset.ready = "1";
}

async function start() {
  try {
    data = await getJson(root.dataset.apiUrl);
  } catch (err) {
    showError(`Could not load the quantisation data: ${err.message}`);
    return;
  }
  readUrl();
  syncControls();
  drawNotes();
  draw();
}

for (const [key, el] of Object.entries(sliders)) {
  // A drag redraws at most once a frame, with the slider's latest value.
  const drawEachStep = drawEachFrame(() => draw([key]));
  el.addEventListener("input", () => { if (data) { state[key] = Number(el.value); drawEachStep(); } });
}
document.querySelectorAll('input[name="code"]').forEach((el) => {
  el.addEventListener("change", () => { if (data && el.checked) { state.code = el.value; draw(["code"]); } });
});
dqCheck.addEventListener("change", () => { if (data) { state.dq = dqCheck.checked; draw(["dq"]); } });

start();
