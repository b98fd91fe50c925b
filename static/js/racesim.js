// P17's instant mode: when no worker is free, the same lanes as a simulated race, drawn from
// curves fitted to real runs of the lab (GET /api/playgrounds/four-method-race/simulated). It
// reads the race form's task, budget and lanes; it never writes to the real race's charts.
import { $, METHOD_COLOURS, PLOT_CONFIG } from "./lab.js";
import { latestFetcher } from "./playground.js";
import { fmtAcc, fmtBytes, fmtInt, fmtSeconds } from "./format.js";

const root = document.getElementById("race-sim");
const fetchLatest = latestFetcher(root);

function laneMethods() {
  return [...document.querySelectorAll("#race-lanes select")].map((s) => s.value);
}

function layout(ytitle, range) {
  return {
    margin: { l: 60, r: 10, t: 10, b: 90 },
    legend: { orientation: "h", x: 0, y: -0.28 },
    xaxis: { title: { text: "step" }, rangemode: "tozero" },
    yaxis: { title: { text: ytitle }, ...(range ? { range } : {}) },
  };
}

function draw(body) {
  const trace = (lane, key) => ({
    x: lane.steps, y: lane[key], mode: "lines", name: `${lane.method} (simulated)`,
    line: { color: METHOD_COLOURS[lane.method], width: 2.5, dash: "dot" },
    hovertemplate: `%{y:.3f} at step %{x}<extra>${lane.method}, simulated</extra>`,
  });
  Plotly.react($("sim-loss"), body.lanes.map((l) => trace(l, "loss")), layout("loss (cross-entropy, nats), simulated"), PLOT_CONFIG);
  Plotly.react($("sim-acc"), body.lanes.map((l) => ({ ...trace(l, "val_accuracy"),
    y: l.val_accuracy.map((a) => (a === null ? null : 100 * a)) })), layout("validation accuracy (%), simulated", [0, 100]), PLOT_CONFIG);
  $("sim-rows").innerHTML = body.lanes.map((l) => {
    const m = l.metrics;
    return `<tr data-method="${l.method}"><td>${l.method}</td>
      <td class="num">${fmtAcc(l.val_accuracy[l.val_accuracy.length - 1])}</td>
      <td class="num" data-relative="${l.relative_seconds}">${l.relative_seconds.toFixed(2)}× ${body.time_reference}
        <span class="muted">(${fmtSeconds(l.seconds)})</span></td>
      <td class="num">${fmtInt(m.trainable_params)}</td>
      <td class="num">${fmtBytes(m.peak_memory_bytes)}</td>
      <td class="num">${l.loss_rmse.toFixed(3)}</td></tr>`;
  }).join("");
  const f = body.fitted_on;
  $("sim-time-head").textContent = `training time, relative to ${body.time_reference}`;
  $("sim-about").textContent = `Simulated, not trained now: each curve is c + a·exp(−t/τ) fitted to a real run of `
    + `${f.steps} steps (seed ${f.seed}) on ${f.device}, ${f.date}. Parameters and memory are that run's `
    + `measurements. Time is shown as a multiple of the ${body.time_reference} lane's, measured in the same fit: `
    + `the seconds in brackets are that machine's and will differ on yours, the ratios much less. `
    + `The fit's typical error is the last column.${f.note ? ` ${f.note}` : ""}`;
}

async function simulate() {
  $("sim-error").hidden = true;
  const q = new URLSearchParams({ task: $("race-task").value, steps: $("race-steps").value,
    methods: laneMethods().join(",") });
  try {
    const body = await fetchLatest(`${root.dataset.apiUrl}?${q}`);
    if (!body) return;
    root.hidden = false;
    draw(body);
    root.dataset.ready = "1";
  } catch (err) {
    $("sim-error").textContent = err.message;
    $("sim-error").hidden = false;
  }
}

$("race-simulate").addEventListener("click", simulate);
