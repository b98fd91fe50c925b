// The training page: a form built from GET /api/methods, runs started over POST /api/runs, and
// the loss streamed from /api/runs/<id>/events into a Plotly chart. The page state (which run is
// shown) lives in the URL: ?run=<id>.
import { $, ACCENT, GOOD, PLOT_CONFIG, chartNote, emptyLayout, getJson, postJson, readQuery, requestJson, writeQuery } from "./lab.js";
import { fmtBytes, fmtInt, fmtMs, fmtPrecision, fmtSeconds } from "./format.js";
import { showReproduce } from "./reproduce.js";

const root = document.getElementById("train-root");
const form = document.getElementById("run-form");
const chart = document.getElementById("loss-chart");

let methods = [];
let tasks = [];
let current = null; // {id, steps, source: EventSource|null, stopping: bool}

// ---- the form, from the registry -------------------------------------------------------------
function paramInput(p) {
  const id = `p-${p.name}`;
  if (p.type === "targets") {
    const boxes = p.choices.map((c) => `<label class="row" style="margin:.1rem 0"><input type="checkbox"
      name="target_modules" value="${c}" ${p.default.includes(c) ? "checked" : ""}> ${c}</label>`).join("");
    return `<label>target modules</label><div id="${id}" title="${p.help}">${boxes}</div>`;
  }
  const step = p.type === "int" ? 1 : "any";
  return `<label for="${id}">${p.name} <span class="muted" style="font-size:.8rem">${p.help}</span></label>
    <input type="number" id="${id}" name="${p.name}" ${p.default === null ? "" : `value="${p.default}"`} step="${step}"
      ${p.exclusive_minimum ? "" : `min="${p.minimum}"`} max="${p.maximum}">`;
}

function showMethod() {
  const m = methods.find((x) => x.name === $("f-method").value);
  $("method-summary").textContent = `${m.summary} Trains: ${m.trains}.`;
  // Whether its runs share their steps with other runs (a pack), and why (the method's record).
  $("method-pack").textContent = m.joins_pack
    ? `Shared steps: runs of this method started around the same time train together, one step for all, each with its own weights. ${m.pack_note}`
    : `Shared steps: no, each run of this method trains on its own. ${m.pack_note}`;
  $("method-params").innerHTML = m.params.map(paramInput).join("");
  $("f-steps").min = m.steps.minimum; $("f-steps").max = m.steps.maximum;
  if (!$("f-steps").value) $("f-steps").value = m.steps.default;
  if (!$("f-seed").value) $("f-seed").value = m.seed.default;
}

function showTask() {
  const t = tasks.find((x) => x.name === $("f-task").value);
  $("task-summary").textContent = t
    ? `${t.description} Labels: ${t.labels.join(", ")}; ${t.train_size} train / ${t.val_size} validation examples.`
    : "This task is not available to you any more.";
  $("delete-upload").hidden = !(t && t.uploaded);
}

// The task select: the shipped tasks, then the uploaded CSVs this visitor may use. Built from DOM
// nodes, never HTML: an upload's name is whatever its author typed.
function fillTasks(selected) {
  const select = $("f-task");
  const keep = selected || select.value;
  select.replaceChildren();
  const option = (t) => new Option(t.title, t.name);
  tasks.filter((t) => !t.uploaded).forEach((t) => select.add(option(t)));
  const uploaded = tasks.filter((t) => t.uploaded);
  if (uploaded.length) {
    const group = document.createElement("optgroup");
    group.label = "Uploaded CSVs";
    uploaded.forEach((t) => group.append(option(t)));
    select.append(group);
  }
  if (keep && tasks.some((t) => t.name === keep)) select.value = keep;
}

function readForm() {
  const m = methods.find((x) => x.name === $("f-method").value);
  const params = {};
  for (const p of m.params) {
    if (p.type === "targets") {
      params[p.name] = [...form.querySelectorAll("input[name=target_modules]:checked")].map((x) => x.value);
    } else {
      const raw = $(`p-${p.name}`).value;
      params[p.name] = raw === "" ? NaN : Number(raw);
    }
  }
  return { method: m.name, task: $("f-task").value, steps: Number($("f-steps").value),
           seed: Number($("f-seed").value), params };
}

// ---- the run's estimated worker time, before it is queued (GET /api/runs/estimate) -------------
function fmtDuration(seconds) {
  return seconds < 90 ? `${Math.max(1, Math.round(seconds))} s` : `${(seconds / 60).toFixed(1)} min`;
}

let estimateTimer = null;
function showEstimate() {
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(async () => {
    const f = readForm();
    const q = new URLSearchParams({ method: f.method, task: f.task, steps: f.steps });
    for (const name of ["batch_size", "eval_every"]) if (Number.isFinite(f.params[name])) q.set(name, f.params[name]);
    const el = $("estimate");
    try {
      const e = await getJson(`${root.dataset.estimateUrl}?${q}`);
      const time = `Estimated worker time: about ${fmtDuration(e.seconds)} (from runs measured on ${e.machine})`;
      if (e.budget_seconds === null) el.textContent = `${time}.`;
      else if (e.seconds <= e.budget_seconds) el.textContent = `${time}; ${e.where} allows ${fmtDuration(e.budget_seconds)} per run.`;
      else el.textContent = `${time}: over the ${fmtDuration(e.budget_seconds)} ${e.where} allows per run. Fewer steps or a smaller batch fit.`;
      const over = e.budget_seconds !== null && e.seconds > e.budget_seconds;
      el.classList.toggle("error", over);
      el.classList.toggle("muted", !over);
    } catch {
      el.textContent = "";  // the form's own check says what is wrong when Train is pressed
    }
  }, 200);
}

// ---- the chart -------------------------------------------------------------------------------
// Three series: the training loss per step, and at each evaluation the validation loss (same
// axis) and accuracy (right axis). `steps` is the run's length; without a run the axes hide.
function drawChart(points, evals, title, steps) {
  const shown = Boolean(steps);
  const layout = {
    title: { text: title, font: { size: 14 } },
    margin: { l: 55, r: 55, t: 40, b: 45 },
    xaxis: { title: { text: "step" }, range: [0, steps || 1], visible: shown },
    yaxis: { title: { text: "loss" }, type: $("log-scale").checked ? "log" : "linear", visible: shown },
    yaxis2: { title: { text: "validation accuracy" }, overlaying: "y", side: "right", range: [0, 1], autorange: false,
              tickformat: ".0%", dtick: 0.25, visible: shown, showgrid: false },
    legend: { orientation: "h", x: 0, y: -0.22 },
    showlegend: shown,
    annotations: points.length ? [] : chartNote(chart, "Waiting for the first step…"),
  };
  const traces = [
    { x: points.map((p) => p.step), y: points.map((p) => p.loss), mode: "lines", name: "training loss",
      line: { color: ACCENT, width: 2 } },
    { x: evals.map((e) => e.step), y: evals.map((e) => e.val_loss), mode: "lines+markers", name: "validation loss",
      line: { color: "#d97a3a", width: 2 }, cliponaxis: false },
    { x: evals.map((e) => e.step), y: evals.map((e) => e.val_accuracy), mode: "lines+markers",
      name: "validation accuracy", yaxis: "y2", line: { color: GOOD, width: 2, dash: "dot" }, cliponaxis: false },
  ];
  lastEvalStep = evals.length ? evals[evals.length - 1].step : 0;
  Plotly.react(chart, traces, shown ? layout
    : emptyLayout(chart, layout, "No run yet: press Train, or open a past run from the list."), PLOT_CONFIG);
}

function addPoints(points) {
  if (!points.length) return;
  if (chart.layout.annotations && chart.layout.annotations.length) Plotly.relayout(chart, { annotations: [] });
  Plotly.extendTraces(chart, { x: [points.map((p) => p.step)], y: [points.map((p) => p.loss)] }, [0]);
}

// An evaluation can arrive twice only if the connection dropped between it and its step's point.
let lastEvalStep = 0;
function addEval(e) {
  if (e.step <= lastEvalStep) return;
  lastEvalStep = e.step;
  Plotly.extendTraces(chart, { x: [[e.step], [e.step]], y: [[e.val_loss], [e.val_accuracy]] }, [1, 2]);
}

// ---- what the run is doing, in words ---------------------------------------------------------
// The status line is drawn again every second while a run waits or trains, counting its estimate
// down from when its last news (a point, the queue's place) came.
const ordinal = (n) => {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" })[n % 10] || "th";
  return `${n}${suffix}`;
};

// A queued run: its place in its queue and estimated start (GET /api/runs/<id> "waiting", sent
// again by the stream when it changes), e.g. "3rd in the queue · starts in about 40 s". A run
// that had started (its worker was stopped or lost; "attempts" counts its starts) says that it
// waits to start again, and that the points shown are those of its last attempt.
function waitingText(run, since) {
  const place = run.waiting;
  const head = run.attempts > 0
    ? `queued again: its worker stopped during attempt ${run.attempts}, whose points are kept; it trains again from step 1 · `
    : "queued: ";
  if (!place) return `${head}waiting for a worker`;
  const training = place.training ? ` (${place.training} training now)` : "";
  const left = place.starts_in_seconds - since;
  const start = place.ahead === 0 && place.training === 0 ? "starts as soon as a worker takes it"
    : left >= 1 ? `starts in about ${fmtDuration(left)}` : "starts any moment now";
  return `${head}${ordinal(place.place)} in the queue${training} · ${start}`;
}

// Time left of a running run: its remaining steps at the pace its points show, then the final
// evaluation and the end-of-run measurements, the cost model's figure for them (GET
// /api/runs/<id> "timing") scaled by how much slower or faster than the model this run steps.
// A race's lane also waits, at each step, for one step of each other lane still training (its
// points count only its own turns): the cost model's figure for those, at the same pace. A run in
// a pack of n steps with the others (its points count the pack's whole steps, n runs' worth), but
// its final evaluation and measurements are its own, taken one run after another as the pack's
// runs end: at its own pace (the pack's over n), with about half of the pack's going before it.
function secondsLeft(run, last) {
  const perStep = last.elapsed / last.step;
  const timing = run.timing;
  const pace = timing && timing.step_seconds > 0 ? perStep / timing.step_seconds : 0;
  const size = run.pack && run.pack.size > 1 ? run.pack.size : 1;
  const after = pace ? timing.after_steps_seconds * (pace / size) * ((size + 1) / 2) : 0;
  const others = pace ? (timing.other_lanes_step_seconds || 0) * pace : 0;
  return (perStep + others) * (run.steps - last.step) + after;
}

// A run in a pack (GET /api/runs/<id> "pack", sent again by the stream with each step) trains in
// one fused step with the other runs in it: its pace is theirs together, its time left too.
function runningText(run, last, since) {
  const step = last ? last.step : run.steps_done || 0;
  const others = run.pack && run.pack.size > 1 ? run.pack.size - 1 : 0;
  let text = others
    ? `running in a pack with ${others} other ${others === 1 ? "run" : "runs"}, one fused step for all: step ${step} of ${run.steps}`
    : `running: ${step} of ${run.steps} steps`;
  if (current && current.stopping) return `${text} · stopping after this step…`;
  if (!last || last.step === 0) return text;
  // The engine reports the points before its last step just before it (workers/training.py):
  // from then on what is left is that step, the final evaluation and the measurements.
  if (last.step >= run.steps) text += " · final evaluation done; end-of-run measurements…";
  else if (last.step === run.steps - 1) text += " · the last step, then the final evaluation and measurements…";
  const left = secondsLeft(run, last) - since;
  const sep = text.endsWith("…") ? " " : " · ";
  return left >= 1 ? `${text}${sep}about ${fmtSeconds(left)} left` : `${text}${sep}finishing`;
}

let progressShown = null; // {run, last, at}: what the status line says, and when its news came

function showProgress(run, lastPoint) {
  const done = lastPoint ? lastPoint.step : run.steps_done || 0;
  $("progress-bar").style.width = `${(100 * done) / run.steps}%`;
  const before = progressShown;
  const fresh = !before || before.run.id !== run.id || before.last !== lastPoint || before.run.waiting !== run.waiting
    || before.run.status !== run.status;
  progressShown = { run, last: lastPoint, at: fresh ? performance.now() : before.at };
  drawProgress();
}

function drawProgress() {
  if (!progressShown) return;
  const { run, last, at } = progressShown;
  const since = (performance.now() - at) / 1000;
  let text = `${run.status}: ${last ? last.step : run.steps_done || 0} of ${run.steps} steps`;
  if (run.status === "running") text = runningText(run, last, since);
  if (run.status === "queued") text = waitingText(run, since);
  if (run.error) text += ` · ${run.error}`;
  $("progress-text").textContent = text;
  $("progress-text").className = run.status === "failed" ? "error" : "muted";
}

setInterval(() => {
  if (progressShown && ["queued", "running"].includes(progressShown.run.status)) drawProgress();
}, 1000);

const PACK_NOTE = "In a pack, runs started around the same time train together: each step runs the shared "
  + "frozen base once for all of them. Each run keeps its own weights, optimizer and random numbers, so it "
  + "learns as it would alone. Its training time is wall time, shared with the other runs.";

function showMetrics(run) {
  const m = run.metrics || {};
  if (!run.metrics || m.trainable_params === undefined) {
    $("metrics").innerHTML = `<tr><td class="muted">${run.status === "failed" ? "The run failed; nothing was measured." : "Metrics appear when the run finishes."}</td></tr>`;
    return;
  }
  const mem = m.memory_breakdown || {};
  const rows = [
    ["validation accuracy", m.val_accuracy === null ? "—" : `${(100 * m.val_accuracy).toFixed(1)} %`],
    ["validation loss", m.val_loss === null ? "—" : m.val_loss.toFixed(4)],
    ["trainable parameters", fmtInt(m.trainable_params)],
    ["… by the formula", fmtInt(m.trainable_params_predicted)],
    ["total parameters", fmtInt(m.total_params)],
    ["trainable share", m.trainable_percent === undefined ? "—" : `${m.trainable_percent.toFixed(3)} %`],
    ["peak memory", `<span title="${m.peak_memory_source}">${fmtBytes(m.peak_memory_bytes)}</span>`],
    ["… weights / gradients", `${fmtBytes(mem.params)} / ${fmtBytes(mem.grads)}`],
    ["… optimizer state / activations", `${fmtBytes(mem.optimizer_state)} / ${fmtBytes(mem.activations)}`],
    ["training time", `${m.train_seconds.toFixed(1)} s`],
    ["steps / tokens per second", `${m.steps_per_second.toFixed(2)} / ${fmtInt(Math.round(m.tokens_per_second))}`],
    [`latency per batch of ${m.latency_batch ?? "—"}`, fmtMs(m.latency_ms)],
  ];
  if (m.latency_merged_ms !== undefined) {
    rows.push(["… merged into W", fmtMs(m.latency_merged_ms)]);
    rows.push(["… largest logit change from merging", m.merge_max_abs_diff.toExponential(1)]);
  }
  if (m.latency_base_ms !== undefined) rows.push(["… base model without adapters", fmtMs(m.latency_base_ms)]);
  const download = m.adapter_bytes && run.status === "succeeded"
    ? ` · <a href="/api/runs/${run.id}/adapter" id="download-adapter">download</a>` : "";
  rows.push([run.method === "full" ? "model on disk" : "adapter on disk", `${fmtBytes(m.adapter_bytes)}${download}`]);
  rows.push(["device", run.device || "—"]);
  rows.push(["training steps computed in", fmtPrecision(m)]);
  // Trained in a pack with other runs: how many shared its steps (metrics.pack), and what that
  // means. A run the pack held alone all along shared nothing: no row.
  const shared = Boolean(m.pack && m.pack.largest > 1);
  const pack = shared ? `<tr id="pack-note"><td colspan="2" class="muted" style="font-size:.8rem">${PACK_NOTE}</td></tr>` : "";
  if (shared) {
    rows.push(["trained in a pack", `<span title="${PACK_NOTE}" id="pack-row">up to ${fmtInt(m.pack.largest)} runs per step `
      + `(mean ${m.pack.mean_size.toFixed(1)})</span>`]);
  }
  $("metrics").innerHTML = rows.map(([k, v]) => `<tr><th>${k}</th><td class="num">${v}</td></tr>`).join("")
    + `<tr><td colspan="2" class="muted" style="font-size:.8rem">Peak memory: ${m.peak_memory_source}.</td></tr>${pack}`;
}

// ---- runs ------------------------------------------------------------------------------------
function stopStream() {
  if (current && current.source) current.source.close();
  if (current) current.source = null;
}

// `last`: the run's last point already drawn (its time left goes on from it until the next).
function follow(run, after, last = null) {
  stopStream();
  const url = `${run.events_url}?after=${after}`;
  const source = new EventSource(url);
  current.source = source;
  // Points wait for the next animation frame and are drawn together: a burst of them (a batch
  // written at once, a reconnect, a fast GPU) costs one redraw, not one each.
  let pending = [];
  const flush = () => {
    if (current.source !== source) return; // another run is shown now
    if (!pending.length) return;
    addPoints(pending);
    pending = [];
    showProgress({ ...run, status: "running" }, last);
  };
  source.addEventListener("point", (e) => {
    last = JSON.parse(e.data);
    if (!pending.length) requestAnimationFrame(flush);
    pending.push(last);
  });
  source.addEventListener("eval", (e) => addEval(JSON.parse(e.data)));
  // The worker running this died and the run starts again from step 1: draw the new attempt.
  source.addEventListener("attempt", (e) => {
    const { attempt } = JSON.parse(e.data);
    last = null;
    pending = [];
    drawChart([], [], `${run.method} on ${run.task} · attempt ${attempt}`, run.steps);
  });
  source.addEventListener("progress", (e) => {
    const info = JSON.parse(e.data);
    if (info.status !== run.status) refreshRuns();
    if (info.cancel_requested) markStopping();
    run = { ...run, ...info };
    root.dataset.runStatus = run.status;
    if (!last || info.status !== "running") showProgress(run, last);
  });
  source.addEventListener("status", (e) => {
    flush();
    source.close();
    const final = JSON.parse(e.data);
    showRunState(final, last);
    refreshRuns();
  });
}

// The cancel was taken: the page says so at once, before the stream's final status.
function markStopping() {
  if (!current || current.stopping) return;
  current.stopping = true;
  $("cancel-button").disabled = true;
  $("cancel-button").textContent = "Stopping after this step…";  // beside the button pressed, on a phone too
  if (progressShown) drawProgress();
}

function showRunState(run, lastPoint) {
  $("run-title").textContent = `Run ${run.id}: ${run.method} on ${run.task}`;
  $("run-title").dataset.status = run.status;
  showProgress(run, lastPoint);
  showMetrics(run);
  // Only who started the run (or their teacher) may cancel it; others watch, and are told why.
  const mine = run.may_cancel !== false;
  const active = ["queued", "running"].includes(run.status);
  const why = "Only who started this run, or their teacher, can cancel it.";
  const stopping = Boolean(active && current && current.stopping);
  $("cancel-button").disabled = !mine || !active || stopping;
  $("cancel-button").textContent = stopping ? "Stopping after this step…" : "Cancel";
  $("cancel-button").title = mine ? "" : why;
  $("cancel-note").textContent = why;
  $("cancel-note").hidden = mine || !active;
  root.dataset.runStatus = run.status;
}

function fillForm(run) {
  if (!methods.some((m) => m.name === run.method)) return;
  $("f-method").value = run.method;
  showMethod();
  $("f-task").value = run.task;
  showTask();
  $("f-steps").value = run.steps;
  $("f-seed").value = run.seed;
  for (const [name, value] of Object.entries(run.params)) {
    if (name === "target_modules") {
      form.querySelectorAll("input[name=target_modules]").forEach((box) => { box.checked = value.includes(box.value); });
    } else if ($(`p-${name}`)) {
      $(`p-${name}`).value = value ?? "";  // null: an optional parameter left out
    }
  }
  showEstimate();
}

async function openRun(id) {
  stopStream();
  const run = await getJson(`/api/runs/${id}`);
  fillForm(run);
  current = { id: run.id, steps: run.steps, source: null, stopping: run.status === "running" && run.cancel_requested };
  writeQuery(`run=${run.id}`);
  drawChart(run.points, run.evals, `${run.method} on ${run.task} · lr ${run.params.lr}`, run.steps);
  const last = run.points.length ? run.points[run.points.length - 1] : null;
  showRunState(run, last);
  showReproduce(run).catch((err) => { $("form-error").textContent = err.message; });
  if (!["succeeded", "failed", "cancelled"].includes(run.status)) follow(run, run.last_event_id, last);
}

async function refreshRuns() {
  const runs = await getJson(`${root.dataset.runsUrl}?limit=30`);
  $("runs").innerHTML = runs.length ? runs.map((r) => `<li><a href="?run=${r.id}" data-run="${r.id}">Run ${r.id}</a>
    ${r.method} · ${r.task} · ${r.steps} steps · <span class="status-${r.status}">${r.status}</span>
    ${r.metrics && r.metrics.val_accuracy !== undefined && r.metrics.val_accuracy !== null ? ` · ${(100 * r.metrics.val_accuracy).toFixed(1)} %` : ""}</li>`).join("")
    : `<li class="muted">No runs yet.</li>`;
}

// ---- your own CSV ----------------------------------------------------------------------------
// POST /api/datasets (multipart); a refusal's message is shown as the server wrote it.
const uploadForm = $("upload-form");

uploadForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  $("upload-error").textContent = "";
  $("upload-status").textContent = "";
  if (!$("u-file").files.length) {
    $("upload-error").textContent = "Choose a CSV file first.";
    return;
  }
  $("upload-button").disabled = true;
  uploadForm.dataset.state = "sending";
  try {
    const dataset = await requestJson(root.dataset.datasetsUrl, { method: "POST", body: new FormData(uploadForm) });
    tasks = await getJson(root.dataset.tasksUrl);
    fillTasks(dataset.task);
    showTask();
    $("upload-status").textContent = `“${dataset.name}” uploaded: ${dataset.train_size} training and `
      + `${dataset.val_size} validation examples, labels ${dataset.labels.join(", ")}. It is selected as the `
      + "task above: press Train.";
    uploadForm.reset();
    uploadForm.dataset.state = "uploaded";
  } catch (err) {
    $("upload-error").textContent = err.message;
    uploadForm.dataset.state = "refused";
  } finally {
    $("upload-button").disabled = false;
  }
});

$("delete-upload").addEventListener("click", async () => {
  const t = tasks.find((x) => x.name === $("f-task").value);
  if (!t || !t.uploaded || !window.confirm(`Delete the uploaded dataset “${t.title}”? Its runs stay.`)) return;
  $("upload-error").textContent = "";
  try {
    await requestJson(`${root.dataset.datasetsUrl}/${t.dataset}`, { method: "DELETE" });
    tasks = await getJson(root.dataset.tasksUrl);
    fillTasks();
    showTask();
    $("upload-status").textContent = `“${t.title}” deleted.`;
  } catch (err) {
    $("upload-error").textContent = err.message;
  }
});

// ---- wiring ----------------------------------------------------------------------------------
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  $("form-error").textContent = "";
  $("train-button").disabled = true;
  try {
    const run = await postJson(root.dataset.runsUrl, readForm());
    await openRun(run.id);
    showLiveChart();
    refreshRuns();
  } catch (err) {
    $("form-error").textContent = err.message;
  } finally {
    $("train-button").disabled = false;
  }
});

// On a narrow screen the chart sits below the form (and the CSV panel): after Train, or after
// opening a run from the list, bring it into view, with the run's title and status line above it.
function showLiveChart() {
  const card = chart.closest(".card");
  const box = card.getBoundingClientRect();
  if (box.top < 0 || box.bottom > window.innerHeight) card.scrollIntoView({ behavior: "smooth", block: "start" });
}

$("cancel-button").addEventListener("click", async () => {
  if (!current) return;
  const shown = current;
  $("cancel-button").disabled = true;
  try {
    const answer = await postJson(`/api/runs/${shown.id}/cancel`, {});
    if (current !== shown) return;
    if (answer.status === "running") markStopping();  // it stops after the step it is on
    else showRunState(answer, progressShown && progressShown.last);  // a queued run is cancelled now
  } catch (err) {
    $("cancel-button").disabled = false;
    $("form-error").textContent = err.message;
  }
});

$("log-scale").addEventListener("change", () => {
  if (chart.data) Plotly.relayout(chart, { "yaxis.type": $("log-scale").checked ? "log" : "linear" });
});

$("runs").addEventListener("click", (event) => {
  const link = event.target.closest("a[data-run]");
  if (!link) return;
  event.preventDefault();
  // A past run opened from the list (below the chart on a phone) brings its chart into view too.
  openRun(link.dataset.run).then(showLiveChart).catch((err) => { $("form-error").textContent = err.message; });
});

async function init() {
  [methods, tasks] = await Promise.all([getJson(root.dataset.methodsUrl), getJson(root.dataset.tasksUrl)]);
  $("f-method").innerHTML = methods.map((m) => `<option value="${m.name}">${m.label}</option>`).join("");
  $("f-method").value = readQuery().get("method") || "lora";
  fillTasks(readQuery().get("task"));
  $("f-method").addEventListener("change", showMethod);
  $("f-task").addEventListener("change", showTask);
  form.addEventListener("input", showEstimate);
  form.addEventListener("change", showEstimate);
  showMethod();
  showTask();
  showEstimate();
  drawChart([], [], "training loss");
  await refreshRuns();
  const wanted = readQuery().get("run");
  if (wanted) await openRun(wanted);
  root.dataset.ready = "1";
}

init().catch((err) => {
  $("form-error").textContent = `Could not load the page: ${err.message}`;
  root.dataset.ready = "1"; // settled, on its error
});
