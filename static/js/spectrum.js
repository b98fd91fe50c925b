// P19 Method spectrum. One request brings the sources' reported figures with the lab's counts;
// the method toggles only hide and show traces. The hidden methods live in the query string.
import { $, METHOD_COLOURS, PLOT_CONFIG, errorBox, readQuery, writeQuery } from "./lab.js";
import { latestFetcher } from "./playground.js";
import { fmtInt } from "./format.js";

const showError = errorBox("spectrum-error");
const root = document.getElementById("spectrum-root");
const fmtPct = (x) => `${Number((100 * x).toPrecision(3))}%`;
let data = null;
const hidden = new Set();

const shown = (key) => !hidden.has(key);
const label = (key) => data.methods.find((m) => m.key === key).label;

function writeUrl() {
  const p = new URLSearchParams();
  if (hidden.size) p.set("hide", [...hidden].join(","));
  writeQuery(p);
}

function legendBelow(extra = {}) {
  return { orientation: "h", x: 0, y: -0.22, yanchor: "top", ...extra };
}

// What a bubble's hover says of Hu et al. 2021, Table 2: its mean, or that the lab has no figure.
function tableLine(p) {
  if (p.table2) return `${p.table2.source}: mean of ${p.table2.tasks.length} GLUE tasks ${p.table2.mean.toFixed(2)} (printed ${p.table2.printed_average})`;
  return p.table2_unconfirmed ? "Not matched to a figure of Hu et al. 2021, Table 2 by this lab" : "";
}

function drawGlue() {
  const pts = data.glue.points.filter((p) => shown(p.method));
  const scored = pts.filter((p) => p.gap);
  const maxShare = Math.max(...data.glue.points.filter((p) => p.method !== "full").map((p) => p.share));
  const traces = scored.map((p) => ({
    x: [p.trainable], y: [p.gap_mid], mode: "markers", name: p.label,
    error_y: { type: "data", symmetric: false, array: [p.gap[1] - p.gap_mid], arrayminus: [p.gap_mid - p.gap[0]],
      color: METHOD_COLOURS[p.method], thickness: 2, width: 6 },
    // Bubble area ∝ trainable share; full fine-tuning (100%) is capped so it does not cover the rest.
    marker: { color: METHOD_COLOURS[p.method], opacity: 0.75, line: { color: "#222", width: 1 },
      size: Math.min(46, 12 + 30 * Math.sqrt(Math.min(p.share, maxShare) / maxShare)) },
    customdata: [[fmtInt(p.trainable), fmtPct(p.share), p.setting, p.quotes.map((q) => `“${q.text}”`).join("<br>"),
      tableLine(p)]],
    hovertemplate: `<b>${p.label}</b>: %{customdata[2]}<br>%{customdata[0]} trainable (%{customdata[1]})<br>`
      + `${p.gap[0]} to ${p.gap[1]} points behind full fine-tuning, as ${p.gap_source} words it:<br>%{customdata[3]}`
      + "<br>%{customdata[4]}<extra></extra>",
  }));
  // Beside the post's words, the table they go back to, where the lab has its figures.
  const tabled = pts.filter((p) => p.table2 && p.method !== "full");
  if (tabled.length) {
    traces.push({
      x: tabled.map((p) => p.trainable), y: tabled.map((p) => p.table2.gap), mode: "markers",
      name: tabled[0].table2.source, marker: { symbol: "diamond", size: 12, color: "#111" }, cliponaxis: false,
      customdata: tabled.map((p) => [p.label, p.table2.mean.toFixed(2), data.glue.points.find((q) => q.method === "full").table2.mean.toFixed(2)]),
      hovertemplate: `<b>%{customdata[0]}</b>, ${tabled[0].table2.source}: mean GLUE %{customdata[1]} `
        + "against full fine-tuning's %{customdata[2]}: %{y:.2f} points behind (negative: ahead)<extra></extra>",
    });
  }
  const shapes = [];
  const annotations = [];
  for (const p of pts.filter((q) => !q.gap)) {
    shapes.push({ type: "line", x0: p.trainable, x1: p.trainable, yref: "paper", y0: 0, y1: 1,
      line: { color: METHOD_COLOURS[p.method], dash: "dot", width: 2 } });
    annotations.push({ x: Math.log10(p.trainable), yref: "paper", y: 0.98, text: `${p.label}: no figure`,
      showarrow: false, xanchor: "left", font: { size: 11, color: METHOD_COLOURS[p.method] }, bgcolor: "rgba(255,255,255,0.85)" });
  }
  // Room above the highest point for the "no figure" labels; the axis runs downwards (worse).
  const ys = [...scored.flatMap((p) => p.gap), ...tabled.map((p) => p.table2.gap), 0];
  Plotly.react("glue-chart", traces, {
    margin: { l: 60, r: 15, t: 10, b: 60 }, shapes, annotations, legend: legendBelow({ y: -0.3 }),
    xaxis: { title: { text: "trainable parameters (computed, log scale)" }, type: "log", automargin: true },
    yaxis: { title: { text: "GLUE gap to full FT (points)" }, range: [Math.max(...ys) + 0.4, Math.min(...ys) - 0.8],
      zeroline: true, automargin: true },
  }, PLOT_CONFIG);
}

function drawRank() {
  const rows = data.rank_quality.rows;
  const mid = rows.map((r) => (r.quality[0] + r.quality[1]) / 2);
  Plotly.react("rank-chart", [{
    x: rows.map((r) => 100 * r.share), y: mid, mode: "lines+markers+text", name: "LoRA on GPT-3 (the lecture's rank table)",
    text: rows.map((r) => `r = ${r.rank}`), textposition: "bottom right", cliponaxis: false,
    line: { color: METHOD_COLOURS.lora }, marker: { size: 10, color: METHOD_COLOURS.lora },
    error_y: { type: "data", symmetric: false, array: rows.map((r, i) => r.quality[1] - mid[i]),
      arrayminus: rows.map((r, i) => mid[i] - r.quality[0]), color: METHOD_COLOURS.lora, width: 6 },
    customdata: rows.map((r) => [fmtInt(r.per_matrix), r.quoted_count, r.quoted_quality]),
    hovertemplate: "r = %{text}: %{customdata[0]} per matrix (the lecture: %{customdata[1]})<br>"
      + "quality vs full FT: %{customdata[2]} (reported)<extra></extra>",
  }], {
    margin: { l: 60, r: 20, t: 10, b: 60 }, showlegend: true, legend: legendBelow(),
    xaxis: { title: { text: "trainable share of one matrix, 2r/d (%, log)" }, type: "log", automargin: true },
    yaxis: { title: { text: "quality vs full fine-tuning (%)" }, automargin: true },
  }, PLOT_CONFIG);
}

function drawShares() {
  const methods = ["lora", "adapter", "prefix", "prompt", "bitfit"].filter(shown);
  const rows = data.share_tables.filter((q) => methods.includes(q.method));
  // Short row names ("Adapter · lecture, table"), so that the plot keeps its width on a phone.
  const y = (q) => `${label(q.method).replace(/ \(.*\)$/, "")} · ${q.short}`;
  const symbol = { range: "line-ns-open", about: "circle", below: "triangle-left" };
  const traces = rows.map((q) => ({
    x: q.kind === "range" ? [q.low, q.high] : [q.high], y: q.kind === "range" ? [y(q), y(q)] : [y(q)],
    mode: q.kind === "range" ? "lines+markers" : "markers", name: q.source, legendgroup: q.source,
    showlegend: false, line: { color: METHOD_COLOURS[q.method], width: 8 },
    marker: { color: METHOD_COLOURS[q.method], size: 12, symbol: symbol[q.kind] },
    hovertemplate: `${q.quote.replaceAll("|", " ").trim()}<extra>${q.source}</extra>`,
  }));
  const computed = data.glue.points.filter((p) => methods.includes(p.method));
  for (const p of computed) {
    const ys = [...new Set(rows.filter((q) => q.method === p.method).map(y))];
    traces.push({
      x: ys.map(() => 100 * p.share), y: ys, mode: "markers", name: "computed",
      legendgroup: "computed", showlegend: p === computed[0],
      marker: { symbol: "diamond", size: 11, color: "#111" },
      hovertemplate: `${p.label}, ${p.setting}: ${fmtPct(p.share)} computed<extra></extra>`,
    });
  }
  traces.push({ x: [null], y: [null], mode: "markers", name: "quoted by a source's table", marker: { color: "#9aa3b2", size: 11 }, hoverinfo: "skip" });
  Plotly.react("share-chart", traces, {
    margin: { l: 10, r: 20, t: 10, b: 60 }, legend: legendBelow({ y: -0.24 }),
    height: Math.max(320, 60 + 34 * new Set(rows.map(y)).size),
    xaxis: { title: { text: "trainable share (%, log)" }, type: "log", dtick: 1, automargin: true },
    yaxis: { automargin: true, autorange: "reversed" },
  }, PLOT_CONFIG);
}

function fillTables() {
  $("glue-model").textContent = data.glue.model;
  $("glue-source").textContent = data.glue.source;
  $("share-model").textContent = data.glue.model;
  $("rank-source").textContent = data.rank_quality.source;
  $("rank-hidden").textContent = fmtInt(data.rank_quality.hidden);
  const bitfit = data.glue.points.find((p) => !p.gap);
  $("bitfit-note").textContent = `${bitfit.label} (${fmtPct(bitfit.share)}) is drawn as a dotted line: `
    + `the post gives no figure, only “${bitfit.quotes[1].text}”.`;
  $("notes").replaceChildren(...data.notes.map((n) => Object.assign(document.createElement("li"), { textContent: n.text })));
  $("gpt3-table").tBodies[0].replaceChildren(...data.gpt3_table.map((r) => {
    const tr = document.createElement("tr");
    const formula = r.formula !== null ? fmtInt(r.formula)
      : `${r.tokens_at_gpt3_width.toFixed(1)} tokens' worth at d = ${fmtInt(data.rank_quality.hidden)}`;
    tr.append(...[r.label, r.quoted, `${Number((100 * r.quoted_share).toPrecision(2))}%`, formula]
      .map((t) => Object.assign(document.createElement("td"), { textContent: t })));
    return tr;
  }));
}

function buildToggles() {
  const keys = new Set([...data.glue.points.map((p) => p.method), ...data.share_tables.map((q) => q.method)]);
  $("method-toggles").append(...data.methods.filter((m) => keys.has(m.key)).map((m) => {
    const lab = document.createElement("label");
    const box = Object.assign(document.createElement("input"), { type: "checkbox", value: m.key, checked: shown(m.key) });
    box.addEventListener("change", () => {
      if (box.checked) hidden.delete(m.key); else hidden.add(m.key);
      drawGlue();
      drawShares();
      writeUrl();
    });
    lab.append(box, m.label);
    return lab;
  }));
}

async function start() {
  try {
    const body = await latestFetcher(root)(root.dataset.apiUrl);
    if (!body) return;
    data = body;
    const known = new Set(data.methods.map((m) => m.key));
    for (const key of (readQuery().get("hide") || "").split(",")) if (known.has(key)) hidden.add(key);
    buildToggles();
    fillTables();
    drawGlue();
    drawRank();
    drawShares();
    writeUrl();
    root.dataset.ready = "1";
  } catch (err) {
    showError(err.message);
  }
}

start();
