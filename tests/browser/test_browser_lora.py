"""The LoRA chapter's playgrounds (P10–P12) in a real browser against the real lab."""

import pytest
from playwright.sync_api import expect

from tests.support.browsing import expect_console_error, plot_data, query, ring_anchors, shot, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAIN_TIMEOUT_MS = 120_000


def set_range(page, selector: str, value) -> None:
    """Move a range input as a drag ends up: set the value, fire `input`."""
    page.locator(selector).evaluate(
        "(s, v) => { s.value = v; s.dispatchEvent(new Event('input', { bubbles: true })); }", value
    )


# --- P11 parameter counter ----------------------------------------------------------------------


def start_lora_run(page, rank: int, targets: list[str]) -> int:
    """Queue a real, short LoRA run through the public API, as a script would (CSRF cookie)."""
    page.goto("/train/")
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    resp = page.request.post(
        "/api/runs",
        headers={"X-CSRFToken": token},
        data={
            "method": "lora",
            "task": "sentiment",
            "steps": 3,
            "seed": 0,
            "params": {"rank": rank, "target_modules": targets},
        },
    )
    assert resp.status == 201, resp.text()
    return resp.json()["id"]


def wait_for_run(page, run_id: int) -> dict:
    for _ in range(TRAIN_TIMEOUT_MS // 500):
        run = page.request.get(f"/api/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            return run
        page.wait_for_timeout(500)
    raise AssertionError(f"run {run_id} did not finish")


def test_it_counts_parameters_per_matrix_and_per_model_and_keeps_the_state(page):
    api_requests = []
    page.on("request", lambda r: api_requests.append(r.url) if "/api/playgrounds/parameter-counter" in r.url else None)
    page.goto("/playgrounds/parameter-counter/?r=8&d=4096")
    wait_ready(page, "paramcount-root")
    # 001 ch3: r=8 on a 4096×4096 matrix = 65,536 parameters = 0.39%.
    expect(page.locator("#lora-count")).to_have_text("65,536")
    expect(page.locator("#full-count")).to_have_text("16,777,216")
    expect(page.locator("#share")).to_have_text("0.39%")
    assert query(page) == {"r": "8", "d": "4096", "model": "minilm"}
    # The seed discrepancies are on the page, with the formula's values.
    expect(page.locator("#gpt3-note")).to_contain_text("75,497,472")
    expect(page.locator("#gpt3-note")).to_contain_text("4.7M")
    expect(page.locator("#llama-note")).to_contain_text("39,976,960")
    expect(page.locator("#llama-note")).to_contain_text("41,943,040")
    bars8 = plot_data(page, "models-chart", 2, "y")
    shot(page, "parameter-counter-r8")

    # The rank slider, by keyboard: r = 9.
    page.locator("#rank-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#rank-value")).to_have_text("9")
    expect(page.locator("#lora-count")).to_have_text(f"{2 * 4096 * 9:,}")
    assert plot_data(page, "share-chart", 1, "x") == [9]
    assert plot_data(page, "models-chart", 2, "y") != bars8
    # The hidden-size slider: one step down, to d = 2048.
    page.locator("#hidden-slider").focus()
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#hidden-value")).to_have_text("2,048")
    expect(page.locator("#full-count")).to_have_text(f"{2048 * 2048:,}")
    # The model menu: GPT-3's QKVO row at r = 9.
    before = page.locator("#targets-table tbody").inner_text()
    page.select_option("#model-select", "gpt3-175b")
    expect(page.locator("#targets-table tbody tr").nth(2)).to_contain_text(f"{8 * 12288 * 9 * 96:,}")
    assert page.locator("#targets-table tbody").inner_text() != before
    assert query(page) == {"r": "9", "d": "2048", "model": "gpt3-175b"}
    assert len(api_requests) == 1, f"a control asked the server: {api_requests}"

    page.reload()
    wait_ready(page, "paramcount-root")
    expect(page.locator("#rank-value")).to_have_text("9")
    expect(page.locator("#hidden-value")).to_have_text("2,048")
    expect(page.locator("#model-select")).to_have_value("gpt3-175b")
    shot(page, "parameter-counter-gpt3")


def test_it_shows_a_real_runs_measured_count_beside_the_formula(page):
    run_id = start_lora_run(page, rank=4, targets=["query", "value"])
    run = wait_for_run(page, run_id)
    assert run["status"] == "succeeded", run
    page.goto("/playgrounds/parameter-counter/")
    wait_ready(page, "paramcount-root")
    row = page.locator(f'#runs-table tr[data-run-id="{run_id}"]')
    expect(row).to_be_visible()
    measured = run["metrics"]["trainable_params"]
    # LoRA on Q and V at r=4 on all-MiniLM-L6-v2 plus a 2-label head: 2·(2·384·4)·6 + 384·2 + 2.
    assert measured == 2 * 2 * 384 * 4 * 6 + 384 * 2 + 2
    expect(row).to_contain_text(f"{measured:,}")
    expect(row.locator("td").last).to_have_text("exactly")
    page.locator("#runs-table").scroll_into_view_if_needed()
    shot(page, "parameter-counter-measured")


# --- P10 LoRA forward path ----------------------------------------------------------------------


def test_it_moves_rank_and_alpha_without_a_request_and_reloads_a_new_example(page):
    api_requests = []
    page.on("request", lambda r: api_requests.append(r.url) if "/api/playgrounds/lora-forward" in r.url else None)
    page.goto("/playgrounds/lora-forward/")
    wait_ready(page, "forward-root")
    expect(page.locator("#forward-error")).to_be_hidden()
    assert query(page) == {"d": "8", "seed": "0", "r": "2", "alpha": "8"}
    expect(page.locator("#params-lora")).to_have_text("32")  # 2·d·r = 2·8·2
    expect(page.locator("#scale")).to_have_text("4")  # α/r = 8/2
    h_before = plot_data(page, "vectors-chart", 2, "y")
    a_rows = len(page.evaluate("() => document.getElementById('heat-A').data[0].z"))
    assert a_rows == 2 and len(plot_data(page, "bottleneck-chart", 1, "y")) == 2
    shot(page, "lora-forward-r2")

    page.locator("#rank-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#rank-value")).to_have_text("3")
    assert len(page.evaluate("() => document.getElementById('heat-A').data[0].z")) == 3
    assert len(page.evaluate("() => document.getElementById('heat-B').data[0].z[0]")) == 3
    assert plot_data(page, "vectors-chart", 2, "y") != h_before
    h_r3 = plot_data(page, "vectors-chart", 2, "y")

    # α = 0 switches the side road off: h is exactly Wx.
    set_range(page, "#alpha-slider", 0)
    expect(page.locator("#alpha-value")).to_have_text("0")
    assert plot_data(page, "vectors-chart", 2, "y") == plot_data(page, "vectors-chart", 0, "y")
    page.locator("#alpha-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#alpha-value")).to_have_text("1")
    expect(page.locator("#shapes")).to_contain_text("A (3×8)")
    assert plot_data(page, "vectors-chart", 2, "y") != h_r3
    assert query(page) == {"d": "8", "seed": "0", "r": "3", "alpha": "1"}
    assert len(api_requests) == 1, f"a slider asked the server: {api_requests}"

    # A new example: d and the seed fetch once each.
    w_before = page.evaluate("() => document.getElementById('heat-W').data[0].z")
    page.fill("#seed-input", "5")
    page.locator("#seed-input").dispatch_event("change")
    page.wait_for_function("() => new URLSearchParams(location.search).get('seed') === '5'")
    assert page.evaluate("() => document.getElementById('heat-W').data[0].z") != w_before
    page.fill("#d-input", "12")
    page.locator("#d-input").dispatch_event("change")
    page.wait_for_function("() => new URLSearchParams(location.search).get('d') === '12'")
    expect(page.locator("#w-shape")).to_have_text("12 × 12")
    assert query(page) == {"d": "12", "seed": "5", "r": "3", "alpha": "1"}
    shot(page, "lora-forward-d12")

    page.reload()
    wait_ready(page, "forward-root")
    expect(page.locator("#rank-value")).to_have_text("3")
    expect(page.locator("#alpha-value")).to_have_text("1")
    expect(page.locator("#d-input")).to_have_value("12")
    expect(page.locator("#seed-input")).to_have_value("5")


def test_it_says_what_is_wrong_with_a_bad_width(page):
    page.goto("/playgrounds/lora-forward/")
    wait_ready(page, "forward-root")
    expect_console_error(page, "400")
    page.fill("#d-input", "40")
    page.locator("#d-input").dispatch_event("change")
    expect(page.locator("#forward-error")).to_have_text("d must be between 4 and 16 (got 40)")


# --- P12 zero start -----------------------------------------------------------------------------


def test_it_steps_through_training_from_exactly_zero_and_never_learns_from_both_zero(page):
    api_requests = []
    page.on("request", lambda r: api_requests.append(r.url) if "/api/playgrounds/zero-start" in r.url else None)
    page.goto("/playgrounds/zero-start/?step=0")
    wait_ready(page, "zero-root")
    expect(page.locator("#norm")).to_have_text("0 (exactly)")
    expect(page.locator("#grad-a")).to_have_text("0 (exactly)")
    assert page.locator("#grad-b").inner_text() != "0 (exactly)"
    shot(page, "zero-start-step0")

    page.locator("#step-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#step-value")).to_have_text("1")
    assert page.locator("#norm").inner_text() != "0 (exactly)"
    set_range(page, "#step-slider", 40)
    expect(page.locator("#step-value")).to_have_text("40")
    assert [x for x, _ in ring_anchors(page, "norm-chart")] == [40]
    assert [x for x, _ in ring_anchors(page, "loss-chart")] == [40]
    ranks_before = plot_data(page, "ranks-chart", 0, "y")
    delta_lora = page.evaluate("() => document.getElementById('heat-delta').data[0].z")

    # Both zero: every step is zero, the gradients too.
    page.check("#init-both_zero")
    expect(page.locator("#norm")).to_have_text("0 (exactly)")
    expect(page.locator("#grad-b")).to_have_text("0 (exactly)")
    assert set(plot_data(page, "norm-chart", 1, "y")) == {0}
    assert page.evaluate("() => document.getElementById('heat-delta').data[0].z") != delta_lora
    shot(page, "zero-start-both-zero")
    page.check("#init-lora")

    # Rank and scaling.
    expect(page.locator("#scale")).to_have_text("2")  # α/r = 8/4
    page.check("#scaling-alpha")
    expect(page.locator("#scale")).to_have_text("8")
    norm_r4 = page.locator("#norm").inner_text()
    page.check("#rank-1")
    expect(page.locator("#norm")).not_to_have_text(norm_r4)
    assert query(page)["scaling"] == "alpha" and query(page)["r"] == "1"
    assert len(api_requests) == 1, f"a control asked the server: {api_requests}"

    # α is a new problem: one request.
    page.fill("#alpha-input", "16")
    page.locator("#alpha-input").dispatch_event("change")
    page.wait_for_function("() => new URLSearchParams(location.search).get('alpha') === '16'")
    assert plot_data(page, "ranks-chart", 0, "y") != ranks_before
    assert query(page) == {
        "alpha": "16",
        "lr": "0.01",
        "seed": "0",
        "init": "lora",
        "r": "1",
        "scaling": "alpha",
        "step": "40",
    }
    shot(page, "zero-start-alpha16")

    page.reload()
    wait_ready(page, "zero-root")
    expect(page.locator("#step-value")).to_have_text("40")
    expect(page.locator("#rank-1")).to_be_checked()
    expect(page.locator("#scaling-alpha")).to_be_checked()
    expect(page.locator("#alpha-input")).to_have_value("16")
