"""The "quant" playgrounds in a real browser: P14 NF4 and double quantisation, P8 adapter block,
P16 low-rank lab. Each test moves every control once, checks that what is drawn changed without
another request, that the URL holds the state and that a reload restores it."""

from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from tests.support.browsing import plot_data, query, ring_anchors, shot, slide

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def open_playground(page, path: str, root: str, api: str) -> list:
    requests = []
    page.on("request", lambda r: requests.append(r.url) if api in r.url else None)
    page.goto(path)
    page.wait_for_selector(f'#{root}[data-ready="1"]', state="attached")
    return requests


# --- P14 ---------------------------------------------------------------------------------------
def test_it_compares_nf4_and_int4_and_keeps_every_setting_in_the_url(page):
    requests = open_playground(page, "/playgrounds/qlora/", "qlora-root", "/api/playgrounds/qlora")
    expect(page.locator("#qlora-error")).to_be_hidden()
    expect(page.locator("#block-value")).to_have_text("64")
    # Seed 003: 0.5 → ~0.127 bits per weight; 65B in fp16 is 130 GB (seeds 001, 003).
    expect(page.locator("#overhead")).to_have_text("0.127")
    expect(page.locator("#mem-fp16")).to_have_text("130.0 GB")
    assert len(plot_data(page, "levels-chart", 1, "x")) == 16  # the NF4 codes
    assert len(plot_data(page, "levels-chart", 2, "x")) == 15  # int4's, −7 … 7
    shot(page, "qlora-default")

    mse_nf4 = page.locator("#mse-code").inner_text()
    hist = plot_data(page, "error-chart", 0, "y")
    slide(page, "#block-slider", 6)  # B = 1024
    expect(page.locator("#block-value")).to_have_text("1024")
    assert page.locator("#mse-code").inner_text() != mse_nf4
    assert plot_data(page, "error-chart", 0, "y") != hist
    assert [x for x, _ in ring_anchors(page, "mse-chart")] == [1024]

    levels_hist = plot_data(page, "levels-chart", 0, "y")
    slide(page, "#sample-slider", 0)
    expect(page.locator("#sample-value")).to_have_text("1,024")
    assert plot_data(page, "levels-chart", 0, "y") != levels_hist

    opacity = "() => document.getElementById('memory-chart').data[1].marker.opacity"
    memory = page.evaluate(opacity)
    page.locator("#model-slider").focus()
    page.keyboard.press("ArrowLeft")  # 65B → 33B, by keyboard
    expect(page.locator("#model-value")).to_have_text("33B")
    assert page.evaluate(opacity) != memory and page.evaluate(opacity)[2] == 1

    before = plot_data(page, "memory-chart", 1, "y")
    page.locator("#dq-check").click()
    assert plot_data(page, "memory-chart", 1, "y") != before
    expect(page.locator("#overhead")).to_have_text("0.0313")  # 32/1024 = 0.03125

    page.locator("#code-int4").check()
    expect(page.locator(".code-name").first).to_have_text("int4")
    assert float(page.locator("#mse-code").inner_text()) > float(
        page.locator("#mse-other").inner_text().split()[0]
    )  # int4 loses more than NF4

    assert query(page) == {"code": "int4", "blocksize": "1024", "samples": "1024", "model": "33B", "dq": "0"}
    assert len(requests) == 1, requests
    shot(page, "qlora-int4-b1024")

    url, mse = page.url, page.locator("#mse-code").inner_text()
    page.reload()
    page.wait_for_selector('#qlora-root[data-ready="1"]', state="attached")
    assert page.url == url
    expect(page.locator("#code-int4")).to_be_checked()
    expect(page.locator("#dq-check")).not_to_be_checked()
    expect(page.locator("#block-slider")).to_have_value("6")
    expect(page.locator("#model-value")).to_have_text("33B")
    expect(page.locator("#mse-code")).to_have_text(mse)


# --- P8 ----------------------------------------------------------------------------------------
def test_it_expands_the_adapter_bottleneck_and_counts_it_as_m_and_d_move(page):
    requests = open_playground(page, "/playgrounds/adapter-block/", "adapter-root", "/api/playgrounds/adapter-block")
    expect(page.locator("#adapter-error")).to_be_hidden()
    # Seed 000: d = 1024, m = 64 gives 2·1024·64 = 131,072 per adapter.
    expect(page.locator("#hidden-value")).to_have_text("1,024")
    expect(page.locator("#bottleneck-value")).to_have_text("64")
    expect(page.locator("#per-adapter")).to_have_text("131,072")
    expect(page.locator("#per-adapter-bias")).to_have_text("132,160")
    expect(page.locator("#model-trainable")).to_have_text("6,291,456")  # ~6.3M (seed 000)
    shot(page, "adapter-block-default")

    bottleneck_width = "() => document.getElementById('diagram').layout.shapes[2].x1"
    w64 = page.evaluate(bottleneck_width)
    page.locator("#bottleneck-slider").focus()
    page.keyboard.press("ArrowRight")  # m = 128, by keyboard
    expect(page.locator("#per-adapter")).to_have_text("262,144")
    assert page.evaluate(bottleneck_width) == pytest.approx(2 * w64)
    # The chosen-m ring sits on the chosen model's share curve.
    [(m, share)] = ring_anchors(page, "share-chart")
    curve = page.evaluate(
        "() => document.getElementById('share-chart').data[Number(document.getElementById('model-select').value)]"
    )
    assert m == 128 and share == pytest.approx(curve["y"][curve["x"].index(128)])

    layer = plot_data(page, "layer-chart", 0, "y")
    slide(page, "#hidden-slider", 0)  # d = 256
    expect(page.locator("#hidden-value")).to_have_text("256")
    expect(page.locator("#per-adapter")).to_have_text(f"{2 * 256 * 128:,}")
    assert plot_data(page, "layer-chart", 0, "y") != layer

    page.locator("#model-select").select_option(label="BERT-base")
    expect(page.locator("#hidden-value")).to_have_text("768")
    share = page.locator("#model-share").inner_text()
    page.locator("#bias-check").check()
    assert page.locator("#model-share").inner_text() != share
    expect(page.locator("#model-trainable")).to_have_text(f"{24 * (2 * 768 * 128 + 128 + 768):,}")

    assert query(page) == {"d": "768", "m": "128", "model": "1", "biases": "1"}
    assert len(requests) == 1, requests
    shot(page, "adapter-block-bert-base")

    url, trainable = page.url, page.locator("#model-trainable").inner_text()
    page.reload()
    page.wait_for_selector('#adapter-root[data-ready="1"]', state="attached")
    assert page.url == url
    expect(page.locator("#model-select")).to_have_value("1")
    expect(page.locator("#bias-check")).to_be_checked()
    expect(page.locator("#model-trainable")).to_have_text(trainable)


# --- P16 ---------------------------------------------------------------------------------------
def change(page, selector: str, value) -> None:
    page.locator(selector).evaluate(
        "(s, v) => { s.value = v; s.dispatchEvent(new Event('input', { bubbles: true }));"
        " s.dispatchEvent(new Event('change', { bubbles: true })); }",
        value,
    )


def test_it_fits_every_rank_and_shows_the_plateau_at_the_true_rank(page):
    requests = open_playground(page, "/playgrounds/low-rank-lab/", "lab-root", "/api/playgrounds/low-rank-lab")
    expect(page.locator("#lab-error")).to_be_hidden()
    expect(page.locator("#k-value")).to_have_text("3")
    expect(page.locator("#r-value")).to_have_text("3")
    expect(page.locator("#n-value")).to_have_text("120")
    # Its task, then in the background the tasks one step away on the k and σ sliders.
    page.wait_for_load_state("networkidle")
    assert [urlparse(u).query for u in requests] == [
        "",
        "true_rank=2&noise=0.3&seed=1",
        "true_rank=4&noise=0.3&seed=1",
        "true_rank=3&noise=0.25&seed=1",
        "true_rank=3&noise=0.35&seed=1",
    ]
    asked = len(requests)
    shot(page, "low-rank-lab-default")

    # r and n only index what was fetched.
    fit = page.evaluate("() => document.getElementById('heatmap-fit').data[0].z")
    train = page.locator("#train-error").inner_text()
    page.locator("#r-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#r-value")).to_have_text("4")
    assert [x for x, _ in ring_anchors(page, "error-chart")] == [4]  # the ring moved along the curve
    assert page.locator("#train-error").inner_text() != train
    assert page.evaluate("() => document.getElementById('heatmap-fit').data[0].z") != fit
    heldout = plot_data(page, "error-chart", 4, "y")
    slide(page, "#n-slider", 0)
    expect(page.locator("#n-value")).to_have_text("30")
    assert plot_data(page, "error-chart", 4, "y") != heldout
    assert len(requests) == asked, requests

    # k and noise are the task: each fetches it once when let go.
    true_map = page.evaluate("() => document.getElementById('heatmap-true').data[0].z")
    change(page, "#k-slider", 5)
    page.wait_for_function(
        "() => document.getElementById('k-value').textContent === '5'"
        " && document.getElementById('lab-root').dataset.loading === '0'"
    )
    page.wait_for_function(
        "(z) => JSON.stringify(document.getElementById('heatmap-true').data[0].z) !== JSON.stringify(z)", arg=true_map
    )
    floor = page.locator("#noise-floor").inner_text()
    change(page, "#noise-slider", 0.5)
    expect(page.locator("#noise-floor")).not_to_have_text(floor)
    expect(page.locator("#noise-floor")).to_have_text("0.250")
    seed_map = page.evaluate("() => document.getElementById('heatmap-true').data[0].z")
    page.locator("#seed-input").fill("7")
    page.locator("#seed-input").press("Enter")
    page.locator("#seed-input").blur()
    page.wait_for_function(
        "(z) => JSON.stringify(document.getElementById('heatmap-true').data[0].z) !== JSON.stringify(z)", arg=seed_map
    )
    expect(page.locator("#r-value")).to_have_text("4")  # the view survives a new task
    expect(page.locator("#n-value")).to_have_text("30")
    assert query(page) == {"true_rank": "5", "noise": "0.5", "seed": "7", "n": "30", "r": "4"}
    # Each task shown was asked for once (none was one step from the one before).
    queries = [urlparse(u).query for u in requests]
    for task in ("true_rank=5&noise=0.3&seed=1", "true_rank=5&noise=0.5&seed=1", "true_rank=5&noise=0.5&seed=7"):
        assert queries.count(task) == 1, queries
    assert len(set(queries)) == len(queries), queries
    shot(page, "low-rank-lab-k5-n30")

    url, heldout = page.url, page.locator("#heldout-error").inner_text()
    page.reload()
    page.wait_for_selector('#lab-root[data-ready="1"]', state="attached")
    assert page.url == url
    expect(page.locator("#k-slider")).to_have_value("5")
    expect(page.locator("#heldout-error")).to_have_text(heldout)
