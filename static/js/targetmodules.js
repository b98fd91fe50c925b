// P24 Target modules: LoRA at one rank on Q, QV, QKVO and QKVO+FFN, drawn as its runs finish:
// measured trainable parameters (log axis) against final validation accuracy, each point
// labelled. static/js/experiment.js does the rest.
import { $, PLOT_CONFIG, chartNote, emptyLayout } from "./lab.js";
import { fmtInt } from "./format.js";
import { COLOURS, experimentPage, logTicks, succeeded } from "./experiment.js";


function draw(exp) {
  const runs = succeeded(exp).sort((a, b) => a.trainable_params - b.trainable_params);
  const empty = !runs.length;
  const xs = runs.map((r) => r.trainable_params);
  // Padding on both sides: the labels of the end points stay inside the chart.
  const ticks = empty ? {} : { ...logTicks(Math.min(...xs), Math.max(...xs)),
    range: [Math.log10(Math.min(...xs)) - 0.2, Math.log10(Math.max(...xs)) + 0.2] };
  const chart = $("targets-chart");
  const layout = {
    margin: { l: 60, r: 40, t: 40, b: 50 },
    xaxis: { title: { text: "trainable parameters (log scale)" }, type: "log", ...ticks },
    yaxis: { title: { text: "final validation accuracy (%)" }, tickformat: ".0%", rangemode: "tozero" },
    legend: { orientation: "h", x: 0, y: -0.25 }, showlegend: !empty,
    annotations: empty ? chartNote(chart, "Waiting for the first run to finish…") : [],
  };
  Plotly.react(chart, [{
    x: runs.map((r) => r.trainable_params), y: runs.map((r) => r.val_accuracy),
    mode: "lines+markers+text", text: runs.map((r) => r.label), textposition: "top center", cliponaxis: false,
    name: exp ? `LoRA r=${exp.config.rank}` : "LoRA", line: { color: COLOURS[0], width: 2 }, marker: { size: 11 },
    customdata: runs.map((r) => fmtInt(r.trainable_params)),
    hovertemplate: "%{text}: %{customdata} trainable params<br>validation accuracy %{y:.1%}<extra></extra>",
  }], exp ? layout : emptyLayout(chart, layout, "No runs yet: press Start to queue the four runs."), PLOT_CONFIG);
}

experimentPage({
  kind: "targets",
  noun: "target sweep",
  readOptions: () => ({ rank: Number($("exp-rank").value) }),
  fillOptions(params, plan) {
    $("exp-rank").value = params.get("rank") || (plan ? plan.config.rank : "");
  },
  draw,
});
