// The compare page: pick finished runs (the selection is the URL's ?runs=3,7,9), and see their
// loss and validation accuracy overlaid and their measurements in one table. One request,
// GET /api/compare, brings every selected run with its points.
import { $, ACCENT, BAD, GOOD, PLOT_CONFIG, emptyLayout, errorBox, getJson, readQuery, writeQuery } from "./lab.js";
import { latestFetcher } from "./playground.js";
import { fmtAcc, fmtBytes, fmtInt, fmtMs, fmtPrecision, fmtSeconds } from "./format.js";

const showError = errorBox("compare-error");
const root = document.getElementById("compare-root");
// One colour per selected run, in the order they were ticked (two LoRA runs need two colours).
const RUN_COLOURS = [ACCENT, "#e07b2a", GOOD, "#9333ea", BAD, "#0891b2", "#b45309", "#4a5160"];
const FINISHED = ["succeeded", "failed", "cancelled"];
const maxRuns = Number(root.dataset.maxRuns);
const fetchLatest = latestFetcher(root);

let finished = []; // run summaries offered as checkboxes
let selected = []; // run ids, in the order ticked

function readUrl() {
  const raw = readQuery().get("runs") || "";
  return [...new Set(raw.split(",").map((x) => x.trim()).filter((x) => /^\d+$/.test(x)).map(Number))];
}

function writeUrl() {
  writeQuery(selected.length ? `runs=${selected.join(",")}` : "");
}

const colourOf = (id) => RUN_COLOURS[selected.indexOf(id) % RUN_COLOURS.length];
const runName = (r) => `Run ${r.id} · ${r.label || r.method}`;

function accuracyOf(r) {
  return r.metrics && r.metrics.val_accuracy !== undefined && r.metrics.val_accuracy !== null
    ? ` · ${fmtAcc(r.metrics.val_accuracy)}` : "";
}

function drawPicks() {
  if (!finished.length) {
    $("run-picks").innerHTML = `<li class="muted">No finished runs yet: <a href="/train/">train one</a>.</li>`;
    return;
  }
  $("run-picks").innerHTML = finished.map((r) => {
    const on = selected.includes(r.id);
    return `<li><label><input type="checkbox" value="${r.id}" ${on ? "checked" : ""}>
      <span class="swatch" style="background:${on ? colourOf(r.id) : "transparent"}"></span>
      <span><strong>Run ${r.id}</strong> ${r.method} · ${r.task} · ${r.steps} steps ·
      <span class="status-${r.status}">${r.status}</span>${accuracyOf(r)}</span></label></li>`;
  }).join("");
}

// ---- the charts ------------------------------------------------------------------------------
// Where the run list is: beside the charts on a wide screen, above them on a narrow one.
const PICKS = window.matchMedia("(max-width: 900px)").matches ? "in the list above" : "on the left";

function drawCharts(runs) {
  const none = !runs.length;
  const legend = { orientation: "h", x: 0, y: -0.25, yanchor: "top" };
  const margin = { l: 60, r: 20, t: 40, b: 50 };
  const lossTraces = runs.map((r) => ({
    x: r.points.map((p) => p.step), y: r.points.map((p) => p.loss), mode: "lines", name: runName(r),
    line: { color: colourOf(r.id), width: 2 },
    hovertemplate: `${runName(r)}<br>step %{x}<br>loss %{y:.4f}<extra></extra>`,
  }));
  const lossLayout = {
    title: { text: "Training loss per step", font: { size: 14 } }, margin, legend, showlegend: true,
    xaxis: { title: { text: "step" }, rangemode: "tozero", automargin: true },
    yaxis: { title: { text: "training loss (cross-entropy)" }, automargin: true },
  };
  Plotly.react($("loss-chart"), lossTraces, none ? emptyLayout($("loss-chart"), lossLayout, `Tick finished runs ${PICKS} to overlay their loss.`)
    : lossLayout, PLOT_CONFIG);
  const accTraces = runs.map((r) => ({
    x: r.evals.map((e) => e.step), y: r.evals.map((e) => e.val_accuracy), mode: "lines+markers", name: runName(r),
    line: { color: colourOf(r.id), width: 2 }, marker: { size: 7 },
    hovertemplate: `${runName(r)}<br>step %{x}<br>accuracy %{y:.1%}<extra></extra>`,
  }));
  const accLayout = {
    title: { text: "Validation accuracy at each evaluation", font: { size: 14 } }, margin, legend, showlegend: true,
    xaxis: { title: { text: "step" }, rangemode: "tozero", automargin: true },
    yaxis: { title: { text: "validation accuracy (%)" }, tickformat: ".0%", rangemode: "tozero", automargin: true },
  };
  Plotly.react($("accuracy-chart"), accTraces, none
    ? emptyLayout($("accuracy-chart"), accLayout, `Tick finished runs ${PICKS} to overlay their accuracy.`)
    : accLayout, PLOT_CONFIG);
}

// ---- the table: a row per measurement, a column per run ------------------------------------
const ROWS = [
  ["method", (r) => r.label || r.method],
  ["task", (r) => r.task],
  ["steps", (r) => fmtInt(r.steps)],
  ["status", (r) => `<span class="status-${r.status}">${r.status}</span>`],
  ["trainable parameters", (r) => fmtInt(r.metrics.trainable_params)],
  ["trainable share", (r) => (r.metrics.trainable_percent === undefined ? "—" : `${r.metrics.trainable_percent.toFixed(3)} %`)],
  ["peak memory", (r) => fmtBytes(r.metrics.peak_memory_bytes)],
  ["training time", (r) => (r.metrics.train_seconds === undefined ? "—" : fmtSeconds(r.metrics.train_seconds))],
  ["validation accuracy", (r) => fmtAcc(r.metrics.val_accuracy)],
  ["adapter on disk", (r) => fmtBytes(r.metrics.adapter_bytes)],
  ["latency per batch", (r) => (r.metrics.latency_ms === undefined ? "—"
    : `${fmtMs(r.metrics.latency_ms)} <span class="muted">/ ${r.metrics.latency_batch}</span>`)],
  ["device", (r) => r.device || "—"],
  ["training steps computed in", (r) => fmtPrecision(r.metrics)],
];

function drawTable(runs) {
  if (!runs.length) {
    $("compare-table").innerHTML = `<tbody><tr><td class="muted">Tick runs to see what they measured.</td></tr></tbody>`;
    $("memory-note").textContent = "";
    return;
  }
  const cols = runs.map((r) => ({ ...r, metrics: r.metrics || {} }));
  const head = `<thead><tr><td></td>${cols.map((r) => `<th scope="col" class="num" data-run="${r.id}">`
    + `<a href="/train/?run=${r.id}"><span class="swatch" style="background:${colourOf(r.id)}"></span>Run ${r.id}</a></th>`).join("")}</tr></thead>`;
  const body = ROWS.map(([name, cell]) => `<tr><th scope="row">${name}</th>${cols.map((r) =>
    `<td class="num">${cell(r)}</td>`).join("")}</tr>`).join("");
  $("compare-table").innerHTML = `${head}<tbody>${body}</tbody>`;
  const sources = [...new Set(cols.map((r) => r.metrics.peak_memory_source).filter(Boolean))];
  $("memory-note").textContent = "Latency: one forward pass over a batch of that many validation sentences. "
    + `Peak memory: ${sources.join("; ") || "not measured"}.`;
}

// ---- wiring ----------------------------------------------------------------------------------
async function show() {
  writeUrl();
  drawPicks();
  showError("");
  if (!selected.length) {
    drawCharts([]);
    drawTable([]);
    root.dataset.shown = "";
    return;
  }
  try {
    const body = await fetchLatest(`/api/compare?runs=${selected.join(",")}`);
    if (!body) return;
    // A run chosen through the URL that the list does not hold (an older one) joins the list.
    for (const r of body.runs) if (!finished.some((f) => f.id === r.id)) finished.push(r);
    finished.sort((a, b) => b.id - a.id);
    drawPicks();
    drawCharts(body.runs);
    drawTable(body.runs);
    root.dataset.shown = body.runs.map((r) => r.id).join(",");
  } catch (err) {
    showError(err.message);
    drawCharts([]);
    drawTable([]);
    root.dataset.shown = "";
  }
}

$("run-picks").addEventListener("change", (event) => {
  const box = event.target.closest("input[type=checkbox]");
  if (!box) return;
  const id = Number(box.value);
  if (box.checked && selected.length >= maxRuns) {
    box.checked = false;
    showError(`Compare at most ${maxRuns} runs at a time: untick one first.`);
    return;
  }
  selected = box.checked ? [...selected, id] : selected.filter((x) => x !== id);
  show();
});

async function init() {
  selected = readUrl().slice(0, maxRuns);
  drawCharts([]);
  const body = await getJson("/api/runs?limit=200");
  finished = body.filter((r) => FINISHED.includes(r.status));
  await show();
  root.dataset.ready = "1";
}

init().catch((err) => { showError(`Could not load the runs: ${err.message}`); root.dataset.ready = "1"; });
