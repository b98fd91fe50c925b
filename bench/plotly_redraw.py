"""Plotly's own redraw of a small chart: the floor under a slider that changes one chart.

    .venv/bin/python bench/plotly_redraw.py [--steps 60] [--write]

Issue 22 (item 7) asks every control that changes one chart to redraw within 16 ms (p95). The
playgrounds' misses (see "## Interaction latency and page weight") each spend most of a step in
one Plotly call. This measures that call with nothing of the lab around it: a blank page in
Debian's headless Chromium (1280×900) with Plotly's cartesian bundle as the lab serves it, and one
600×400 chart of two traces (four bars, a line of four points) whose values change at each step,
drawn the ways Plotly offers:

- `react` with fixed axes (what the lab calls), and with axes that follow the data (autorange);
- `restyle` of the traces' y values;
- `animate` to the new values with no transition and no redraw of the axes (its promise resolves
  at the next animation frame, where Plotly applies the change).

Milliseconds from the call to its promise resolved, each way `--steps` times, in one run. The
section "## Plotly's own redraw" of docs/performance.md is written with --write.
"""

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import browser_machine, p95, write_section  # noqa: E402
from peftlab.apps import PLOTLY  # noqa: E402
from tests.support.browsing import CHROMIUM_ARGS  # noqa: E402

HEADING = "## Plotly's own redraw"
BUNDLE = ROOT / "node_modules" / "plotly.js-cartesian-dist-min" / Path(PLOTLY).name

# The page's measuring code: each way redraws the chart `steps` times, each step new values.
MEASURE = """
async (steps) => {
  const traces = (k) => [
    { type: "bar", x: ["weights", "gradients", "optimizer", "activations"],
      y: [100 + k, 20 + k, 40 + (k % 7), 5 + 10 * (k % 30)], marker: { color: "#369" } },
    { type: "scatter", x: [1, 2, 3, 4], y: [k % 11, 2 * (k % 13), 3, 1 + (k % 5)], xaxis: "x2", yaxis: "y2" },
  ];
  const fixed = { margin: { t: 30 }, showlegend: false, title: { text: "Memory" },
                  xaxis: { domain: [0, 0.45] }, yaxis: { range: [0, 500] },
                  xaxis2: { domain: [0.55, 1], anchor: "y2" }, yaxis2: { anchor: "x2", range: [0, 30] } };
  const auto = { ...fixed, yaxis: {}, yaxis2: { anchor: "x2" } };
  const chart = document.getElementById("chart");
  const ways = {
    "react, fixed axes": (k) => Plotly.react(chart, traces(k), fixed),
    "react, axes follow the data": (k) => Plotly.react(chart, traces(k), auto),
    "restyle of y": (k) => Plotly.restyle(chart, { y: traces(k).map((t) => t.y) }),
    "animate, no transition or axis redraw": (k) => Plotly.animate(chart, { data: traces(k), traces: [0, 1] },
      { transition: { duration: 0 }, frame: { duration: 0, redraw: false }, mode: "immediate" }),
  };
  const out = {};
  for (const [name, draw] of Object.entries(ways)) {
    await Plotly.newPlot(chart, traces(0), name.includes("follow") ? auto : fixed);
    for (let k = 1; k <= 5; k++) await draw(k);  // warm
    out[name] = [];
    for (let k = 1; k <= steps; k++) {
      const started = performance.now();
      await draw(k);
      out[name].push(performance.now() - started);
    }
  }
  return out;
}
"""


def measure(steps: int) -> tuple[dict, str]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_content('<div id="chart" style="width:600px;height:400px"></div>')
        page.add_script_tag(path=str(BUNDLE))
        times = page.evaluate(MEASURE, steps)
        machine = browser_machine(browser)
        browser.close()
    return times, machine


def section(times: dict, machine: str, steps: int) -> str:
    lines = [
        HEADING,
        "",
        f"`bench/plotly_redraw.py`: one 600×400 chart of two traces (four bars, a line of four "
        f"points) in a blank page, its values new at each of {steps} steps, each way Plotly offers. "
        f"{machine}. Milliseconds from the call to its promise resolved.",
        "",
        "| way | median | p95 |",
        "|---|---:|---:|",
    ]
    for name, values in times.items():
        lines.append(f"| {name} | {statistics.median(values):.1f} | {p95(values):.1f} |")
    lines += [
        "",
        "Plotly draws a chart whole at every change of its data, with or without the lab around it; "
        "`animate` without a transition waits for the next frame. The playgrounds' charts are larger "
        "than this one (more traces, points, labels and annotations), and their Plotly calls take "
        "the times the interaction table shows beside each control.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    times, machine = measure(args.steps)
    text = section(times, machine, args.steps)
    print(text)
    if args.write:
        write_section(text, HEADING)


if __name__ == "__main__":
    main()
