"""P6 Lottery ticket and P7 Intrinsic dimension in a real browser against the real lab.

Sliders and menus that only index the fetched results must not ask the server again; the
settings that need new training runs (seed, scope) fetch once. The URL holds the whole state.
"""

import pytest
from playwright.sync_api import expect

from tests.support.browsing import plot_data, query, ring_anchors, shot, slide, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAIN_MS = 60_000  # a first request trains ~15 tiny networks: seconds, not minutes


def test_it_slides_through_the_lottery_sparsities_and_restores_them_from_the_url(page):
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "/api/playgrounds/lottery-ticket" in r.url else None)
    page.goto("/playgrounds/lottery-ticket/")
    wait_ready(page, "lottery-root")
    expect(page.locator("#lottery-error")).to_be_hidden()
    assert len(requests) == 1
    assert query(page) == {"seed": "0", "scope": "global", "s": "90", "layer": "2"}
    expect(page.locator("#sparsity-value")).to_have_text("90 %")
    for trace, name in enumerate(["lottery ticket", "random mask", "pruned, no retraining"]):
        assert page.evaluate(f"() => document.getElementById('accuracy-chart').data[{trace}].name") == name
        assert len(plot_data(page, "accuracy-chart", trace, "y")) == 8
    expect(page.locator("#verdict")).to_contain_text("The ticket survives sparser than chance")
    ticket90 = page.locator("#acc-ticket").inner_text()
    kept90 = page.locator("#kept").inner_text()
    mask90 = page.evaluate("() => document.getElementById('mask-chart').data[0].z")
    assert len(mask90) == 32 and len(mask90[0]) == 32
    shot(page, "lottery-ticket-90")

    # The slider (keyboard, as a person would) moves to 95 %: numbers, marker and mask change.
    page.locator("#sparsity-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#sparsity-value")).to_have_text("95 %")
    assert page.locator("#acc-ticket").inner_text() != ticket90
    assert page.locator("#kept").inner_text() != kept90
    assert page.evaluate("() => document.getElementById('mask-chart').data[0].z") != mask90
    [(marker_x, _)] = ring_anchors(page, "accuracy-chart")
    slide(page, "#sparsity-slider", 2)
    expect(page.locator("#sparsity-value")).to_have_text("40 %")
    [(moved_x, moved_y)] = ring_anchors(page, "accuracy-chart")
    ticket = page.evaluate("() => document.getElementById('accuracy-chart').data[0]")
    assert moved_x != marker_x and moved_y == pytest.approx(ticket["y"][ticket["x"].index(moved_x)])

    # The layer menu switches the heatmap to the 2 × 32 input layer.
    page.select_option("#layer-select", "0")
    page.wait_for_function("() => document.getElementById('mask-chart').data[0].z.length === 2")
    assert query(page)["layer"] == "1" and query(page)["s"] == "40"
    assert len(requests) == 1, f"the slider or menu asked the server: {requests}"

    # Scope and seed retrain: one request each, and new curves.
    ticket_curve = plot_data(page, "accuracy-chart", 0, "y")
    page.select_option("#scope-select", "layer")
    page.wait_for_function("() => new URLSearchParams(location.search).get('scope') === 'layer'", timeout=TRAIN_MS)
    wait_ready(page, "lottery-root")
    expect(page.locator("#scope-help")).to_contain_text("Each layer")
    layer_curve = plot_data(page, "accuracy-chart", 0, "y")
    assert layer_curve != ticket_curve
    page.click("#new-seed")
    page.wait_for_function("() => new URLSearchParams(location.search).get('seed') === '1'", timeout=TRAIN_MS)
    wait_ready(page, "lottery-root")
    expect(page.locator("#seed-input")).to_have_value("1")
    assert plot_data(page, "accuracy-chart", 0, "y") != layer_curve
    assert len(requests) == 3
    # With seed 1, layer by layer, both stay within a point up to 60 %; the ticket leads after.
    expect(page.locator("#verdict")).to_contain_text("Past that the ticket still keeps more accuracy")
    slide(page, "#sparsity-slider", 6)
    shot(page, "lottery-ticket-layer-seed1-95")

    url, state = page.url, query(page)
    assert state == {"seed": "1", "scope": "layer", "s": "95", "layer": "1"}
    acc = page.locator("#acc-random").inner_text()
    page.reload()
    wait_ready(page, "lottery-root")
    assert page.url == url
    expect(page.locator("#scope-select")).to_have_value("layer")
    expect(page.locator("#layer-select")).to_have_value("0")
    expect(page.locator("#sparsity-slider")).to_have_value("6")
    expect(page.locator("#acc-random")).to_have_text(acc)


def test_it_slides_through_subspace_sizes_and_restores_them_from_the_url(page):
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "/api/playgrounds/intrinsic-dimension" in r.url else None)
    page.goto("/playgrounds/intrinsic-dimension/")
    wait_ready(page, "intrinsic-root")
    expect(page.locator("#intrinsic-error")).to_be_hidden()
    assert query(page) == {"seed": "0", "d": "10"}
    expect(page.locator("#d-value")).to_have_text("10")
    assert plot_data(page, "accuracy-chart", 0, "x")[-1] == 1251
    d90 = page.locator("#d90").inner_text()
    assert d90.startswith("50 (")
    expect(page.locator("#d90-text")).to_have_text(d90)
    expect(page.locator("#source-share")).to_have_text("0.000071 %")
    acc10 = page.locator("#acc-d").inner_text()
    loss10 = plot_data(page, "loss-chart", 0, "y")
    shot(page, "intrinsic-dimension-d10")

    page.locator("#d-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#d-value")).to_have_text("20")
    assert page.locator("#acc-d").inner_text() != acc10
    assert plot_data(page, "loss-chart", 0, "y") != loss10
    slide(page, "#d-slider", 6)
    expect(page.locator("#d-value")).to_have_text("100")
    assert query(page)["d"] == "100"
    assert [x for x, _ in ring_anchors(page, "accuracy-chart")] == [100]
    assert len(requests) == 1, f"the slider asked the server: {requests}"

    curve = plot_data(page, "accuracy-chart", 0, "y")
    page.fill("#seed-input", "2")
    page.locator("#seed-input").dispatch_event("change")
    page.wait_for_function("() => new URLSearchParams(location.search).get('seed') === '2'", timeout=TRAIN_MS)
    wait_ready(page, "intrinsic-root")
    assert plot_data(page, "accuracy-chart", 0, "y") != curve
    expect(page.locator("#d-value")).to_have_text("100")  # the chosen d survives a new draw
    assert len(requests) == 2
    shot(page, "intrinsic-dimension-seed2-d100")

    url, acc = page.url, page.locator("#acc-d").inner_text()
    page.reload()
    wait_ready(page, "intrinsic-root")
    assert page.url == url
    expect(page.locator("#seed-input")).to_have_value("2")
    expect(page.locator("#d-slider")).to_have_value("6")
    expect(page.locator("#acc-d")).to_have_text(acc)
