// P12 Zero start. The server trains every option (scaling × start × rank) for every step once per
// (α, learning rate, seed); the step slider and the radio buttons only index that response.
// State lives in the query string.
import { $, ACCENT, BAD, GOOD, PLOT_CONFIG, WARN, drawEachFrame, errorBox, getJson, readQuery, writeQuery } from "./lab.js";
import { moveShapes, react, redrawHeatmap, ring } from "./playground.js";

const showError = errorBox("zero-error");
const root = document.getElementById("zero-root");
// Its fields redraw as they change: Enter in one must not submit the form (a reload). Here, not
// in an onsubmit attribute: the Content-Security-Policy allows no inline script.
$("problem-form").addEventListener("submit", (event) => event.preventDefault());
const stepSlider = $("step-slider");
const inputs = { alpha: $("alpha-input"), lr: $("lr-input"), seed: $("seed-input") };
const INIT_COLOURS = { lora: ACCENT, both_zero: BAD, both_random: WARN };
const SCALING_COLOURS = { alpha_over_r: ACCENT, alpha: "#9aa3b2" };
const fmt = (x) => (x === 0 ? "0 (exactly)" : x.toPrecision(4));

let data = null;
const state = { init: "lora", r: 4, scaling: "alpha_over_r", step: 10 };
let requestSeq = 0;

async function fetchRuns(params) {
  const seq = ++requestSeq;
  root.dataset.loading = "1";
  try {
    const body = await getJson(`${root.dataset.apiUrl}?${params}`);
    return seq === requestSeq ? body : null;
  } finally {
    if (seq === requestSeq) root.dataset.loading = "0";
  }
}

function writeUrl() {
  const s = data.settings;
  const params = new URLSearchParams({ alpha: s.alpha, lr: s.lr, seed: s.seed, init: state.init,
                                       r: state.r, scaling: state.scaling, step: state.step });
  writeQuery(params);
}

function radios(fieldId, name, options, current, onChange) {
  const field = $(fieldId);
  field.querySelectorAll("label").forEach((l) => l.remove());
  for (const [value, text] of options) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio";
    input.name = name;
    input.value = value;
    input.id = `${name}-${value}`;
    input.checked = String(value) === String(current);
    input.addEventListener("change", () => onChange(value));
    label.append(input, text);
    field.append(label);
  }
}

const trajectory = (scaling, init, r) => data.trajectories[scaling][init][String(r)];
const steps = () => Array.from({ length: data.steps + 1 }, (_, i) => i);

// The current step on the chosen initialisation's line: a dot that the step slider moves.
const stepDot = (key) => {
  const colour = INIT_COLOURS[state.init];
  return [ring(state.step, trajectory(state.scaling, state.init, state.r)[key][state.step],
    { radius: 6, fill: colour, color: colour, width: 1 })];
};

function lineChart(id, key, yTitle, extra = []) {
  const xs = steps();
  const traces = Object.entries(data.inits).map(([init, label]) => ({
    x: xs, y: trajectory(state.scaling, init, state.r)[key], mode: "lines", name: label,
    line: { color: INIT_COLOURS[init], width: init === state.init ? 3.5 : 1.5,
            dash: init === "both_zero" ? "dot" : "solid" },
    hovertemplate: `${label}, step %{x}: %{y:.4g}<extra></extra>`,
  }));
  react(id, [...traces, ...extra], {
    shapes: stepDot(key),
    margin: { l: 55, r: 10, t: 10, b: 45 },
    height: 380,
    legend: { orientation: "h", x: 0, y: -0.22, yanchor: "top", font: { size: 11 } },
    xaxis: { title: { text: "optimiser step", standoff: 4 } },
    yaxis: { title: { text: yTitle }, rangemode: "tozero" },
  }, PLOT_CONFIG);
}

function moveMarker(id, key) {
  moveShapes(id, stepDot(key));
}

// The same shape and colour scale at every step: a step redraws only the pixels.
function heatmap(id, z, limit) {
  redrawHeatmap(id, z, limit, () => react(id, [{
    type: "heatmap", z, zmin: -limit, zmax: limit, zmid: 0, colorscale: "RdBu",
    colorbar: { thickness: 8 }, hovertemplate: "row %{y}, column %{x}: %{z}<extra></extra>",
  }], {
    margin: { l: 40, r: 5, t: 5, b: 40 },
    xaxis: { title: { text: "column" }, constrain: "domain" },
    yaxis: { title: { text: "row" }, autorange: "reversed", scaleanchor: "x", constrain: "domain" },
  }, PLOT_CONFIG));
}

const targetLimit = () => Math.max(...data.target.flat().map(Math.abs));

// What depends on the step: the fitted update, the bars of ‖ΔW‖ by rank and the readouts.
function drawStep() {
  const t = trajectory(state.scaling, state.init, state.r);
  const i = state.step;
  heatmap("heat-delta", trajectory("alpha_over_r", state.init, state.r).delta[i], targetLimit());
  react("ranks-chart", Object.entries(data.scalings).map(([scaling, label]) => ({
    type: "bar", name: `s = ${label}`, x: data.ranks.map((r) => `r = ${r}`),
    y: data.ranks.map((r) => trajectory(scaling, "lora", r).norm[i]),
    marker: { color: SCALING_COLOURS[scaling] },
    hovertemplate: `${label}, %{x}: ‖ΔW‖ = %{y:.4g}<extra></extra>`,
  })), {
    barmode: "group",
    margin: { l: 55, r: 10, t: 10, b: 45 },
    legend: { orientation: "h", y: 1.15 },
    xaxis: { title: { text: "rank (start: A random, B = 0)" } },
    yaxis: { title: { text: `‖ΔW‖ at step ${i}` }, rangemode: "tozero" },
  }, PLOT_CONFIG);

  $("step-value").textContent = i;
  $("norm").textContent = fmt(t.norm[i]);
  $("loss").textContent = fmt(t.loss[i]);
  $("grad-a").textContent = fmt(t.grad_A[i]);
  $("grad-b").textContent = fmt(t.grad_B[i]);
  writeUrl();
}

// Everything: on a new response or option. The lines and the target do not depend on the step.
function draw() {
  lineChart("norm-chart", "norm", "‖ΔW‖ (Frobenius)", [{
    x: [0, data.steps], y: [data.target_norm, data.target_norm], mode: "lines", name: "‖ΔW*‖",
    line: { color: GOOD, dash: "dash", width: 1.5 }, hoverinfo: "skip",
  }]);
  lineChart("loss-chart", "loss", "loss ½‖ΔW − ΔW*‖²");
  heatmap("heat-target", data.target, targetLimit());
  $("scale").textContent = String(data.scale[state.scaling][data.ranks.indexOf(state.r)]);
  $("target-rank").textContent = data.target_rank;
  drawStep();
}

// A step moves the markers along the lines and redraws what depends on the step, nothing else.
function step() {
  moveMarker("norm-chart", "norm");
  moveMarker("loss-chart", "loss");
  drawStep();
}

function show(body) {
  data = body;
  for (const key of Object.keys(inputs)) {
    inputs[key].min = data.limits[key][0];
    inputs[key].max = data.limits[key][1];
    inputs[key].value = data.settings[key];
  }
  stepSlider.max = data.steps;
  if (!(state.init in data.inits)) state.init = "lora";
  if (!(state.scaling in data.scalings)) state.scaling = "alpha_over_r";
  if (!data.ranks.includes(state.r)) state.r = data.ranks[Math.min(2, data.ranks.length - 1)];
  state.step = Math.min(Math.max(Number.isInteger(state.step) ? state.step : 0, 0), data.steps);
  stepSlider.value = state.step;
  const redraw = (key) => (value) => { state[key] = value; draw(); };
  radios("init-field", "init", Object.entries(data.inits), state.init, redraw("init"));
  radios("rank-field", "rank", data.ranks.map((r) => [r, String(r)]), state.r, redraw("r"));
  radios("scaling-field", "scaling", Object.entries(data.scalings), state.scaling, redraw("scaling"));
  draw();
  root.dataset.ready = "1";
}

async function reload() {
  const params = new URLSearchParams();
  for (const [key, input] of Object.entries(inputs)) params.set(key, input.value.trim());
  // A change event with nothing changed (a blur after a programmatic update) must not fetch: its
  // late answer would overwrite what the user is typing in another field.
  if (data && Object.keys(inputs).every((k) => Number(params.get(k)) === data.settings[k])) return;
  try {
    const body = await fetchRuns(params);
    if (body) {
      showError("");
      show(body);
    }
  } catch (err) {
    showError(err.message);
  }
}

async function start() {
  const q = readQuery();
  const params = new URLSearchParams();
  for (const key of Object.keys(inputs)) if (q.has(key)) params.set(key, q.get(key));
  if (q.has("init")) state.init = q.get("init");
  if (q.has("scaling")) state.scaling = q.get("scaling");
  if (q.has("r")) state.r = Number(q.get("r"));
  if (q.has("step")) state.step = Number(q.get("step"));
  try {
    const body = await fetchRuns(params);
    if (body) show(body);
  } catch (err) {
    const body = await fetchRuns(new URLSearchParams()).catch(() => null);
    if (body) show(body);
    showError(`The link's settings were not accepted (${err.message}); showing the defaults.`);
  }
}

// A drag redraws at most once a frame, with the slider's latest value.
const stepEachFrame = drawEachFrame(step);
stepSlider.addEventListener("input", () => {
  state.step = Number(stepSlider.value);
  stepEachFrame();
});
for (const input of Object.values(inputs)) input.addEventListener("change", reload);

start();
