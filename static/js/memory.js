// P2 Memory calculator. The server computes every component for four methods, and activations on
// a grid of batch sizes × sequence lengths, once per change of model or conventions; the batch,
// sequence and task sliders only index into that response. The whole state lives in the URL.
import { $, ACCENT, BAD, GOOD, INK, PLOT_CONFIG, WARN, drawEachFrame, errorBox, getJson, readQuery, writeQuery } from "./lab.js";
import { latestFetcher, moveShapes, react, redrawChanged, ring } from "./playground.js";
import { deviceOf, fmtInt, precisionOf } from "./format.js";

const showError = errorBox("memory-error");
const root = document.getElementById("memory-root");
// Its fields redraw as they change: Enter in one must not submit the form (a reload). Here, not
// in an onsubmit attribute: the Content-Security-Policy allows no inline script.
$("memory-form").addEventListener("submit", (event) => event.preventDefault());

const CONFIG_KEYS = ["arch", "layers", "hidden", "heads", "vocab", "ffn"];
const inputs = {
  preset: $("preset-select"), arch: $("arch-select"), layers: $("layers-input"),
  hidden: $("hidden-input"), heads: $("heads-input"), vocab: $("vocab-input"),
  ffn: $("ffn-input"), params: $("params-input"), optimizer: $("optimizer-select"),
  quant: $("quant-select"), rank: $("rank-input"),
};
const checks = { master: $("master-check"), checkpointing: $("checkpointing-check"),
  flash: $("flash-check"), lm_logits: $("logits-check") };
const sliders = { b: $("batch-slider"), s: $("seq-slider"), n: $("tasks-slider") };
const zoom = $("zoom-check");

// Component keys in stacking order, with the legend's name and a colour.
const COMPONENTS = [
  ["weights", "weights", ACCENT],
  ["quant_constants", "quantization constants", "#8ea2ee"],
  ["unquantized", "unquantized parts", "#5d7be0"],
  ["adapter", "LoRA A, B", "#e07b39"],
  ["gradients", "gradients", GOOD],
  ["master", "fp32 master weights", "#7a4fb8"],
  ["adam_m", "Adam m", "#c9a227"],
  ["adam_v", "Adam v", WARN],
  ["activations", "activations", "#9aa3b2"],
];

let data = null;
let view = { b: 0, s: 4, n: 9, zoom: false, show: "full-mixed" };

function fmtBytes(b) {
  if (b >= 1e12) return `${(b / 1e12).toFixed(2)} TB`;
  if (b >= 1e9) return `${(b / 1e9).toFixed(1)} GB`;
  if (b >= 1e6) return `${(b / 1e6).toFixed(1)} MB`;
  return `${(b / 1e3).toFixed(1)} kB`;
}

const fetchLatest = latestFetcher(root);

function fetchEstimate(params) {
  return fetchLatest(`${root.dataset.apiUrl}?${params}`);
}

function selectedTargets() {
  return [...document.querySelectorAll("#targets-box input:checked")].map((c) => c.value);
}

// The request for the current form: a preset sends only its name; "custom" sends its config.
function paramsFromForm() {
  const p = new URLSearchParams();
  p.set("preset", inputs.preset.value);
  if (inputs.preset.value === "custom") for (const k of CONFIG_KEYS) p.set(k, inputs[k].value.trim());
  if (inputs.params.value.trim()) p.set("params", inputs.params.value.trim());
  for (const k of ["optimizer", "quant", "rank"]) p.set(k, inputs[k].value.trim());
  for (const [k, c] of Object.entries(checks)) p.set(k, c.checked ? "true" : "false");
  p.set("targets", selectedTargets().join(","));
  return p;
}

function fillSelect(select, entries) {
  if (select.options.length) return;
  for (const [value, label] of entries) select.add(new Option(label, value));
}

function syncControls() {
  const { settings, model, presets, options } = data;
  fillSelect(inputs.preset, [...Object.entries(presets).map(([k, m]) => [k, m.name]), ["custom", "custom config"]]);
  fillSelect(inputs.arch, Object.entries(options.archs));
  fillSelect(inputs.optimizer, Object.entries(options.optimizers));
  fillSelect(inputs.quant, Object.entries(options.quants));
  const box = $("targets-box");
  if (!box.children.length) {
    for (const t of options.targets) {
      const label = document.createElement("label");
      label.className = "check";
      label.innerHTML = `<input type="checkbox" value="${t}" id="target-${t}"> ${t}`;
      box.append(label);
      label.querySelector("input").addEventListener("change", reload);
    }
  }
  inputs.preset.value = settings.preset;
  for (const k of CONFIG_KEYS) inputs[k].value = model[k];
  $("arch-detail").textContent = options.arch_details[model.arch] || "";
  inputs.params.value = settings.params ?? "";
  $("config-params").textContent = `${fmtInt(model.config_params)} parameters`;
  for (const k of ["optimizer", "quant", "rank"]) inputs[k].value = settings[k];
  for (const [k, c] of Object.entries(checks)) c.checked = settings[k];
  for (const input of box.querySelectorAll("input")) input.checked = settings.targets.includes(input.value);
  sliders.b.max = data.batches.length - 1;
  sliders.s.max = data.seqs.length - 1;
  sliders.n.max = data.storage.tasks.length - 1;
  const pick = $("method-pick");
  if (!pick.children.length) {
    for (const m of data.methods) {
      const label = document.createElement("label");
      label.innerHTML = `<input type="radio" name="show" id="show-${m.key}" value="${m.key}"> ${m.label}`;
      pick.append(label);
      label.querySelector("input").addEventListener("change", (e) => {
        view.show = e.target.value;
        drawView(["show"]);
      });
    }
  }
  $("source-notes").replaceChildren(...data.source_notes.map((n) => {
    const li = document.createElement("li");
    li.innerHTML = `<strong></strong> `;
    li.querySelector("strong").textContent = `${n.source}:`;
    li.append(n.text);
    return li;
  }));
  $("lab-seq").textContent = data.lab_seq;
}

function writeUrl() {
  const p = paramsFromForm();
  for (const k of ["b", "s", "n"]) p.set(k, view[k]);
  if (view.zoom) p.set("zoom", "1");
  p.set("show", view.show);
  writeQuery(p);
}

const partsOf = (m) => Object.fromEntries(m.parts.map((p) => [p.key, p]));

function drawChart() {
  const methods = data.methods;
  const x = methods.map((m) => m.label);
  const traces = COMPONENTS.map(([key, name, color]) => {
    const y = [], text = [];
    for (const m of methods) {
      if (key === "activations") {
        y.push(m.activations[view.b][view.s] / 1e9);
        text.push(`activations: ${m.activation_formulas[view.b][view.s]}`);
      } else {
        const part = partsOf(m)[key];
        y.push(part ? part.bytes / 1e9 : 0);
        text.push(part ? `${part.label}: ${part.formula}` : "");
      }
    }
    return { type: "bar", name, x, y, text, marker: { color }, textposition: "none",
      hovertemplate: "%{text}<extra></extra>" };
  }).filter((t) => t.y.some((v) => v > 0));
  // The GPU lines are traces, not annotations, so that their names sit readably in the legend
  // however tall the bars make the axis.
  const dashes = ["dot", "dash", "dashdot"];
  data.gpu_lines.forEach((g, i) => traces.push({
    type: "scatter", mode: "lines", name: `one ${g.label} GPU`, x, y: x.map(() => g.bytes / 1e9),
    line: { color: BAD, width: 2, dash: dashes[i % dashes.length] },
    hovertemplate: `${g.label}<extra></extra>` }));
  react("memory-chart", traces, {
    barmode: "stack",
    // The legend sits above the plot, clear of the method names and the axis title below.
    margin: { l: 70, r: 10, t: 90, b: 50 },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    xaxis: { title: { text: "method" } },
    yaxis: { title: { text: "GPU memory (GB)" }, range: view.zoom ? [0, 100] : undefined,
      autorange: !view.zoom, rangemode: "tozero" },
  }, PLOT_CONFIG);

  const lines = data.gpu_lines;
  const rows = methods.map((m) => {
    const total = m.fixed_bytes + m.activations[view.b][view.s];
    const fit = lines.find((g) => total <= g.bytes);
    return `<tr><td>${m.label}</td><td class="num" data-method="${m.key}">${fmtBytes(total)}</td>` +
      `<td>${fit ? `fits one ${fit.label}` : `more than one ${lines[lines.length - 1].label}`}</td>` +
      `<td class="num">${fmtInt(m.trainable)} trainable</td></tr>`;
  });
  $("totals-table").innerHTML = `<tr><th>method</th><th>total</th><th>one GPU?</th><th>parameters</th></tr>${rows.join("")}`;
}

function drawWorking() {
  const m = data.methods.find((x) => x.key === view.show) || data.methods[0];
  for (const r of document.querySelectorAll('#method-pick input')) r.checked = r.value === m.key;
  const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const rows = m.parts.map((p) => `<tr><td>${esc(p.label)}</td><td class="formula">${esc(p.formula)}</td></tr>`);
  rows.push(`<tr><td>activations</td><td class="formula">${esc(m.activation_formulas[view.b][view.s])}</td></tr>`);
  rows.push(`<tr><th>total</th><td class="formula"><strong id="working-total">${fmtBytes(m.fixed_bytes + m.activations[view.b][view.s])}</strong></td></tr>`);
  $("working-table").innerHTML = rows.join("");
}

// N on both lines (the tasks slider moves only these dots).
function storageDots() {
  const st = data.storage;
  const i = view.n;
  const dot = { radius: 5.5, fill: INK, color: INK, width: 1 };
  return [ring(st.tasks[i], st.full_copies[i] / 1e9, dot),
    ring(st.tasks[i], st.base_plus_adapters[i] / 1e9, dot)];
}

function drawStorage() {
  const st = data.storage;
  // Plotly.react itself: Plotly hides a tick label of this chart that would cross its edge.
  Plotly.react("storage-chart", [
    { x: st.tasks, y: st.full_copies.map((v) => v / 1e9), mode: "lines", name: "N full copies",
      line: { color: ACCENT }, hovertemplate: "N = %{x}: %{y:.4g} GB<extra>full copies</extra>" },
    { x: st.tasks, y: st.base_plus_adapters.map((v) => v / 1e9), mode: "lines", name: "base + N adapters",
      line: { color: "#e07b39" }, hovertemplate: "N = %{x}: %{y:.4g} GB<extra>base + adapters</extra>" },
  ], {
    shapes: storageDots(),
    margin: { l: 70, r: 10, t: 10, b: 50 },
    legend: { orientation: "h", y: -0.25 },
    xaxis: { title: { text: "number of tasks N" } },
    yaxis: { title: { text: "disk (GB, log scale)" }, type: "log" },
  }, PLOT_CONFIG);
  storageReadouts();
}

function moveStorageDots() {
  moveShapes("storage-chart", storageDots());
  storageReadouts();
}

function storageReadouts() {
  const st = data.storage;
  const i = view.n;
  $("tasks-value").textContent = st.tasks[i];
  $("copies-total").textContent = fmtBytes(st.full_copies[i]);
  $("adapters-total").textContent = fmtBytes(st.base_plus_adapters[i]);
  $("storage-formulas").textContent = `${st.copy_formula}; ${st.adapter_formula}.`;
}

// Each part, the view settings it reads, and for the storage chart the settings that only move
// its dots: a change redraws only the parts that read it (new data redraws them all).
const PARTS = [
  [drawChart, ["b", "s", "zoom"]],
  [drawWorking, ["b", "s", "show"]],
  [drawStorage, [], moveStorageDots, ["n"]],
];

// `changed`: the view settings that changed (none given: every part).
function drawView(changed = null) {
  for (const k of ["b", "s", "n"]) sliders[k].value = view[k];
  zoom.checked = view.zoom;
  $("batch-value").textContent = data.batches[view.b];
  $("seq-value").textContent = data.seqs[view.s];
  redrawChanged(PARTS, changed);
  writeUrl();
}

function clampView() {
  const clamp = (v, max, dflt) => (Number.isInteger(v) && v >= 0 && v <= max ? v : dflt);
  view.b = clamp(view.b, data.batches.length - 1, 0);
  view.s = clamp(view.s, data.seqs.length - 1, 4);
  view.n = clamp(view.n, data.storage.tasks.length - 1, 9);
  if (!data.methods.some((m) => m.key === view.show)) view.show = "full-mixed";
}

function show(body) {
  data = body;
  syncControls();
  clampView();
  drawView();
  root.dataset.ready = "1";
}

async function reload() {
  try {
    const body = await fetchEstimate(paramsFromForm());
    if (body) {
      showError("");
      show(body);
    }
  } catch (err) {
    showError(err.message);
  }
}

// --- the lab's measured runs ---------------------------------------------------------------------
const BREAKDOWN = ["params", "grads", "optimizer_state", "activations"];

async function drawLabRuns() {
  const box = $("lab-runs");
  let runs;
  try {
    runs = await getJson(root.dataset.runsUrl);
  } catch (err) {
    box.textContent = `Could not read the lab's runs: ${err.message}`;
    return;
  }
  runs = runs.filter((r) => r.status === "succeeded" && ["full", "lora", "qlora"].includes(r.method)
    && r.metrics && r.metrics.peak_memory_bytes);
  if (!runs.length) {
    box.innerHTML = 'No finished full, LoRA or QLoRA run yet: <a href="/train/">train one on the Train page to compare</a>.';
    return;
  }
  const predictions = new Map();
  const keyOf = (r) => {
    const p = r.params || {};
    const q = new URLSearchParams({ method: r.method, batch_size: p.batch_size ?? 16,
      precision: precisionOf(r.metrics), device: deviceOf(r.metrics) });
    if (r.method !== "full") {
      q.set("rank", p.rank ?? 8);
      q.set("targets", (p.target_modules || ["query", "value"]).join(","));
    }
    return q.toString();
  };
  for (const r of runs) {
    const key = keyOf(r);
    if (!predictions.has(key)) {
      predictions.set(key, getJson(`${root.dataset.labUrl}?${key}`).catch((e) => ({ error: e.message })));
    }
  }
  const rows = [];
  const sources = new Set();
  for (const r of runs) {
    const pred = await predictions.get(keyOf(r));
    const m = r.metrics;
    const b = m.memory_breakdown || {};
    const p = r.params || {};
    if (m.peak_memory_source) sources.add(m.peak_memory_source);
    const autocast = precisionOf(m) === "bf16 autocast";
    const settings = (r.method === "full" ? `batch ${p.batch_size ?? 16}` :
      `batch ${p.batch_size ?? 16}, r = ${p.rank ?? 8}, ${(p.target_modules || ["query", "value"]).join("+")}`) +
      (autocast ? ", bf16 autocast" : "");
    // Each cell: the measured figure over the predicted one.
    const cell = (measured, predicted) => `<td class="num">${measured}<br><span class="muted">${predicted}</span></td>`;
    const cells = BREAKDOWN.map((k) => cell(k in b ? fmtBytes(b[k]) : "–", pred.error ? "–" : fmtBytes(pred[k])));
    cells.push(cell(fmtBytes(m.peak_memory_bytes), pred.error ? pred.error : fmtBytes(pred.total)));
    rows.push(`<tr data-run="${r.id}"><td><a href="/train/?run=${r.id}">#${r.id}</a> ${r.method}</td>` +
      `<td>${settings}</td>${cells.join("")}</tr>`);
  }
  box.innerHTML = `<table class="metrics" id="lab-table"><tr><th>run</th><th>settings</th>` +
    `<th>params</th><th>gradients</th><th>optimizer state</th><th>activations</th><th>peak / total</th></tr>` +
    `${rows.join("")}</table><p class="muted">In each cell: measured above, <span class="muted">predicted</span> below. ` +
    `How the peak was measured: <span id="lab-sources"></span></p>`;
  $("lab-sources").textContent = [...sources].join("; ");
}

// --- wiring ----------------------------------------------------------------------------------------
async function start() {
  const q = readQuery();
  const params = new URLSearchParams();
  for (const k of ["preset", ...CONFIG_KEYS, "params", "master", "optimizer", "quant",
    "checkpointing", "flash", "lm_logits", "rank", "targets"]) if (q.has(k)) params.set(k, q.get(k));
  for (const k of ["b", "s", "n"]) if (q.has(k)) view[k] = Number(q.get(k));
  view.zoom = q.get("zoom") === "1";
  if (q.has("show")) view.show = q.get("show");
  try {
    const body = await fetchEstimate(params);
    if (body) show(body);
  } catch (err) {
    // A bad or outdated link still opens a working page, and says what was wrong with it.
    const body = await fetchEstimate(new URLSearchParams()).catch(() => null);
    if (body) show(body);
    showError(`The link's settings were not accepted (${err.message}); showing the defaults.`);
  }
  drawLabRuns();
}

for (const k of CONFIG_KEYS) {
  inputs[k].addEventListener("change", () => {
    inputs.preset.value = "custom";
    reload();
  });
}
inputs.preset.addEventListener("change", () => {
  inputs.params.value = ""; // a count typed for one model does not carry over to another
  reload();
});
for (const k of ["params", "optimizer", "quant", "rank"]) inputs[k].addEventListener("change", reload);
for (const c of Object.values(checks)) c.addEventListener("change", reload);
for (const [k, slider] of Object.entries(sliders)) {
  // A drag redraws at most once a frame, with the slider's latest value.
  const drawEachStep = drawEachFrame(() => drawView([k]));
  slider.addEventListener("input", () => {
    if (!data) return;
    view[k] = Number(slider.value);
    drawEachStep();
  });
}
zoom.addEventListener("change", () => {
  view.zoom = zoom.checked;
  if (data) drawView(["zoom"]);
});

start();
