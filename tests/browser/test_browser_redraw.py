"""What a slider step redraws, in a real browser: only the charts and the parts of a chart that it
changes, and no request for an answer the page already has (interaction latency: each full Plotly
redraw costs 8-25 ms in headless Chromium, docs/performance.md)."""

from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from tests.support.browsing import api_requests, ring_anchors, slide, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Counts each chart's redraws (Plotly emits plotly_afterplot once per drawing call).
COUNT_DRAWS = """(ids) => { window.__draws = {};
  for (const id of ids) { window.__draws[id] = 0;
    document.getElementById(id).on('plotly_afterplot', () => { window.__draws[id]++; }); } }"""


def draws(page) -> dict:
    return page.evaluate("() => ({ ...window.__draws })")


def test_the_family_map_size_slider_redraws_the_counts_but_not_the_diagram(page):
    page.goto("/playgrounds/family-map/?method=lora")
    wait_ready(page, "family-root")
    page.evaluate(COUNT_DRAWS, ["block-diagram", "count-chart"])
    counts = page.evaluate("() => Array.from(document.getElementById('count-chart').data[0].x)")
    page.locator("#knob-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#knob-value")).to_have_text("16")
    assert page.evaluate("() => Array.from(document.getElementById('count-chart').data[0].x)") != counts
    assert draws(page) == {"block-diagram": 0, "count-chart": 1}


def test_the_adapter_diagram_redraws_its_shapes_without_recomputing_the_chart(page):
    page.goto("/playgrounds/adapter-block/")
    wait_ready(page, "adapter-root")
    # Plotly recomputes a chart's calcdata on a full redraw; redrawing only shapes and notes keeps it.
    page.evaluate("() => { window.__calcdata = document.getElementById('diagram').calcdata; }")
    width = "() => document.getElementById('diagram').layout.shapes[2].x1"
    before = page.evaluate(width)
    slide(page, "#bottleneck-slider", 3)
    expect(page.locator("#bottleneck-value")).not_to_have_text("64")
    assert page.evaluate(width) != before
    assert page.evaluate("() => document.getElementById('diagram').calcdata === window.__calcdata")


KEEP_CALCDATA = (
    "(ids) => { window.__calc = Object.fromEntries(ids.map((id) => [id, document.getElementById(id).calcdata])); }"
)
SAME_CALCDATA = "(ids) => ids.filter((id) => document.getElementById(id).calcdata === window.__calc[id])"


def test_a_slider_that_moves_only_a_chosen_point_moves_its_ring_without_redrawing_the_chart(page):
    # P14: the block size moves the chosen-B rings of the error and overhead curves (their curves
    # do not depend on it) and redraws the charts whose bars it changes.
    page.goto("/playgrounds/qlora/")
    wait_ready(page, "qlora-root")
    charts = ["mse-chart", "bits-chart", "error-chart", "levels-chart"]
    page.evaluate(KEEP_CALCDATA, charts)
    slide(page, "#block-slider", 6)  # B = 1024
    page.wait_for_function("() => document.getElementById('block-value').textContent === '1024'")
    assert [x for x, _ in ring_anchors(page, "mse-chart")] == [1024]
    assert [x for x, _ in ring_anchors(page, "bits-chart")] == [1024]
    assert page.evaluate(SAME_CALCDATA, charts) == ["mse-chart", "bits-chart"]
    # The double quantisation toggle moves the overhead ring to the other curve.
    ((_, single),) = ring_anchors(page, "bits-chart")
    page.locator("#dq-check").click()
    page.wait_for_function(f"() => document.getElementById('bits-chart').layout.shapes[0].yanchor !== {single}")
    assert page.evaluate(SAME_CALCDATA, ["bits-chart"]) == ["bits-chart"]

    # P20: the rank moves the ring on the count curve, which only d changes.
    page.goto("/playgrounds/freeze-attach-merge/?d=4096&r=8")
    wait_ready(page, "fam-root")
    page.evaluate(KEEP_CALCDATA, ["count-chart"])
    assert ring_anchors(page, "count-chart") == [(8, 2 * 4096 * 8)]
    page.locator("#r-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#r-value")).to_have_text("16")
    assert ring_anchors(page, "count-chart") == [(16, 2 * 4096 * 16)]
    assert page.evaluate(SAME_CALCDATA, ["count-chart"]) == ["count-chart"]


def asked_tasks(urls: list) -> list:
    """(true rank, noise) of each request to the low-rank lab's API ((None, None): the defaults)."""
    out = []
    for url in urls:
        q = parse_qs(urlparse(url).query)
        out.append((q.get("true_rank", [None])[0], q.get("noise", [None])[0]))
    return out


def test_the_low_rank_lab_draws_a_task_seen_or_asked_for_before_without_a_request(page):
    requests = api_requests(page, "low-rank-lab")
    page.goto("/playgrounds/low-rank-lab/")
    wait_ready(page, "lab-root")
    # Once a task is shown, the tasks one step away on the k and σ sliders are asked for in the
    # background, each once.
    page.wait_for_load_state("networkidle")
    assert asked_tasks(requests) == [(None, None), ("2", "0.3"), ("4", "0.3"), ("3", "0.25"), ("3", "0.35")]
    truth = "() => JSON.stringify(document.getElementById('heatmap-true').data[0].z)"
    first = page.evaluate(truth)
    step = (
        "(v) => { const s = document.getElementById('k-slider'); s.value = v;"
        " s.dispatchEvent(new Event('input', { bubbles: true }));"
        " s.dispatchEvent(new Event('change', { bubbles: true })); }"
    )
    asked = len(requests)
    page.evaluate(step, 4)  # asked for already: drawn without a request of its own
    page.wait_for_function(f"(z) => ({truth})() !== z", arg=first)
    wait_ready(page, "lab-root")
    expect(page.locator("#k-value")).to_have_text("4")
    assert ("4", "0.3") not in asked_tasks(requests[asked:])
    page.wait_for_load_state("networkidle")
    asked = len(requests)
    page.evaluate(step, 3)  # back to the task the page opened with
    page.wait_for_function(f"(z) => ({truth})() === z", arg=first)
    expect(page.locator("#k-value")).to_have_text("3")
    page.wait_for_load_state("networkidle")
    assert requests[asked:] == []  # its neighbours were asked for too
    assert len(set(requests)) == len(requests), requests


def test_charts_skip_plotlys_tick_label_overflow_check_except_where_it_hides_a_label(page):
    page.goto("/playgrounds/memory-calculator/")
    wait_ready(page, "memory-root")
    overflow = "(id) => document.getElementById(id)._fullLayout.yaxis.ticklabeloverflow"
    assert page.evaluate(overflow, "memory-chart") == "allow"
    # Plotly hides one of the storage chart's labels at the chart's edge: that chart keeps it.
    assert page.evaluate(overflow, "storage-chart") == "hide past div"
