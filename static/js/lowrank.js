// P9 Low-rank approximation. The server computes every reconstruction, error and count once per
// matrix; the rank slider only picks an index into that response, so sliding costs no request.
// The whole state lives in the query string, so a link reopens exactly this view.
import { $, ACCENT, PLOT_CONFIG, drawEachFrame, errorBox, readQuery, writeQuery } from "./lab.js";
import { latestFetcher, moveShapes, react, recolourBars, redrawHeatmap, ring } from "./playground.js";
import { fmtInt } from "./format.js";

const showError = errorBox("lowrank-error");
const root = document.getElementById("lowrank-root");
const apiUrl = root.dataset.apiUrl;
// Its fields redraw as they change: Enter in one must not submit the form (a reload). Here, not
// in an onsubmit attribute: the Content-Security-Policy allows no inline script.
$("matrix-form").addEventListener("submit", (event) => event.preventDefault());

const MATRIX_KEYS = ["kind", "size", "seed", "true_rank", "noise"];
const inputs = {
  kind: $("kind-select"),
  size: $("size-input"),
  seed: $("seed-input"),
  true_rank: $("true-rank-input"),
  noise: $("noise-input"),
};
const slider = $("rank-slider");
const MUTED = "#9aa3b2";

let data = null; // the last good response
let rank = null; // the current r, an index into data's per-rank lists

const fmtPct = new Intl.NumberFormat("en-US", { style: "percent", maximumSignificantDigits: 3 });
const fmtNum = (x) => (x === 0 ? "0" : x.toPrecision(3));

const fetchLatest = latestFetcher(root);

function fetchMatrix(params) {
  return fetchLatest(`${apiUrl}?${params}`);
}

function matrixParamsFromForm() {
  const params = new URLSearchParams();
  for (const key of MATRIX_KEYS) params.set(key, inputs[key].value.trim());
  return params;
}

// Put the server's view of the settings and bounds into the controls.
function syncControls() {
  const { settings, limits, kinds, errors } = data;
  if (inputs.kind.options.length === 0) {
    for (const [name, kind] of Object.entries(kinds)) inputs.kind.add(new Option(kind.label, name));
  }
  for (const key of ["size", "seed", "true_rank", "noise"]) {
    inputs[key].min = limits[key][0];
    inputs[key].max = limits[key][1];
  }
  for (const key of MATRIX_KEYS) inputs[key].value = settings[key];
  $("kind-help").textContent = kinds[settings.kind].help;
  // Only the low-rank kind has a true rank; the random kind has no noise knob either.
  inputs.true_rank.disabled = settings.kind !== "lowrank";
  inputs.noise.disabled = settings.kind === "random";
  slider.max = errors.length - 1;
}

function writeUrl() {
  const params = new URLSearchParams();
  for (const key of MATRIX_KEYS) params.set(key, data.settings[key]);
  params.set("r", rank);
  writeQuery(params);
}

function heatmap(z) {
  return [{
    type: "heatmap",
    z,
    zmin: -data.value_limit,
    zmax: data.value_limit,
    zmid: 0,
    colorscale: "RdBu",
    colorbar: { thickness: 10 },
    hovertemplate: "row %{y}, column %{x}: %{z}<extra></extra>",
  }];
}

const HEATMAP_LAYOUT = {
  margin: { l: 30, r: 10, t: 10, b: 30 },
  xaxis: { constrain: "domain" },
  yaxis: { autorange: "reversed", scaleanchor: "x", constrain: "domain" },
};

function drawMatrix() {
  redrawHeatmap("heatmap-original", data.matrix, data.value_limit,
    () => react("heatmap-original", heatmap(data.matrix), HEATMAP_LAYOUT, PLOT_CONFIG));
}

// The chosen rank on the error curve, a dot that the rank slider moves.
const rankDot = () => [ring(rank, data.errors[rank], { radius: 6.5, fill: ACCENT, color: ACCENT, width: 1 })];

// The error curve depends on the matrix only; the rank moves its dot (drawRank).
function drawErrorCurve() {
  react("error-chart", [
    { x: data.errors.map((_, i) => i), y: data.errors, mode: "lines+markers", name: "error", line: { color: MUTED },
      hovertemplate: "r = %{x}: %{y}<extra></extra>" },
  ], {
    shapes: rankDot(),
    margin: { l: 50, r: 10, t: 10, b: 40 },
    showlegend: false,
    xaxis: { title: { text: "rank r" } },
    yaxis: { title: { text: "relative error" }, rangemode: "tozero" },
  }, PLOT_CONFIG);
}

// The same matrix at every rank: a rank step redraws only the reconstruction's pixels.
function drawReconstruction(r) {
  redrawHeatmap("heatmap-recon", data.reconstructions[r], data.value_limit,
    () => react("heatmap-recon", heatmap(data.reconstructions[r]), HEATMAP_LAYOUT, PLOT_CONFIG));
}

// The bars that M_r keeps are coloured; the ones it drops are grey. The bars are the matrix's:
// a rank step only recolours them (no new axes).
let responses = 0; // one more for each response shown: the bars of another matrix are drawn whole
function drawSingularValues(r) {
  const colours = data.singular_values.map((_, i) => (i < r ? ACCENT : MUTED));
  recolourBars("sv-chart", [{ color: colours }], responses, () => react("sv-chart", [{
    type: "bar",
    x: data.singular_values.map((_, i) => i + 1),
    y: data.singular_values,
    marker: { color: colours },
    hovertemplate: "σ<sub>%{x}</sub> = %{y}<extra></extra>",
  }], {
    margin: { l: 50, r: 10, t: 10, b: 40 },
    xaxis: { title: { text: "i" } },
    yaxis: { title: { text: "σ<sub>i</sub>" } },
  }, PLOT_CONFIG));
}

function drawRank() {
  const r = rank;
  drawReconstruction(r);
  moveShapes("error-chart", rankDot());
  drawSingularValues(r);

  $("rank-value").textContent = r;
  $("recon-error").textContent = fmtNum(data.errors[r]);
  $("energy").textContent = fmtPct.format(data.energy[r]);
  $("param-count").textContent =
    `${fmtInt(data.params_factors[r])} vs ${fmtInt(data.params_full)}`;
  $("param-ratio").textContent = fmtPct.format(data.params_ratio[r]);
  $("break-even").textContent = data.break_even_rank;
}

// Apply a response: controls, r kept where it was (or as asked) but never past full rank.
function show(body, wantedRank) {
  data = body;
  responses += 1;
  syncControls();
  const maxRank = data.errors.length - 1;
  rank = Math.min(Math.max(Number.isInteger(wantedRank) ? wantedRank : 1, 0), maxRank);
  slider.value = rank;
  drawMatrix();
  drawErrorCurve();
  drawRank();
  writeUrl();
  root.dataset.ready = "1";
}

async function reload(params, wantedRank) {
  try {
    const body = await fetchMatrix(params);
    if (body) {
      showError("");
      show(body, wantedRank);
    }
  } catch (err) {
    showError(err.message);
  }
}

async function start() {
  const query = readQuery();
  const params = new URLSearchParams();
  for (const key of MATRIX_KEYS) if (query.has(key)) params.set(key, query.get(key));
  const wantedRank = query.has("r") ? Number(query.get("r")) : undefined;
  try {
    const body = await fetchMatrix(params);
    if (body) show(body, wantedRank);
  } catch (err) {
    // A bad or outdated link still opens a working page, and says what was wrong with it.
    const body = await fetchMatrix(new URLSearchParams()).catch(() => null);
    if (body) show(body, wantedRank);
    showError(`The link's settings were not accepted (${err.message}); showing the defaults.`);
  }
}

for (const key of MATRIX_KEYS) {
  inputs[key].addEventListener("change", () => reload(matrixParamsFromForm(), rank));
}
$("new-seed").addEventListener("click", () => {
  const seed = Number(inputs.seed.value);
  inputs.seed.value = Number.isInteger(seed) && seed < Number(inputs.seed.max) ? seed + 1 : 0;
  reload(matrixParamsFromForm(), rank);
});
// A drag redraws at most once a frame, with the slider's latest value.
const drawRankEachFrame = drawEachFrame(() => {
  drawRank();
  writeUrl();
});
slider.addEventListener("input", () => {
  if (!data) return;
  rank = Number(slider.value);
  drawRankEachFrame();
});

start();
