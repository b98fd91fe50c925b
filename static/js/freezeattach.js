// P20 Freeze, attach, merge. One request brings the counts for every d × r on the sliders; the
// animation and the sliders only index into it. The state (step, d, r) lives in the query string.
import { $, ACCENT, PLOT_CONFIG, drawEachFrame, errorBox, indexOfValue, readQuery, writeQuery } from "./lab.js";
import { latestFetcher, moveShapes, react, ring } from "./playground.js";
import { fmtInt, fmtSize } from "./format.js";

const showError = errorBox("fam-error");
const root = document.getElementById("fam-root");
const FROZEN = "#9aa3b2";
const TRAINED = "#e07b2a";
const MERGED = "#8a5bd9";
const SVG_NS = "http://www.w3.org/2000/svg";
const fmtPct = (x) => `${(100 * x).toPrecision(3)} %`;
const STEPS = 5;
const PLAY_MS = 2800;

const stepSlider = $("step-slider");
const dSlider = $("d-slider");
const rSlider = $("r-slider");
const playButton = $("play");
let data = null;
let timer = null;
const state = { step: 1, d: 0, r: 0 };

// Diagram geometry (SVG user units): W is SIDE × SIDE; vectors and A, B are scaled to it.
const SIDE = 180;
const TOP = 40;
const MID = TOP + SIDE / 2;
const LOW = 360; // the side path's centre line
const VIEW = { w: 600, h: 536 };
const X_COL = 20;
const W_X = 110;
const B_X = 360;
const PLUS = { x: 470, r: 16 };
const H_X = 560;
const VEC_W = 18;
const MIN_THIN = 3;
const COUNTER = { x: W_X, y: 462, w: 470, h: 16 };

function el(name, attrs = {}, parent = null, text = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

const parts = {};

function buildDiagram() {
  const svg = el("svg", { viewBox: `0 0 ${VIEW.w} ${VIEW.h}`, "aria-hidden": "true" });
  const defs = el("defs", {}, svg);
  const marker = el("marker", { id: "fam-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
  el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#333" }, marker);
  const line = (d, cls = "") => el("path", { d, fill: "none", stroke: "#333", "stroke-width": 2,
    "marker-end": "url(#fam-arrow)", class: cls }, svg);

  // Input and output vectors.
  el("rect", { x: X_COL, y: TOP, width: VEC_W, height: SIDE, fill: ACCENT, opacity: 0.8 }, svg);
  el("text", { x: X_COL - 4, y: TOP - 10 }, svg, "x (d)");
  el("rect", { x: H_X, y: TOP, width: VEC_W, height: SIDE, fill: ACCENT, opacity: 0.8 }, svg);
  el("text", { x: H_X - 4, y: TOP - 10 }, svg, "h (d)");

  // The frozen path.
  parts.topIn = line(`M ${X_COL + VEC_W} ${MID} L ${W_X - 4} ${MID}`, "flow");
  parts.topOut = line(`M ${W_X + SIDE} ${MID} L ${PLUS.x - PLUS.r - 2} ${MID}`, "flow");
  line(`M ${PLUS.x + PLUS.r} ${MID} L ${H_X - 4} ${MID}`);
  parts.W = el("rect", { x: W_X, y: TOP, width: SIDE, height: SIDE, fill: FROZEN, stroke: "#333", class: "fade" }, svg);
  parts.wLabel = el("text", { x: W_X + SIDE / 2, y: MID, "text-anchor": "middle", class: "big" }, svg, "W");
  parts.wSub = el("text", { x: W_X + SIDE / 2, y: MID + 26, "text-anchor": "middle" }, svg, "");
  el("circle", { cx: PLUS.x, cy: MID, r: PLUS.r, fill: "#fff", stroke: "#333", "stroke-width": 2 }, svg);
  el("text", { x: PLUS.x, y: MID + 6, "text-anchor": "middle", class: "big" }, svg, "+");

  // The padlock on W's corner.
  parts.lock = el("g", { class: "fade", transform: `translate(${W_X + SIDE - 22} ${TOP - 30})` }, svg);
  el("path", { d: "M 6 18 V 10 A 10 10 0 0 1 26 10 V 18", fill: "none", stroke: "#333", "stroke-width": 4 }, parts.lock);
  el("rect", { x: 0, y: 16, width: 32, height: 24, rx: 4, fill: "#f2c14e", stroke: "#333", "stroke-width": 2 }, parts.lock);
  el("circle", { cx: 16, cy: 27, r: 3, fill: "#333" }, parts.lock);

  // The side-car: A (r × d) and B (d × r), with the paths through them.
  parts.car = el("g", { class: "fade" }, svg);
  parts.lowIn = el("path", { d: `M ${X_COL + VEC_W / 2} ${TOP + SIDE} V ${LOW} H ${W_X - 4}`, fill: "none",
    stroke: "#333", "stroke-width": 2, "marker-end": "url(#fam-arrow)", class: "flow" }, parts.car);
  parts.A = el("rect", { x: W_X, width: SIDE, fill: TRAINED, stroke: "#333" }, parts.car);
  parts.aLabel = el("text", { x: W_X, y: LOW - 16 }, parts.car, "");
  parts.mid = el("path", { fill: "none", stroke: "#333", "stroke-width": 2, "marker-end": "url(#fam-arrow)",
    class: "flow" }, parts.car);
  el("text", { x: (W_X + SIDE + B_X) / 2, y: LOW + 22, "text-anchor": "middle", class: "small" }, parts.car, "A·x");
  parts.B = el("rect", { x: B_X, y: LOW - SIDE / 2, height: SIDE, fill: TRAINED, stroke: "#333" }, parts.car);
  parts.bLabel = el("text", { x: B_X + 14, y: LOW - SIDE / 2 - 8 }, parts.car, "");
  parts.lowOut = el("path", { fill: "none", stroke: "#333", "stroke-width": 2, "marker-end": "url(#fam-arrow)",
    class: "flow" }, parts.car);
  el("text", { x: PLUS.x + 8, y: (MID + LOW) / 2 + 40, class: "small" }, parts.car, "(α/r)·B·A·x");
  // What is left after the merge.
  parts.mergedNote = el("g", { class: "fade off" }, svg);
  el("text", { x: W_X, y: TOP + SIDE + 26 }, parts.mergedNote, "W′ = W + (α/r)·B·A");
  el("text", { x: W_X, y: LOW }, parts.mergedNote, "The side path is folded into W′:");
  el("text", { x: W_X, y: LOW + 22 }, parts.mergedNote, "no extra layer to run, no added latency.");

  // The trainable-parameter counter.
  el("text", { x: COUNTER.x, y: COUNTER.y - 10 }, svg, "trainable numbers in this matrix");
  el("rect", { x: COUNTER.x, y: COUNTER.y, width: COUNTER.w, height: COUNTER.h, fill: "#eef0f5", stroke: "#ccd" }, svg);
  parts.counter = el("rect", { x: COUNTER.x, y: COUNTER.y, width: COUNTER.w, height: COUNTER.h, fill: TRAINED, class: "counter-bar" }, svg);
  parts.counterText = el("text", { x: COUNTER.x, y: COUNTER.y + COUNTER.h + 22 }, svg, "");
  parts.counterText2 = el("text", { x: COUNTER.x, y: COUNTER.y + COUNTER.h + 42, class: "small" }, svg, "");
  $("diagram").replaceChildren(svg);
}

const cur = () => ({ d: data.table.hidden[state.d], r: data.table.ranks[state.r] });
const at = (key) => data.table[key][state.d][state.r];

function drawDiagram() {
  const { d, r } = cur();
  const thin = Math.max(MIN_THIN, (SIDE * r) / d);
  const s = state.step;
  parts.A.setAttribute("y", LOW - thin / 2);
  parts.A.setAttribute("height", thin);
  parts.B.setAttribute("width", thin);
  parts.mid.setAttribute("d", `M ${W_X + SIDE} ${LOW} L ${B_X - 4} ${LOW}`);
  parts.lowOut.setAttribute("d", `M ${B_X + thin} ${LOW} H ${PLUS.x} V ${MID + PLUS.r + 4}`);
  parts.aLabel.textContent = `A: ${fmtInt(r)} × ${fmtInt(d)}${s === 2 ? " (random)" : ""}`;
  parts.bLabel.textContent = `B: ${fmtInt(d)} × ${fmtInt(r)}${s === 2 ? " (all zeros)" : ""}`;
  parts.wSub.textContent = `${fmtInt(d)} × ${fmtInt(d)}${s === 5 ? "" : ", frozen"}`;
  parts.mergedNote.classList.toggle("off", s !== 5);
  parts.wLabel.textContent = s === 5 ? "W′" : "W";
  parts.W.setAttribute("fill", s === 5 ? MERGED : FROZEN);
  parts.W.setAttribute("fill-opacity", s === 5 ? 0.55 : 1);
  parts.lock.classList.toggle("off", s === 5);
  // The side-car appears at step 2, slides into W and vanishes at step 5.
  parts.car.classList.toggle("off", s < 2 || s === 5);
  parts.car.style.transform = s === 5 ? `translateY(${TOP + SIDE / 2 - LOW}px)` : "";
  parts.B.setAttribute("fill", s === 2 ? "#fff" : TRAINED);
  for (const p of [parts.topIn, parts.topOut]) p.classList.toggle("flowing", s >= 3);
  for (const p of [parts.lowIn, parts.mid, parts.lowOut]) p.classList.toggle("flowing", s === 3 || s === 4);
  // The counter: d² until step 4, then 2·d·r (scaled; at least a sliver).
  const share = at("share");
  const collapsed = s >= 4;
  parts.counter.style.transform = `scaleX(${collapsed ? Math.max(share, 0.004) : 1})`;
  parts.counter.setAttribute("fill", collapsed ? TRAINED : FROZEN);
  const full = fmtInt(data.table.full[state.d]);
  parts.counterText.textContent = collapsed
    ? `2·d·r = ${fmtInt(at("lora"))} trained, ${fmtPct(share)} of d² = ${full}`
    : `full fine-tuning would train all d² = ${full}`;
  parts.counterText2.textContent = s === 5 ? "merged: W′ serves d² weights, exactly as W did" : "";
}

function stepText() {
  const items = [...$("step-list").children];
  items.forEach((li, i) => li.classList.toggle("current", i + 1 === state.step));
  const li = items[state.step - 1];
  $("step-title").textContent = `Step ${state.step} of ${STEPS}: ${li.querySelector("strong").textContent.replace(".", "")}`;
  const { d, r } = cur();
  const extra = {
    1: `W holds ${fmtInt(data.table.full[state.d])} pretrained numbers; none of them will change.`,
    2: `A has ${fmtInt(at("factor"))} random entries and B ${fmtInt(at("factor"))} zeros, so B·A = 0 to start.`,
    3: `The side path narrows ${fmtInt(d)} numbers to ${fmtInt(r)} and widens them back.`,
    4: `${fmtInt(at("lora"))} trainable numbers instead of ${fmtInt(data.table.full[state.d])}: ${fmtInt(Math.round(at("fewer")))} times fewer.`,
    5: `The merged matrix has ${fmtInt(data.table.full[state.d])} entries, as W had: no extra layer, no extra latency.`,
  }[state.step];
  $("step-caption").textContent = `${li.textContent.replace(/\s+/g, " ").trim()} ${extra}`;
}

function drawReadouts() {
  const { d, r } = cur();
  const t = data.table;
  $("step-value").textContent = `${state.step} / ${STEPS}`;
  $("d-value").textContent = fmtInt(d);
  $("r-value").textContent = fmtInt(r);
  $("full-count").textContent = fmtInt(t.full[state.d]);
  $("lora-count").textContent = fmtInt(at("lora"));
  $("share").textContent = fmtPct(at("share"));
  $("fewer").textContent = `${fmtInt(Math.round(at("fewer") * 10) / 10)}×`;
  $("full-bytes").textContent = fmtSize(t.full_bytes[state.d]);
  $("lora-bytes").textContent = fmtSize(at("lora_bytes"));
  $("break-even").textContent = fmtInt(t.break_even[state.d]);
}

// The chosen rank on the curve: the r slider moves only this ring.
function countRing() {
  return [ring(cur().r, at("lora"))];
}

function drawChart() {
  const t = data.table;
  const { d } = cur();
  const ranks = t.ranks.filter((_, j) => t.lora[state.d][j] !== null);
  const counts = t.lora[state.d].filter((v) => v !== null);
  react("count-chart", [
    { x: ranks, y: counts, mode: "lines+markers", name: "LoRA: A and B, 2·d·r", line: { color: TRAINED, width: 3 },
      hovertemplate: "r = %{x}: %{y:,} trainable<extra>LoRA</extra>" },
    { x: [ranks[0], ranks[ranks.length - 1]], y: [t.full[state.d], t.full[state.d]], mode: "lines",
      name: "full update ΔW: d²", line: { color: FROZEN, width: 3, dash: "dash" },
      hovertemplate: "d² = %{y:,}<extra>full</extra>" },
  ], {
    shapes: countRing(),
    margin: { l: 70, r: 10, t: 10, b: 100 },
    legend: { orientation: "h", x: 0, y: -0.3, yanchor: "top" },
    xaxis: { title: { text: "rank r (log scale)" }, type: "log", tickvals: ranks },
    yaxis: { title: { text: `trainable numbers, d = ${fmtInt(d)}` }, type: "log", dtick: 1, exponentformat: "SI" },
  }, PLOT_CONFIG);
}

function drawTables() {
  $("reported-table").tBodies[0].innerHTML = data.reported.map((row) =>
    `<tr><td>${row.qualifier ? `${row.qualifier} ` : ""}${fmtInt(row.value)} ${row.unit} ${row.what}</td>`
    + `<td>${row.model}</td><td>reported by ${row.paper}, as quoted in ${row.source}</td></tr>`).join("");
  $("gpt3-name").textContent = data.gpt3.name;
  $("gpt3-layers").textContent = fmtInt(data.gpt3.layers);
  $("gpt3-total").textContent = fmtInt(data.gpt3.total);
  $("gpt3-table").tBodies[0].innerHTML = data.gpt3.rows.map((row) =>
    `<tr><td>${row.rank}</td><td class="num">${fmtInt(row.lora_params)}</td>`
    + `<td class="num">${fmtInt(Math.round(row.reduction))}×</td></tr>`).join("");
}

function writeUrl() {
  const { d, r } = cur();
  writeQuery(new URLSearchParams({ step: state.step, d, r }));
}

function readUrl() {
  const q = readQuery();
  state.d = indexOfValue(data.table.hidden, q.get("d"), data.defaults.d);
  state.r = indexOfValue(data.table.ranks, q.get("r"), data.defaults.r);
  if (data.table.lora[state.d][state.r] === null) state.r = maxR();
  const step = Number(q.get("step"));
  state.step = Number.isInteger(step) && step >= 1 && step <= STEPS ? step : 1;
}

// The largest rank index that fits d (r ≤ d).
function maxR() {
  const row = data.table.lora[state.d];
  let j = row.length - 1;
  while (row[j] === null) j -= 1;
  return j;
}

function syncControls() {
  stepSlider.min = 1;
  stepSlider.max = STEPS;
  dSlider.max = data.table.hidden.length - 1;
  rSlider.max = maxR();
  stepSlider.value = state.step;
  dSlider.value = state.d;
  rSlider.value = state.r;
}

// `chart`: "all" redraws the count chart (its curves read d), "ring" moves only its chosen-r ring,
// false leaves it (the step does not change it).
function draw({ chart = "all" } = {}) {
  drawReadouts();
  drawDiagram();
  stepText();
  if (chart === "all") drawChart();
  else if (chart === "ring") moveShapes("count-chart", countRing());
  writeUrl();
  root.dataset.ready = "1";
}

function goTo(step) {
  state.step = Math.min(Math.max(step, 1), STEPS);
  stepSlider.value = state.step;
  draw({ chart: false });
}

function stop() {
  clearInterval(timer);
  timer = null;
  playButton.textContent = "Play";
  playButton.setAttribute("aria-pressed", "false");
}

function play() {
  if (state.step === STEPS) goTo(1);
  playButton.textContent = "Pause";
  playButton.setAttribute("aria-pressed", "true");
  timer = setInterval(() => {
    goTo(state.step + 1);
    if (state.step === STEPS) stop();
  }, PLAY_MS);
}

const fetchLatest = latestFetcher(root);

async function start() {
  try {
    data = await fetchLatest(root.dataset.apiUrl);
  } catch (err) {
    showError(`Could not load the counts: ${err.message}`);
    return;
  }
  if (!data) return;
  buildDiagram();
  readUrl();
  syncControls();
  drawTables();
  draw();
}

playButton.addEventListener("click", () => { if (data) (timer ? stop() : play()); });
$("next").addEventListener("click", () => { if (data) { stop(); goTo(state.step + 1); } });
$("back").addEventListener("click", () => { if (data) { stop(); goTo(state.step - 1); } });
stepSlider.addEventListener("input", () => { if (data) { stop(); goTo(Number(stepSlider.value)); } });
// A drag redraws at most once a frame, with the slider's latest value.
const drawEachStep = drawEachFrame(() => draw());
const moveRingEachStep = drawEachFrame(() => draw({ chart: "ring" }));
dSlider.addEventListener("input", () => {
  if (!data) return;
  state.d = Number(dSlider.value);
  rSlider.max = maxR();
  state.r = Math.min(state.r, maxR());
  rSlider.value = state.r;
  drawEachStep();
});
rSlider.addEventListener("input", () => { if (data) { state.r = Number(rSlider.value); moveRingEachStep(); } });

start();
