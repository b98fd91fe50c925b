// P17 Four-method race. POST /api/races starts one real run per lane; the worker trains the lanes
// together, one step of each in turn. One SSE stream (/api/races/<id>/events) brings every lane's
// points, evaluations and final status; the charts and the results table fill as they come. The
// race shown lives in the URL (?race=<id>); before a race starts, the form does
// (?task=&steps=&seed=&lanes=full,adapter,lora,prompt); the charts' x axis too (&x=seconds: each
// lane's own training seconds, its points' "elapsed"; steps otherwise).
import { $, METHOD_COLOURS, PLOT_CONFIG, emptyLayout, errorBox, getJson, postJson, readQuery, writeQuery } from "./lab.js";
import { fmtAcc, fmtBytes, fmtInt, fmtMs, fmtSeconds, precisionOf } from "./format.js";

const showError = errorBox("race-error");
const root = document.getElementById("race-root");
const LANES = 4; // the page's lane selects; the API takes 1 to options.max_lanes
const DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"];

let options = null;
let methods = [];
let tasks = [];
let race = null; // GET /api/races/<id>
let source = null;
let lanes = []; // per lane: {run, points, evals, status, steps_done, evalDue}
let pending = null; // points and evaluations waiting for the next animation frame
let xAxis = "steps"; // or "seconds": what the charts' x axis counts
const X_AXES = {
  steps: { title: "training step", of: (p) => p.step },
  // A lane's seconds are its own: the time the worker spent on its steps (and its evaluations),
  // not the other lanes' turns in between. An evaluation sits at its step's point.
  seconds: { title: "training seconds (each lane's own steps)", of: (p) => p.elapsed },
};

// ---- the form --------------------------------------------------------------------------------
function laneSelect(i) {
  const opts = methods.map((m) => `<option value="${m.name}">${m.label}</option>`).join("");
  return `<div><label for="lane-${i}">Lane ${i + 1}</label><select id="lane-${i}" name="lane-${i}">${opts}</select></div>`;
}

function readForm() {
  return {
    task: $("race-task").value,
    steps: Number($("race-steps").value),
    seed: Number($("race-seed").value),
    methods: [...Array(LANES).keys()].map((i) => $(`lane-${i}`).value),
  };
}

function fillForm(values) {
  if (tasks.some((t) => t.name === values.task)) $("race-task").value = values.task;
  if (values.steps !== undefined) $("race-steps").value = values.steps;
  if (values.seed !== undefined) $("race-seed").value = values.seed;
  (values.methods || []).slice(0, LANES).forEach((m, i) => {
    if (methods.some((x) => x.name === m)) $(`lane-${i}`).value = m;
  });
  showTask();
}

function showTask() {
  const t = tasks.find((x) => x.name === $("race-task").value);
  $("race-task-summary").textContent = t ? `${t.description} ${t.train_size} training examples.` : "";
}

function writeUrl() {
  let q;
  if (race) {
    q = new URLSearchParams({ race: race.id });
  } else {
    const f = readForm();
    q = new URLSearchParams({ task: f.task, steps: f.steps, seed: f.seed, lanes: f.methods.join(",") });
  }
  if (xAxis !== "steps") q.set("x", xAxis);
  writeQuery(q);
}

function formToUrl() {
  if (!race) writeUrl();
}

function setState(state) {
  root.dataset.state = state;
  const running = state === "running";
  $("race-start").disabled = running;
  // Only who started the race (or their teacher) may cancel it; others watch.
  $("race-cancel").disabled = !running || race?.may_cancel === false;
  $("race-cancel").title = race?.may_cancel === false ? "Only who started this race, or their teacher, can cancel it." : "";
  for (const el of $("race-form").querySelectorAll("select, input")) el.disabled = running;
}

// ---- lanes: colours, names ---------------------------------------------------------------------
function laneName(run) {
  return `Lane ${run.lane + 1}: ${run.label}`;
}

function lineOf(run, runs) {
  const twins = runs.filter((r) => r.method === run.method).length > 1;
  return { color: METHOD_COLOURS[run.method] || "#4a5160", width: 2.5, dash: twins ? DASHES[run.lane % DASHES.length] : "solid" };
}

// ---- charts ------------------------------------------------------------------------------------
// One batch's loss jumps with the batch: each lane is drawn twice, every step's loss as a thin
// faint line and the mean of its last SMOOTH steps as the thick line a learner compares.
const SMOOTH = 5;

$("race-loss-note").textContent = "Thin lines: each step's loss, which jumps with its batch of sentences. "
  + `Thick lines: the mean of a lane's last ${SMOOTH} steps, the trend to compare.`;

function smoothedAt(points, k) {
  const window = points.slice(Math.max(0, k - SMOOTH + 1), k + 1);
  return window.reduce((sum, p) => sum + p.loss, 0) / window.length;
}

// The legend sits under the x axis, its rows counted from the chart's width so that it never
// covers the axis title (four lanes take one row on a laptop, up to four on a phone).
function legendRows(names, width) {
  let rows = 1;
  let used = 0;
  for (const name of names) {
    const w = 40 + 6.6 * name.length;
    if (used && used + w > width - 20) { rows += 1; used = 0; }
    used += w;
  }
  return names.length ? rows : 0;
}

function axisLayout(chart, title, ytitle, extra = {}) {
  const steps = race ? race.steps : Number($("race-steps").value) || 1;
  const names = race ? race.runs.map(laneName) : [];
  const bottom = 62 + 21 * legendRows(names, chart.clientWidth || 600);
  const layout = {
    title: { text: title, font: { size: 15 } },
    height: 290 + bottom,
    margin: { l: 64, r: 20, t: 44, b: bottom },
    xaxis: {
      title: { text: X_AXES[xAxis].title, standoff: 8 }, automargin: true, zeroline: false,
      // Steps: the whole budget from the start. Seconds: unknown until the lanes end, so the
      // axis grows with them.
      ...(xAxis === "steps" ? { range: [0, steps] } : { autorange: true, rangemode: "tozero" }),
    },
    yaxis: { title: { text: ytitle }, ...extra },
    legend: { orientation: "h", x: 0, xanchor: "left", yref: "container", y: 0, yanchor: "bottom", font: { size: 12 } },
    showlegend: true,
    annotations: [],
  };
  // Before a race the chart is empty; its note says what the x axis chosen will show.
  return race ? layout : emptyLayout(chart, layout,
    `Press Start race: the curves draw here as the lanes train, against ${X_AXES[xAxis].title}.`);
}

function drawCharts() {
  const runs = race ? race.runs : [];
  // A lane that has not started has one empty (null) point, so that its legend entry shows.
  const orNull = (xs) => (xs.length ? xs : [null]);
  const x = X_AXES[xAxis].of;
  // Traces 0..n-1: each step's loss; n..2n-1: its running mean (the legend's entry).
  const raw = runs.map((run, i) => ({
    x: orNull(lanes[i].points.map(x)), y: orNull(lanes[i].points.map((p) => p.loss)), mode: "lines",
    name: `${laneName(run)}, each step`, legendgroup: `lane-${i}`, showlegend: false, opacity: 0.35,
    line: { ...lineOf(run, runs), width: 1 }, hovertemplate: `%{y:.3f}<extra>${laneName(run)}, this step</extra>`,
  }));
  const smooth = runs.map((run, i) => ({
    x: orNull(lanes[i].points.map(x)), y: orNull(lanes[i].points.map((_, k) => smoothedAt(lanes[i].points, k))),
    mode: "lines", name: laneName(run), legendgroup: `lane-${i}`, line: lineOf(run, runs),
    hovertemplate: `%{y:.3f}<extra>${laneName(run)}, mean of the last ${SMOOTH} steps</extra>`,
  }));
  const loss = [...raw, ...smooth];
  const acc = runs.map((run, i) => ({
    x: orNull(lanes[i].evals.map(x)), y: orNull(lanes[i].evals.map((e) => e.val_accuracy)), mode: "lines+markers",
    name: laneName(run), line: lineOf(run, runs), marker: { size: 7 },
    // The last evaluation sits on the axis's end (the step budget): its marker drawn whole.
    cliponaxis: false,
  }));
  const against = xAxis === "steps" ? "the step" : "each lane's own training seconds";
  $("loss-chart").setAttribute("aria-label", `training loss of every lane against ${against}`);
  $("acc-chart").setAttribute("aria-label", `validation accuracy of every lane against ${against}`);
  Plotly.react($("loss-chart"), loss, axisLayout($("loss-chart"), "Training loss of every lane", "loss (cross-entropy, nats)"),
    PLOT_CONFIG);
  Plotly.react($("acc-chart"), acc, axisLayout($("acc-chart"), "Validation accuracy", "accuracy (% of validation set)",
    { range: [0, 1], tickformat: ".0%", dtick: 0.25 }), PLOT_CONFIG);
  root.dataset.x = xAxis;
}

// The x axis switched: every curve drawn again against it. What waits for the next frame is in
// the lanes already, drawn now: the frame then extends nothing.
function setXAxis(value) {
  xAxis = X_AXES[value] ? value : "steps";
  document.querySelector(`#race-x input[value="${xAxis}"]`).checked = true;
  if (pending) pending = { points: {}, evals: {} };
  drawCharts();
}

// Many points arrive at once on a reconnect or a fast lane: draw them once per frame.
function queue(kind, lane, item) {
  if (!pending) {
    pending = { points: {}, evals: {} };
    requestAnimationFrame(flush);
  }
  (pending[kind][lane] ||= []).push(item);
}

function flush() {
  const batch = pending;
  pending = null;
  // A lane's first points replace its placeholder: draw everything again from the lanes.
  const starts = [["points", "loss-chart"], ["evals", "acc-chart"]].some(([kind, id]) =>
    Object.keys(batch[kind]).some((i) => $(id).data[i].x[0] === null));
  if (starts) {
    drawCharts();
    root.dataset.points = lanes.map((l) => l.points.length).join(",");
    return;
  }
  for (const [kind, chart, key] of [["points", "loss-chart", "loss"], ["evals", "acc-chart", "val_accuracy"]]) {
    const idx = Object.keys(batch[kind]).map(Number);
    if (!idx.length) continue;
    Plotly.extendTraces($(chart), {
      x: idx.map((i) => batch[kind][i].map(X_AXES[xAxis].of)),
      y: idx.map((i) => batch[kind][i].map((p) => p[key])),
    }, idx);
    if (kind === "points") {  // the running means of the same steps
      const n = lanes.length;
      Plotly.extendTraces($(chart), {
        x: idx.map((i) => batch.points[i].map(X_AXES[xAxis].of)),
        y: idx.map((i) => {
          const all = lanes[i].points;
          const first = all.length - batch.points[i].length;
          return batch.points[i].map((_, j) => smoothedAt(all, first + j));
        }),
      }, idx.map((i) => i + n));
    }
  }
  root.dataset.points = lanes.map((l) => l.points.length).join(",");
}

// ---- lane status, diagrams, results ----------------------------------------------------------
function showLaneStatus() {
  const runs = race ? race.runs : [];
  $("lane-status").innerHTML = runs.map((run, i) => {
    const l = lanes[i];
    const colour = lineOf(run, runs).color;
    return `<li><span class="swatch" style="background:${colour}"></span>${laneName(run)}:
      <span class="status-${l.status}">${l.status}</span> · ${l.steps_done}/${run.steps} steps</li>`;
  }).join("");
  const done = lanes.filter((l) => ["succeeded", "failed", "cancelled"].includes(l.status)).length;
  if (race && root.dataset.state === "running") {
    $("race-status").textContent = `Race ${race.id}: ${done} of ${runs.length} lanes finished. The worker trains them together, one step of each in turn.`;
  }
}

function drawDiagrams() {
  const entries = race
    ? race.runs.map((r) => [laneName(r), r.diagram, lineOf(r, race.runs).color])
    : readForm().methods.map((m, i) => [`Lane ${i + 1}: ${methods.find((x) => x.name === m).label}`,
      options.diagrams[m], METHOD_COLOURS[m]]);
  $("diagrams").innerHTML = entries.map(([name, parts, colour]) => {
    const trained = parts.filter((p) => p.state === "trains").length;
    const items = parts.map((p) => `<li class="${p.state}" title="${p.text.replace(/"/g, "&quot;")}">${p.label}</li>`).join("");
    return `<div class="diagram"><h3><span class="swatch" style="background:${colour}"></span>${name}</h3>
      <p class="muted" style="font-size:.8rem;margin:0 0 .3rem">${trained} of ${parts.length} parts train</p>
      <ol aria-label="${name}: parts of a block, bottom to top">${items}</ol></div>`;
  }).join("");
}

function signedBytes(n) {
  return `${n >= 0 ? "+" : "−"}${fmtBytes(Math.abs(n))}`;
}

// The prediction for a step in the precision the lane's run recorded (fp32 until it has).
function predictionOf(run, lane) {
  return run.predictions[precisionOf(lane.run.metrics)];
}

function resultRow(run, lane) {
  const m = lane.run.metrics || {};
  const finished = lane.status === "succeeded";
  const pred = predictionOf(run, lane);
  const measured = finished ? m.peak_memory_bytes : null;
  let diff = "—";
  let diffClass = "";
  if (measured) {
    const d = measured - pred.peak_memory_bytes;
    diff = `${signedBytes(d)} <span style="white-space:nowrap">(${d >= 0 ? "+" : "−"}${Math.abs((100 * d) / pred.peak_memory_bytes).toFixed(1)} %)</span>`;
    diffClass = d > 0 ? "diff-over" : "diff-under";
  }
  const val = (x, f) => (finished && x !== undefined && x !== null ? f(x) : "—");
  const merged = finished && m.latency_merged_ms !== undefined ? fmtMs(m.latency_merged_ms) : finished ? "not mergeable" : "—";
  const trainable = finished ? m.trainable_params : pred.trainable_params;
  const total = finished ? m.total_params : null;
  const cell = (label, value, cls = "num") => `<td class="${cls}" data-label="${label}">${value}</td>`;
  return `<tr data-lane="${run.lane}" data-status="${lane.status}">
    <td class="lane"><span class="swatch" style="background:${lineOf(run, race.runs).color}"></span>${laneName(run)}</td>
    ${cell("status", `${lane.status}${lane.run.error ? `: ${lane.run.error}` : ""}`, `status-${lane.status}`)}
    ${cell("trainable params", fmtInt(trainable) + (total ? `<br><span class="muted">(${((100 * trainable) / total).toFixed(2)} %)</span>` : ""))}
    ${cell("peak memory, measured", measured ? fmtBytes(measured) : "—")}
    ${cell("predicted", `<span title="${pred.activation_formula}">${fmtBytes(pred.peak_memory_bytes)}</span>`)}
    ${cell("difference", diff, `num diff ${diffClass}`)}
    ${cell("training time", val(m.train_seconds, (x) => (x < 10 ? `${x.toFixed(1)} s` : fmtSeconds(x))))}
    ${cell("val. accuracy", val(m.val_accuracy, fmtAcc))}
    ${cell("saved to disk", val(m.adapter_bytes, fmtBytes))}
    ${cell("latency", val(m.latency_ms, fmtMs))}
    ${cell("merged", merged)}</tr>`;
}

// Why a prompt-tuning lane learns slowest, in its own numbers (what it trains, how many tokens it
// adds), once the race has one.
function promptNote() {
  const i = race.runs.findIndex((r) => r.method === "prompt");
  if (i < 0) return "";
  const run = race.runs[i];
  const m = lanes[i].run.metrics || {};
  const n = run.params.virtual_tokens;
  const trainable = m.trainable_params || run.predictions.fp32.trainable_params;
  const model = m.total_params ? `an encoder of ${(m.total_params / 1e6).toFixed(1)} million parameters` : "this small encoder";
  return `Why prompt tuning learns slowest: it trains ${fmtInt(trainable)} numbers (${n} virtual token `
    + `vectors in front of every sentence, and the head) and can steer the frozen encoder only through what `
    + `those ${n} positions add to each token's attention. Lester et al. (2021, Figure 1) found prompt tuning `
    + `matching full fine-tuning only on models of billions of parameters; on ${model}, in a few dozen steps, `
    + `it trails. Its steps also cost more: every sentence is ${n} tokens longer.`;
}

function drawResults() {
  if (!race) return;
  $("race-why").textContent = promptNote();
  $("race-why").hidden = !$("race-why").textContent;
  $("results").tBodies[0].innerHTML = race.runs.map((run, i) => resultRow(run, lanes[i])).join("");
  const first = lanes.find((l) => l.run.metrics && l.run.metrics.latency_batch);
  const seq = race.runs[0].predictions.fp32.seq;
  const precisions = [...new Set(lanes.map((l) => (l.run.metrics || {}).precision).filter(Boolean))];
  $("results-note").textContent = `Predictions at ${seq} tokens per sentence (the longest training sentence, padded), `
    + `for steps in ${precisions.length ? precisions.join(", ") : "fp32 until a lane reports its precision"}. `
    + (first ? `Latency: one forward pass over ${first.run.metrics.latency_batch} validation sentences, the median of several; `
      + "\"merged\" folds B·A into W (LoRA, DoRA, QLoRA only). " : "")
    + `Device: ${lanes.map((l) => l.run.device).find(Boolean) || "not yet known"}.`;
  root.dataset.finished = lanes.filter((l) => l.status === "succeeded").length;
}

// ---- a race -------------------------------------------------------------------------------------
function laneIndex(data) {
  return race.runs.findIndex((r) => r.id === data.run);
}

function openStream() {
  if (source) source.close();
  source = new EventSource(race.events_url);
  source.addEventListener("point", (e) => {
    const p = JSON.parse(e.data);
    const i = laneIndex(p);
    lanes[i].points.push(p);
    lanes[i].steps_done = Math.max(lanes[i].steps_done, p.step);
    queue("points", i, p);
    // The evaluation of this step came just before it: it is drawn at this point's seconds.
    const ev = lanes[i].evalDue;
    if (ev && ev.step === p.step) {
      ev.elapsed = p.elapsed;
      lanes[i].evals.push(ev);
      queue("evals", i, ev);
    }
    lanes[i].evalDue = null;
    if (lanes[i].status === "queued") {
      lanes[i].status = "running";
      drawResults();
    }
    showLaneStatus();
  });
  // A lane whose worker died starts again from step 1: its curves start over.
  source.addEventListener("attempt", (e) => {
    const i = laneIndex(JSON.parse(e.data));
    lanes[i].points = [];
    lanes[i].evals = [];
    lanes[i].evalDue = null;
    lanes[i].steps_done = 0;
    if (pending) {
      delete pending.points[i];
      delete pending.evals[i];
    }
    drawCharts();
  });
  // The stream sends an evaluation just before the point of its step (peftlab/api/events.py).
  source.addEventListener("eval", (e) => {
    const ev = JSON.parse(e.data);
    lanes[laneIndex(ev)].evalDue = ev;
  });
  source.addEventListener("progress", (e) => {
    const pr = JSON.parse(e.data);
    const i = laneIndex(pr);
    if (lanes[i].status !== pr.status) {
      lanes[i].status = pr.status;
      drawResults();
    }
    lanes[i].steps_done = Math.max(lanes[i].steps_done, pr.steps_done);
    showLaneStatus();
  });
  source.addEventListener("status", (e) => {
    const run = JSON.parse(e.data);
    const i = laneIndex(run);
    lanes[i].status = run.status;
    lanes[i].steps_done = run.steps_done;
    lanes[i].run = run;
    showLaneStatus();
    drawResults();
  });
  source.addEventListener("race", (e) => {
    const final = JSON.parse(e.data);
    source.close();
    source = null;
    race.status = final.status;
    setState("finished");
    showLaneStatus();
    drawResults();
    $("race-status").textContent = `Race ${race.id} ${final.status}. Change a lane and press Start race for another.`;
  });
}

function showRace(body) {
  race = body;
  // A reopened race's points come again from the start of the stream; only the statuses are kept.
  lanes = race.runs.map((run) => ({ run, points: [], evals: [], status: run.status, steps_done: 0, evalDue: null }));
  fillForm({ task: race.task, steps: race.steps, seed: race.seed, methods: race.methods });
  writeUrl();
  setState("running");
  drawCharts();
  drawDiagrams();
  showLaneStatus();
  drawResults();
  openStream();
}

async function start(event) {
  event.preventDefault();
  showError("");
  const body = readForm();
  if (!Number.isInteger(body.steps) || body.steps < 1 || body.steps > options.max_steps) {
    showError(`Budget: a whole number of steps from 1 to ${options.max_steps}.`);
    return;
  }
  if (!Number.isInteger(body.seed) || body.seed < 0) {
    showError("Seed: a whole number, 0 or more.");
    return;
  }
  $("race-start").disabled = true;
  try {
    showRace(await postJson(root.dataset.racesUrl, body));
  } catch (err) {
    showError(err.message);
    $("race-start").disabled = false;
  }
}

async function cancel() {
  if (!race) return;
  $("race-cancel").disabled = true;
  try {
    await postJson(`${root.dataset.racesUrl}/${race.id}/cancel`, {});
    $("race-status").textContent = `Race ${race.id}: cancelling the lanes that have not finished…`;
  } catch (err) {
    showError(err.message);
  }
}

async function init() {
  [options, methods, tasks] = await Promise.all([
    getJson(root.dataset.optionsUrl), getJson(root.dataset.methodsUrl), getJson(root.dataset.tasksUrl)]);
  // Options from DOM nodes: an uploaded task's title is whatever its author typed.
  $("race-task").replaceChildren(...tasks.map((t) => new Option(t.title || t.name, t.name)));
  $("race-lanes").innerHTML = [...Array(LANES).keys()].map(laneSelect).join("");
  $("race-steps").min = 1;
  $("race-steps").max = options.max_steps;
  const q = readQuery();
  xAxis = X_AXES[q.get("x")] ? q.get("x") : "steps";
  document.querySelector(`#race-x input[value="${xAxis}"]`).checked = true;
  $("race-x").addEventListener("change", (event) => {
    setXAxis(event.target.value);
    writeUrl();
  });
  fillForm({
    task: q.get("task") || options.default_task,
    steps: q.get("steps") || options.default_steps,
    seed: q.get("seed") || 0,
    methods: q.get("lanes") ? q.get("lanes").split(",") : options.default_methods,
  });
  $("race-form").addEventListener("submit", start);
  $("race-cancel").addEventListener("click", cancel);
  $("race-form").addEventListener("change", () => {
    showTask();
    formToUrl();
    if (!race) { drawDiagrams(); drawCharts(); }
  });
  drawCharts();
  drawDiagrams();
  // The legend's rows depend on the width: lay the charts out again when it changes.
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      for (const id of ["loss-chart", "acc-chart"]) {
        const chart = $(id);
        if (!chart.layout) continue;
        const layout = axisLayout(chart, "", "");
        Plotly.relayout(chart, { height: layout.height, "margin.b": layout.margin.b });
      }
    }, 150);
  });
  if (q.get("race")) {
    try {
      showRace(await getJson(`${root.dataset.racesUrl}/${encodeURIComponent(q.get("race"))}`));
    } catch (err) {
      showError(err.message);
    }
  }
  root.dataset.ready = "1";
}

init().catch((err) => {
  showError(err.message);
  root.dataset.ready = "1"; // settled, on its error
});
