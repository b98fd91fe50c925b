"""The run budget on the training page: the estimated worker time shows before a run is queued,
turns into a warning past the budget, and the refusal says what fits."""

import re

import pytest
from playwright.sync_api import expect

from tests.support.browsing import expect_console_error, shot
from workers import run_cost

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_training_page_shows_the_estimate_and_the_budget_before_train_is_pressed(page):
    page.goto("/train/")
    estimate = page.locator("#estimate")
    machine = re.escape(run_cost.machine())
    expect(estimate).to_have_text(
        re.compile(
            rf"^Estimated worker time: about \d+ s \(from runs measured on {machine}\); "
            r"this lab \(outside a class\) allows 5\.0 min per run\.$"
        )
    )
    expect(estimate).not_to_have_class(re.compile(r"\berror\b"))
    page.select_option("#f-method", "full")
    page.fill("#f-steps", "2000")
    page.fill("#p-batch_size", "256")
    expect(estimate).to_have_text(
        re.compile(
            r"about \d+\.\d min .*: over the 5\.0 min this lab \(outside a class\) "
            r"allows per run\. Fewer steps or a smaller batch fit\.$"
        )
    )
    expect(estimate).to_have_class(re.compile(r"\berror\b"))
    expect_console_error(page, r"status of 400 .*/api/runs:")  # the refusal, answered 400
    page.click("#train-button")
    expect(page.locator("#form-error")).to_contain_text("would take about")
    expect(page.locator("#form-error")).to_contain_text("to fit, use at most")
    shot(page, "train-over-budget")
    page.fill("#f-steps", "100")
    page.fill("#p-batch_size", "16")
    expect(estimate).not_to_have_class(re.compile(r"\berror\b"))
