"""Slider latency helpers (issue 22, item 7) in a real browser: a drag redraws at most once a frame
with the slider's latest value (static/js/lab.js `drawEachFrame`), and a heatmap whose axes do not
change redraws only its pixels, the same pixels a whole redraw draws (static/js/playground.js
`redrawHeatmap`). No timings here: bench/interaction_latency.py measures those."""

import pytest
from playwright.sync_api import expect

from tests.support.browsing import wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Records every Plotly call from here on, as "name(#chart)" (window.__calls), and counts the
# ones that draw a chart again (window.__draws, by chart).
COUNT_PLOTLY = """(ids) => {
  window.__draws = Object.fromEntries(ids.map((id) => [id, 0])); window.__calls = [];
  if (Plotly.__counted) return;
  Plotly.__counted = true;
  for (const name of ['newPlot', 'react', 'restyle', 'relayout', 'update', 'redraw']) {
    const native = Plotly[name];
    Plotly[name] = function (el, ...rest) {
      const id = typeof el === 'string' ? el : el.id;
      window.__calls.push(`${name}(#${id})`);
      if (id in window.__draws && name !== 'relayout') window.__draws[id]++;
      return native.call(this, el, ...rest);
    };
  }
}"""

# `count` input events on a slider within one task (so within one animation frame), each one
# step up from the last, then a `change`, as a fast drag fires them; returns the last value.
BURST = """([selector, count]) => {
  const s = document.querySelector(selector);
  const step = Number(s.step) || 1;
  let v = Number(s.value), dir = 1;
  for (let i = 0; i < count; i++) {
    if (v + dir * step > Number(s.max) || v + dir * step < Number(s.min)) dir = -dir;
    v += dir * step; s.value = v;
    s.dispatchEvent(new Event('input', { bubbles: true }));
  }
  s.dispatchEvent(new Event('change', { bubbles: true }));
  return s.value;
}"""

TWO_FRAMES = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"

# Plotly's heatmap image: the pixels, as a data URL.
PIXELS = "(id) => document.querySelector(`#${id} .hm image`).getAttribute('href')"
Z = "(id) => JSON.stringify(document.getElementById(id).data[0].z)"
VECTORS = "() => JSON.stringify(document.getElementById('vectors-chart').data.map((t) => Array.from(t.y)))"


def settle(page, root: str) -> None:
    page.evaluate(TWO_FRAMES)
    page.evaluate(TWO_FRAMES)
    wait_ready(page, root)


def test_draw_each_frame_draws_the_first_call_at_once_and_the_rest_of_a_burst_once_with_the_last_value(page):
    page.goto("/playgrounds/lora-forward/")
    wait_ready(page, "forward-root")
    drawn = page.evaluate(
        """async () => {
        const { drawEachFrame } = await import('/static/js/lab.js');
        const calls = [];
        const draw = drawEachFrame((v) => calls.push(v));
        for (let v = 1; v <= 20; v++) draw(v);
        const atOnce = [...calls];
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        const afterBurst = [...calls];
        draw(21);  // no frame pending any more: at once again
        const single = [...calls];
        // With a merge: the waiting calls' arguments are combined.
        const merged = [];
        const drawKeys = drawEachFrame((keys) => merged.push(keys.join(",")),
          ([a], [b]) => [[...new Set([...a, ...b])]]);
        drawKeys(["d"]); drawKeys(["d", "m"]); drawKeys(["d"]);
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        return { atOnce, afterBurst, single, merged };
    }"""
    )
    assert drawn == {"atOnce": [1], "afterBurst": [1, 20], "single": [1, 20, 21], "merged": ["d", "d,m"]}


def test_a_burst_of_twenty_slider_inputs_redraws_each_chart_at_most_twice_and_shows_the_last_value(page):
    # P10: the α slider redraws the vectors chart; the rank slider A, B and both bar charts.
    page.goto("/playgrounds/lora-forward/?d=8&seed=0&r=1")
    wait_ready(page, "forward-root")
    charts = ["heat-A", "heat-B", "bottleneck-chart", "vectors-chart"]
    page.evaluate(COUNT_PLOTLY, charts)
    vectors_before = page.evaluate(VECTORS)
    last = page.evaluate(BURST, ["#alpha-slider", 20])
    settle(page, "forward-root")
    draws = page.evaluate("() => ({ ...window.__draws })")
    assert 1 <= draws["vectors-chart"] <= 2, draws
    assert draws["heat-A"] == draws["heat-B"] == draws["bottleneck-chart"] == 0, draws
    alpha = page.locator("#alpha-value").inner_text()
    assert page.evaluate(VECTORS) != vectors_before

    page.evaluate(COUNT_PLOTLY, charts)
    page.evaluate(BURST, ["#rank-slider", 20])
    settle(page, "forward-root")
    draws = page.evaluate("() => ({ ...window.__draws })")
    assert all(1 <= n <= 2 for n in draws.values()), draws
    rank = page.locator("#rank-value").inner_text()

    # What the charts show is what a page opened at the last values shows.
    other = page.context.new_page()
    other.goto(f"/playgrounds/lora-forward/?d=8&seed=0&r={rank}&alpha={alpha}")
    wait_ready(other, "forward-root")
    assert page.evaluate("(s) => document.querySelector(s).value", "#alpha-slider") == last
    for chart in ("heat-A", "heat-B"):
        assert page.evaluate(Z, chart) == other.evaluate(Z, chart)
    assert page.evaluate(VECTORS) == other.evaluate(VECTORS)
    other.close()


def test_a_heatmap_whose_axes_stay_redraws_its_pixels_without_a_plotly_redraw(page):
    # P16: r redraws the fitted update's heatmap (20 × 20 for every r).
    page.goto("/playgrounds/low-rank-lab/?true_rank=3&noise=0.3&seed=1&n=120&r=1")
    wait_ready(page, "lab-root")
    page.evaluate(COUNT_PLOTLY, ["heatmap-fit"])
    before_z, before_pixels = page.evaluate(Z, "heatmap-fit"), page.evaluate(PIXELS, "heatmap-fit")
    page.locator("#r-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#r-value")).to_have_text("2")
    settle(page, "lab-root")
    assert page.evaluate(Z, "heatmap-fit") != before_z
    assert page.evaluate(PIXELS, "heatmap-fit") != before_pixels
    calls = page.evaluate("() => window.__calls")
    assert not [c for c in calls if c.endswith("(#heatmap-fit)")], calls
    assert page.evaluate("() => window.__draws['heatmap-fit']") == 0
    # The same numbers and pixels a page drawn whole at r = 2 shows, and its hover reads them.
    other = page.context.new_page()
    other.goto("/playgrounds/low-rank-lab/?true_rank=3&noise=0.3&seed=1&n=120&r=2")
    wait_ready(other, "lab-root")
    assert page.evaluate(Z, "heatmap-fit") == other.evaluate(Z, "heatmap-fit")
    assert page.evaluate(PIXELS, "heatmap-fit") == other.evaluate(PIXELS, "heatmap-fit")
    calc = "() => JSON.stringify(document.getElementById('heatmap-fit').calcdata[0][0].z)"
    assert page.evaluate(calc) == other.evaluate(calc)
    other.close()


def test_a_heatmap_whose_shape_changes_is_drawn_whole(page):
    # P10: A is r × d, B is d × r: a new rank changes their axes, so they are redrawn with Plotly.
    page.goto("/playgrounds/lora-forward/?d=8&seed=0&r=2&alpha=8")
    wait_ready(page, "forward-root")
    page.evaluate(COUNT_PLOTLY, ["heat-A"])
    page.locator("#rank-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#rank-value")).to_have_text("3")
    settle(page, "forward-root")
    assert "react(#heat-A)" in page.evaluate("() => window.__calls")
    assert page.evaluate("() => document.getElementById('heat-A').data[0].z.length") == 3


FILLS = "(id) => [...document.querySelectorAll(`#${id} .bars .point path`)].map((p) => p.style.fill)"


@pytest.mark.parametrize(
    ("path", "root", "slider", "chart"),
    [
        # P9: the rank colours the singular values M_r keeps.
        ("/playgrounds/low-rank/?r=2", "lowrank-root", "#rank-slider", "sv-chart"),
        # P3: k colours its own bar of the prompt lengths.
        ("/playgrounds/in-context-learning/?k=2", "icl-root", "#k-slider", "tokens-chart"),
    ],
)
def test_bars_that_only_change_colour_are_recoloured_without_a_plotly_redraw(page, path, root, slider, chart):
    page.goto(path)
    wait_ready(page, root)
    page.evaluate(COUNT_PLOTLY, [chart])
    before = page.evaluate(FILLS, chart)
    page.locator(slider).focus()
    page.keyboard.press("ArrowRight")
    settle(page, root)
    after = page.evaluate(FILLS, chart)
    assert after != before and len(after) == len(before)
    assert not [c for c in page.evaluate("() => window.__calls") if c.endswith(f"(#{chart})")]
    assert page.evaluate(f"() => Array.from(document.getElementById('{chart}').data[0].marker.color)") == [
        page.evaluate(f"() => document.getElementById('{chart}').calcdata[0][{i}].mc") for i in range(len(after))
    ]
    # The fills a page drawn whole at the new value (its URL now) has.
    whole = page.context.new_page()
    whole.goto(page.evaluate("() => location.href"))
    wait_ready(whole, root)
    assert whole.evaluate(FILLS, chart) == after
    whole.close()


OPACITIES = "(id) => [...document.querySelectorAll(`#${id} .bars .point path`)].map((p) => p.style.opacity)"


def test_bars_that_only_change_opacity_are_shaded_without_a_plotly_redraw(page):
    # P14: the model slider picks the model drawn at full opacity.
    page.goto("/playgrounds/qlora/?model=13B")
    wait_ready(page, "qlora-root")
    page.evaluate(COUNT_PLOTLY, ["memory-chart"])
    before = page.evaluate(OPACITIES, "memory-chart")
    page.locator("#model-slider").focus()
    page.keyboard.press("ArrowRight")
    settle(page, "qlora-root")
    after = page.evaluate(OPACITIES, "memory-chart")
    assert after != before and len(after) == len(before)
    assert not [c for c in page.evaluate("() => window.__calls") if c.endswith("(#memory-chart)")]
    whole = page.context.new_page()
    whole.goto(page.evaluate("() => location.href"))
    wait_ready(whole, "qlora-root")
    assert whole.evaluate(OPACITIES, "memory-chart") == after
    assert whole.evaluate(FILLS, "memory-chart") == page.evaluate(FILLS, "memory-chart")
    whole.close()
