"""P17's instant simulated race in a real browser: one request, curves for the chosen lanes,
labelled simulated, times relative to one lane, and a clear message for a method that has no fitted run."""

import pytest
from playwright.sync_api import expect

from simulations import race_sim
from tests.support.browsing import api_requests, expect_console_error, plot_data, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_simulated_race_draws_the_chosen_lanes_at_once(page):
    requests = api_requests(page, "four-method-race/simulated")
    page.goto("/playgrounds/four-method-race/")
    page.wait_for_selector('#race-root[data-ready="1"]', state="attached")
    expect(page.locator("#race-sim")).to_be_hidden()
    page.fill("#race-steps", "30")
    page.click("#race-simulate")
    page.wait_for_selector('#race-sim[data-ready="1"]', state="attached")
    expect(page.locator("#race-sim h2")).to_contain_text("simulated")
    expect(page.locator("#sim-about")).to_contain_text("fitted to a real run")
    expect(page.locator("#sim-rows tr")).to_have_count(4)
    # Time as a multiple of the LoRA lane's, measured in the same fit, the machine named: the
    # seconds of one machine at one load would mislead on another.
    about = race_sim.shipped()["about"]
    expect(page.locator("#sim-time-head")).to_have_text("training time, relative to lora")
    expect(page.locator('#sim-rows tr[data-method="lora"] td').nth(2)).to_contain_text("1.00× lora")
    expect(page.locator("#sim-about")).to_contain_text(f"on {about['device']}")
    expect(page.locator("#sim-about")).to_contain_text("as a multiple of the lora lane's")
    for lane in range(4):
        steps = plot_data(page, "sim-loss", lane, "x")
        assert steps[0] == 1 and steps[-1] == 30
        assert page.evaluate(f"() => document.getElementById('sim-loss').data[{lane}].name").endswith("(simulated)")
    assert len(requests) == 1
    shot(page, "race-simulated")

    # A lane swapped to a method with no fitted run is refused with a sentence, not invented.
    fitted = set(race_sim.shipped()["tasks"]["sentiment"])
    missing = [
        o for o in page.locator("#lane-3 option").evaluate_all("(os) => os.map((o) => o.value)") if o not in fitted
    ]
    if missing:
        page.select_option("#lane-3", missing[0])
        expect_console_error(page, "400")
        page.click("#race-simulate")
        expect(page.locator("#sim-error")).to_contain_text("cannot be simulated")
