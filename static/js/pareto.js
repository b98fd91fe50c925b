// The Pareto view: every succeeded run of a task, validation accuracy against a cost (trainable
// parameters, peak memory or training time) on a log axis, the front (from the server's
// simulations/pareto.py) drawn as a line. One request per task brings all three costs and fronts;
// the cost buttons only redraw. State in the URL: ?task=sentiment&x=params.
import { $, INK, METHOD_COLOURS, MUTED, PLOT_CONFIG, emptyLayout, errorBox, fillList, readQuery, writeQuery } from "./lab.js";
import { latestFetcher } from "./playground.js";
import { fmtAcc, fmtBytes, fmtInt, fmtSeconds } from "./format.js";

const showError = errorBox("pareto-error");
const root = document.getElementById("pareto-root");
const chart = document.getElementById("pareto-chart");
const MIB = 1024 * 1024;
const fetchLatest = latestFetcher(root);

// How each cost is plotted: the value on the axis (memory in MiB), the axis title, the hover text.
const AXES = {
  params: { value: (r) => r.params, title: "trainable parameters (count, log scale)", text: (r) => `${fmtInt(r.params)} trainable parameters` },
  memory: { value: (r) => r.memory / MIB, title: "peak memory (MB = 2²⁰ bytes, log scale)", text: (r) => `${fmtBytes(r.memory)} peak memory` },
  time: { value: (r) => r.time, title: "training time (seconds, log scale)", text: (r) => `${fmtSeconds(r.time)} of training` },
};

let data = null;

function current() {
  const q = readQuery();
  const task = [...$("pareto-task").options].some((o) => o.value === q.get("task")) ? q.get("task") : $("pareto-task").value;
  const x = AXES[q.get("x")] ? q.get("x") : "params";
  return { task, x };
}

function writeUrl(task, x) {
  writeQuery(`task=${encodeURIComponent(task)}&x=${x}`);
}

const runText = (r, axis) => `Run ${r.id} · ${r.label} · ${r.steps} steps · seed ${r.seed}<br>`
  + `${fmtAcc(r.val_accuracy)} validation accuracy<br>${axis.text(r)}${r.device ? ` · ${r.device}` : ""}<br>click to open the run`;

function draw() {
  const { x } = current();
  const axis = AXES[x];
  const runs = data.runs.filter((r) => r[x] !== null);
  const byId = new Map(runs.map((r) => [r.id, r]));
  const front = data.fronts[x].map((id) => byId.get(id)).filter(Boolean);
  const methods = [...new Set(runs.map((r) => r.method))];
  const traces = methods.map((m) => {
    const mine = runs.filter((r) => r.method === m);
    return {
      x: mine.map((r) => axis.value(r)), y: mine.map((r) => r.val_accuracy), customdata: mine.map((r) => r.id),
      text: mine.map((r) => runText(r, axis)), hovertemplate: "%{text}<extra></extra>",
      mode: "markers", type: "scatter", name: mine[0].label,
      marker: { size: 12, color: METHOD_COLOURS[m] || MUTED, line: { color: "#fff", width: 1 } },
    };
  });
  if (front.length) {
    traces.push({
      x: front.map((r) => axis.value(r)), y: front.map((r) => r.val_accuracy), customdata: front.map((r) => r.id),
      text: front.map((r) => runText(r, axis)), hovertemplate: "<b>on the front</b><br>%{text}<extra></extra>",
      mode: "lines+markers", type: "scatter", name: "Pareto front", line: { color: INK, width: 2 },
      marker: { size: 18, symbol: "circle-open", color: INK, line: { width: 2 } },
    });
  }
  const layout = {
    margin: { l: 65, r: 20, t: 20, b: 70 }, hovermode: "closest", showlegend: true,
    legend: { orientation: "h", x: 0, y: -0.3, yanchor: "top" },
    xaxis: { title: { text: axis.title }, type: "log", automargin: true },
    yaxis: { title: { text: "validation accuracy (%)" }, tickformat: ".0%", automargin: true },
  };
  Plotly.react(chart, traces, runs.length ? layout
    : emptyLayout(chart, layout, "No succeeded run of this task yet: train one on the Train page, and it appears here."),
  PLOT_CONFIG);
  const item = (r) => `<li><a href="/train/?run=${r.id}">Run ${r.id}</a>
    ${r.label}, ${r.steps} steps: ${fmtAcc(r.val_accuracy)} for ${axis.text(r)}</li>`;
  const none = "No succeeded run of this task yet.";
  fillList($("front-list"), front.map(item), none);
  // The same runs as links, for a keyboard or a screen reader (the chart's points need a mouse).
  fillList($("all-list"), [...runs].sort((a, b) => axis.value(a) - axis.value(b)).map(item), none);
  $("pareto-summary").textContent = `${runs.length} succeeded run${runs.length === 1 ? "" : "s"}; `
    + `${front.length} on the front.`;
  const devices = new Set(runs.map((r) => r.device).filter(Boolean));
  $("pareto-note").textContent = (devices.size > 1
    ? `These runs ran on different devices (${[...devices].join(", ")}): their times and memory are not measured alike. `
    : "") + "The front is along the cost shown: another cost gives another front."
    + (data.truncated ? ` Only the newest ${fmtInt(data.limit)} runs are shown.` : "");
  if (!chart.dataset.clickable) {
    // Plotly adds .on() to the element when it first draws; a click on any point opens its run.
    chart.on("plotly_click", (event) => {
      const id = event.points && event.points[0] && event.points[0].customdata;
      if (id) location.href = `/train/?run=${id}`;
    });
    chart.dataset.clickable = "1";
  }
  chart.dataset.x = x;
  root.dataset.ready = "1";
}

async function load() {
  const { task, x } = current();
  $("pareto-task").value = task;
  document.querySelector(`#pareto-x input[value="${x}"]`).checked = true;
  writeUrl(task, x);
  showError("");
  try {
    const body = await fetchLatest(`/api/pareto?task=${encodeURIComponent(task)}`);
    if (!body) return;
    data = body;
    draw();
  } catch (err) {
    showError(err.message);
    root.dataset.ready = "1";
  }
}

$("pareto-task").addEventListener("change", () => {
  writeUrl($("pareto-task").value, current().x);
  load();
});
$("pareto-x").addEventListener("change", (event) => {
  writeUrl(current().task, event.target.value);
  if (data) draw();
});

load();
