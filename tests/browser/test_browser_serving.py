"""P13 merge-and-swap and P20 freeze-attach-merge in a real browser against the real lab.

The merge-and-swap page is tested first with no run in the lab (the illustration), then with two
real LoRA runs trained by the lab's worker. Every control only indexes the one response.
"""

import pytest
from playwright.sync_api import expect

from tests.support.browsing import (
    SCREENSHOTS,
    api_requests,
    cancel_from_page,
    plot_data,
    query,
    ring_anchors,
    shot,
    slide,
    wait_ready,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def embedded_lab(empty_lab):
    """A lab of this module's own: its first test sees the lab before any run."""
    return empty_lab


def phone_shot(browser, base_url: str, path: str, root: str, name: str, focus: str) -> None:
    """The same page on a phone-sized screen: nothing may overflow the viewport's width. Also
    one screen's worth around `focus`, at the phone's own scale."""
    context = browser.new_context(base_url=base_url, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(path)
        wait_ready(page, root)
        page.wait_for_timeout(1500)  # the diagram's transitions settle
        assert not errors, errors
        overflow = page.evaluate("(w) => document.documentElement.scrollWidth - w", PHONE["width"])
        assert overflow <= 0, f"the page is {overflow}px wider than the phone"
        for box in page.locator(f"#{root} input[type=range], #{root} button, #{root} select").all():
            if box.is_visible():
                assert box.bounding_box()["height"] >= 32
        shot(page, name)
        page.locator(focus).scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / f"{name}-view.png"), animations="disabled")
    finally:
        context.close()


# --- P20 -----------------------------------------------------------------------------------------


def test_it_steps_through_freeze_attach_merge_and_restores_the_step_from_the_url(page, browser, embedded_lab):
    requests = api_requests(page, "freeze-attach-merge")
    page.goto("/playgrounds/freeze-attach-merge/")
    wait_ready(page, "fam-root")
    expect(page.locator("#fam-error")).to_be_hidden()
    assert query(page) == {"step": "1", "d": "4096", "r": "8"}
    # seed 001 ch3: 4096² = 16,777,216; 2 × 4096 × 8 = 65,536; 0.39 %.
    expect(page.locator("#full-count")).to_have_text("16,777,216")
    expect(page.locator("#lora-count")).to_have_text("65,536")
    expect(page.locator("#share")).to_have_text("0.391 %")
    expect(page.locator("#step-title")).to_contain_text("Step 1 of 5: Freeze")
    expect(page.locator("#reported-table tbody tr")).to_have_count(3)
    expect(page.locator("#reported-table")).to_contain_text(
        "reported by Hu et al. 2021 (LoRA), as quoted in the LoRA paper walk-through"
    )
    expect(page.locator("#gpt3-table")).to_contain_text("37,087×")
    assert page.locator("#diagram svg g.fade").first.get_attribute("class") == "fade"
    shot(page, "freeze-attach-merge-step1")

    # Step (button), Back (keyboard), the step slider, Play: each moves the picture.
    car = page.locator("#diagram svg > g.fade").nth(1)
    assert "off" in car.get_attribute("class")
    page.click("#next")
    expect(page.locator("#step-title")).to_contain_text("Step 2 of 5: Attach")
    assert "off" not in car.get_attribute("class")
    expect(page.locator("#step-caption")).to_contain_text("32,768 zeros")
    page.locator("#back").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#step-title")).to_contain_text("Step 1 of 5")
    page.locator("#step-slider").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#step-title")).to_contain_text("Step 3 of 5: Two paths")
    assert page.locator("#diagram path.flowing").count() == 5
    counter = page.locator("#diagram .counter-bar")
    full_bar = counter.evaluate("e => e.style.transform")
    page.click("#play")
    expect(page.locator("#play")).to_have_text("Pause")
    expect(page.locator("#step-title")).to_contain_text("Step 4 of 5: Count", timeout=8_000)
    assert counter.evaluate("e => e.style.transform") != full_bar
    expect(page.locator("#step-title")).to_contain_text("Step 5 of 5: Merge", timeout=8_000)
    expect(page.locator("#play")).to_have_text("Play")
    assert "off" in car.get_attribute("class")
    expect(page.locator("#diagram")).to_contain_text("W′ = W + (α/r)·B·A")
    shot(page, "freeze-attach-merge-step5", settle_ms=1300)

    # d and r sliders change the counts and the chart.
    curve = plot_data(page, "count-chart", 0, "y")
    slide(page, "#d-slider", 3)  # d = 384, the lab's own model
    expect(page.locator("#d-value")).to_have_text("384")
    expect(page.locator("#full-count")).to_have_text("147,456")
    assert plot_data(page, "count-chart", 0, "y") != curve
    lora_count = page.locator("#lora-count").inner_text()
    page.locator("#r-slider").focus()
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#r-value")).to_have_text("4")
    assert page.locator("#lora-count").inner_text() != lora_count
    assert ring_anchors(page, "count-chart") == [(4, 2 * 384 * 4)]
    assert page.evaluate("() => document.getElementById('count-chart').layout.xaxis.title.text").startswith("rank r")
    assert len(requests) == 1, f"a control asked the server: {requests}"

    url = page.url
    assert query(page) == {"step": "5", "d": "384", "r": "4"}
    page.reload()
    wait_ready(page, "fam-root")
    assert page.url == url
    expect(page.locator("#step-title")).to_contain_text("Step 5 of 5")
    expect(page.locator("#d-slider")).to_have_value("3")
    expect(page.locator("#r-value")).to_have_text("4")
    expect(page.locator("#lora-count")).to_have_text(f"{2 * 384 * 4:,}")
    phone_shot(
        browser,
        embedded_lab.base_url,
        "/playgrounds/freeze-attach-merge/?step=3&d=4096&r=8",
        "fam-root",
        "freeze-attach-merge-phone",
        "#diagram",
    )


# --- P13 -----------------------------------------------------------------------------------------


def storage_controls_work(page) -> None:
    """Model, rank and N only index the response; each changes the chart or the numbers."""
    expect(page.locator("#tasks-value")).to_have_text("10")
    # seed 001 ch0: ten 7B copies in 16-bit are 140 GB.
    expect(page.locator("#copies-bytes")).to_have_text("140 GB")
    saving = page.locator("#saving").inner_text()
    page.locator("#tasks-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tasks-value")).to_have_text("11")
    expect(page.locator("#copies-bytes")).to_have_text("154 GB")
    assert page.locator("#saving").inner_text() != saving
    assert [x for x, _ in ring_anchors(page, "storage-chart")] == [11, 11]
    adapter = page.locator("#one-adapter").inner_text()
    expect(page.locator("#adapter-params")).to_have_text("4,194,304")
    page.select_option("#rank-select", "64")
    assert page.locator("#one-adapter").inner_text() != adapter
    curve = plot_data(page, "storage-chart", 0, "y")
    page.select_option("#model-select", "gpt3-175b")
    expect(page.locator("#copies-bytes")).to_have_text("3.85 TB")
    assert plot_data(page, "storage-chart", 0, "y") != curve
    assert (
        page.evaluate("() => document.getElementById('storage-chart').layout.yaxis.title.text")
        == "storage, bytes (log scale)"
    )


def test_without_runs_it_illustrates_by_formula_and_offers_to_train_one(page, browser, embedded_lab):
    requests = api_requests(page, "merge-and-swap")
    page.goto("/playgrounds/merge-and-swap/")
    wait_ready(page, "swap-root")
    expect(page.locator("#swap-error")).to_be_hidden()
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#adapters")).to_be_hidden()
    expect(page.locator("#empty")).to_contain_text("Illustration: no trained adapter yet")
    assert "illustration" in page.evaluate("() => document.getElementById('illustration-chart').data[1].name")
    assert len(plot_data(page, "illustration-chart", 1, "y")) == 4
    expect(page.locator("#notes li")).to_have_count(3)
    expect(page.locator("#reported")).to_contain_text(
        "reported by Hu et al. 2021 (LoRA), as quoted in the LoRA paper walk-through"
    )
    storage_controls_work(page)
    assert len(requests) == 1, f"a control asked the server: {requests}"
    assert query(page) == {"merged": "0", "model": "gpt3-175b", "rank": "64", "n": "11"}
    shot(page, "merge-and-swap-empty")

    page.reload()
    wait_ready(page, "swap-root")
    expect(page.locator("#model-select")).to_have_value("gpt3-175b")
    expect(page.locator("#rank-select")).to_have_value("64")
    expect(page.locator("#tasks-slider")).to_have_value("11")
    expect(page.locator("#copies-bytes")).to_have_text("3.85 TB")
    phone_shot(
        browser,
        embedded_lab.base_url,
        "/playgrounds/merge-and-swap/",
        "swap-root",
        "merge-and-swap-empty-phone",
        "#illustration-chart",
    )

    # The button queues a real LoRA run and opens it on the training page.
    page.click("#start-run")
    page.wait_for_url("**/train/?run=*")
    run_id = int(query(page)["run"])
    run = embedded_lab.run(run_id)
    assert (run["method"], run["task"]) == ("lora", "sentiment")
    assert cancel_from_page(page, run_id) in (202, 409)  # a cancelled run is not listed
    embedded_lab.wait_for(run_id)


def test_it_swaps_and_merges_real_adapters_and_restores_them_from_the_url(page, browser, embedded_lab):
    runs = []
    for task, steps, rank in (("sentiment", 6, 4), ("topic", 8, 8)):
        response = embedded_lab.post(
            "/api/runs",
            {"method": "lora", "task": task, "steps": steps, "seed": 0, "params": {"rank": rank, "lr": 5e-3}},
        )
        assert response.status_code == 201, response.text
        runs.append(response.json()["id"])
    for run_id in runs:
        assert embedded_lab.wait_for(run_id, timeout=300)["status"] == "succeeded"
    sentiment, topic = runs

    requests = api_requests(page, "merge-and-swap")
    page.goto("/playgrounds/merge-and-swap/")
    wait_ready(page, "swap-root")
    expect(page.locator("#swap-error")).to_be_hidden()
    expect(page.locator("#empty")).to_be_hidden()
    expect(page.locator("#adapter-select option")).to_have_count(2)
    assert query(page)["run"] == str(topic)  # the newest first
    expect(page.locator("#sentences li")).to_have_count(6)
    expect(page.locator("#sentences")).to_contain_text("Astronomers detect water vapour")
    assert [page.evaluate(f"() => document.getElementById('predict-chart').data[{k}].name") for k in range(4)] == [
        "sports",
        "science",
        "business",
        "technology",
    ]
    expect(page.locator("#latency-label")).to_have_text("Latency unmerged (measured)")
    measured = embedded_lab.run(topic)["metrics"]
    expect(page.locator("#latency-now")).to_have_text(f"{measured['latency_ms']:.1f} ms")
    assert plot_data(page, "size-chart", 1, "y") == [
        measured["adapter_bytes"],
        embedded_lab.run(sentiment)["metrics"]["adapter_bytes"],
    ]
    expect(page.locator("#merge-verdict")).to_contain_text("Merging changes no predicted label (6 of 6 the same)")
    shot(page, "merge-and-swap-topic")

    # Merge: the latency shown becomes the merged one, the predictions stay (to float32 rounding).
    title = page.locator("#predict-title").inner_text()
    predicted = [t.split("→")[1].split(" ")[1] for t in page.locator("#sentences li").all_inner_texts()]
    page.locator("#merge-toggle").focus()
    page.keyboard.press("Space")
    expect(page.locator("#latency-label")).to_have_text("Latency merged (measured)")
    expect(page.locator("#latency-now")).to_have_text(f"{measured['latency_merged_ms']:.1f} ms")
    assert page.locator("#predict-title").inner_text() != title
    merged = [t.split("→")[1].split(" ")[1] for t in page.locator("#sentences li").all_inner_texts()]
    assert merged == predicted

    # Swap: the sentiment adapter answers other sentences with other labels.
    page.select_option("#adapter-select", str(sentiment))
    expect(page.locator("#sentences")).to_contain_text("Not a single scene made me laugh.")
    assert page.evaluate("() => document.getElementById('predict-chart').data.length") == 2
    storage_controls_work(page)
    assert len(requests) == 1, f"a control asked the server: {requests}"
    shot(page, "merge-and-swap-sentiment-merged")

    url = page.url
    assert query(page) == {"run": str(sentiment), "merged": "1", "model": "gpt3-175b", "rank": "64", "n": "11"}
    page.reload()
    wait_ready(page, "swap-root")
    assert page.url == url
    expect(page.locator("#adapter-select")).to_have_value(str(sentiment))
    expect(page.locator("#merge-toggle")).to_be_checked()
    expect(page.locator("#latency-label")).to_have_text("Latency merged (measured)")
    expect(page.locator("#copies-bytes")).to_have_text("3.85 TB")
    phone_shot(
        browser,
        embedded_lab.base_url,
        f"/playgrounds/merge-and-swap/?run={topic}&merged=0",
        "swap-root",
        "merge-and-swap-phone",
        "#predict-chart",
    )
