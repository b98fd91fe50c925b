// P7 Intrinsic dimension. The server trains one network per subspace size d once per seed and
// returns every accuracy, loss curve and d_90; the d slider only picks an index into that
// response, so it costs no request. The state lives in the query string.
import { $, ACCENT, PLOT_CONFIG, drawEachFrame, errorBox, readQuery, writeQuery } from "./lab.js";
import { latestFetcher, moveShapes, react, ring } from "./playground.js";
import { fmtInt } from "./format.js";

const showError = errorBox("intrinsic-error");
const root = document.getElementById("intrinsic-root");
const apiUrl = root.dataset.apiUrl;
// Its fields redraw as they change: Enter in one must not submit the form (a reload). Here, not
// in an onsubmit attribute: the Content-Security-Policy allows no inline script.
$("intrinsic-form").addEventListener("submit", (event) => event.preventDefault());

const seedInput = $("seed-input");
const slider = $("d-slider");
const FULL = "#2a9d5c";
const BAR = "#d9822b";
const MUTED = "#9aa3b2";

let data = null;
let index = 0; // into data.dimensions

const pct = (x, digits = 1) => `${(100 * x).toFixed(digits)} %`;
// Shares span from ~1e-7 to 1: show significant digits, not a fixed number of decimals.
const share = (x) => `${Number((100 * x).toPrecision(2))} %`;
const millions = (n) => `${fmtInt(n / 1e6)}M`;

const fetchLatest = latestFetcher(root);

function fetchData(params) {
  return fetchLatest(`${apiUrl}?${params}`);
}

function writeUrl() {
  const params = new URLSearchParams({ seed: data.settings.seed, d: data.dimensions[index] });
  writeQuery(params);
}

function drawStatic() {
  const dims = data.dimensions;
  const xRange = [Math.log10(dims[0]) - 0.15, Math.log10(dims[dims.length - 1]) + 0.15];
  const traces = [
    { x: dims, y: data.accuracy.map((a) => 100 * a), mode: "lines+markers", name: "subspace training",
      line: { color: ACCENT, width: 2.5 }, marker: { size: 8 },
      hovertemplate: "d = %{x}: %{y:.1f} %<extra></extra>" },
    { x: [dims[0], dims[dims.length - 1]], y: [100 * data.full_accuracy, 100 * data.full_accuracy],
      mode: "lines", name: "ordinary training (all D)", line: { color: FULL, dash: "dash" }, hoverinfo: "skip" },
    { x: [dims[0], dims[dims.length - 1]], y: [100 * data.bar, 100 * data.bar], mode: "lines",
      name: `${pct(data.threshold, 0)} of ordinary`, line: { color: BAR, dash: "dot" }, hoverinfo: "skip" },
    { x: [dims[0], dims[dims.length - 1]], y: [100 * data.init_accuracy, 100 * data.init_accuracy],
      mode: "lines", name: "untrained θ₀", line: { color: MUTED, dash: "dot", width: 1 }, hoverinfo: "skip" },
  ];
  if (data.d90 !== null) {
    const i90 = dims.indexOf(data.d90);
    traces.push({ x: [data.d90], y: [100 * data.accuracy[i90]], mode: "markers+text", name: "d₉₀",
      text: [`d₉₀ = ${fmtInt(data.d90)}`], textposition: "bottom right",
      marker: { size: 14, symbol: "star", color: BAR }, hoverinfo: "skip" });
  }
  react("accuracy-chart", traces, {
    shapes: chosenRing(),
    margin: { l: 60, r: 10, t: 10, b: 50 },
    legend: { orientation: "h", y: -0.25 },
    xaxis: { title: { text: "subspace dimension d (trainable numbers, log scale)" }, type: "log",
             range: xRange, tickvals: dims, ticktext: dims.map((d) => fmtInt(d)) },
    yaxis: { title: { text: "test accuracy (%)" }, range: [0, 105] },
  }, PLOT_CONFIG);
}

// The chosen d on the accuracy curve (the slider moves only this ring).
function chosenRing() {
  return [ring(data.dimensions[index], 100 * data.accuracy[index], { radius: 9, color: "#111" })];
}

function drawIndex() {
  const i = index;
  const d = data.dimensions[i];
  moveShapes("accuracy-chart", chosenRing());

  const curve = data.losses[i];
  const full = data.losses[data.losses.length - 1];
  const steps = curve.map((_, t) => t + 1);
  const traces = [{ x: steps, y: curve, mode: "lines", name: `d = ${fmtInt(d)}`,
                    line: { color: ACCENT, width: 2.5 }, hovertemplate: "step %{x}: %{y}<extra></extra>" }];
  if (i !== data.losses.length - 1) {
    traces.push({ x: steps, y: full, mode: "lines", name: `d = D = ${fmtInt(data.total_params)}`,
                  line: { color: MUTED, dash: "dot" }, hovertemplate: "step %{x}: %{y}<extra></extra>" });
  }
  // Plotly.react itself: Plotly hides a tick label of this chart that would cross its edge.
  Plotly.react("loss-chart", traces, {
    margin: { l: 60, r: 10, t: 10, b: 45 },
    legend: { orientation: "h", y: -0.25 },
    xaxis: { title: { text: "Adam step" } },
    yaxis: { title: { text: "training loss (cross-entropy, nats)" }, type: "log", dtick: 1 },
  }, PLOT_CONFIG);

  $("d-value").textContent = fmtInt(d);
  $("d-fraction").textContent = `${fmtInt(d)} of ${fmtInt(data.total_params)} (${share(data.fractions[i])})`;
  $("acc-d").textContent = pct(data.accuracy[i]);
  $("train-acc-d").textContent = pct(data.train_accuracy[i]);
}

function drawSummary() {
  document.querySelectorAll(".threshold").forEach((el) => { el.textContent = pct(data.threshold, 0); });
  $("acc-full").textContent = pct(data.full_accuracy);
  $("acc-init").textContent = pct(data.init_accuracy);
  $("acc-bar").textContent = pct(data.bar);
  const d90Text = data.d90 === null
    ? "not reached on this grid"
    : `${fmtInt(data.d90)} (${share(data.d90_fraction)} of D)`;
  $("d90").textContent = d90Text;
  $("d90-text").textContent = d90Text;
  const f = data.source_facts;
  $("source-d90").textContent = fmtInt(f.roberta_d90);
  $("source-share").textContent = share(f.roberta_fraction);
  document.querySelectorAll(".source-params").forEach((el) => { el.textContent = millions(f.roberta_params); });
  $("source-range").textContent = `${fmtInt(f.subspace_range[0])}–${fmtInt(f.subspace_range[1])}`;
  $("large-params").textContent = millions(f.roberta_large_params);
  $("large-share").textContent = share(f.roberta_large_fraction);
  $("net-params").textContent = fmtInt(data.network.params);
  $("net-sizes").textContent = data.network.sizes.join(" → ");
}

function nearestIndex(d) {
  let best = 0;
  data.dimensions.forEach((x, i) => {
    if (Math.abs(Math.log(x / d)) < Math.abs(Math.log(data.dimensions[best] / d))) best = i;
  });
  return best;
}

function show(body, wantedD) {
  data = body;
  seedInput.min = data.limits.seed[0];
  seedInput.max = data.limits.seed[1];
  seedInput.value = data.settings.seed;
  slider.max = data.dimensions.length - 1;
  index = wantedD > 0 ? nearestIndex(wantedD) : Math.min(index, data.dimensions.length - 1);
  slider.value = index;
  slider.setAttribute("aria-valuetext", `d = ${data.dimensions[index]}`);
  drawStatic();
  drawIndex();
  drawSummary();
  writeUrl();
  root.dataset.ready = "1";
}

async function reload() {
  try {
    const body = await fetchData(new URLSearchParams({ seed: seedInput.value.trim() }));
    if (body) {
      showError("");
      show(body, data ? data.dimensions[index] : undefined);
    }
  } catch (err) {
    showError(err.message);
  }
}

async function start() {
  const query = readQuery();
  const params = new URLSearchParams();
  if (query.has("seed")) params.set("seed", query.get("seed"));
  const wantedD = query.has("d") ? Number(query.get("d")) : 10;
  try {
    const body = await fetchData(params);
    if (body) show(body, wantedD);
  } catch (err) {
    const body = await fetchData(new URLSearchParams()).catch(() => null);
    if (body) show(body, wantedD);
    showError(`The link's settings were not accepted (${err.message}); showing the defaults.`);
  }
}

seedInput.addEventListener("change", reload);
$("new-seed").addEventListener("click", () => {
  const seed = Number(seedInput.value);
  seedInput.value = Number.isInteger(seed) && seed < Number(seedInput.max) ? seed + 1 : 0;
  reload();
});
// A drag redraws at most once a frame, with the slider's latest value.
const drawEachStep = drawEachFrame(() => {
  drawIndex();
  writeUrl();
});
slider.addEventListener("input", () => {
  if (!data) return;
  index = Number(slider.value);
  slider.setAttribute("aria-valuetext", `d = ${data.dimensions[index]}`);
  drawEachStep();
});

start();
