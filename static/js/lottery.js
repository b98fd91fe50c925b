// P6 Lottery ticket. The server trains every network once per (seed, scope) and returns the
// accuracies and masks at every sparsity of its grid; the sparsity slider and the layer menu only
// pick indices into that response, so they cost no request. The state lives in the query string.
import { $, ACCENT, PLOT_CONFIG, drawEachFrame, errorBox, readQuery, writeQuery } from "./lab.js";
import { latestFetcher, moveShapes, react, redrawHeatmap, ring } from "./playground.js";
import { fmtInt } from "./format.js";

const showError = errorBox("lottery-error");
const root = document.getElementById("lottery-root");
const apiUrl = root.dataset.apiUrl;
// Its fields redraw as they change: Enter in one must not submit the form (a reload). Here, not
// in an onsubmit attribute: the Content-Security-Policy allows no inline script.
$("lottery-form").addEventListener("submit", (event) => event.preventDefault());

const HEAVY_KEYS = ["seed", "scope"];
const inputs = { seed: $("seed-input"), scope: $("scope-select") };
const slider = $("sparsity-slider");
const layerSelect = $("layer-select");
const COLORS = { pruned: "#9aa3b2", ticket: ACCENT, random: "#d9822b", dense: "#2a9d5c" };
const CLASS_COLORS = [ACCENT, "#d9822b", "#2a9d5c"];

let data = null;
let index = 0; // into data.sparsities
let layer = 1; // into data.layers

const pct = (x, digits = 1) => `${(100 * x).toFixed(digits)} %`;
const sparsityText = (s) => `${+(100 * s).toFixed(1)} %`;

const fetchLatest = latestFetcher(root);

function fetchData(params) {
  return fetchLatest(`${apiUrl}?${params}`);
}

function paramsFromForm() {
  const params = new URLSearchParams();
  for (const key of HEAVY_KEYS) params.set(key, inputs[key].value.trim());
  return params;
}

function syncControls() {
  const { settings, limits, scopes, layers, sparsities } = data;
  if (inputs.scope.options.length === 0) {
    for (const name of Object.keys(scopes)) inputs.scope.add(new Option(name === "global" ? "Global" : "Layer by layer", name));
  }
  if (layerSelect.options.length === 0) {
    layers.forEach((l, i) => layerSelect.add(new Option(l.name, String(i))));
  }
  inputs.seed.min = limits.seed[0];
  inputs.seed.max = limits.seed[1];
  for (const key of HEAVY_KEYS) inputs[key].value = settings[key];
  $("scope-help").textContent = scopes[settings.scope];
  slider.max = sparsities.length - 1;
}

function writeUrl() {
  const params = new URLSearchParams();
  for (const key of HEAVY_KEYS) params.set(key, data.settings[key]);
  params.set("s", +(100 * data.sparsities[index]).toFixed(1));
  params.set("layer", layer + 1);
  writeQuery(params);
}

function drawStatic() {
  // Accuracy is plotted against the share of weights kept, on a log axis, as Frankle & Carbin do:
  // the interesting part is the last few percent.
  const kept = data.remaining.map((n) => (100 * n) / data.total_weights);
  const line = (key, name) => ({
    x: kept, y: data[key].map((a) => 100 * a), mode: "lines+markers", name,
    line: { color: COLORS[key], width: 2.5 }, marker: { size: 7 },
    customdata: data.sparsities.map((s) => 100 * s),
    hovertemplate: `${name}<br>%{customdata:.0f} % removed: %{y:.1f} %<extra></extra>`,
  });
  const traces = [
    line("ticket", "lottery ticket"),
    line("random", "random mask"),
    line("pruned", "pruned, no retraining"),
    { x: [Math.min(...kept), 100], y: [100 * data.dense_accuracy, 100 * data.dense_accuracy],
      mode: "lines", name: "dense network", line: { color: COLORS.dense, dash: "dash" },
      hoverinfo: "skip" },
  ];
  react("accuracy-chart", traces, {
    shapes: chosenRing(),
    margin: { l: 60, r: 10, t: 10, b: 50 },
    legend: { orientation: "h", y: -0.25 },
    xaxis: { title: { text: "weights kept (% of all weights, log scale)" }, type: "log",
             autorange: "reversed", tickvals: kept, ticktext: kept.map((k) => `${+k.toFixed(1)}`) },
    yaxis: { title: { text: "test accuracy (%)" }, range: [0, 105] },
  }, PLOT_CONFIG);

  const pts = data.train_points;
  react("data-chart", [0, 1, 2].map((c) => {
    const idx = pts.label.map((l, i) => (l === c ? i : -1)).filter((i) => i >= 0);
    return { x: idx.map((i) => pts.x[i]), y: idx.map((i) => pts.y[i]), mode: "markers",
             name: `class ${c + 1}`, marker: { size: 6, color: CLASS_COLORS[c] },
             hovertemplate: `class ${c + 1}: (%{x}, %{y})<extra></extra>` };
  }), {
    margin: { l: 50, r: 10, t: 10, b: 45 },
    legend: { orientation: "h", y: -0.2 },
    xaxis: { title: { text: "x₁ (no unit)" }, zeroline: false },
    yaxis: { title: { text: "x₂ (no unit)" }, scaleanchor: "x", zeroline: false },
  }, PLOT_CONFIG);
}

// The chosen sparsity on the lottery-ticket curve (the slider moves only this ring).
function chosenRing() {
  const kept = (100 * data.remaining[index]) / data.total_weights;
  return [ring(kept, 100 * data.ticket[index], { radius: 8, color: "#111" })];
}

function drawIndex() {
  const i = index;
  moveShapes("accuracy-chart", chosenRing());

  const mask = data.masks[i][layer];
  const w0 = data.initial_weights[layer];
  const z = mask.map((row, r) => row.map((keep, c) => (keep ? w0[r][c] : null)));
  const limit = Math.max(...w0.flat().map(Math.abs));
  const [fanIn, fanOut] = data.layers[layer].shape;
  // The layer's shape and colour scale stay as the sparsity moves: only the pixels change.
  redrawHeatmap("mask-chart", z, `${layer}|${limit}|${fanIn}|${fanOut}`, () => react("mask-chart", [{
    type: "heatmap", z, zmin: -limit, zmax: limit, zmid: 0, colorscale: "RdBu", hoverongaps: false,
    colorbar: { thickness: 10, title: { text: "θ₀", side: "right" } },
    hovertemplate: "input %{y} → output %{x}: θ₀ = %{z}<extra></extra>",
  }], {
    margin: { l: 55, r: 10, t: 10, b: 45 },
    plot_bgcolor: "#f4f5f8",
    xaxis: { title: { text: `output unit (of ${fanOut})` }, zeroline: false,
             dtick: fanOut <= 4 ? 1 : undefined },
    // No square cells: the 2 × 32 input layer would shrink to a sliver.
    yaxis: { title: { text: `input unit (of ${fanIn})` }, autorange: "reversed", zeroline: false,
             dtick: fanIn <= 4 ? 1 : undefined },
  }, PLOT_CONFIG));

  const layerKept = mask.flat().filter(Boolean).length;
  $("sparsity-value").textContent = sparsityText(data.sparsities[i]);
  $("kept").textContent = `${fmtInt(data.remaining[i])} of ${fmtInt(data.total_weights)}` +
    ` (this layer: ${fmtInt(layerKept)} of ${fmtInt(fanIn * fanOut)})`;
  $("acc-dense").textContent = pct(data.dense_accuracy);
  $("acc-pruned").textContent = pct(data.pruned[i]);
  $("acc-ticket").textContent = pct(data.ticket[i]);
  $("acc-random").textContent = pct(data.random[i]);
}

function drawSummary() {
  const tol = `${+(100 * data.match_tolerance).toFixed(1)} point`;
  const t = data.ticket_matches_up_to;
  const r = data.random_matches_up_to;
  const keptShare = (s) => sparsityText(1 - s);
  let text = `Measured on this run: the ticket stays within ${tol} of the dense network up to ` +
    `${sparsityText(t)} removed (${keptShare(t)} of the weights kept); the random mask up to ` +
    `${sparsityText(r)}. `;
  const ahead = data.ticket_ahead_at;
  if (t > r) {
    text += "The ticket survives sparser than chance: the mask plus its initial values matter.";
  } else if (ahead.length) {
    const i = data.sparsities.indexOf(ahead[0]);
    text += `Past that the ticket still keeps more accuracy than the random mask (at ${sparsityText(ahead[0])} ` +
      `removed: ${pct(data.ticket[i])} against ${pct(data.random[i])}), but neither matches the dense network.`;
  } else {
    text += "Here the random mask does as well as the ticket: on this run the small net does not show the lottery effect.";
  }
  $("verdict").textContent = text;
  $("source-vgg").textContent = sparsityText(data.source_facts.vgg19_pruned);
  $("source-share").textContent =
    `${fmtInt(data.source_facts.ticket_weights)} of ${fmtInt(data.source_facts.dense_weights)} ` +
    `(${sparsityText(data.source_facts.ticket_share)})`;
  $("net-params").textContent = fmtInt(data.network.params);
  $("net-sizes").textContent = data.network.sizes.join(" → ");
}

function nearestIndex(percent) {
  let best = 0;
  data.sparsities.forEach((s, i) => {
    if (Math.abs(100 * s - percent) < Math.abs(100 * data.sparsities[best] - percent)) best = i;
  });
  return best;
}

function show(body, wanted) {
  data = body;
  syncControls();
  index = Number.isFinite(wanted.s) ? nearestIndex(wanted.s) : Math.min(index, data.sparsities.length - 1);
  const wantedLayer = Number.isInteger(wanted.layer) ? wanted.layer : layer;
  layer = Math.min(Math.max(wantedLayer, 0), data.layers.length - 1);
  slider.value = index;
  layerSelect.value = String(layer);
  drawStatic();
  drawIndex();
  drawSummary();
  writeUrl();
  root.dataset.ready = "1";
}

async function reload() {
  try {
    const body = await fetchData(paramsFromForm());
    if (body) {
      showError("");
      show(body, {});
    }
  } catch (err) {
    showError(err.message);
  }
}

async function start() {
  const query = readQuery();
  const params = new URLSearchParams();
  for (const key of HEAVY_KEYS) if (query.has(key)) params.set(key, query.get(key));
  const wanted = {
    s: query.has("s") ? Number(query.get("s")) : 90,
    layer: query.has("layer") ? Number(query.get("layer")) - 1 : undefined,
  };
  try {
    const body = await fetchData(params);
    if (body) show(body, wanted);
  } catch (err) {
    const body = await fetchData(new URLSearchParams()).catch(() => null);
    if (body) show(body, wanted);
    showError(`The link's settings were not accepted (${err.message}); showing the defaults.`);
  }
}

for (const key of HEAVY_KEYS) inputs[key].addEventListener("change", reload);
$("new-seed").addEventListener("click", () => {
  const seed = Number(inputs.seed.value);
  inputs.seed.value = Number.isInteger(seed) && seed < Number(inputs.seed.max) ? seed + 1 : 0;
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
  drawEachStep();
});
layerSelect.addEventListener("change", () => {
  if (!data) return;
  layer = Number(layerSelect.value);
  drawIndex();
  writeUrl();
});

start();
