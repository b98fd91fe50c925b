"""P23 rank against data size and P24 target modules in a real browser, on the embedded lab with
its real worker: the empty state, a tiny sweep started from the form, points appearing as runs
finish, ?experiment=<id> reopening it, and the latest finished one shown by default."""

import pytest
from playwright.sync_api import expect

from tests.support.browsing import expect_console_error, plot_data, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]
READY = '#exp-root[data-ready="1"]'
WAIT_MS = 600_000  # a few seconds a run on an idle 2-core CPU; far longer on a shared one


@pytest.fixture(scope="module")
def embedded_lab(empty_lab):
    """A lab of this module's own: its first test sees the lab before any sweep."""
    return empty_lab


def test_a_tiny_rank_sweep_fills_the_charts_as_its_runs_finish(page):
    page.goto("/playgrounds/rank-vs-data/?ranks=1,8&sizes=16&steps=2")
    page.wait_for_selector(READY, state="attached")
    # Nothing has run on this lab: the plan, with its formula counts, and no invented points.
    expect(page.locator("#exp-root")).to_have_attribute("data-state", "plan")
    expect(page.locator("#exp-status")).to_contain_text("No rank sweep has run yet")
    expect(page.locator("#exp-runs tbody tr")).to_have_count(12)
    assert not plot_data(page, "acc-chart", 0, "y")
    assert "No runs yet" in page.evaluate("document.getElementById('acc-chart').layout.annotations[0].text")
    expect(page.locator("#exp-ranks")).to_have_value("1,8")
    shot(page, "rank-vs-data-empty")

    page.locator("#exp-start").click()
    expect(page.locator("#exp-runs tbody tr")).to_have_count(2)
    assert "experiment=" in page.url
    page.wait_for_selector('#exp-root[data-state="finished"]', state="attached", timeout=WAIT_MS)
    expect(page.locator('#exp-runs tbody tr[data-status="succeeded"]')).to_have_count(2)
    assert plot_data(page, "acc-chart", 0, "x") == [1, 8]
    assert all(0 <= y <= 1 for y in plot_data(page, "acc-chart", 0, "y"))
    assert len(plot_data(page, "loss-chart", 1, "y")) == 2  # the training loss at each rank
    shot(page, "rank-vs-data-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "rank-vs-data-390", settle_ms=300)

    # The URL reopens it; without one, the latest finished sweep shows.
    url = page.url
    page.goto(url)
    page.wait_for_selector('#exp-root[data-state="finished"]', state="attached")
    page.goto("/playgrounds/rank-vs-data/")
    page.wait_for_selector(READY, state="attached")
    expect(page.locator("#exp-status")).to_contain_text("latest finished experiment")
    assert plot_data(page, "acc-chart", 0, "x") == [1, 8]
    page.locator("#exp-runs tbody a").first.click()
    page.wait_for_url("**/train/?run=*")


def test_a_target_sweep_plots_accuracy_against_parameters(page):
    page.goto("/playgrounds/target-modules/?steps=1&rank=2")
    page.wait_for_selector(READY, state="attached")
    expect(page.locator("#exp-root")).to_have_attribute("data-state", "plan")
    expect(page.locator("#exp-runs tbody tr")).to_have_count(4)
    page.locator("#exp-start").click()
    page.wait_for_selector('#exp-root[data-state="finished"]', state="attached", timeout=WAIT_MS)
    xs = plot_data(page, "targets-chart", 0, "x")
    assert len(xs) == 4 and xs == sorted(xs)
    assert plot_data(page, "targets-chart", 0, "text") == ["Q", "QV", "QKVO", "QKVO+FFN"]
    shot(page, "target-modules-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "target-modules-390", settle_ms=300)


def test_bad_input_says_why(page):
    page.goto("/playgrounds/rank-vs-data/?ranks=1,999")
    page.wait_for_selector(READY, state="attached")
    expect_console_error(page, "status of 400")
    page.locator("#exp-start").click()
    expect(page.locator("#exp-error")).to_contain_text("rank must be between 1 and")
