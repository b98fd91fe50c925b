// P16 Low-rank lab. The server fits every rank r on every sample size n for one task (true
// rank k, noise σ, seed); changing the task fetches once, while n and r only index into the
// response. The state lives in the query string.
import { $, ACCENT, PLOT_CONFIG, drawEachFrame, errorBox, getJson, readQuery, writeQuery } from "./lab.js";
import { latestFetcher, moveShapes, react, redrawHeatmap, ring } from "./playground.js";
import { fmtInt } from "./format.js";

const showError = errorBox("lab-error");
const root = document.getElementById("lab-root");
const TRAIN = "#e07b2a";
const MUTED = "#9aa3b2";
const fmt = (x) => (x === 0 ? "0" : Number(x).toPrecision(3));

const kSlider = $("k-slider");
const noiseSlider = $("noise-slider");
const seedInput = $("seed-input");
const nSlider = $("n-slider");
const rSlider = $("r-slider");
let data = null;
const view = { n: null, r: null };

const fetchLatest = latestFetcher(root);

// Every task shown, by the query its settings make: a slider step back to a task seen before
// draws at once.
const answers = new Map();
const ANSWERS_KEPT = 24;
const taskKey = (k, noise, seed) => String(new URLSearchParams({ true_rank: k, noise, seed }));

function remember(body) {
  const s = body.settings;
  answers.set(taskKey(s.true_rank, s.noise, s.seed), body);
  if (answers.size > ANSWERS_KEPT) answers.delete(answers.keys().next().value);
}

// The tasks one step away on the k and σ sliders, asked for in the background once a task is
// shown, so that a click or an arrow key on either draws without waiting for the server (each
// answer takes it about 30 ms). A request still in flight is shared with a step that wants it.
const prefetching = new Map();
function prefetchNeighbours() {
  const { true_rank: k, noise, seed } = data.settings;
  const [kMin, kMax] = data.limits.true_rank;
  const [nMin, nMax] = data.limits.noise;
  const step = Number(noiseSlider.step) || 0.05;
  const near = [];
  if (k > kMin) near.push([k - 1, noise]);
  if (k < kMax) near.push([k + 1, noise]);
  // The slider's own values (0.3 + 0.05 is 0.35, not 0.35000000000000003).
  const n = (x) => Number(x.toFixed(2));
  if (noise - step >= nMin - 1e-9) near.push([k, n(noise - step)]);
  if (noise + step <= nMax + 1e-9) near.push([k, n(noise + step)]);
  for (const [kk, nn] of near) {
    const key = taskKey(kk, nn, seed);
    if (answers.has(key) || prefetching.has(key)) continue;
    const request = getJson(`${root.dataset.apiUrl}?${key}`)
      .then((body) => { remember(body); return body; })
      .catch(() => null)
      .finally(() => prefetching.delete(key));
    prefetching.set(key, request);
  }
}

async function fetchTask(params) {
  const key = String(params);
  return answers.get(key) ?? (await prefetching.get(key)) ?? fetchLatest(`${root.dataset.apiUrl}?${key}`);
}

function taskParams() {
  return new URLSearchParams({ true_rank: kSlider.value, noise: noiseSlider.value, seed: seedInput.value.trim() });
}

function writeUrl() {
  const s = data.settings;
  const p = new URLSearchParams({ true_rank: s.true_rank, noise: s.noise, seed: s.seed,
    n: data.sample_sizes[view.n], r: view.r });
  writeQuery(p);
}

function syncControls() {
  const { settings, limits } = data;
  kSlider.min = limits.true_rank[0];
  kSlider.max = limits.true_rank[1];
  noiseSlider.min = limits.noise[0];
  noiseSlider.max = limits.noise[1];
  seedInput.min = limits.seed[0];
  seedInput.max = limits.seed[1];
  kSlider.value = settings.true_rank;
  noiseSlider.value = settings.noise;
  seedInput.value = settings.seed;
  nSlider.max = data.sample_sizes.length - 1;
  rSlider.max = data.ranks.length - 1;
  nSlider.value = view.n;
  rSlider.value = view.r;
  $("k-value").textContent = settings.true_rank;
  $("noise-value").textContent = Number(settings.noise).toFixed(2);
}

function heatmap(z) {
  return [{ type: "heatmap", z, zmin: -data.value_limit, zmax: data.value_limit, zmid: 0,
    colorscale: "RdBu", colorbar: { thickness: 10 },
    hovertemplate: "input %{y}, output %{x}: %{z}<extra></extra>" }];
}

const HEATMAP_LAYOUT = {
  margin: { l: 40, r: 10, t: 10, b: 40 },
  xaxis: { title: { text: "output j" }, constrain: "domain" },
  yaxis: { title: { text: "input i" }, autorange: "reversed", scaleanchor: "x", constrain: "domain" },
};

// One size and colour scale for a task's heatmaps: n and r redraw only the fit's pixels.
function drawHeatmap(id, z) {
  redrawHeatmap(id, z, data.value_limit, () => react(id, heatmap(z), HEATMAP_LAYOUT, PLOT_CONFIG));
}

function drawTask() {
  drawHeatmap("heatmap-true", data.delta);
}

// The true rank's band, and the chosen r on the new-examples curve (r alone moves only the ring).
function errorShapes() {
  const k = data.settings.true_rank;
  return [{ type: "rect", x0: k - 0.5, x1: k + 0.5, yref: "paper", y0: 0, y1: 1, fillcolor: "#e5e8ef",
    line: { width: 0 }, layer: "below" }, ring(view.r, data.heldout_mse[view.n][view.r])];
}

// The curves depend on the task and n; r only moves the ring (moveRank).
function drawCurves() {
  const { n } = view;
  const k = data.settings.true_rank;
  const traces = data.sample_sizes.map((size, i) => ({
    x: data.ranks, y: data.heldout_mse[i], mode: "lines", name: "new examples, other n",
    line: { color: MUTED, width: 1 }, opacity: 0.6, showlegend: i === (n === 0 ? 1 : 0),
    legendgroup: "others", hovertemplate: `n = ${size}, r = %{x}: %{y}<extra></extra>`,
  })).filter((_, i) => i !== n);
  traces.push(
    { x: data.ranks, y: data.heldout_mse[n], mode: "lines+markers", name: `new examples (n = ${fmtInt(data.sample_sizes[n])})`,
      line: { color: ACCENT, width: 3 }, hovertemplate: "r = %{x}: %{y}<extra>new examples</extra>" },
    { x: data.ranks, y: data.train_mse[n], mode: "lines+markers", name: "training examples",
      line: { color: TRAIN, dash: "dash" }, hovertemplate: "r = %{x}: %{y}<extra>training</extra>" },
    { x: [data.ranks[0], data.ranks[data.ranks.length - 1]], y: [data.noise_floor, data.noise_floor], mode: "lines",
      name: "noise floor σ²", line: { color: "#222", dash: "dot", width: 1 }, hoverinfo: "skip" },
  );
  const top = Math.max(...data.heldout_mse[n], ...data.train_mse[n]);
  react("error-chart", traces, {
    margin: { l: 60, r: 10, t: 25, b: 50 },
    legend: { orientation: "h", x: 0, y: -0.2, yanchor: "top" },
    shapes: errorShapes(),
    annotations: [{ x: k, yref: "paper", y: 1, text: `k = ${k}`, showarrow: false, yanchor: "bottom", font: { size: 11 } }],
    xaxis: { title: { text: "LoRA rank r" }, dtick: 2 },
    yaxis: { title: { text: "mean squared error per output" }, range: [0, Math.min(top, 3 * data.heldout_mse[n][0]) * 1.05] },
  }, PLOT_CONFIG);
  $("n-value").textContent = fmtInt(data.sample_sizes[n]);
  $("noise-floor").textContent = fmt(data.noise_floor);
  $("best-rank").textContent = data.best_rank[n];
}

// What depends on r (and n): the fitted update and the readouts.
function drawRank() {
  const { n, r } = view;
  drawHeatmap("heatmap-fit", data.fits[n][r]);
  $("r-value").textContent = r;
  $("train-error").textContent = fmt(data.train_mse[n][r]);
  $("heldout-error").textContent = fmt(data.heldout_mse[n][r]);
  $("update-error").textContent = fmt(data.update_error[n][r]);
  $("param-count").textContent = `${fmtInt(data.params[r])} vs ${fmtInt(data.params_full)}`;
}

function drawView() {
  drawCurves();
  drawRank();
}

// r alone: move the ring along the curve, redraw the fit.
function moveRank() {
  moveShapes("error-chart", errorShapes());
  drawRank();
}

function show(body, wanted) {
  data = body;
  remember(body);
  const nIndex = data.sample_sizes.map(String).indexOf(String(wanted.n));
  view.n = nIndex >= 0 ? nIndex : (view.n ?? 2);
  const r = Number(wanted.r);
  view.r = Number.isInteger(r) && wanted.r !== null && wanted.r !== undefined
    ? Math.min(Math.max(r, 0), data.ranks.length - 1) : (view.r ?? data.settings.true_rank);
  syncControls();
  drawTask();
  drawView();
  writeUrl();
  root.dataset.ready = "1";
  prefetchNeighbours();
}

let reloads = 0;

async function reload() {
  const mine = ++reloads;
  try {
    const body = await fetchTask(taskParams());
    // Only the newest task counts: a remembered one answers before a request still in flight.
    if (body && mine === reloads) {
      showError("");
      show(body, { n: data.sample_sizes[view.n], r: view.r });
    }
  } catch (err) {
    if (mine === reloads) showError(err.message);
  }
}

async function start() {
  const q = readQuery();
  const params = new URLSearchParams();
  for (const key of ["true_rank", "noise", "seed"]) if (q.has(key)) params.set(key, q.get(key));
  const wanted = { n: q.get("n"), r: q.get("r") };
  try {
    const body = await fetchTask(params);
    if (body) show(body, wanted);
  } catch (err) {
    const body = await fetchTask(new URLSearchParams()).catch(() => null);
    if (body) show(body, wanted);
    showError(`The link's settings were not accepted (${err.message}); showing the defaults.`);
  }
}

// The task sliders show their value while moving and fetch a new task when let go.
kSlider.addEventListener("input", () => { $("k-value").textContent = kSlider.value; });
noiseSlider.addEventListener("input", () => { $("noise-value").textContent = Number(noiseSlider.value).toFixed(2); });
for (const el of [kSlider, noiseSlider, seedInput]) el.addEventListener("change", () => { if (data) reload(); });
// A drag redraws at most once a frame, with the slider's latest value.
const drawViewEachFrame = drawEachFrame(() => { drawView(); writeUrl(); });
const moveRankEachFrame = drawEachFrame(() => { moveRank(); writeUrl(); });
nSlider.addEventListener("input", () => { if (data) { view.n = Number(nSlider.value); drawViewEachFrame(); } });
rSlider.addEventListener("input", () => { if (data) { view.r = Number(rSlider.value); moveRankEachFrame(); } });

start();
