"""The training page while a run waits, in Chromium against the real lab: a queued run's place in
the queue and estimated start before its first point, the chart brought into view when Train is
pressed on a phone, "stopping after this step" as soon as a cancel is taken, and what the run does
after its last step."""

import os
import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_browser import TRAIN_TIMEOUT_MS, open_train_page, run_id_of, wait_for_status
from tests.support.browsing import SCREENSHOTS, shot
from tests.support.labstack import Lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}


def shots(page, name: str, *show: str) -> None:
    """The whole page, and what the screen shows (after scrolling each of `show` into view)."""
    shot(page, name)
    if os.environ.get("PEFTLAB_SCREENSHOTS") == "0":
        return
    for i, selector in enumerate(show or [None]):
        if selector:
            page.locator(selector).scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / f"{name}-screen{i or ''}.png"), animations="disabled")


def chart_in_view(page) -> bool:
    """Whether the whole chart lies in the viewport, once a smooth scroll has settled."""
    return page.evaluate(
        """() => new Promise((resolve) => {
            let last = -1;
            const look = () => {
                if (window.scrollY !== last) { last = window.scrollY; setTimeout(look, 150); return; }
                const box = document.getElementById('loss-chart').getBoundingClientRect();
                resolve(box.top >= 0 && box.bottom <= window.innerHeight && box.height > 0);
            };
            setTimeout(look, 150);
        })"""
    )


# Every text the status line and the cancel button show from now on, in order (a fast worker may
# stop within a redraw, so what was shown is asserted over the whole sequence, not at one moment).
SEEN_TEXTS = """() => {
    const watch = (id, seen, shown) => {
        const node = document.getElementById(id);
        new MutationObserver(() => seen.push(shown(node)))
            .observe(node, { childList: true, characterData: true, subtree: true, attributes: true });
    };
    window.seenTexts = [];
    window.buttonTexts = [];
    watch('progress-text', window.seenTexts, (node) => node.textContent);
    watch('cancel-button', window.buttonTexts, (node) => `${node.textContent} (${node.disabled ? 'disabled' : 'enabled'})`);
}"""


def train(page, steps: int, method: str | None = None, **params) -> int:
    if method is not None:
        page.select_option("#f-method", method)
    page.fill("#f-steps", str(steps))
    for name, value in params.items():
        page.fill(f"#p-{name}", str(value))
    before = page.url
    page.click("#train-button")
    page.wait_for_url(lambda url: url != before)
    return run_id_of(page)


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_a_queued_run_says_its_place_and_a_cancel_says_stopping_at_once(page, embedded_lab, size):
    page.set_viewport_size(VIEWPORTS[size])
    open_train_page(page)
    long_run = train(page, 2000, rank=4)
    # Pressing Train brought the chart into view (on a phone it is below the form and the CSV panel).
    assert chart_in_view(page)
    page.wait_for_function(
        "() => { const c = document.getElementById('loss-chart'); return c.data && c.data[0].x.length >= 2; }",
        timeout=TRAIN_TIMEOUT_MS,
    )
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^running: \d+ of 2000 steps · about .+ left$"))
    shots(page, f"waiting-{size}-mid-run")

    # A second run waits behind the first: its place and estimated start before its first point.
    # (A BitFit run: a LoRA run would join the first one's pack and start at its next step.)
    page.evaluate("window.scrollTo(0, 0)")
    short_run = train(page, 3, method="bitfit", eval_every=0)
    assert short_run != long_run and chart_in_view(page)
    expect(page.locator("#progress-text")).to_have_text(
        re.compile(r"^queued: 1st in the queue \(1 training now\) · starts in about \d+(\.\d)? (s|min)$")
    )
    expect(page.locator("#loss-chart")).to_contain_text("Waiting for the first step")
    shots(page, f"waiting-{size}-queued")

    # Cancel the first run from its own view: the page says it is stopping as soon as the cancel
    # is taken, before the stream's final status.
    page.locator(f'#runs a[data-run="{long_run}"]').click()
    wait_for_status(page, "running")
    assert chart_in_view(page)  # opened from the list (below the chart on a phone), its chart shows
    page.evaluate(SEEN_TEXTS)
    with page.expect_response(lambda r: r.url.endswith(f"/api/runs/{long_run}/cancel")) as answer:
        page.click("#cancel-button")
    assert answer.value.status == 202
    if page.evaluate("() => document.getElementById('train-root').dataset.runStatus") == "running":
        shots(page, f"waiting-{size}-stopping", "#cancel-button", "#progress-text")
    wait_for_status(page, "cancelled", timeout=30_000)
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^cancelled: \d+ of 2000 steps$"))
    expect(page.locator("#cancel-button")).to_have_text("Cancel")
    # While it stopped, the button said so and could not be pressed again.
    buttons = page.evaluate("() => window.buttonTexts")
    assert "Stopping after this step… (disabled)" in buttons, buttons
    assert "Stopping after this step… (enabled)" not in buttons, buttons
    seen = page.evaluate("() => window.seenTexts")
    stopping = [
        i for i, t in enumerate(seen) if re.match(r"^running: \d+ of 2000 steps · stopping after this step…$", t)
    ]
    assert stopping and stopping[0] < seen.index(next(t for t in seen if t.startswith("cancelled:"))), seen

    # The second run starts; after its last step the page says what it is doing.
    page.locator(f'#runs a[data-run="{short_run}"]').click()
    page.wait_for_function(
        """() => /final evaluation/.test(document.getElementById('progress-text').textContent)""",
        timeout=TRAIN_TIMEOUT_MS,
        polling=50,
    )
    text = page.locator("#progress-text").text_content()
    assert re.match(
        r"^running: [23] of 3 steps · (the last step, then the final evaluation and measurements…"
        r"|final evaluation done; end-of-run measurements…)",
        text,
    ), text
    assert "about 0 s left" not in text
    shots(page, f"waiting-{size}-after-last-step", "#run-title")
    wait_for_status(page, "succeeded")
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^succeeded: 3 of 3 steps$"))


def test_a_run_whose_worker_stops_says_it_is_queued_again_and_trains_again(browser, tmp_path):
    """Its worker stopped mid-run (docker stop, Ctrl-C, a lost Redis): the run is back in the
    queue with its points kept (lifecycle.put_back), and the page says so rather than showing a
    plain queued run beside a chart of steps; the next worker trains it again, as attempt 2."""
    lab = Lab(tmp_path)
    lab.manage("migrate", "--noinput")
    lab.start("web")
    lab.start("worker")
    context = browser.new_context(base_url=lab.base_url, viewport=VIEWPORTS["desktop"])
    try:
        page = context.new_page()
        open_train_page(page)
        run_id = train(page, 2000, rank=4)
        lab.wait_for(run_id, statuses=("running",), min_steps=3)
        lab.stop("worker")
        wait_for_status(page, "queued", timeout=30_000)
        expect(page.locator("#progress-text")).to_have_text(
            "queued again: its worker stopped during attempt 1, whose points are kept; it trains again "
            "from step 1 · 1st in the queue · starts as soon as a worker takes it"
        )
        drawn = page.evaluate("() => document.getElementById('loss-chart').data[0].x.length")
        assert drawn >= 3  # the first attempt's steps stay on the chart while it waits
        shots(page, "waiting-desktop-queued-again")
        lab.start("worker")
        wait_for_status(page, "running", timeout=TRAIN_TIMEOUT_MS)
        expect(page.locator("#loss-chart")).to_contain_text("attempt 2")
        expect(page.locator("#progress-text")).to_have_text(re.compile(r"^running: \d+ of 2000 steps"))
    finally:
        context.close()
        lab.stop_all()
