"""P17 in a real browser against the real lab: start a race, watch four curves grow, see the
table complete; reopen it from its URL; phone width."""

import re

import pytest
from playwright.sync_api import expect

from tests.support.browsing import SCREENSHOTS, plot_data, query, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

URL = "/playgrounds/four-method-race/"
STEPS = 6
RACE_TIMEOUT_MS = 480_000  # four lanes, in turn in one process, on a busy 2-core machine


def lengths(page):
    return [len(plot_data(page, "loss-chart", i) or []) for i in range(4)]


def test_a_race_draws_four_curves_and_fills_the_table(page):
    page.goto(URL)
    page.wait_for_selector('#race-root[data-ready="1"]', state="attached")
    expect(page.locator("#race-lanes select")).to_have_count(4)
    expect(page.locator("#lane-0")).to_have_value("full")
    expect(page.locator("#lane-3")).to_have_value("prompt")
    expect(page.locator("#diagrams .diagram")).to_have_count(4)
    shot(page, "race-before")

    # Swap a lane: its diagram follows, and so does the URL.
    page.select_option("#lane-3", "ia3")
    expect(page.locator("#diagrams .diagram").nth(3).locator("h3")).to_contain_text("IA3")
    page.select_option("#lane-3", "prompt")
    page.fill("#race-steps", str(STEPS))
    page.locator("#race-steps").dispatch_event("change")
    assert f"steps={STEPS}" in page.url

    page.click("#race-start")
    page.wait_for_url(re.compile(r"\?race=\d+$"))
    expect(page.locator("#results tbody tr")).to_have_count(4)
    # The curves grow together while the race runs: every lane draws before any has finished.
    page.wait_for_function(
        "() => (document.getElementById('race-root').dataset.points || '').split(',')"
        ".filter((n) => Number(n) > 0).length === 4",
        timeout=RACE_TIMEOUT_MS,
    )
    mid = lengths(page)
    assert min(mid) > 0 and max(mid) < STEPS
    shot(page, "race-running")
    page.wait_for_selector('#race-root[data-state="finished"]', state="attached", timeout=RACE_TIMEOUT_MS)
    page.wait_for_function(
        f"() => document.getElementById('race-root').dataset.points === '{','.join([str(STEPS)] * 4)}'"
    )
    assert lengths(page) == [STEPS] * 4 and sum(mid) < 4 * STEPS
    assert all(len(plot_data(page, "acc-chart", i) or []) >= 2 for i in range(4))

    rows = page.locator("#results tbody tr")
    for i in range(4):
        expect(rows.nth(i)).to_have_attribute("data-status", "succeeded")
        cells = rows.nth(i).locator("td")
        for c in range(2, 10):
            expect(cells.nth(c)).not_to_have_text("—")
    expect(rows.nth(2).locator("td").nth(10)).to_contain_text("ms")  # LoRA merges
    expect(rows.nth(0).locator("td").nth(10)).to_have_text("not mergeable")
    expect(page.locator("#race-status")).to_contain_text("succeeded")
    shot(page, "race-finished")

    # The URL reopens the race: the curves come again from the stream, the table completes.
    url = page.url
    page.goto(url)
    page.wait_for_selector('#race-root[data-state="finished"]', state="attached", timeout=30_000)
    page.wait_for_function(
        f"() => document.getElementById('race-root').dataset.points === '{','.join([str(STEPS)] * 4)}'"
    )
    expect(page.locator('#results tbody tr[data-status="succeeded"]')).to_have_count(4)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(url)
    page.wait_for_selector('#race-root[data-state="finished"]', state="attached", timeout=30_000)
    page.wait_for_function(
        "() => document.getElementById('loss-chart').data && document.getElementById('loss-chart').data.length === 8"
    )
    box = page.locator("#loss-chart .main-svg").first.bounding_box()
    assert box["width"] <= 390
    shot(page, "race-phone")
    # Close-ups, to look at the parts a phone squeezes hardest.
    for element, name in (("#loss-chart", "race-phone-loss"), ("#results", "race-phone-results")):
        page.locator(element).screenshot(path=str(SCREENSHOTS / f"{name}.png"), animations="disabled")


def test_bad_input_says_why(page):
    page.goto(URL)
    page.wait_for_selector('#race-root[data-ready="1"]', state="attached")
    page.fill("#race-steps", "0")
    page.click("#race-start")
    expect(page.locator("#race-error")).to_contain_text("Budget")
    expect(page.locator("#race-root")).to_have_attribute("data-state", "idle")


def x_title(page, chart):
    return page.evaluate(f"() => document.getElementById('{chart}').layout.xaxis.title.text")


def test_the_x_axis_shows_steps_or_each_lanes_own_seconds(page, embedded_lab):
    page.goto(URL)
    page.wait_for_selector('#race-root[data-ready="1"]', state="attached")
    expect(page.locator("#race-x-note")).to_contain_text("Per step: which method learns more from each batch")
    expect(page.locator("#race-x-note")).to_contain_text("each lane timed on its own steps")
    # A small race of two lanes (the API takes any number), started by this page's session.
    race_id = page.evaluate(
        """async () => {
        const token = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1];
        const r = await fetch("/api/races", { method: "POST", headers: { "Content-Type": "application/json",
            "X-CSRFToken": token }, body: JSON.stringify({ task: "sentiment", steps: 3, methods: ["lora", "bitfit"] }) });
        return (await r.json()).id; }"""
    )
    page.goto(f"{URL}?race={race_id}")
    page.wait_for_selector('#race-root[data-state="finished"]', state="attached", timeout=RACE_TIMEOUT_MS)
    page.wait_for_function("() => document.getElementById('race-root').dataset.points === '3,3'")
    race = embedded_lab.client.get(f"/api/races/{race_id}").json()
    runs = [embedded_lab.run(run["id"]) for run in race["runs"]]
    elapsed = [[p["elapsed"] for p in run["points"]] for run in runs]
    assert all(0 < a < b < c for a, b, c in elapsed)
    expect(page.locator('#race-x input[value="steps"]')).to_be_checked()
    assert x_title(page, "loss-chart") == "training step" and plot_data(page, "loss-chart", 1) == [1, 2, 3]

    # Seconds: every lane against its own training seconds, its evaluations at their steps' seconds.
    page.check('#race-x input[value="seconds"]')
    page.wait_for_selector('#race-root[data-x="seconds"]', state="attached")
    assert query(page) == {"race": str(race_id), "x": "seconds"}
    for chart in ("loss-chart", "acc-chart"):
        assert x_title(page, chart) == "training seconds (each lane's own steps)"
    for lane in range(2):
        assert plot_data(page, "loss-chart", lane) == elapsed[lane]
        assert plot_data(page, "acc-chart", lane) == elapsed[lane]  # evaluated every step
    shot(page, "race-seconds")

    # The URL keeps the choice.
    page.reload()
    page.wait_for_selector('#race-root[data-state="finished"]', state="attached", timeout=30_000)
    page.wait_for_function("() => document.getElementById('race-root').dataset.points === '3,3'")
    expect(page.locator('#race-x input[value="seconds"]')).to_be_checked()
    assert plot_data(page, "loss-chart", 0) == elapsed[0]

    # And back to steps.
    page.check('#race-x input[value="steps"]')
    page.wait_for_selector('#race-root[data-x="steps"]', state="attached")
    assert query(page) == {"race": str(race_id)}
    assert x_title(page, "acc-chart") == "training step"
    assert plot_data(page, "loss-chart", 0) == [1, 2, 3] and plot_data(page, "acc-chart", 1) == [1, 2, 3]
