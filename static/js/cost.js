// P1 Cost of fine-tuning. The server computes each model's GPU-hours, cost and checkpoint, and
// the totals for every (tasks, runs) pair, once per change of the run settings; the two sliders
// only index into that response. The whole state lives in the URL.
import { $, ACCENT, GOOD, MUTED, PLOT_CONFIG, drawEachFrame, errorBox, readQuery, writeQuery } from "./lab.js";
import { latestFetcher, react } from "./playground.js";

const showError = errorBox("cost-error");
const root = document.getElementById("cost-root");
// Its fields redraw as they change: Enter in one must not submit the form (a reload). Here, not
// in an onsubmit attribute: the Content-Security-Policy allows no inline script.
$("cost-form").addEventListener("submit", (event) => event.preventDefault());

const KEYS = ["tokens", "gpu", "utilisation", "price", "bytes_per_param"];
const inputs = { tokens: $("tokens-input"), gpu: $("gpu-select"), utilisation: $("utilisation-input"),
  price: $("price-input"), bytes_per_param: $("bytes-select") };
const sliders = { t: $("tasks-slider"), r: $("runs-slider") };

let data = null;
let view = { t: 9, r: 0 };

const fmtMoney = (x) => (x >= 1e6 ? `$${(x / 1e6).toFixed(2)}M` : `$${Math.round(x).toLocaleString("en-US")}`);
const fmtHours = (x) => (x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toPrecision(3));
function fmtBytes(b) {
  if (b >= 1e12) return `${(b / 1e12).toFixed(2)} TB`;
  return `${(b / 1e9).toFixed(1)} GB`;
}

const fetchLatest = latestFetcher(root);

function fetchTable(params) {
  return fetchLatest(`${root.dataset.apiUrl}?${params}`);
}

function paramsFromForm() {
  const p = new URLSearchParams();
  for (const k of KEYS) p.set(k, inputs[k].value.trim());
  return p;
}

function syncControls() {
  if (!inputs.gpu.options.length) {
    for (const [k, label] of Object.entries(data.gpus)) inputs.gpu.add(new Option(label, k));
  }
  for (const k of KEYS) inputs[k].value = data.settings[k];
  sliders.t.max = data.tasks.length - 1;
  sliders.r.max = data.runs.length - 1;
  $("pretrain-formula").textContent = data.pretrain.formula;
  $("jump").textContent = `${data.jump.toFixed(0)}×`;
  $("source-notes").replaceChildren(...data.source_notes.map((n) => {
    const li = document.createElement("li");
    const strong = document.createElement("strong");
    strong.textContent = `${n.source}: `;
    li.append(strong, n.text);
    return li;
  }));
}

function writeUrl() {
  const p = paramsFromForm();
  p.set("t", view.t);
  p.set("r", view.r);
  writeQuery(p);
}

function drawHours() {
  const m = data.models;
  const x = m.map((row) => row.label);
  const quoted = m.filter((row) => row.quoted_gpu_hours !== null);
  react("hours-chart", [
    { type: "bar", name: "this formula", x, y: m.map((row) => row.gpu_hours),
      text: m.map((row) => `${row.formula}<br>checkpoint: ${row.checkpoint_formula}`), textposition: "none",
      marker: { color: ACCENT }, hovertemplate: "<b>%{x}</b><br>%{text}<extra></extra>" },
    { type: "scatter", mode: "markers", name: "the lecture's table", x: quoted.map((row) => row.label),
      y: quoted.map((row) => row.quoted_gpu_hours), marker: { symbol: "diamond", size: 12, color: MUTED },
      hovertemplate: "the lecture's table: %{y} GPU-hours<extra></extra>" },
  ], {
    margin: { l: 70, r: 10, t: 10, b: 60 },
    legend: { orientation: "h", y: -0.2 },
    xaxis: { title: { text: "model" } },
    yaxis: { title: { text: "GPU-hours per run (log scale)" }, type: "log" },
  }, PLOT_CONFIG);
}

function drawTotals() {
  const { t, r } = view;
  const m = data.models;
  const x = m.map((row) => row.label);
  const tasks = data.tasks[t], runs = data.runs[r];
  react("total-chart", [
    { type: "bar", name: "compute cost ($)", x, y: m.map((row) => row.total_cost[t][r]),
      marker: { color: "#e07b39" }, hovertemplate: "%{x}: $%{y:,.0f}<extra>compute</extra>" },
    { type: "bar", name: "disk for the checkpoints (GB)", x, y: m.map((row) => row.storage_bytes[t] / 1e9),
      marker: { color: GOOD }, hovertemplate: "%{x}: %{y:,.4g} GB<extra>checkpoints</extra>" },
  ], {
    barmode: "group",
    margin: { l: 70, r: 10, t: 10, b: 60 },
    legend: { orientation: "h", y: -0.2 },
    xaxis: { title: { text: "model" } },
    yaxis: { title: { text: `dollars or GB, for ${tasks} tasks × ${runs} runs (log scale)` }, type: "log" },
  }, PLOT_CONFIG);
  $("tasks-value").textContent = tasks;
  $("runs-value").textContent = runs;
  const rows = m.map((row) => `<tr data-model="${row.key}"><td>${row.label}</td>` +
    `<td class="num">${fmtHours(row.gpu_hours)}</td><td class="num">${fmtMoney(row.cost)}</td>` +
    `<td class="num">${fmtHours(row.total_gpu_hours[t][r])}</td><td class="num total-cost">${fmtMoney(row.total_cost[t][r])}</td>` +
    `<td class="num">${fmtBytes(row.checkpoint_bytes)}</td><td class="num storage">${fmtBytes(row.storage_bytes[t])}</td></tr>`);
  $("cost-table").innerHTML = `<tr><th>model</th><th>GPU-hours / run</th><th>$ / run</th>` +
    `<th>GPU-hours, all</th><th>$, all</th><th>checkpoint</th><th>disk, ${tasks} tasks</th></tr>${rows.join("")}`;
}

function drawView() {
  sliders.t.value = view.t;
  sliders.r.value = view.r;
  drawTotals();
  writeUrl();
}

function show(body) {
  data = body;
  syncControls();
  const clamp = (v, max, dflt) => (Number.isInteger(v) && v >= 0 && v <= max ? v : dflt);
  view.t = clamp(view.t, data.tasks.length - 1, 9);
  view.r = clamp(view.r, data.runs.length - 1, 0);
  drawHours();
  drawView();
  root.dataset.ready = "1";
}

async function reload() {
  try {
    const body = await fetchTable(paramsFromForm());
    if (body) {
      showError("");
      show(body);
    }
  } catch (err) {
    showError(err.message);
  }
}

async function start() {
  const q = readQuery();
  const params = new URLSearchParams();
  for (const k of KEYS) if (q.has(k)) params.set(k, q.get(k));
  for (const k of ["t", "r"]) if (q.has(k)) view[k] = Number(q.get(k));
  try {
    const body = await fetchTable(params);
    if (body) show(body);
  } catch (err) {
    const body = await fetchTable(new URLSearchParams()).catch(() => null);
    if (body) show(body);
    showError(`The link's settings were not accepted (${err.message}); showing the defaults.`);
  }
}

for (const k of KEYS) inputs[k].addEventListener("change", reload);
for (const [k, slider] of Object.entries(sliders)) {
  // A drag redraws at most once a frame, with the slider's latest value.
  const drawEachStep = drawEachFrame(drawView);
  slider.addEventListener("input", () => {
    if (!data) return;
    view[k] = Number(slider.value);
    drawEachStep();
  });
}

start();
