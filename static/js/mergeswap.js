// P13 Merge and swap. One request brings every finished LoRA-family run of the lab (size on disk,
// measured latency, the merge's logit difference, predictions on the demo sentences merged and
// unmerged) and the storage story for several models; every control only indexes into it. The
// state lives in the query string.
import { $, ACCENT, BAD, GOOD, PLOT_CONFIG, WARN, drawEachFrame, errorBox, postJson, readQuery, writeQuery } from "./lab.js";
import { latestFetcher, moveShapes, react, ring } from "./playground.js";
import { fmtInt, fmtSize } from "./format.js";

const showError = errorBox("swap-error");
const root = document.getElementById("swap-root");
const BASE = ACCENT;
const ADAPTER = "#e07b2a";
const MERGED = "#8a5bd9";
const LABEL_COLORS = [BAD, GOOD, ACCENT, WARN, "#6b4fbb", "#00838f"];
const fmtPct = (x) => `${(100 * x).toPrecision(3)} %`;
const fmtSci = (x) => (x === 0 ? "0" : Number(x).toExponential(1));

const adapterSelect = $("adapter-select");
const mergeToggle = $("merge-toggle");
const modelSelect = $("model-select");
const rankSelect = $("rank-select");
const tasksSlider = $("tasks-slider");
let data = null;
const state = { run: null, merged: false, model: null, rank: null, n: null };

const runLabel = (r) => `#${r.id} ${r.method} · ${r.task} · r = ${r.rank}`;
const current = () => data.runs.find((r) => r.id === state.run);
const argmax = (row) => row.indexOf(Math.max(...row));

// --- URL ------------------------------------------------------------------------------------------

function writeUrl() {
  const p = new URLSearchParams();
  if (state.run !== null) p.set("run", state.run);
  p.set("merged", state.merged ? "1" : "0");
  p.set("model", state.model);
  p.set("rank", state.rank);
  p.set("n", state.n);
  writeQuery(p);
}

function readUrl() {
  const q = readQuery();
  const run = Number(q.get("run"));
  state.run = data.runs.some((r) => r.id === run) ? run : (data.runs[0] ? data.runs[0].id : null);
  state.merged = q.get("merged") === "1";
  const wanted = data.storage_default;
  state.model = Object.hasOwn(data.storage, q.get("model") ?? "") ? q.get("model") : wanted.model;
  const rank = q.get("rank");
  state.rank = data.storage_ranks.map(String).includes(rank) ? rank : String(wanted.rank);
  const n = Number(q.get("n"));
  state.n = Number.isInteger(n) && n >= 1 && n <= data.tasks_max ? n : wanted.tasks;
}

// --- the runs --------------------------------------------------------------------------------------

function drawRun() {
  const run = current();
  const demo = run.demo;
  const probs = state.merged ? demo.probs_merged : demo.probs;
  const sentenceIds = demo.texts.map((_, i) => `sentence ${i + 1}`);
  const traces = demo.labels.map((label, k) => ({
    type: "bar", orientation: "h", name: label, y: sentenceIds, x: probs.map((row) => row[k]),
    marker: { color: LABEL_COLORS[k % LABEL_COLORS.length] },
    customdata: demo.texts, hovertemplate: `%{customdata}<br>${label}: %{x:.6f}<extra></extra>`,
  }));
  react("predict-chart", traces, {
    barmode: "stack", margin: { l: 90, r: 10, t: 30, b: 90 },
    legend: { orientation: "h", x: 0, y: -0.25, yanchor: "top", traceorder: "normal", title: { text: "label " } },
    xaxis: { title: { text: "probability of each label" }, range: [0, 1] },
    yaxis: { title: { text: "" }, autorange: "reversed" },
  }, PLOT_CONFIG);
  $("predict-title").textContent = state.merged
    ? `Merged: h = W′·x, run #${run.id}` : `Swapped in, unmerged: h = W·x + (α/r)·B·A·x, run #${run.id}`;
  $("sentences").innerHTML = demo.texts.map((text, i) => {
    const k = argmax(probs[i]);
    const ok = demo.labels[k] === demo.expected[i];
    return `<li>${escapeHtml(text)} <span class="pred ${ok ? "" : "wrong"}">→ ${escapeHtml(demo.labels[k])} `
      + `${probs[i][k].toFixed(6)}</span> <span class="muted">(a person would say ${escapeHtml(demo.expected[i])})</span></li>`;
  }).join("");
  const same = demo.probs.filter((row, i) => argmax(row) === argmax(demo.probs_merged[i])).length;
  const labels = same === demo.texts.length
    ? `Merging changes no predicted label (${same} of ${demo.texts.length} the same).`
    : `Merging changes the predicted label of ${demo.texts.length - same} of ${demo.texts.length} sentences.`;
  $("merge-verdict").textContent = `${labels} The largest logit change on these sentences is `
    + `${fmtSci(demo.max_abs_logit_diff)}, ` + (run.merge_exact
      ? "float32 rounding: the merged and the unmerged model compute the same function."
      : `more than rounding explains: ${run.method} does not store W′ exactly as W + (α/r)·B·A.`);
  $("adapter-size").textContent = fmtSize(run.adapter_bytes);
  $("adapter-formula").textContent = fmtSize(run.adapter_tensor_bytes_formula);
  $("adapter-share").textContent = fmtPct(run.adapter_share_of_base);
  $("full-size").textContent = fmtSize(run.full_bytes_formula);
  $("latency-label").textContent = state.merged ? "Latency merged (measured)" : "Latency unmerged (measured)";
  $("latency-now").textContent = `${(state.merged ? run.latency_merged_ms : run.latency_ms).toFixed(1)} ms`;
  $("merge-diff").textContent = fmtSci(run.merge_max_abs_diff);
  $("demo-diff").textContent = fmtSci(demo.max_abs_logit_diff);
  $("val-acc").textContent = run.val_accuracy === null ? "—" : fmtPct(run.val_accuracy);
  $("run-detail").textContent = `${run.method} on ${run.task}, rank ${run.rank}, α = ${run.alpha}, `
    + `targets ${run.targets.join(", ")}, ${fmtInt(run.steps)} steps, seed ${run.seed}, trained on ${run.device || "?"}.`;
  drawRunCharts();
}

function drawRunCharts() {
  const labels = data.runs.map(runLabel);
  const chosen = (r) => r.id === state.run;
  react("size-chart", [
    { type: "bar", name: `shared base (${data.base.file})`, x: ["base model"], y: [data.base.file_bytes],
      marker: { color: BASE }, hovertemplate: "%{y:,} bytes<extra>base</extra>" },
    { type: "bar", name: "adapter folder (measured)", x: labels, y: data.runs.map((r) => r.adapter_bytes),
      marker: { color: data.runs.map((r) => (chosen(r) ? ADAPTER : "#f0b990")) },
      hovertemplate: "%{x}: %{y:,} bytes<extra>adapter</extra>" },
  ], {
    margin: { l: 70, r: 10, t: 10, b: 120 }, showlegend: true,
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    xaxis: { title: { text: "" }, tickangle: -30, automargin: true },
    yaxis: { title: { text: "bytes on disk (log scale)" }, type: "log", dtick: 1, exponentformat: "SI",
      range: [Math.log10(Math.min(...data.runs.map((r) => r.adapter_bytes))) - 1, Math.log10(data.base.file_bytes) + 0.3] },
  }, PLOT_CONFIG);
  react("latency-chart", [
    { type: "bar", name: "unmerged: W·x + (α/r)·B·A·x", x: labels, y: data.runs.map((r) => r.latency_ms),
      marker: { color: ADAPTER, line: { color: "#222", width: data.runs.map((r) => (chosen(r) && !state.merged ? 2 : 0)) } },
      hovertemplate: "%{x}: %{y:.1f} ms<extra>unmerged</extra>" },
    { type: "bar", name: "merged: W′·x", x: labels, y: data.runs.map((r) => r.latency_merged_ms),
      marker: { color: MERGED, line: { color: "#222", width: data.runs.map((r) => (chosen(r) && state.merged ? 2 : 0)) } },
      hovertemplate: "%{x}: %{y:.1f} ms<extra>merged</extra>" },
  ], {
    barmode: "group", margin: { l: 70, r: 10, t: 10, b: 120 },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    xaxis: { title: { text: "" }, tickangle: -30, automargin: true },
    yaxis: { title: { text: `ms per batch of ${current().latency_batch} sentences` }, rangemode: "tozero" },
  }, PLOT_CONFIG);
}

function escapeHtml(text) {
  const div = document.createElement("div");
  div.textContent = text;
  return div.innerHTML;
}

// --- no run yet ------------------------------------------------------------------------------------

function drawIllustration() {
  const rows = data.illustration;
  const x = rows.map((r) => `${r.task}<br>r = ${r.rank}`);
  react("illustration-chart", [
    { type: "bar", name: "full fine-tuned copy (formula, illustration)", x, y: rows.map((r) => r.full_bytes),
      marker: { color: BASE }, hovertemplate: "%{y:,} bytes<extra>full copy</extra>" },
    { type: "bar", name: "LoRA adapter (formula, illustration)", x, y: rows.map((r) => r.adapter_bytes),
      marker: { color: ADAPTER }, hovertemplate: "%{y:,} bytes<extra>adapter</extra>" },
  ], {
    barmode: "group", margin: { l: 70, r: 10, t: 10, b: 130 },
    legend: { orientation: "h", x: 0, y: -0.45, yanchor: "top" },
    xaxis: { title: { text: "task and LoRA rank" } },
    yaxis: { title: { text: "bytes (log scale)" }, type: "log", dtick: 1, exponentformat: "SI",
      range: [Math.log10(Math.min(...rows.map((r) => r.adapter_bytes))) - 1,
        Math.log10(Math.max(...rows.map((r) => r.full_bytes))) + 0.3] },
  }, PLOT_CONFIG);
}

async function startRun() {
  const button = $("start-run");
  button.disabled = true;
  $("start-status").textContent = "Queueing a LoRA run…";
  try {
    const body = await postJson(root.dataset.runsUrl, data.start_run);
    $("start-status").textContent = `Run #${body.id} is queued; opening it on the training page.`;
    location.assign(`${root.dataset.trainUrl}?run=${body.id}`);
  } catch (err) {
    $("start-status").textContent = "";
    showError(`Could not start a run: ${err.message}`);
    button.disabled = false;
  }
}

// --- storage of N tasks ----------------------------------------------------------------------------

const storageOf = () => data.storage[state.model].ranks[state.rank];

// N on both curves (the tasks slider moves only these rings).
function storageRings() {
  const s = storageOf();
  const i = state.n - 1;
  return [ring(state.n, s.full_copies[i], { radius: 6 }), ring(state.n, s.base_plus_adapters[i], { radius: 6 })];
}

function drawStorage() {
  const s = storageOf();
  react("storage-chart", [
    { x: s.tasks, y: s.full_copies, mode: "lines", name: "N full fine-tuned copies", line: { color: BASE, width: 3 },
      hovertemplate: "N = %{x}: %{y:.3s}B<extra>copies</extra>" },
    { x: s.tasks, y: s.base_plus_adapters, mode: "lines", name: "one base + N LoRA adapters", line: { color: ADAPTER, width: 3 },
      hovertemplate: "N = %{x}: %{y:.3s}B<extra>base + adapters</extra>" },
  ], {
    shapes: storageRings(),
    margin: { l: 70, r: 10, t: 10, b: 90 },
    legend: { orientation: "h", x: 0, y: -0.22, yanchor: "top" },
    xaxis: { title: { text: "number of tasks N" }, range: [0, data.tasks_max + 1] },
    yaxis: { title: { text: "storage, bytes (log scale)" }, type: "log", dtick: 1, exponentformat: "SI" },
  }, PLOT_CONFIG);
  storageReadouts();
}

function storageReadouts() {
  const s = storageOf();
  const i = state.n - 1;
  $("tasks-value").textContent = state.n;
  $("copies-bytes").textContent = fmtSize(s.full_copies[i]);
  $("shared-bytes").textContent = fmtSize(s.base_plus_adapters[i]);
  $("one-adapter").textContent = fmtSize(s.adapter_bytes);
  $("adapter-params").textContent = fmtInt(s.adapter_params);
  $("saving").textContent = `${s.saving[i].toPrecision(3)}×`;
}

function drawText() {
  $("notes").innerHTML = data.notes.map((n) => `<li><strong>${escapeHtml(n.source)}.</strong> ${escapeHtml(n.text)}</li>`).join("");
  $("reported").innerHTML = data.reported.map((r) => `<li>${r.qualifier ? `${r.qualifier} ` : ""}`
    + `${fmtInt(r.value)} ${r.unit} ${escapeHtml(r.what)} (${escapeHtml(r.model)}): reported by `
    + `${escapeHtml(r.paper)}, as quoted in ${escapeHtml(r.source)}; not measured here.</li>`).join("");
  const added = data.reported.find((r) => r.key === "added_latency");
  $("latency-note").textContent = "Measured by the worker at the end of each run: the median of several forward passes "
    + "over the same validation batch, before and after merge_and_unload(). On a model this small, and on a CPU, "
    + "timings are noisy from run to run; merging removes the B·(A·x) of every adapted matrix. "
    + `The LoRA paper reports ${added.value} ${added.unit} added once merged (${added.paper}, as quoted in ${added.source}).`;
}

function draw() {
  if (data.runs.length) drawRun();
  drawStorage();
  writeUrl();
  root.dataset.ready = "1";
}

function fillControls() {
  for (const run of data.runs) adapterSelect.add(new Option(runLabel(run), run.id));
  for (const [key, model] of Object.entries(data.storage)) {
    modelSelect.add(new Option(model.name, key));
  }
  for (const r of data.storage_ranks) rankSelect.add(new Option(r, r));
  tasksSlider.min = 1;
  tasksSlider.max = data.tasks_max;
}

function syncControls() {
  if (state.run !== null) adapterSelect.value = state.run;
  mergeToggle.checked = state.merged;
  modelSelect.value = state.model;
  rankSelect.value = state.rank;
  tasksSlider.value = state.n;
}

const fetchLatest = latestFetcher(root);

async function start() {
  try {
    data = await fetchLatest(root.dataset.apiUrl);
  } catch (err) {
    showError(`Could not load the lab's adapters: ${err.message}`);
    return;
  }
  if (!data) return;
  readUrl();
  fillControls();
  syncControls();
  drawText();
  $("adapters").hidden = !data.runs.length;
  $("empty").hidden = Boolean(data.runs.length);
  if (!data.runs.length) drawIllustration();
  draw();
}

adapterSelect.addEventListener("change", () => { state.run = Number(adapterSelect.value); draw(); });
mergeToggle.addEventListener("change", () => { state.merged = mergeToggle.checked; draw(); });
modelSelect.addEventListener("change", () => { state.model = modelSelect.value; draw(); });
rankSelect.addEventListener("change", () => { state.rank = rankSelect.value; draw(); });
// N moves only the storage chart's rings and its numbers.
// A drag redraws at most once a frame, with the slider's latest value.
const moveEachStep = drawEachFrame(() => {
  moveShapes("storage-chart", storageRings());
  storageReadouts();
  writeUrl();
});
tasksSlider.addEventListener("input", () => {
  state.n = Number(tasksSlider.value);
  moveEachStep();
});
$("start-run").addEventListener("click", () => { if (data) startRun(); });

start();
