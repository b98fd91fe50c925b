// P11 Parameter counter. One request brings every count for every rank, hidden size and model;
// the sliders and the model menu only index into it. The lab's finished LoRA runs come from
// /api/runs, each with its measured count and the formula's prediction stored by the worker.
// State (r, d, model) lives in the query string.
import { $, ACCENT, BAD, GOOD, PLOT_CONFIG, WARN, drawEachFrame, getJson, readQuery, writeQuery } from "./lab.js";
import { react, redrawChanged } from "./playground.js";
import { fmtInt, fmtShare } from "./format.js";

const root = document.getElementById("paramcount-root");
const rankSlider = $("rank-slider");
const hiddenSlider = $("hidden-slider");
const modelSelect = $("model-select");
const MUTED = "#9aa3b2";
const SET_COLOURS = [ACCENT, GOOD, WARN, BAD];
const TARGET_LABELS = { query: "Q", key: "K", value: "V", attention_output: "O", ffn: "FFN" };

const fmtCompact = new Intl.NumberFormat("en-US", { notation: "compact", maximumSignificantDigits: 3 });

let data = null;
const state = { r: 8, d: 4096, model: null };

function writeUrl() {
  const params = new URLSearchParams({ r: state.r, d: state.d, model: state.model });
  writeQuery(params);
}

function readUrl() {
  const q = readQuery();
  const r = Number(q.get("r"));
  const d = Number(q.get("d"));
  if (data.ranks.includes(r)) state.r = r;
  if (data.hidden_sizes.includes(d)) state.d = d;
  const model = q.get("model");
  state.model = data.models.some((m) => m.key === model) ? model : data.base_model;
}

const rankIndex = () => data.ranks.indexOf(state.r);
const hiddenIndex = () => data.hidden_sizes.indexOf(state.d);
const currentModel = () => data.models.find((m) => m.key === state.model);

function drawMatrix() {
  const i = hiddenIndex();
  const j = rankIndex();
  const pm = data.per_matrix;
  $("rank-value").textContent = state.r;
  $("hidden-value").textContent = fmtInt(state.d);
  $("full-count").textContent = fmtInt(pm.full[i]);
  $("lora-count").textContent = fmtInt(pm.lora[i][j]);
  $("share").textContent = fmtShare(pm.share[i][j]);
  $("break-even-text").textContent =
    `From r = ${pm.break_even[i]} on, A and B together hold at least as many numbers as the ` +
    `${fmtInt(state.d)} × ${fmtInt(state.d)} matrix itself.`;

  react("share-chart", [
    { x: data.ranks, y: pm.share[i].map((s) => s * 100), mode: "lines", name: `2r/d, d = ${state.d}`,
      line: { color: MUTED }, hovertemplate: "r = %{x}: %{y:.3g}%<extra></extra>" },
    { x: [state.r], y: [pm.share[i][j] * 100], mode: "markers", name: `r = ${state.r}`,
      marker: { size: 13, color: ACCENT }, hovertemplate: "r = %{x}: %{y:.3g}%<extra></extra>" },
  ], {
    margin: { l: 60, r: 10, t: 10, b: 45 },
    legend: { orientation: "h", y: 1.12 },
    xaxis: { title: { text: "rank r" }, type: "log", dtick: "D2" },
    yaxis: { title: { text: "2r/d, % of one matrix" }, type: "log", dtick: 1 },
  }, PLOT_CONFIG);
}

function drawModels() {
  const j = rankIndex();
  const labels = data.models.map((m) => m.label);
  const traces = Object.keys(data.target_sets).map((name, k) => ({
    type: "bar",
    name,
    x: labels,
    y: data.models.map((m) => m.counts[name][j]),
    customdata: data.models.map((m) => fmtShare(m.share[name][j])),
    marker: { color: SET_COLOURS[k % SET_COLOURS.length] },
    hovertemplate: `%{x}, ${name}: %{y:,} parameters (%{customdata} of the model)<extra></extra>`,
  }));
  react("models-chart", traces, {
    barmode: "group",
    margin: { l: 70, r: 10, t: 10, b: 50 },
    legend: { orientation: "h", y: 1.12, title: { text: "targets " } },
    xaxis: { title: { text: "model" } },
    yaxis: { title: { text: `trainable parameters at r = ${state.r}` }, type: "log", dtick: 1,
             tickformat: ".2s" },
  }, PLOT_CONFIG);
}

function drawTable() {
  const j = rankIndex();
  const m = currentModel();
  $("model-facts").textContent =
    `d = ${fmtInt(m.hidden)}, ${m.layers} layers, FFN width ${fmtInt(m.intermediate)}` +
    ` (${m.ffn_matrices} FFN matrices per layer), ${fmtInt(m.total_params)} parameters in all ` +
    `(≈ ${fmtCompact.format(m.total_params)}). Source: ${m.source}.`;
  const body = $("targets-table").tBodies[0];
  body.replaceChildren(...Object.entries(data.target_sets).map(([name, targets]) => {
    const tr = document.createElement("tr");
    const modules = targets.map((t) => TARGET_LABELS[t] ?? t).join(", ");
    const cells = [name, modules, fmtInt(m.counts[name][j]), fmtShare(m.share[name][j])];
    cells.forEach((text, k) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (k >= 2) td.className = "num";
      tr.append(td);
    });
    return tr;
  }));
}

function drawNotes() {
  const g = data.notes.gpt3;
  const rows = g.rows.map((row) =>
    `${row.targets}: the lecture says ${fmtCompact.format(row.quoted_figure)}, the formula gives ` +
    `${fmtInt(row.formula)} (the lecture's figure is what r ≈ ${row.rank_matching_quote} would give)`);
  $("gpt3-note").innerHTML = "";
  const gTitle = document.createElement("p");
  gTitle.innerHTML = `<strong>GPT-3 175B at r = ${g.rank}.</strong> ${g.source} says LoRA on ` +
    `Q, K, V and O of all ${g.layers} layers trains about ${fmtCompact.format(g.qkvo_prose)} ` +
    `parameters, and its table of target sets gives the figures below. Its own per-matrix count, ` +
    `${fmtInt(g.per_matrix_r8)} (2·d·r), times 4 matrices and ${g.layers} layers is ` +
    `${fmtInt(g.qkvo_formula)}. The lab shows 2·d·r × matrices × layers:`;
  const list = document.createElement("ul");
  for (const text of rows) {
    const li = document.createElement("li");
    li.textContent = text;
    list.append(li);
  }
  $("gpt3-note").append(gTitle, list);

  const l = data.notes.llama;
  const llama = data.models.find((m) => m.key === "llama-7b");
  $("llama-note").innerHTML = "";
  const p = document.createElement("p");
  p.innerHTML = `<strong>LLaMA-7B at r = ${l.rank}, all seven projections.</strong> ${l.source} ` +
    `shows ${fmtInt(l.quoted_figure)} trainable parameters. With d = ${fmtInt(llama.hidden)}, ` +
    `${llama.layers} layers and a gated FFN of width ${fmtInt(llama.intermediate)}, ` +
    `Σ r·(d_in + d_out) × layers gives ${fmtInt(l.formula)}; the lab shows the formula.`;
  const q = document.createElement("p");
  q.innerHTML = `<strong>LLaMA-7B, Q and V.</strong> ${l.qv_source} lists these counts; ` +
    `2·d·r × 2 matrices × ${llama.layers} layers gives half of each. The quoted figures are ` +
    `what four matrices (Q, K, V and O) give:`;
  const qList = document.createElement("ul");
  for (const row of l.qv_rows) {
    const li = document.createElement("li");
    li.textContent = `r = ${row.rank}: the article says ${fmtCompact.format(row.quoted_figure)}, ` +
      `Q and V give ${fmtInt(row.formula)}, Q, K, V and O give ${fmtInt(row.formula_qkvo)}`;
    qList.append(li);
  }
  $("llama-note").append(p, q, qList);
}

async function loadRuns() {
  const base = data.models.find((m) => m.key === data.base_model);
  $("base-model-name").textContent = base.label;
  let runs;
  try {
    runs = await getJson(root.dataset.runsUrl);
  } catch (err) {
    $("runs-error").textContent = `Could not load the lab's runs: ${err.message}`;
    $("runs-error").hidden = false;
    return;
  }
  const done = runs.filter((r) => r.method === "lora" && r.status === "succeeded" &&
                                  r.metrics && Number.isFinite(r.metrics.trainable_params));
  $("runs-empty").hidden = done.length > 0;
  $("runs-table").hidden = done.length === 0;
  const body = $("runs-table").tBodies[0];
  body.replaceChildren(...done.map((run) => {
    const tr = document.createElement("tr");
    tr.dataset.runId = run.id;
    const predicted = run.metrics.trainable_params_predicted;
    const measured = run.metrics.trainable_params;
    const targets = (run.params.target_modules ?? []).map((t) => TARGET_LABELS[t] ?? t).join(", ");
    const link = document.createElement("a");
    link.href = `/train/?run=${run.id}`;
    link.textContent = `#${run.id}`;
    const cells = [link, run.task, String(run.params.rank), targets,
      Number.isFinite(predicted) ? fmtInt(predicted) : "not stored",
      fmtInt(measured)];
    cells.forEach((c, k) => {
      const td = document.createElement("td");
      td.append(c);
      if (k === 2 || k === 4 || k === 5) td.className = "num";
      tr.append(td);
    });
    const verdict = document.createElement("td");
    const agree = predicted === measured;
    verdict.className = agree ? "match" : "mismatch";
    verdict.textContent = agree ? "exactly" : "no";
    tr.append(verdict);
    return tr;
  }));
}

// Each part and the settings it reads: a change redraws only the parts that read it.
const PARTS = [
  [drawMatrix, ["r", "d"]],
  [drawModels, ["r"]],
  [drawTable, ["r", "model"]],
];

// `changed`: the settings that changed (none given: every part).
function drawAll(changed = null) {
  redrawChanged(PARTS, changed);
  writeUrl();
}

async function start() {
  data = await getJson(root.dataset.apiUrl);
  readUrl();
  rankSlider.max = data.ranks.length - 1;
  hiddenSlider.max = data.hidden_sizes.length - 1;
  rankSlider.value = rankIndex();
  hiddenSlider.value = hiddenIndex();
  for (const m of data.models) modelSelect.add(new Option(m.label, m.key));
  modelSelect.value = state.model;
  drawNotes();
  drawAll();
  await loadRuns();
  root.dataset.ready = "1";
}

// A drag redraws at most once a frame, with the slider's latest value.
const drawRankEachFrame = drawEachFrame(() => drawAll(["r"]));
const drawHiddenEachFrame = drawEachFrame(() => drawAll(["d"]));
rankSlider.addEventListener("input", () => {
  state.r = data.ranks[Number(rankSlider.value)];
  drawRankEachFrame();
});
hiddenSlider.addEventListener("input", () => {
  state.d = data.hidden_sizes[Number(hiddenSlider.value)];
  drawHiddenEachFrame();
});
modelSelect.addEventListener("change", () => {
  state.model = modelSelect.value;
  drawAll(["model"]);
});

start();
