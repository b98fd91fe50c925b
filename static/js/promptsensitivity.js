// P4 Prompt sensitivity and contextual calibration. One request brings every format
// combination's exact prompt and token count, and the calibration arithmetic for every slider
// setting (computed in Python); the controls only index it. A new query review fetches once.
// The state lives in the query string.
import { $, ACCENT, PLOT_CONFIG, drawEachFrame, errorBox, readQuery, writeQuery } from "./lab.js";
import { latestFetcher, react } from "./playground.js";
import { fmtInt } from "./format.js";

const showError = errorBox("sens-error");
const root = document.getElementById("sens-root");
const ORANGE = "#e07b2a";
const MUTED = "#9aa3b2";
const f4 = (x) => Number(x).toFixed(4);
const f2 = (x) => Number(x).toFixed(2);

const CHOICES = ["labels", "separator", "instruction", "ordering"];
const selects = Object.fromEntries(CHOICES.map((c) => [c, $(`${c}-select`)]));
const rawSlider = $("raw-slider");
const biasSlider = $("bias-slider");
const queryInput = $("query-input");
let data = null;
const state = { labels: null, separator: null, instruction: null, ordering: null, raw: 0, bias: 0 };
const fetchLatest = latestFetcher(root);

const cal = () => data.calibration;
const key = () => CHOICES.map((c) => state[c]).join("|");

function writeUrl() {
  const p = new URLSearchParams(Object.fromEntries(CHOICES.map((c) => [c, state[c]])));
  p.set("raw", f2(cal().raw[state.raw]));
  p.set("bias", f2(cal().bias[state.bias]));
  if (data.query !== data.default_query) p.set("query", data.query);
  writeQuery(p);
}

function nearest(list, value) {
  let best = 0;
  list.forEach((v, i) => { if (Math.abs(v - value) < Math.abs(list[best] - value)) best = i; });
  return best;
}

function readUrl(q) {
  for (const c of CHOICES) {
    state[c] = q.get(c) in data.choices[c] ? q.get(c) : (state[c] ?? data.defaults[c]);
  }
  const raw = parseFloat(q.get("raw"));
  const bias = parseFloat(q.get("bias"));
  state.raw = nearest(cal().raw, Number.isFinite(raw) ? raw : cal().defaults.raw);
  state.bias = nearest(cal().bias, Number.isFinite(bias) ? bias : cal().defaults.bias);
}

function syncControls() {
  for (const c of CHOICES) {
    if (!selects[c].options.length) {
      for (const [value, label] of Object.entries(data.choices[c])) selects[c].add(new Option(label, value));
    }
    selects[c].value = state[c];
  }
  rawSlider.max = cal().raw.length - 1;
  biasSlider.max = cal().bias.length - 1;
  rawSlider.value = state.raw;
  biasSlider.value = state.bias;
  queryInput.maxLength = data.query_max_chars;
  queryInput.value = data.query;
}

function fillStatic() {
  $("tokenizer-note").textContent = data.tokenizer_note;
  $("real-prompt").textContent = cal().real_prompt;
  $("free-prompt").textContent = cal().content_free_prompt;
  const counts = Object.values(data.formats).map((f) => f.tokens);
  $("format-range").textContent = `${Math.min(...counts)} / ${Math.max(...counts)}`;
  const rows = [...data.reported].reverse();
  const sst = data.sst2;
  const range = (r) => (r.low === null ? `up to ${r.high}` : r.low === r.high ? `${r.high}` : `${r.low}–${r.high}`);
  const formats = rows.filter((r) => !r.key.startsWith("spread"));
  const spreads = rows.filter((r) => r.key.startsWith("spread"));
  const bars = (list, name, color) => ({
    type: "bar", orientation: "h", name, y: list.map((r) => r.label),
    // A single figure (low = high) is a spread from zero; a range starts at its lower figure.
    base: list.map((r) => (r.low === r.high ? 0 : r.low ?? 0)), x: list.map((r) => (r.low === r.high ? r.high : r.high - (r.low ?? 0))),
    marker: { color, line: { color, width: 1 } }, text: list.map(range), textposition: "outside", cliponaxis: false,
    customdata: list.map((r) => r.source), hovertemplate: "%{y}: %{text} points<br>%{customdata}<extra></extra>",
  });
  const traces = [
    bars(spreads, "spread across formats (Zhao et al.)", MUTED),
    { type: "bar", orientation: "h", name: `SST-2 reordered: ${sst.rows[0].low}% → ${sst.rows[1].high}%`,
      y: ["SST-2 reordered"], x: [sst.spread], base: [0], marker: { color: ACCENT },
      text: [`${sst.spread}`], textposition: "outside", cliponaxis: false,
      hovertemplate: `worst ${sst.rows[0].low}%, best ${sst.rows[1].high}%: a ${sst.spread}-point spread<extra>${sst.rows[0].source}</extra>` },
    bars(formats, "one format choice (the lecture's table)", ORANGE),
  ];
  react("reported-chart", traces, {
    barmode: "overlay", margin: { l: 10, r: 10, t: 10, b: 50 },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    xaxis: { title: { text: "swing (percentage points)" }, rangemode: "tozero",
      range: [0, Math.max(...rows.map((r) => r.high), sst.spread) * 1.35] },
    yaxis: { automargin: true },
  }, PLOT_CONFIG);
  const sources = [...new Set([...data.reported, ...sst.rows].map((r) => r.source))];
  $("reported-source").textContent = `Reported results, not the lab's measurements: ${sources.join("; ")}. `
    + `Zhao et al.'s SST-2 spread is ${sst.rows[0].low}% to ${sst.rows[1].high}% accuracy, ${sst.spread} points: within the table's “up to ${data.reported.find((r) => r.key === "ordering").high}”. `
    + "A range bar starts at the lower figure the source gives (at 0 where it says only “up to”). The grey rows are the spread across formats before and after calibration.";
  const s = cal().worked_example;
  $("source-note").innerHTML = "";
  const strong = document.createElement("strong");
  strong.textContent = "The lecture's worked example, recomputed. ";
  $("source-note").append(strong, `Raw ${s.raw} / ${s.raw_neg}, content-free ${s.bias} / ${s.bias_neg}: `
    + `${s.raw} ÷ ${s.bias} = ${f4(s.divided[0])} and ${s.raw_neg} ÷ ${s.bias_neg} = ${f4(s.divided[1])}, sum ${f4(s.total)}, `
    + `so ${f4(s.calibrated[0])} / ${f4(s.calibrated[1])}. The lecture prints ${s.source_says} / ${s.source_says_neg}, which this arithmetic does not give.`);
}

function drawFormat() {
  const f = data.formats[key()];
  $("format-prompt").textContent = f.prompt;
  $("format-tokens").textContent = fmtInt(f.tokens);
  const labels = data.orderings[state.ordering];
  $("last-label").textContent = labels[labels.length - 1];
}

function drawCalibration() {
  const c = cal();
  const i = state.bias;
  const j = state.raw;
  const raw = c.raw[j];
  const bias = c.bias[i];
  $("raw-value").textContent = f2(raw);
  $("bias-value").textContent = f2(bias);
  $("raw-pos").textContent = f2(raw);
  $("raw-neg").textContent = f2(c.raw_neg[j]);
  $("bias-pos").textContent = f2(bias);
  $("bias-neg").textContent = f2(c.bias_neg[i]);
  $("div-pos").textContent = `${f2(raw)} ÷ ${f2(bias)} = ${f4(c.divided_pos[i][j])}`;
  $("div-neg").textContent = `${f2(c.raw_neg[j])} ÷ ${f2(c.bias_neg[i])} = ${f4(c.divided_neg[i][j])}`;
  $("total").textContent = f4(c.total[i][j]);
  const calPos = c.calibrated_pos[i][j];
  $("cal-pos").textContent = f4(calPos);
  $("cal-neg").textContent = f4(c.calibrated_neg[i][j]);
  const before = raw > 0.5 ? "Positive" : raw < 0.5 ? "Negative" : "a tie";
  const after = calPos > 0.5 ? "Positive" : calPos < 0.5 ? "Negative" : "a tie";
  $("decision").innerHTML = "";
  const span = document.createElement("span");
  span.textContent = before === after ? `The answer stays ${after}.` : `The answer flips from ${before} to ${after}.`;
  span.className = before === after ? "" : "flip";
  $("decision").append(span, ` After calibration the answer is Positive exactly when the raw p(Positive) is above ${f2(bias)}, the content-free value, instead of above one half.`);
  react("calibration-chart", [
    { x: c.raw, y: c.raw, mode: "lines", name: "no calibration", line: { color: MUTED, dash: "dash" },
      hovertemplate: "raw %{x}<extra>no calibration</extra>" },
    { x: c.raw, y: c.calibrated_pos[i], mode: "lines", name: `calibrated, content-free p = ${f2(bias)}`,
      line: { color: ORANGE, width: 3 }, hovertemplate: "raw %{x} → calibrated %{y}<extra></extra>" },
    { x: [raw], y: [calPos], mode: "markers", name: "this setting",
      marker: { color: ACCENT, size: 12 }, hovertemplate: "raw %{x} → calibrated %{y}<extra></extra>" },
  ], {
    margin: { l: 60, r: 10, t: 10, b: 50 },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    xaxis: { title: { text: "raw p(Positive) on the review" }, range: [0, 1] },
    yaxis: { title: { text: "calibrated p(Positive)" }, range: [0, 1] },
    shapes: [{ type: "line", x0: bias, x1: bias, y0: 0, y1: 1, line: { color: ACCENT, dash: "dot", width: 1 } }],
    annotations: [{ x: bias, y: 0, text: " new threshold ", showarrow: false, yanchor: "bottom",
      xanchor: bias > 0.5 ? "right" : "left", font: { size: 11, color: ACCENT } }],
  }, PLOT_CONFIG);
}

function show(body, q) {
  data = body;
  readUrl(q);
  syncControls();
  fillStatic();
  drawFormat();
  drawCalibration();
  writeUrl();
  root.dataset.ready = "1";
}

function apiUrl(query) {
  const p = new URLSearchParams();
  if (query !== null && query !== undefined) p.set("query", query);
  return `${root.dataset.apiUrl}?${p}`;
}

async function start() {
  const q = readQuery();
  try {
    const body = await fetchLatest(apiUrl(q.get("query")));
    if (body) show(body, q);
  } catch (err) {
    const body = await fetchLatest(apiUrl(null)).catch(() => null);
    if (body) show(body, q);
    showError(`The link's review was not accepted (${err.message}); showing the default one.`);
  }
}

async function newQuery() {
  try {
    const body = await fetchLatest(apiUrl(queryInput.value));
    if (body) { showError(""); show(body, readQuery()); }
  } catch (err) {
    showError(err.message);
  }
}

for (const c of CHOICES) {
  selects[c].addEventListener("change", () => {
    if (!data) return;
    state[c] = selects[c].value;
    drawFormat();
    writeUrl();
  });
}
for (const [slider, name] of [[rawSlider, "raw"], [biasSlider, "bias"]]) {
  // A drag redraws at most once a frame, with the slider's latest value.
  const drawEachStep = drawEachFrame(() => {
    drawCalibration();
    writeUrl();
  });
  slider.addEventListener("input", () => {
    if (!data) return;
    state[name] = Number(slider.value);
    drawEachStep();
  });
}
$("source-example").addEventListener("click", () => {
  if (!data) return;
  const s = cal().worked_example;
  state.raw = nearest(cal().raw, s.raw);
  state.bias = nearest(cal().bias, s.bias);
  syncControls();
  drawCalibration();
  writeUrl();
});
queryInput.addEventListener("change", () => { if (data && queryInput.value !== data.query) newQuery(); });

start();
