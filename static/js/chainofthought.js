// P5 Chain of thought. One request brings every problem solved step by step (by Python) and
// every mode's prompt, written answer and token counts; the problem menu and the mode only
// index it. Changing a problem's numbers fetches once: the server redoes the arithmetic.
// The state lives in the query string.
import { $, ACCENT, GOOD, PLOT_CONFIG, errorBox, readQuery, writeQuery } from "./lab.js";
import { latestFetcher, react } from "./playground.js";
import { fmtInt } from "./format.js";

const showError = errorBox("cot-error");
const root = document.getElementById("cot-root");
const ORANGE = "#e07b2a";
const MUTED = "#9aa3b2";

const problemSelect = $("problem-select");
const modeInputs = [...document.querySelectorAll('input[name="mode"]')];
let data = null;
const state = { problem: null, mode: "few_shot_cot" };
const fetchLatest = latestFetcher(root);

const current = () => data.problems.find((p) => p.key === state.problem);
const valuesOf = (p) => p.quantities.map((q) => q.value).join(",");
const defaultValues = new Map();

function writeUrl() {
  const p = new URLSearchParams({ problem: state.problem, mode: state.mode });
  const values = valuesOf(current());
  if (values !== defaultValues.get(state.problem)) p.set("values", values);
  writeQuery(p);
}

function buildNumbers() {
  const p = current();
  $("numbers").replaceChildren(...p.quantities.flatMap((q) => {
    const wrap = document.createElement("div");
    const label = document.createElement("label");
    label.htmlFor = `value-${q.name}`;
    label.textContent = q.label;
    const input = document.createElement("input");
    Object.assign(input, { id: `value-${q.name}`, type: "number", min: data.value_min, max: data.value_max, step: 1, value: q.value });
    input.addEventListener("change", resolve);
    wrap.append(label, input);
    return [wrap];
  }));
}

function syncControls() {
  if (!problemSelect.options.length) {
    for (const p of data.problems) problemSelect.add(new Option(p.title, p.key));
  }
  problemSelect.value = state.problem;
  for (const input of modeInputs) input.checked = input.value === state.mode;
  buildNumbers();
}

function fillStatic() {
  $("tokenizer-note").textContent = data.tokenizer_note;
  const r = data.reported;
  // One group per benchmark, model and paper: a standard prompt beside its chain-of-thought prompt.
  const cotKind = (row) => (row.key.endsWith("standard") ? "standard" : row.key.endsWith("zero_shot_cot") ? "zero_shot_cot" : "few_shot_cot");
  const kinds = [["standard", MUTED], ["zero_shot_cot", ORANGE], ["few_shot_cot", ACCENT]];
  const names = { standard: "standard prompt", zero_shot_cot: "zero-shot CoT (“Let's think step by step”)", few_shot_cot: "CoT with worked examples" };
  const traces = kinds.map(([kind, color]) => {
    const rows = r.groups.flatMap((g) => g.rows.filter((row) => cotKind(row) === kind).map((row) => ({ group: g.label, row })));
    return {
      type: "bar", name: names[kind], marker: { color },
      x: rows.map((x) => x.group), y: rows.map((x) => x.row.high),
      text: rows.map((x) => `${x.row.high}%`), textposition: "outside", cliponaxis: false,
      customdata: rows.map((x) => x.row.source),
      hovertemplate: "%{x}: %{y}%<br>%{customdata}<extra>%{fullData.name}</extra>",
    };
  });
  react("reported-chart", traces, {
    barmode: "group", margin: { l: 60, r: 10, t: 10, b: 50 },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    xaxis: { title: { text: "benchmark · model (arithmetic word problems)" }, automargin: true },
    yaxis: { title: { text: "accuracy (%)" }, range: [0, 100], automargin: true },
  }, PLOT_CONFIG);
  const sources = [...new Set(r.groups.flatMap((g) => g.rows.map((row) => row.source)))];
  $("reported-source").textContent = `Reported by ${sources.join("; ")}. Not measured by this lab.`;

  const tasks = [...r.task_types].reverse();
  const figure = (t) => (t.note || `+${t.low} to +${t.high}`);
  const withFigure = tasks.filter((t) => t.high !== null && t.high > 0);
  const inWords = tasks.filter((t) => !(t.high !== null && t.high > 0));
  react("tasks-chart", [
    { type: "bar", orientation: "h", name: "reported gain (range)", y: withFigure.map((t) => t.label),
      base: withFigure.map((t) => t.low), x: withFigure.map((t) => t.high - t.low), marker: { color: GOOD },
      text: withFigure.map(figure), textposition: "outside", cliponaxis: false,
      hovertemplate: "%{y}: %{text} points<extra></extra>" },
    { type: "scatter", mode: "markers+text", name: "no gain, or none given", y: inWords.map((t) => t.label),
      x: inWords.map(() => 0), text: inWords.map(figure), textposition: "middle right",
      marker: { color: MUTED, size: 12, symbol: "line-ns-open", line: { width: 3, color: MUTED } },
      hovertemplate: "%{y}: %{text}<extra></extra>" },
  ], {
    barmode: "overlay", margin: { l: 10, r: 20, t: 10, b: 50 },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    xaxis: { title: { text: "gain from CoT (% points)" }, rangemode: "tozero",
      range: [0, Math.max(...withFigure.map((t) => t.high)) * 1.7] },
    yaxis: { automargin: true },
  }, PLOT_CONFIG);
  $("tasks-source").textContent = `Reported in ${tasks[0].source}. ${r.self_consistency.label}: +${r.self_consistency.low} to +${r.self_consistency.high} ${r.self_consistency.unit} (${r.self_consistency.source}).`;

  $("source-note").replaceChildren(Object.assign(document.createElement("strong"), { textContent: "Who reported what. " }),
    ...r.notes.map((text) => `${text} `),
    `It also says CoT often hurts models below ${r.small_models.high / 1e9}B parameters (${r.small_models.source}); it gives no numbers for that.`);
}

function draw() {
  const p = current();
  const m = p.modes[state.mode];
  $("cot-prompt").textContent = m.prompt;
  const cot = state.mode !== "direct";
  $("steps").replaceChildren(...(cot ? p.steps.map((s) => {
    const li = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = s.expression;
    li.append(`${s.sentence} `, code);
    return li;
  }) : []));
  $("steps").hidden = !cot;
  $("final").textContent = m.final;
  $("mode-help").textContent = cot
    ? `${p.steps.length} intermediate results are written down before the answer; each is a short, one-operation step.`
    : `One jump: all ${p.steps.length} operations must happen inside the forward pass that writes the first token of “${p.answer}”.`;
  $("answer").textContent = `${fmtInt(p.answer)} ${p.unit}`;
  $("step-count").textContent = cot ? p.steps.length : "0";
  $("prompt-tokens").textContent = fmtInt(m.prompt_tokens);
  $("output-tokens").textContent = fmtInt(m.output_tokens);
  const direct = p.modes.direct.output_tokens;
  $("output-ratio").textContent = `${fmtInt(m.output_tokens)} vs ${fmtInt(direct)}`;
  const modes = Object.keys(data.modes);
  const label = { direct: "direct", few_shot_cot: "CoT from<br>an example", zero_shot_cot: "zero-shot<br>CoT" };
  const outline = modes.map((k) => (k === state.mode ? 3 : 0));
  react("tokens-chart", [
    { type: "bar", name: "prompt tokens (read)", x: modes.map((k) => label[k]), y: modes.map((k) => p.modes[k].prompt_tokens),
      marker: { color: MUTED, line: { color: "#222", width: outline } }, hovertemplate: "%{x}: %{y} prompt tokens<extra></extra>" },
    { type: "bar", name: "answer tokens (written)", x: modes.map((k) => label[k]), y: modes.map((k) => p.modes[k].output_tokens),
      marker: { color: ORANGE, line: { color: "#222", width: outline } }, hovertemplate: "%{x}: %{y} written tokens<extra></extra>" },
  ], {
    barmode: "stack", margin: { l: 60, r: 10, t: 10, b: 60 },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    xaxis: { title: { text: "prompting mode" }, tickangle: 0, automargin: true },
    yaxis: { title: { text: "tokens (WordPiece)" } },
  }, PLOT_CONFIG);
}

function show(body, q) {
  const first = data === null;
  data = body;
  if (first) {
    // The numbers each problem starts with, so the URL carries values only when changed.
    for (const p of data.problems) if (!(q.get("values") && p.key === data.problem)) defaultValues.set(p.key, valuesOf(p));
  }
  state.problem = data.problem;
  if (q.get("mode") in data.modes) state.mode = q.get("mode");
  syncControls();
  if (first) fillStatic();
  draw();
  writeUrl();
  root.dataset.ready = "1";
}

function apiUrl(problem, values) {
  const p = new URLSearchParams();
  if (problem) p.set("problem", problem);
  if (values) p.set("values", values);
  return `${root.dataset.apiUrl}?${p}`;
}

async function resolve() {
  const inputs = [...$("numbers").querySelectorAll("input")];
  const values = inputs.map((i) => i.value.trim()).join(",");
  // An input that loses focus as it is redrawn fires change again: ask only for new numbers.
  if (values === valuesOf(current())) { showError(""); return; }
  try {
    const body = await fetchLatest(apiUrl(state.problem, values));
    if (body) { showError(""); show(body, new URLSearchParams({ mode: state.mode })); }
  } catch (err) {
    showError(err.message);
  }
}

async function start() {
  const q = readQuery();
  try {
    const body = await fetchLatest(apiUrl(q.get("problem"), q.get("values")));
    if (body) show(body, q);
  } catch (err) {
    const body = await fetchLatest(apiUrl(null, null)).catch(() => null);
    if (body) show(body, q);
    showError(`The link's problem was not accepted (${err.message}); showing the default one.`);
  }
}

problemSelect.addEventListener("change", () => {
  if (!data) return;
  state.problem = problemSelect.value;
  buildNumbers();
  draw();
  writeUrl();
});
for (const input of modeInputs) {
  input.addEventListener("change", () => {
    if (!data || !input.checked) return;
    state.mode = input.value;
    draw();
    writeUrl();
  });
}

start();
