"""The pages in a real browser: Debian's Chromium driven by Playwright against the real lab
(`manage.py lab all`: the ASGI web server and a Celery worker training all-MiniLM-L6-v2).

Every page is watched for JavaScript errors and console errors; a test fails on any it did not
declare up front with `expect_console_error`. Screenshots go to screenshots/ at the repository
root (git-ignored), one full page each, so a person can look at what the tests saw.
"""

import re
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from peftlab.pages.chapters import CHAPTERS
from tests.support.browsing import default_precision, expect_console_error, plot_data, ring_anchors, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAIN_TIMEOUT_MS = 120_000  # a 40-step CPU run, model load included, takes well under this


# --- the chapter list ---------------------------------------------------------------------------
def test_it_lists_the_chapters_marks_the_live_playground_and_says_the_others_are_coming(page):
    page.goto("/")
    expect(page).to_have_title(re.compile("Chapters"))
    chapters = page.locator("ol.chapters > li.chapter")
    expect(chapters).to_have_count(len(CHAPTERS))
    for i, chapter in enumerate(CHAPTERS):
        expect(chapters.nth(i).locator("h2")).to_have_text(f"{chapter.number}. {chapter.title}")
        expect(chapters.nth(i).locator("h2 a")).to_have_attribute("href", f"/chapters/{chapter.number}/")

    all_playgrounds = [pg for chapter in CHAPTERS for pg in chapter.playgrounds]
    expect(page.locator("ul.playgrounds > li")).to_have_count(len(all_playgrounds))
    p9 = page.locator('li[data-pid="P9"]')
    expect(p9.locator("a")).to_have_text("Low-rank approximation")
    expect(p9).to_have_class(re.compile(r"\blive\b"))
    expect(p9.locator(".badge.live")).to_have_text("live")
    expect(p9.locator("a")).to_have_attribute("href", "/playgrounds/low-rank/")
    # A playground is live once built; every other one says it is coming.
    live = [pg for pg in all_playgrounds if pg.live]
    coming = [pg for pg in all_playgrounds if not pg.live]
    expect(page.locator("ul.playgrounds > li.live")).to_have_count(len(live))
    expect(page.locator("ul.playgrounds .badge", has_text="coming")).to_have_count(len(coming))
    shot(page, "home-chapters")
    if not coming:
        return
    pg = coming[0]
    chapter = next(c for c in CHAPTERS if pg in c.playgrounds)
    page.locator(f'li[data-pid="{pg.pid}"] a').click()
    page.wait_for_url(f"**/playgrounds/{pg.slug}/")
    expect(page.locator("h1")).to_have_text(pg.title)
    expect(page.locator(".card strong")).to_have_text("This playground is coming.")
    expect(page.get_by_text(f"Chapter {chapter.number} · {chapter.title} · {pg.pid}")).to_be_visible()
    shot(page, f"coming-{pg.slug}")

    page.get_by_role("link", name="Back to the chapters").click()
    page.wait_for_url(re.compile(r"/$"))
    expect(page.locator("ol.chapters > li.chapter")).to_have_count(len(CHAPTERS))


# --- the low-rank playground -------------------------------------------------------------------
RECON_Z = "() => document.getElementById('heatmap-recon').data[0].z"


def test_it_moves_the_rank_slider_without_a_request_and_keeps_the_rank_in_the_url(page):
    api_requests = []
    page.on("request", lambda r: api_requests.append(r.url) if "/api/playgrounds/low-rank" in r.url else None)
    page.goto("/playgrounds/low-rank/")
    page.wait_for_selector('#lowrank-root[data-ready="1"]', state="attached")
    expect(page.locator("#lowrank-error")).to_be_hidden()
    expect(page.locator("#rank-value")).to_have_text("1")
    assert parse_qs(urlparse(page.url).query)["r"] == ["1"]
    assert len(api_requests) == 1, api_requests  # the page loads its matrix once

    z1 = page.evaluate(RECON_Z)
    original = page.evaluate("() => document.getElementById('heatmap-original').data[0].z")
    assert len(z1) == len(original) > 1 and len(z1[0]) == len(original[0])
    error1 = page.locator("#recon-error").inner_text()
    params1 = page.locator("#param-count").inner_text()
    assert error1 and params1
    shot(page, "lowrank-r1")

    # A script move (as a drag ends up) to r = 3 ...
    page.locator("#rank-slider").evaluate(
        "(s) => { s.value = 3; s.dispatchEvent(new Event('input', { bubbles: true })); }"
    )
    expect(page.locator("#rank-value")).to_have_text("3")
    # ... then a keyboard one, as a person tabbing to the slider would, to r = 4.
    page.locator("#rank-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#rank-value")).to_have_text("4")
    page.wait_for_function(f"(z1) => JSON.stringify(({RECON_Z})()) !== JSON.stringify(z1)", arg=z1)

    z4 = page.evaluate(RECON_Z)
    error4 = page.locator("#recon-error").inner_text()
    params4 = page.locator("#param-count").inner_text()
    assert z4 != z1
    assert error4 != error1 and float(error4) < float(error1)
    assert params4 != params1
    size = len(original)
    assert params1 == f"{1 * 2 * size:,} vs {size * size:,}"
    assert params4 == f"{4 * 2 * size:,} vs {size * size:,}"
    # The rank-4 marker on the error curve and the kept singular values follow the slider.
    assert [x for x, _ in ring_anchors(page, "error-chart")] == [4]
    colours = page.evaluate("() => document.getElementById('sv-chart').data[0].marker.color")
    assert len(set(colours[:4])) == 1 and colours[4] != colours[0]
    assert parse_qs(urlparse(page.url).query)["r"] == ["4"]
    assert len(api_requests) == 1, f"the slider asked the server: {api_requests}"
    shot(page, "lowrank-r4")

    # The URL is the state: reloading it shows rank 4 again, the same reconstruction.
    url = page.url
    page.reload()
    page.wait_for_selector('#lowrank-root[data-ready="1"]', state="attached")
    assert page.url == url
    expect(page.locator("#rank-value")).to_have_text("4")
    expect(page.locator("#rank-slider")).to_have_value("4")
    expect(page.locator("#recon-error")).to_have_text(error4)
    assert page.evaluate(RECON_Z) == z4


# --- the training page -------------------------------------------------------------------------
def open_train_page(page, query: str = "") -> None:
    page.goto(f"/train/{query}")
    page.wait_for_selector('#train-root[data-ready="1"]', state="attached")


def run_id_of(page) -> int:
    page.wait_for_url(re.compile(r"/train/\?run=\d+$"))
    return int(parse_qs(urlparse(page.url).query)["run"][0])


def wait_for_status(page, status: str, timeout=TRAIN_TIMEOUT_MS) -> None:
    page.wait_for_function(
        "(s) => document.getElementById('train-root').dataset.runStatus === s", arg=status, timeout=timeout
    )


def test_it_trains_a_run_streams_its_loss_and_reopens_it_from_the_database(page, embedded_lab):
    open_train_page(page)
    expect(page.locator("#f-method")).to_have_value("lora")
    page.fill("#f-steps", "40")
    page.fill("#p-rank", "4")
    page.click("#train-button")
    run_id = run_id_of(page)
    expect(page.locator("#run-title")).to_have_text(re.compile(rf"^Run {run_id}: lora on "))

    # Mid-run: points in the chart while the page still calls the run running.
    mid = page.wait_for_function(
        """() => { const c = document.getElementById('loss-chart');
                   const n = c.data && c.data[0] ? c.data[0].x.length : 0;
                   const text = document.getElementById('progress-text').textContent;
                   return n >= 1 && n < 40 && text.startsWith('running:') ? {n, text} : null; }""",
        timeout=TRAIN_TIMEOUT_MS,
        polling=50,
    ).json_value()
    assert re.match(r"running: \d+ of 40 steps", mid["text"]), mid
    expect(page.locator("#cancel-button")).to_be_enabled()
    shot(page, "train-mid-run")

    wait_for_status(page, "succeeded")
    steps = plot_data(page, "loss-chart", 0, "x")
    losses = plot_data(page, "loss-chart", 0, "y")
    assert steps == list(range(1, 41))
    assert len(losses) == 40 and all(loss > 0 for loss in losses)
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^succeeded: 40 of 40 steps"))
    metrics = page.locator("#metrics")
    expect(metrics).to_contain_text("validation accuracy")
    expect(metrics).to_contain_text("trainable parameters")
    expect(metrics.locator("tr", has_text="validation accuracy").locator("td")).to_have_text(re.compile(r"^\d+\.\d %$"))
    precision = metrics.locator("tr", has_text="training steps computed in").locator("td")
    expect(precision).to_have_text(default_precision())
    expect(metrics.locator("tr", has_text="trained in a pack")).to_have_count(0)  # it shared no step
    expect(page.locator("#cancel-button")).to_be_disabled()
    entry = page.locator("#runs li", has=page.locator(f'a[data-run="{run_id}"]'))
    expect(entry).to_contain_text("40 steps")
    expect(entry.locator(".status-succeeded")).to_have_text("succeeded")

    assert page.evaluate("() => document.getElementById('loss-chart').layout.yaxis.type") == "linear"
    page.check("#log-scale")
    page.wait_for_function("() => document.getElementById('loss-chart').layout.yaxis.type === 'log'")
    shot(page, "train-succeeded-log-scale")

    # What streamed is what the database kept: the curve and the metrics come back on a new load.
    assert [p["loss"] for p in embedded_lab.run(run_id)["points"]] == losses
    open_train_page(page, f"?run={run_id}")
    expect(page.locator("#run-title")).to_have_text(re.compile(rf"^Run {run_id}: lora on "))
    assert page.evaluate("() => document.getElementById('train-root').dataset.runStatus") == "succeeded"
    assert plot_data(page, "loss-chart", 0, "x") == steps
    assert plot_data(page, "loss-chart", 0, "y") == losses
    expect(page.locator("#metrics")).to_contain_text("validation accuracy")
    expect(page.locator("#metrics")).to_contain_text("trainable parameters")
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^succeeded: 40 of 40 steps"))
    shot(page, "train-reopened")


def test_it_refuses_a_zero_rank_with_a_message_and_creates_no_run(page, embedded_lab):
    open_train_page(page)
    before = embedded_lab.client.get("/api/runs", params={"limit": 500}).json()
    page.fill("#f-steps", "10")
    page.fill("#p-rank", "0")
    # Chromium logs the refused POST (400) to the console: this test provokes exactly that one.
    expect_console_error(page, r"Failed to load resource: the server responded with a status of 400")
    with page.expect_response(lambda r: r.url.endswith("/api/runs") and r.request.method == "POST") as answer:
        page.click("#train-button")
    assert answer.value.status == 400
    expect(page.locator("#form-error")).to_contain_text("rank")
    expect(page.locator("#train-button")).to_be_enabled()
    assert "run=" not in page.url
    after = embedded_lab.client.get("/api/runs", params={"limit": 500}).json()
    assert len(after) == len(before) and [r["id"] for r in after] == [r["id"] for r in before]
    shot(page, "train-rank-zero-refused")


def test_it_cancels_a_long_run_and_keeps_its_points(page, embedded_lab):
    open_train_page(page)
    page.fill("#f-steps", "2000")
    page.fill("#p-rank", "4")
    page.click("#train-button")
    run_id = run_id_of(page)
    page.wait_for_function(
        "() => { const c = document.getElementById('loss-chart'); return c.data && c.data[0].x.length >= 3; }",
        timeout=TRAIN_TIMEOUT_MS,
    )
    before = len(plot_data(page, "loss-chart", 0, "x"))
    page.click("#cancel-button")
    wait_for_status(page, "cancelled", timeout=30_000)

    steps = plot_data(page, "loss-chart", 0, "x")
    assert len(steps) >= before and steps == list(range(1, len(steps) + 1))
    run = embedded_lab.run(run_id)
    assert run["status"] == "cancelled" and len(run["points"]) == len(steps) < 2000
    expect(page.locator("#progress-text")).to_have_text(re.compile(rf"^cancelled: {len(steps)} of 2000 steps"))
    expect(page.locator("#cancel-button")).to_be_disabled()
    expect(page.locator(f'#runs a[data-run="{run_id}"]')).to_be_visible()
    expect(
        page.locator("#runs li", has=page.locator(f'a[data-run="{run_id}"]')).locator(".status-cancelled")
    ).to_have_text("cancelled")
    shot(page, "train-cancelled")
