"""Seeing is not acting, in the browser: a visitor who opens someone else's public run watches it
live, and its Cancel button is off with the reason; the run's owner cancels it."""

import re

import pytest
from playwright.sync_api import expect

from tests.support.browsing import expect_console_error, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_another_visitor_watches_a_public_run_but_cannot_cancel_it(page, embedded_lab):
    run = embedded_lab.create_run(steps=300)  # the lab's own client: another browser session
    page.goto(f"/train/?run={run['id']}")
    expect(page.locator("#run-title")).to_have_text(re.compile(rf"^Run {run['id']}: lora on sentiment"))
    button = page.locator("#cancel-button")
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", "Only who started this run, or their teacher, can cancel it.")
    expect(page.locator("#cancel-note")).to_have_text("Only who started this run, or their teacher, can cancel it.")
    # The API says the same to this browser, and would not cancel it.
    expect_console_error(page, r"status of 404 .*/api/runs/\d+/cancel")
    status = page.evaluate(
        """async (id) => {
        const token = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1];
        const r = await fetch(`/api/runs/${id}/cancel`, { method: "POST", body: "{}",
            headers: { "Content-Type": "application/json", "X-CSRFToken": token } });
        return [r.status, (await r.json()).error]; }""",
        run["id"],
    )
    assert status == [404, f"there is no run {run['id']}"]
    shot(page, "train-someone-elses-run")
    assert embedded_lab.run(run["id"])["status"] in ("queued", "running")
    # Its owner can.
    assert embedded_lab.post(f"/api/runs/{run['id']}/cancel", {}).status_code == 202
    expect(page.locator("#run-title")).to_have_attribute("data-status", "cancelled", timeout=60_000)
    expect(page.locator("#cancel-note")).to_be_hidden()  # a finished run needs no reason
