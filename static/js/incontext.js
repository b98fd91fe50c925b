// P3 In-context learning. One request brings the prompt and its token count for every k and
// the fit for every window; the mode, k and window only index it. A new query review fetches
// once (its tokens must be counted by the server). The state lives in the query string.
import { $, ACCENT, BAD, GOOD, PLOT_CONFIG, drawEachFrame, errorBox, readQuery, writeQuery } from "./lab.js";
import { latestFetcher, react, recolourBars } from "./playground.js";
import { fmtInt } from "./format.js";

const showError = errorBox("icl-error");
const root = document.getElementById("icl-root");
const ORANGE = "#e07b2a";
const MUTED = "#9aa3b2";
const fmtParams = (n) => (n >= 1e12 ? `${n / 1e12}T` : n >= 1e9 ? `${n / 1e9}B` : `${n / 1e6}M`);

const kSlider = $("k-slider");
const windowSelect = $("window-select");
const queryInput = $("query-input");
const modeInputs = [...document.querySelectorAll('input[name="mode"]')];
let data = null;
const state = { mode: "few", k: 8, window: "gpt3" };
const fetchLatest = latestFetcher(root);

function currentK() {
  if (state.mode === "zero") return 0;
  if (state.mode === "one") return 1;
  return state.k;
}

function currentWindow() {
  return data.windows.find((w) => w.key === state.window) || data.windows[0];
}

function writeUrl() {
  const p = new URLSearchParams({ mode: state.mode, k: state.k, window: state.window });
  if (data.query !== data.default_query) p.set("query", data.query);
  writeQuery(p);
}

function readUrl(q) {
  if (["zero", "one", "few"].includes(q.get("mode"))) state.mode = q.get("mode");
  const k = Number(q.get("k"));
  const [lo, hi] = data.few_shot_range;
  if (q.has("k") && Number.isInteger(k)) state.k = Math.min(Math.max(k, lo), hi);
  if (data.windows.some((w) => w.key === q.get("window"))) state.window = q.get("window");
}

function syncControls() {
  [kSlider.min, kSlider.max] = data.few_shot_range;
  kSlider.value = state.k;
  kSlider.disabled = state.mode !== "few";
  for (const input of modeInputs) input.checked = input.value === state.mode;
  if (!windowSelect.options.length) {
    for (const w of data.windows) windowSelect.add(new Option(`${w.label}: ${fmtInt(w.size)} tokens`, w.key));
  }
  windowSelect.value = state.window;
  queryInput.maxLength = data.query_max_chars;
  queryInput.value = data.query;
}

const narrow = () => document.getElementById("budget-chart").clientWidth < 600;

function drawBudget(k, w) {
  const exampleTokens = data.tokens[k] - data.tokens[0];
  const rest = data.tokens[0] - data.query_tokens;
  const used = data.tokens[k] + data.answer_tokens;
  const free = Math.max(w.size - used, 0);
  const part = (name, x, color) => ({ type: "bar", orientation: "h", y: ["tokens"], x: [x], name,
    marker: { color }, hovertemplate: `${name}: %{x} tokens<extra></extra>` });
  const traces = [
    part("instruction and layout", rest, MUTED),
    part(`${k} example${k === 1 ? "" : "s"}`, exampleTokens, ORANGE),
    part("query", data.query_tokens, ACCENT),
    part("answer", data.answer_tokens, GOOD),
    part("free", free, "#e5e8ef"),
    // The window edge is a shape; this empty trace gives it a legend entry.
    { type: "scatter", mode: "lines", x: [null], y: [null], name: `${w.label} window: ${fmtInt(w.size)}`,
      line: { color: BAD, width: 2, dash: "dot" }, hoverinfo: "skip" },
  ];
  const top = Math.max(w.size, used);
  react("budget-chart", traces, {
    // On a phone the legend wraps to several rows: give it room above the bar.
    barmode: "stack", margin: { l: 20, r: 20, t: 10, b: 45 }, height: narrow() ? 330 : 230,
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", traceorder: "normal" },
    xaxis: { title: { text: "tokens (WordPiece)" }, range: [0, top * 1.02] },
    yaxis: { visible: false },
    shapes: [{ type: "line", x0: w.size, x1: w.size, yref: "paper", y0: 0, y1: 1, line: { color: BAD, width: 2, dash: "dot" } }],

  }, PLOT_CONFIG);
}

// The bars are the pool's prompt lengths and the line is the window: k only recolours the bars.
let responses = 0; // one more for each response shown: another pool's bars are drawn whole
function drawTokens(k, w) {
  const colours = data.ks.map((i) => (data.tokens[i] + data.answer_tokens > w.size ? BAD : i === k ? ORANGE : ACCENT));
  recolourBars("tokens-chart", [{ color: colours }], `${responses}|${w.label}|${w.size}`, () => drawTokenBars(colours, w));
  const all = data.ks[data.ks.length - 1];
  $("fit-text").textContent = w.fits === -1
    ? `${w.label} (${fmtInt(w.size)} tokens) cannot hold even the zero-shot prompt.`
    : w.fits === all
      ? `All ${all} examples of the pool fit in ${w.label}'s ${fmtInt(w.size)} tokens. At this pool's average of ${data.mean_example_tokens} tokens per example, about ${fmtInt(w.estimated_fit)} would. Red bars (if any) no longer leave room for the answer.`
      : `${w.label} (${fmtInt(w.size)} tokens, ${w.source}) holds at most ${w.fits} examples; with more, the query or the answer would be cut off. Red bars do not fit.`;
}

function drawTokenBars(colours, w) {
  const traces = [
    { x: data.ks, y: data.tokens, type: "bar", name: "prompt tokens", marker: { color: colours },
      hovertemplate: "k = %{x}: %{y} tokens<extra></extra>" },
    { x: [data.ks[0] - 0.5, data.ks[data.ks.length - 1] + 0.5], y: [w.size, w.size], mode: "lines",
      name: `${w.label} window`, line: { color: BAD, dash: "dot", width: 2 }, hoverinfo: "skip" },
  ];
  const top = Math.max(...data.tokens) + data.answer_tokens;
  return react("tokens-chart", traces, {
    margin: { l: 60, r: 10, t: 10, b: 50 },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    xaxis: { title: { text: "examples in the prompt, k" } },
    yaxis: { title: { text: "prompt length (tokens)" }, range: [0, Math.max(top, w.size) * 1.08] },
  }, PLOT_CONFIG);
}

function drawSuperglue() {
  const sg = data.superglue;
  const x = sg.rows.map((r) => r.params);
  // Ticks at powers of ten: the five sizes crowd each other on a phone; hover names each one.
  const decades = [];
  for (let e = Math.floor(Math.log10(x[0])); e <= Math.ceil(Math.log10(x[x.length - 1])); e += 1) decades.push(10 ** e);
  const width = (on) => (on ? 4 : 2);
  const traces = [
    { x, y: sg.rows.map((r) => r.zero_shot), mode: "lines+markers", name: "zero-shot",
      line: { color: MUTED, width: width(state.mode === "zero") }, marker: { size: state.mode === "zero" ? 11 : 7 },
      text: sg.rows.map((r) => `${r.model} (${fmtParams(r.params)})`), hovertemplate: "%{text}: %{y}<extra>zero-shot</extra>" },
    { x, y: sg.rows.map((r) => r.few_shot), mode: "lines+markers", name: `few-shot (${sg.shots} examples)`,
      line: { color: ORANGE, width: width(state.mode === "few") }, marker: { size: state.mode === "few" ? 11 : 7 },
      text: sg.rows.map((r) => `${r.model} (${fmtParams(r.params)})`), hovertemplate: "%{text}: %{y}<extra>few-shot</extra>" },
  ];
  react("superglue-chart", traces, {
    margin: { l: 60, r: 10, t: 10, b: 60 },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    xaxis: { title: { text: "model size (parameters, log scale)" }, type: "log", tickvals: decades, ticktext: decades.map(fmtParams) },
    yaxis: { title: { text: "SuperGLUE score (points)" } },
  }, PLOT_CONFIG);
}

function fillStatic() {
  const sg = data.superglue;
  $("tokenizer-note").textContent = data.tokenizer_note;
  $("k-help").textContent = `Few-shot: ${data.few_shot_range[0]}–${data.few_shot_range[1]} examples, the range a lecture on prompting, LoRA and adapters gives.`;
  $("few-head").textContent = `${sg.shots}-shot`;
  $("superglue-source").textContent = `Reported by ${sg.rows[0].source}; not measured by this lab. The lecture gives no one-shot figures.`;
  $("superglue-rows").replaceChildren(...sg.rows.map((r) => {
    const tr = document.createElement("tr");
    const f1 = (x) => x.toFixed(1);
    for (const v of [r.model, f1(r.zero_shot), f1(r.few_shot), `+${f1(r.gain)}`, `+${f1(r.quoted_gap)}${r.matches_quoted ? " ✓" : " ✗"}`]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    return tr;
  }));
  const pd = sg.per_decade;
  const mismatches = sg.rows.filter((r) => !r.matches_quoted).length;
  const last = pd[pd.length - 1];
  const earlier = pd.slice(0, -1).map((d) => d.points_per_decade.toFixed(1)).join(", ");
  $("superglue-note").innerHTML = "";
  const strong = document.createElement("strong");
  strong.textContent = "Checked. ";
  $("superglue-note").append(strong, `The gain column is few-shot minus zero-shot; ${mismatches === 0
    ? "the lecture's own column agrees on every row" : `${mismatches} row(s) of the lecture's column disagree`}. `
    + `The lecture calls the growth superlinear. Per tenfold of parameters the gain grows by ${earlier} points between the small models, `
    + `but by ${last.points_per_decade.toFixed(1)} from ${last.from} to ${last.to} (${last.decades} tenfolds): on a log-size axis these five rows `
    + "do not accelerate. The lecture's table leaves out the 2.7B–13B models that would show the shape in between.");
  const s = data.lecture;
  const items = [
    `Its traced forward pass: ${s.trace.k} examples × ${s.trace.per_example} tokens + a ${s.trace.query}-token query = ${s.trace.computed} tokens (the lecture says ${s.trace.total}).`,
    `Its inference cost: ${s.cost.k} examples × ${s.cost.per_example} tokens = ${fmtInt(s.cost.computed)} extra tokens on every call (the lecture says ${fmtInt(s.cost.extra)}).`,
    `“${s.gpt3_fit[0]}–${s.gpt3_fit[1]} short examples” in ${fmtInt(s.gpt3_window)} tokens means ${s.gpt3_per_example[0]}–${s.gpt3_per_example[1]} tokens per example; “~${s.fit_4k}” in ${fmtInt(s.window_4k)} tokens means ${s.k4_per_example}. Examples of the first size would fit ${s.k4_at_gpt3_sizes[0]}–${s.k4_at_gpt3_sizes[1]} times in ${fmtInt(s.window_4k)} tokens: the lecture's two figures assume different example lengths.`,
    `This pool's reviews cost ${data.mean_example_tokens} WordPiece tokens each on average, layout included: shorter than the lecture's ~100.`,
  ];
  $("source-checks").replaceChildren(...items.map((t) => { const li = document.createElement("li"); li.textContent = t; return li; }));
}

function draw() {
  const k = currentK();
  const w = currentWindow();
  $("prompt-text").textContent = data.prompts[k];
  $("k-value").textContent = k;
  const used = data.tokens[k] + data.answer_tokens;
  $("prompt-tokens").textContent = fmtInt(data.tokens[k]);
  $("example-tokens").textContent = fmtInt(data.tokens[k] - data.tokens[0]);
  const left = w.size - data.tokens[k];
  $("room-left").textContent = left >= data.answer_tokens ? `${fmtInt(left)} tokens` : `none: ${fmtInt(used - w.size)} over`;
  $("room-left").classList.toggle("over", left < data.answer_tokens);
  const all = data.ks[data.ks.length - 1];
  $("fits").textContent = w.fits === all ? `all ${all} (≈${fmtInt(w.estimated_fit)})` : String(Math.max(w.fits, 0));
  $("extra-call").textContent = fmtInt(data.extra_tokens[k]);
  drawBudget(k, w);
  drawTokens(k, w);
}

function show(body) {
  data = body;
  responses += 1;
  syncControls();
  fillStatic();
  draw();
  drawSuperglue();
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
    if (!body) return;
    data = body;
    readUrl(q);
    show(body);
  } catch (err) {
    const body = await fetchLatest(apiUrl(null)).catch(() => null);
    if (body) { data = body; readUrl(q); show(body); }
    showError(`The link's review was not accepted (${err.message}); showing the default one.`);
  }
}

async function newQuery() {
  try {
    const body = await fetchLatest(apiUrl(queryInput.value));
    if (body) { showError(""); show(body); }
  } catch (err) {
    showError(err.message);
  }
}

for (const input of modeInputs) {
  input.addEventListener("change", () => {
    if (!data || !input.checked) return;
    state.mode = input.value;
    syncControls();
    draw();
    drawSuperglue();
    writeUrl();
  });
}
// A drag redraws at most once a frame, with the slider's latest value.
const drawEachStep = drawEachFrame(() => {
  draw();
  writeUrl();
});
kSlider.addEventListener("input", () => {
  if (!data) return;
  state.k = Number(kSlider.value);
  drawEachStep();
});
windowSelect.addEventListener("change", () => {
  if (!data) return;
  state.window = windowSelect.value;
  draw();
  writeUrl();
});
queryInput.addEventListener("change", () => { if (data && queryInput.value !== data.query) newQuery(); });

start();
