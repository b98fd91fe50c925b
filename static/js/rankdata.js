// P23 Rank against data size: a rank sweep (every rank at each training-set size) drawn as its
// runs finish. Accuracy against r (log axis, one line per size); training against validation
// loss to show where a rank overfits the small set. static/js/experiment.js does the rest.
import { $, PLOT_CONFIG, chartNote, emptyLayout } from "./lab.js";
import { fmtInt } from "./format.js";
import { COLOURS, experimentPage, succeeded } from "./experiment.js";

const parseList = (text) => text.split(/[\s,]+/).filter(Boolean).map(Number);

function bySize(exp) {
  const sizes = exp ? exp.config.train_sizes : [];
  const runs = succeeded(exp);
  return sizes.map((n, i) => ({ n, colour: COLOURS[i % COLOURS.length],
    runs: runs.filter((r) => r.train_examples === n).sort((a, b) => a.rank - b.rank) }));
}

function rankAxis(exp) {
  const ranks = exp ? exp.config.ranks : [];
  return { title: { text: "LoRA rank r (log scale)" }, type: "log", tickvals: ranks, ticktext: ranks.map(String),
    range: ranks.length ? [Math.log10(ranks[0]) - 0.15, Math.log10(ranks[ranks.length - 1]) + 0.15] : undefined };
}

function layout(chart, exp, yaxis, waiting) {
  const empty = !exp || !succeeded(exp).length;
  const shown = {
    margin: { l: 60, r: 20, t: 20, b: 50 }, xaxis: rankAxis(exp), yaxis,
    legend: { orientation: "h", x: 0, y: -0.25 }, showlegend: !empty,
    annotations: empty ? chartNote(chart, waiting) : [],
  };
  return exp ? shown : emptyLayout(chart, shown, "No runs yet: press Start to queue the sweep.");
}

function draw(exp) {
  const groups = bySize(exp);
  const hover = (r) => `r=${r.rank}, ${r.train_examples} examples<br>${fmtInt(r.trainable_params)} trainable params`;
  Plotly.react($("acc-chart"), groups.map((g) => ({
    x: g.runs.map((r) => r.rank), y: g.runs.map((r) => r.val_accuracy), mode: "lines+markers",
    name: `${g.n} training examples`, line: { color: g.colour, width: 2 }, marker: { size: 9 },
    text: g.runs.map(hover), hovertemplate: "%{text}<br>validation accuracy %{y:.1%}<extra></extra>",
  })), layout($("acc-chart"), exp, { title: { text: "final validation accuracy (%)" }, tickformat: ".0%", rangemode: "tozero" },
    "Waiting for the first run to finish…"), PLOT_CONFIG);

  const traces = [];
  for (const g of groups) {
    traces.push({ x: g.runs.map((r) => r.rank), y: g.runs.map((r) => r.val_loss), mode: "lines+markers",
      name: `${g.n} examples: validation loss`, line: { color: g.colour, width: 2 }, marker: { size: 8 },
      hovertemplate: "r=%{x}: validation loss %{y:.3f}<extra></extra>" });
    traces.push({ x: g.runs.map((r) => r.rank), y: g.runs.map((r) => r.train_loss), mode: "lines+markers",
      name: `${g.n} examples: training loss`, line: { color: g.colour, width: 2, dash: "dash" },
      marker: { size: 8, symbol: "square-open" }, hovertemplate: "r=%{x}: training loss %{y:.3f}<extra></extra>" });
  }
  Plotly.react($("loss-chart"), traces, layout($("loss-chart"), exp, { title: { text: "cross-entropy loss (nats)" }, rangemode: "tozero" },
    "Waiting for the first run to finish…"), PLOT_CONFIG);
}

experimentPage({
  kind: "rank",
  noun: "rank sweep",
  readOptions: () => ({ ranks: parseList($("exp-ranks").value), train_sizes: parseList($("exp-sizes").value) }),
  fillOptions(params, plan) {
    $("exp-ranks").value = params.get("ranks") || (plan ? plan.config.ranks.join(", ") : "");
    $("exp-sizes").value = params.get("sizes") || (plan ? plan.config.train_sizes.join(", ") : "");
  },
  draw,
});
