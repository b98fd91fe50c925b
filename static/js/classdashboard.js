// A teacher's class dashboard: GET /api/classes/<code>/dashboard every two seconds, drawn into
// the runs table (with a cancel button per unfinished run: POST /api/runs/<id>/cancel), the
// leaderboard and the queue; with it GET /api/classes/<code>/curves, the class's loss curves.
// Nicknames are the students' own text: always set as textContent (escaped for the chart).
import { $, NARROW, PLOT_CONFIG, emptyLayout, errorBox, getJson, postJson } from "./lab.js";
import { fmtAcc, fmtSeconds } from "./format.js";

const showError = errorBox("dash-error");
const POLL_MS = 2000;
const root = document.getElementById("dash-root");

function cell(row, text, className) {
  const td = row.insertCell();
  if (text instanceof Node) td.append(text); else td.textContent = text ?? "—";
  if (className) td.className = className;
  return td;
}

function runLink(run) {
  const a = document.createElement("a");
  a.href = `/train/?run=${run}`;
  a.textContent = `#${run}`;
  return a;
}

function progress(run) {
  const wrap = document.createElement("div");
  const bar = document.createElement("div");
  bar.className = "progress";
  bar.title = "steps done";
  const fill = document.createElement("div");
  fill.style.width = `${(100 * run.progress).toFixed(1)}%`;
  bar.append(fill);
  const text = document.createElement("span");
  text.className = "muted small";
  text.textContent = `${run.steps_done}/${run.steps}`;
  wrap.append(bar, text);
  return wrap;
}

function cancelButton(run) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary";
  button.textContent = "Cancel";
  button.dataset.cancel = run.id;
  button.setAttribute("aria-label", `cancel run ${run.id}`);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await postJson(`/api/runs/${run.id}/cancel`, {});
      await refresh();
    } catch (err) {
      showError(err.message);
      button.disabled = false;
    }
  });
  return button;
}

function drawRuns(students) {
  const body = $("runs-table").tBodies[0];
  body.replaceChildren();
  const idle = [];
  for (const student of students) {
    if (!student.runs.length) { idle.push(student.nickname); continue; }
    for (const run of student.runs) {
      const row = body.insertRow();
      row.dataset.run = run.id;
      cell(row, student.nickname);
      cell(row, runLink(run.id));
      cell(row, run.label);
      cell(row, run.task);
      // A run training in a pack: how many runs share its steps now, itself included.
      const packed = run.status === "running" && run.pack && run.pack.size > 1;
      const status = cell(row, packed ? `${run.status} · pack of ${run.pack.size}` : run.status, `status-${run.status}`);
      status.dataset.status = run.status;
      if (packed) {
        status.dataset.pack = run.pack.size;
        status.title = `trains in one shared step with ${run.pack.size - 1} other runs`;
      }
      if (run.error) status.title = run.error;
      cell(row, progress(run));
      cell(row, fmtAcc(run.val_accuracy), "num");
      cell(row, run.train_seconds == null ? "—" : fmtSeconds(run.train_seconds), "num");
      cell(row, run.status === "queued" || run.status === "running" ? cancelButton(run) : "");
    }
  }
  if (!body.rows.length) {
    const row = body.insertRow();
    const td = cell(row, "No run yet: runs appear here as students queue them.", "muted");
    td.colSpan = 9;
  }
  $("idle-students").textContent = idle.length ? `Joined, no run yet: ${idle.join(", ")}.` : "";
}

function who(entry, value) {
  const span = document.createElement("span");
  span.append(`${value} · ${entry.student ?? "—"} `, runLink(entry.run));
  return span;
}

function drawLeaderboard(rows) {
  const body = $("leaderboard").tBodies[0];
  body.replaceChildren();
  for (const r of rows) {
    const row = body.insertRow();
    row.dataset.method = r.method;
    cell(row, r.label);
    cell(row, String(r.runs), "num");
    cell(row, r.best_accuracy ? who(r.best_accuracy, fmtAcc(r.best_accuracy.value)) : "—", "best");
    cell(row, r.fastest ? who(r.fastest, fmtSeconds(r.fastest.seconds)) : "—", "fastest");
  }
  if (!rows.length) cell(body.insertRow(), "No finished run yet.", "muted").colSpan = 4;
}

function drawQueue(rows) {
  const body = $("queue-table").tBodies[0];
  body.replaceChildren();
  for (const r of rows) {
    const row = body.insertRow();
    row.dataset.run = r.run;
    cell(row, String(r.position), "num");
    cell(row, r.queue);
    cell(row, r.student);
    cell(row, runLink(r.run));
    cell(row, r.label);
    cell(row, String(r.steps), "num");
  }
  if (!rows.length) cell(body.insertRow(), "Nothing waiting.", "muted").colSpan = 6;
}

function drawCounts(data) {
  const c = data.counts;
  const n = data.students.length;
  $("dash-counts").textContent = `${n} ${n === 1 ? "student" : "students"} · ${c.queued} queued · ${c.running} running · `
    + `${c.succeeded} succeeded · ${c.failed} failed · ${c.cancelled} cancelled`;
}

// ---- the class's curves ---------------------------------------------------------------------
// One line per student: their latest run's training loss (thinned by the API). A nickname goes
// into the chart escaped: Plotly reads a few HTML tags in trace names.
const curvesChart = $("curves-chart");
const LEGEND_MAX = 12; // more students than this: their names in the hover only
const escapeHtml = (text) => String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function drawCurves(data) {
  const runs = data.runs.filter((r) => r.step.length);
  const layout = {
    margin: { l: 55, r: 15, t: 15, b: 45 },
    // Up to the longest run's last step: the lines cross the chart as their runs train.
    xaxis: { title: { text: "step" }, range: [0, Math.max(1, ...runs.map((r) => r.steps))] },
    yaxis: { title: { text: "training loss" } },
    showlegend: !NARROW && runs.length <= LEGEND_MAX,
    legend: { orientation: "h", x: 0, y: -0.2 },
    hovermode: "closest",
    uirevision: "curves", // a teacher's zoom stays through the refreshes
  };
  const traces = runs.map((r) => ({
    // A run's first point is a dot (a line needs two).
    x: r.step, y: r.loss, mode: r.step.length > 1 ? "lines" : "markers", name: escapeHtml(r.student ?? "—"),
    line: { width: 1.5 }, marker: { size: 5 },
    meta: { run: r.id, status: r.status, steps: r.steps },
    hovertemplate: `%{fullData.name} · run ${r.id} · ${r.label}<br>step %{x}: loss %{y:.3f}<extra></extra>`,
  }));
  curvesChart.dataset.curves = runs.length;
  Plotly.react(curvesChart, traces, runs.length ? layout
    : emptyLayout(curvesChart, layout, "Curves appear here when students train: one line per student, their latest run's training loss."),
  PLOT_CONFIG);
}

async function refresh() {
  const [data, curves] = await Promise.all([getJson(root.dataset.url), getJson(root.dataset.curvesUrl)]);
  drawCurves(curves);
  drawCounts(data);
  drawRuns(data.students);
  drawLeaderboard(data.leaderboard);
  drawQueue(data.queue);
  showError("");
  root.dataset.ready = "1";
}

async function poll() {
  try {
    await refresh();
  } catch (err) {
    showError(`Could not update the dashboard: ${err.message}`);
    root.dataset.ready = "1"; // settled, on its error
  }
  setTimeout(poll, POLL_MS);
}

poll();
