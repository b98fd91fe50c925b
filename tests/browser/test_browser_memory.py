"""P2 Memory calculator in a real browser: every control changes what is shown, sliders ask the
server nothing, the URL is the state, and the lab's measured runs sit beside the prediction."""

import re
import time
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from tests.support.browsing import expect_console_error, plot_data, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

URL = "/playgrounds/memory-calculator/"
API = "/api/playgrounds/memory-calculator"
READY = '#memory-root[data-ready="1"][data-loading="0"]'


@pytest.fixture(scope="module")
def embedded_lab(empty_lab):
    """A lab of this module's own: it shows the calculator before any run, then beside one."""
    return empty_lab


def open_page(page, query=""):
    page.goto(URL + query)
    page.wait_for_selector(READY, state="attached")
    expect(page.locator("#memory-error")).to_be_hidden()


def enter(page, selector, value):
    """Type a value and press Enter, as a person does to commit a number field."""
    page.locator(selector).fill(value)
    page.locator(selector).press("Enter")


def total(page, method="full-mixed"):
    return page.locator(f'#totals-table td[data-method="{method}"]').inner_text()


def chart_y(page):
    return page.evaluate("() => document.getElementById('memory-chart').data.map(t => Array.from(t.y))")


def state(page):
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def refetched(page, action):
    """Do `action`, then wait for the page to fetch and redraw."""
    with page.expect_response(lambda r: "/api/playgrounds/memory-calculator?" in r.url):
        action()
    page.wait_for_selector(READY, state="attached")
    expect(page.locator("#memory-error")).to_be_hidden()


def test_it_moves_every_control_and_keeps_the_state_in_the_url(page):
    api = []
    page.on("request", lambda r: api.append(r.url) if API + "?" in r.url else None)
    open_page(page)
    assert len(api) == 1
    # The default is the 7B LLaMA-like model; its working shows the formulas with numbers in.
    expect(page.locator("#working-table")).to_contain_text("6.74e9 params × 2 bytes = 13.5 GB")
    expect(page.locator("#source-notes li")).to_have_count(6)  # the lecture's 27 A100s and 56 MB, with the four before
    shot(page, "memory-calculator-7b")

    # The sliders index the fetched grid: no request.
    t0 = total(page)
    for slider, key in (("#batch-slider", "b"), ("#seq-slider", "s")):
        before = chart_y(page)
        page.locator(slider).focus()
        page.keyboard.press("ArrowRight")
        assert chart_y(page) != before
        assert state(page)[key] != "0"
    assert total(page) != t0
    before = page.locator("#copies-total").inner_text()
    page.locator("#tasks-slider").focus()
    page.keyboard.press("ArrowRight")
    assert page.locator("#copies-total").inner_text() != before
    page.locator("#zoom-check").check()
    assert page.evaluate("() => document.getElementById('memory-chart').layout.yaxis.range[1]") == 100
    page.locator("#show-lora").check()
    expect(page.locator("#working-table")).to_contain_text("LoRA A and B")
    assert state(page)["show"] == "lora"
    assert len(api) == 1, f"a slider asked the server: {api}"

    # Every convention refetches and changes a number.
    def changes(action, method="full-mixed"):
        before_t, before_y = total(page, method), chart_y(page)
        refetched(page, action)
        assert total(page, method) != before_t or chart_y(page) != before_y

    changes(lambda: page.locator("#master-check").uncheck())
    changes(lambda: page.locator("#optimizer-select").select_option("adam8"))
    changes(lambda: page.locator("#quant-select").select_option("nf4"), "qlora")
    changes(lambda: page.locator("#checkpointing-check").check())
    changes(lambda: page.locator("#logits-check").uncheck())
    changes(lambda: enter(page, "#rank-input", "64"), "lora")
    changes(lambda: page.locator("#target-ffn").check(), "lora")
    changes(lambda: page.locator("#preset-select").select_option("llama-13b"))
    changes(lambda: enter(page, "#params-input", "1.3e10"))
    # Back to the count from the config, so that every config field moves the total.
    changes(lambda: enter(page, "#params-input", ""))
    changes(lambda: enter(page, "#layers-input", "20"))
    assert state(page)["preset"] == "custom"
    changes(lambda: page.locator("#arch-select").select_option("gpt"))
    for field, value in (
        ("#hidden-input", "2560"),
        ("#heads-input", "20"),
        ("#vocab-input", "50000"),
        ("#ffn-input", "10240"),
    ):
        changes(lambda f=field, v=value: enter(page, f, v))
    # Flash attention last: with it on, the head count no longer matters (no s×s scores kept).
    changes(lambda: page.locator("#flash-check").check())
    url = page.url
    shown = total(page)
    working = page.locator("#working-table").inner_text()
    shot(page, "memory-calculator-custom")

    page.reload()
    page.wait_for_selector(READY, state="attached")
    assert page.url == url
    assert total(page) == shown
    assert page.locator("#working-table").inner_text() == working
    expect(page.locator("#hidden-input")).to_have_value("2560")
    expect(page.locator("#zoom-check")).to_be_checked()
    expect(page.locator("#target-ffn")).to_be_checked()


def test_it_shows_the_175b_seed_table_with_the_seed_conventions(page):
    open_page(page, "?preset=gpt3-175b&params=175000000000&master=false&b=0&s=6")
    expect(page.locator("#working-table")).to_contain_text("1.75e11 params × 2 bytes = 350.0 GB")
    expect(page.locator("#working-table")).to_contain_text("1.75e11 trainable params × 4 bytes = 700.0 GB")
    assert plot_data(page, "memory-chart", 0, "y")[1] == 350
    shot(page, "memory-calculator-175b")


def test_it_refuses_a_bad_rank_with_a_message(page):
    open_page(page)
    expect_console_error(page, r"status of 400")  # the browser logs the refused request
    page.locator("#rank-input").fill("99999")
    page.locator("#rank-input").press("Enter")
    expect(page.locator("#memory-error")).to_contain_text("rank must be between 1 and")


def test_it_says_how_to_compare_when_there_are_no_runs(page):
    open_page(page)
    link = page.locator("#lab-runs a")
    expect(link).to_have_text("train one on the Train page to compare")
    expect(link).to_have_attribute("href", "/train/")


def _wait_for_run(page, run_id, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = page.request.get(f"/api/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        page.wait_for_timeout(500)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s")


def test_it_puts_the_prediction_beside_a_measured_run(page):
    page.goto("/")
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    task = page.request.get("/api/tasks").json()[0]["name"]
    resp = page.request.post(
        "/api/runs",
        headers={"X-CSRFToken": token},
        data={
            "method": "lora",
            "task": task,
            "steps": 3,
            "seed": 0,
            "params": {"rank": 4, "batch_size": 8, "target_modules": ["query", "value"], "eval_every": 0},
        },
    )
    assert resp.status == 201, resp.text()
    run = _wait_for_run(page, resp.json()["id"])
    assert run["status"] == "succeeded", run
    # The run as a worker in each precision records it (this CPU's default is one of them): its
    # row says which, and its prediction is of a step in that precision.
    predicted = {}

    def recorded_as(precision):
        def fulfill(route):
            runs = route.fetch().json()
            for r in runs:
                if r["id"] == run["id"]:
                    r["metrics"]["precision"] = precision
            route.fulfill(json=runs)

        return fulfill

    for precision in ("fp32", "bf16 autocast"):
        page.route(re.compile(r"/api/runs\?limit=200$"), recorded_as(precision))
        with page.expect_request(lambda r: "/memory-calculator/lab?" in r.url) as asked:
            open_page(page)
        assert parse_qs(urlparse(asked.value.url).query)["precision"] == [precision]
        # ... and on the device it trained on (this machine's CPU): they keep dropout masks differently.
        assert run["metrics"]["device"] == "cpu"
        assert parse_qs(urlparse(asked.value.url).query)["device"] == ["cpu"]
        row = page.locator(f'#lab-table tr[data-run="{run["id"]}"]')
        expect(row).to_contain_text("batch 8, r = 4, query+value" + (", bf16 autocast" if precision != "fp32" else ""))
        if precision == "fp32":
            expect(row).not_to_contain_text("bf16")
        cells = row.locator("td")
        # params, gradients, optimizer state, activations, peak: measured over predicted.
        expect(cells).to_have_count(7)
        for i in range(2, 7):
            expect(cells.nth(i)).to_contain_text("B")
        predicted[precision] = cells.nth(5).locator("span").inner_text()
        page.unroute(re.compile(r"/api/runs\?limit=200$"))
    # Under autocast the prediction also counts each weight's bf16 copy.
    assert predicted["fp32"] != predicted["bf16 autocast"], predicted
    expect(page.locator("#lab-sources")).to_have_text(run["metrics"]["peak_memory_source"])
    expect(page.locator("#lab-intro")).to_contain_text("bf16 copy of each weight")
    expect(page.locator("#lab-intro")).to_contain_text("a dropout mask is one byte an element on a GPU")
    # The page stays as wide as the window: the table does not push it sideways.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280
    page.locator("#lab-runs").scroll_into_view_if_needed()
    shot(page, "memory-calculator-lab-runs")
    # At phone width, a fresh page of the same visitor (their runs).
    phone = page.context.browser.new_context(
        base_url=page.url.split("/playgrounds")[0],
        viewport={"width": 390, "height": 844},
        storage_state=page.context.storage_state(),
    )
    small = phone.new_page()
    open_page(small)
    expect(small.locator(f'#lab-table tr[data-run="{run["id"]}"]')).to_be_visible()
    assert small.evaluate("() => document.documentElement.scrollWidth") <= 390
    small.locator("#lab-runs").scroll_into_view_if_needed()
    shot(small, "memory-calculator-lab-runs-phone")
    phone.close()


# --- P1 Cost of fine-tuning -----------------------------------------------------------------------
COST_PAGE = "/playgrounds/cost-of-fine-tuning/"
COST_API = "/api/playgrounds/cost-of-fine-tuning"
COST_READY = '#cost-root[data-ready="1"][data-loading="0"]'


def test_cost_moves_every_control_and_keeps_the_state_in_the_url(page):
    api = []
    page.on("request", lambda r: api.append(r.url) if COST_API in r.url else None)
    page.goto(COST_PAGE)
    page.wait_for_selector(COST_READY, state="attached")
    expect(page.locator("#cost-error")).to_be_hidden()
    expect(page.locator("#pretrain-formula")).to_contain_text("$4.69M")
    # Ten 16-bit GPT-3 checkpoints: 3.5 TB (seed 000).
    expect(page.locator('#cost-table tr[data-model="gpt3-175b"] td.storage')).to_have_text("3.50 TB")
    expect(page.locator("#source-notes li")).to_have_count(4)
    shot(page, "cost-of-fine-tuning")
    gpt3 = '#cost-table tr[data-model="gpt3-175b"]'

    def cell(which):
        return page.locator(f"{gpt3} td.{which}").inner_text()

    # The sliders index the fetched totals: no request.
    before = cell("total-cost")
    page.locator("#runs-slider").focus()
    page.keyboard.press("ArrowRight")
    assert cell("total-cost") != before
    before_cost, before_disk = cell("total-cost"), cell("storage")
    page.locator("#tasks-slider").focus()
    page.keyboard.press("ArrowRight")
    assert cell("total-cost") != before_cost and cell("storage") != before_disk
    q = parse_qs(urlparse(page.url).query)
    assert q["t"] == ["10"] and q["r"] == ["1"]
    assert len(api) == 1

    def changes(action):
        hours = plot_data(page, "hours-chart", 0, "y")
        cost = cell("total-cost")
        disk = cell("storage")
        with page.expect_response(lambda r: "/api/playgrounds/cost-of-fine-tuning?" in r.url):
            action()
        page.wait_for_selector(COST_READY, state="attached")
        expect(page.locator("#cost-error")).to_be_hidden()
        assert plot_data(page, "hours-chart", 0, "y") != hours or cell("total-cost") != cost or cell("storage") != disk

    changes(lambda: enter(page, "#tokens-input", "2e9"))
    changes(lambda: page.locator("#gpu-select").select_option("h100"))
    changes(lambda: enter(page, "#utilisation-input", "0.5"))
    changes(lambda: enter(page, "#price-input", "4"))
    changes(lambda: page.locator("#bytes-select").select_option("4"))
    url, shown = page.url, cell("total-cost")
    page.reload()
    page.wait_for_selector(COST_READY, state="attached")
    assert page.url == url
    assert cell("total-cost") == shown
    expect(page.locator("#gpu-select")).to_have_value("h100")
    expect(page.locator("#runs-slider")).to_have_value("1")
