// P10 LoRA forward path. The server computes the example for every rank and every α on its grid
// (Wx, Ax, BAx, (α/r)·BAx and h); the r and α sliders only index that response. d and the seed
// fetch a new example. State (d, seed, r, alpha) lives in the query string.
import { $, ACCENT, GOOD, PLOT_CONFIG, WARN, drawEachFrame, errorBox, getJson, readQuery, writeQuery } from "./lab.js";
import { react, redrawHeatmap } from "./playground.js";
import { fmtInt } from "./format.js";

const showError = errorBox("forward-error");
const root = document.getElementById("forward-root");
// Its fields redraw as they change: Enter in one must not submit the form (a reload). Here, not
// in an onsubmit attribute: the Content-Security-Policy allows no inline script.
$("example-form").addEventListener("submit", (event) => event.preventDefault());
const rankSlider = $("rank-slider");
const alphaSlider = $("alpha-slider");
const inputs = { d: $("d-input"), seed: $("seed-input") };
const COLOURS = { Wx: "#9aa3b2", update: WARN, h: ACCENT, x: GOOD };

let data = null;
let rank = 2; // r itself (1 … d)
let alpha = 8; // α itself, a value of data.alphas
let requestSeq = 0;

async function fetchExample(params) {
  const seq = ++requestSeq;
  const body = await getJson(`${root.dataset.apiUrl}?${params}`);
  return seq === requestSeq ? body : null;
}

function writeUrl() {
  const params = new URLSearchParams({ d: data.settings.d, seed: data.settings.seed, r: rank, alpha });
  writeQuery(params);
}

const indices = (n) => Array.from({ length: n }, (_, i) => i + 1);

// A new shape of z (A and B as r changes) redraws the whole chart: its axes change. The same
// shape with the same labels and colour scale redraws only the pixels.
function heatmap(id, z, rowsLabel, colsLabel, limit) {
  redrawHeatmap(id, z, `${rowsLabel}|${colsLabel}|${limit}`, () => react(id, [{
    type: "heatmap", z, zmin: -limit, zmax: limit, zmid: 0, colorscale: "RdBu",
    x: indices(z[0].length), y: indices(z.length),
    colorbar: { thickness: 8, len: 0.9 },
    hovertemplate: `${rowsLabel} %{y}, ${colsLabel} %{x}: %{z}<extra></extra>`,
  }], {
    margin: { l: 45, r: 5, t: 5, b: 40 },
    xaxis: { title: { text: colsLabel }, constrain: "domain", dtick: 1 },
    yaxis: { title: { text: rowsLabel }, autorange: "reversed", scaleanchor: "x",
             constrain: "domain", dtick: 1 },
  }, PLOT_CONFIG));
}

let limit = 0; // one colour scale for W, A and B: the largest |value| of the example

// The example: W and the colour scale. Neither r nor α changes them.
function drawExample() {
  const d = data.settings.d;
  limit = Math.max(...data.W.flat().map(Math.abs), ...data.B[d - 1].flat().map(Math.abs),
                   ...data.A[d - 1].flat().map(Math.abs));
  heatmap("heat-W", data.W, "output i", "input j", limit);
  $("w-shape").textContent = `${d} × ${d}`;
}

// What r changes: A, B and the bottleneck; then what α changes too.
function drawRank() {
  const d = data.settings.d;
  const ri = rank - 1;
  heatmap("heat-A", data.A[ri], "row k", "input j", limit);
  heatmap("heat-B", data.B[ri], "output i", "column k", limit);
  $("a-shape").textContent = `${rank} × ${d}`;
  $("b-shape").textContent = `${d} × ${rank}`;

  react("bottleneck-chart", [
    { type: "bar", name: "x (input, width d)", x: indices(d), y: data.x, marker: { color: COLOURS.x },
      xaxis: "x", hovertemplate: "x, j = %{x}: %{y}<extra></extra>" },
    { type: "bar", name: "Ax (width r)", x: indices(rank), y: data.Ax[ri],
      marker: { color: COLOURS.update }, xaxis: "x2", yaxis: "y",
      hovertemplate: "Ax, k = %{x}: %{y}<extra></extra>" },
  ], {
    grid: { rows: 1, columns: 2, pattern: "independent" },
    margin: { l: 55, r: 10, t: 10, b: 45 },
    legend: { orientation: "h", y: 1.15 },
    xaxis: { title: { text: "input component j" }, dtick: 1, domain: [0, 0.62] },
    xaxis2: { title: { text: "bottleneck k" }, dtick: 1, domain: [0.7, 1], range: [0.5, d + 0.5] },
    yaxis: { title: { text: "value (unitless)" } },
  }, PLOT_CONFIG);
  drawScaled();
}

// What α changes (with r): the side road's share (α/r)·BAx, h and the readouts.
function drawScaled() {
  const d = data.settings.d;
  const ri = rank - 1;
  const ai = data.alphas.indexOf(alpha);
  const comps = indices(d);
  react("vectors-chart", [
    { type: "bar", name: "Wx (frozen road)", x: comps, y: data.Wx, marker: { color: COLOURS.Wx },
      hovertemplate: "Wx, i = %{x}: %{y}<extra></extra>" },
    { type: "bar", name: "(α/r)·BAx (side road)", x: comps, y: data.update[ri][ai],
      marker: { color: COLOURS.update }, hovertemplate: "(α/r)·BAx, i = %{x}: %{y}<extra></extra>" },
    { type: "bar", name: "h = sum", x: comps, y: data.h[ri][ai], marker: { color: COLOURS.h },
      hovertemplate: "h, i = %{x}: %{y}<extra></extra>" },
  ], {
    barmode: "group",
    margin: { l: 55, r: 10, t: 10, b: 45 },
    legend: { orientation: "h", y: 1.15 },
    xaxis: { title: { text: "output component i (1 … d)" }, dtick: 1 },
    yaxis: { title: { text: "value (unitless)" }, zeroline: true },
  }, PLOT_CONFIG);

  $("rank-value").textContent = rank;
  $("alpha-value").textContent = alpha;
  $("scale").textContent = String(data.scale[ri][ai]);
  $("params-full").textContent = fmtInt(data.params_full);
  $("params-lora").textContent = fmtInt(data.params_lora[ri]);
  $("shapes").innerHTML = [
    `x: ${d}`,
    `frozen: W (${d}×${d}) · x → Wx: ${d}`,
    `side: A (${rank}×${d}) · x → Ax: <strong>${rank}</strong>`,
    `side: B (${d}×${rank}) · Ax → BAx: ${d}`,
    `scale: α/r = ${alpha}/${rank} = ${data.scale[ri][ai]}`,
    `h = Wx + (α/r)·BAx: ${d}`,
  ].join("<br>");
  writeUrl();
}

function show(body, wanted) {
  data = body;
  const d = data.settings.d;
  inputs.d.min = data.limits.d[0];
  inputs.d.max = data.limits.d[1];
  inputs.seed.min = data.limits.seed[0];
  inputs.seed.max = data.limits.seed[1];
  inputs.d.value = d;
  inputs.seed.value = data.settings.seed;
  rankSlider.max = data.ranks.length - 1;
  alphaSlider.max = data.alphas.length - 1;
  rank = data.ranks.includes(wanted.r) ? wanted.r : Math.min(2, d);
  alpha = data.alphas.includes(wanted.alpha) ? wanted.alpha : 8;
  rankSlider.value = data.ranks.indexOf(rank);
  alphaSlider.value = data.alphas.indexOf(alpha);
  drawExample();
  drawRank();
  root.dataset.ready = "1";
}

async function reload() {
  const params = new URLSearchParams({ d: inputs.d.value.trim(), seed: inputs.seed.value.trim() });
  // A change event with nothing changed (a blur after a programmatic update) must not fetch: its
  // late answer would overwrite what the user is typing in the other field.
  if (data && params.get("d") === String(data.settings.d) &&
      params.get("seed") === String(data.settings.seed)) return;
  try {
    const body = await fetchExample(params);
    if (body) {
      showError("");
      show(body, { r: rank, alpha });
    }
  } catch (err) {
    showError(err.message);
  }
}

async function start() {
  const q = readQuery();
  const params = new URLSearchParams();
  for (const key of ["d", "seed"]) if (q.has(key)) params.set(key, q.get(key));
  const wanted = { r: Number(q.get("r")), alpha: q.has("alpha") ? Number(q.get("alpha")) : 8 };
  try {
    const body = await fetchExample(params);
    if (body) show(body, wanted);
  } catch (err) {
    const body = await fetchExample(new URLSearchParams()).catch(() => null);
    if (body) show(body, wanted);
    showError(`The link's settings were not accepted (${err.message}); showing the defaults.`);
  }
}

// A drag redraws at most once a frame, with the slider's latest value.
const drawRankEachFrame = drawEachFrame(drawRank);
const drawScaledEachFrame = drawEachFrame(drawScaled);
rankSlider.addEventListener("input", () => {
  rank = data.ranks[Number(rankSlider.value)];
  drawRankEachFrame();
});
alphaSlider.addEventListener("input", () => {
  alpha = data.alphas[Number(alphaSlider.value)];
  drawScaledEachFrame();
});
for (const input of Object.values(inputs)) input.addEventListener("change", reload);

start();
