"""P15 family map and P19 method spectrum in a real browser against the real lab.

Each page fetches once; every control only indexes the response (no further request), and the
URL holds the whole state.
"""

import pytest
from playwright.sync_api import expect

from tests.support.browsing import SCREENSHOTS, plot_data, query, shot, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def count_requests(page, path: str) -> list:
    requests = []
    page.on("request", lambda r: requests.append(r.url) if path in r.url else None)
    return requests


def diagram_colours(page) -> list:
    return page.evaluate("() => document.getElementById('block-diagram').layout.shapes.map(s => s.fillcolor)")


def phone_shot(browser, embedded_lab, url: str, root: str, name: str, charts=()) -> None:
    """The page at phone width, whole and (to read them at full size) each chart alone."""
    context = browser.new_context(base_url=embedded_lab.base_url, viewport={"width": 390, "height": 844})
    phone = context.new_page()
    errors = []
    phone.on("pageerror", lambda exc: errors.append(str(exc)))
    phone.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    phone.goto(url)
    wait_ready(phone, root)
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    shot(phone, name)
    for chart in charts:
        box = phone.locator(f"#{chart}").bounding_box()
        assert box["width"] <= 390 and box["height"] > 200, (chart, box)
        phone.locator(f"#{chart}").screenshot(path=str(SCREENSHOTS / f"{name}-{chart}.png"))
    context.close()
    assert not errors, errors
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"


def test_it_maps_every_method_and_restores_it_from_the_url(page, browser, embedded_lab):
    requests = count_requests(page, "/api/playgrounds/family-map")
    page.goto("/playgrounds/family-map/")
    wait_ready(page, "family-root")
    expect(page.locator("#family-error")).to_be_hidden()
    assert query(page) == {"model": "minilm", "method": "lora", "targets": "QV", "r": "8", "m": "64", "n": "20"}
    # LoRA r = 8 on Q and V of all-MiniLM-L6-v2: 8·(384+384)·2·6 = 73,728 (seed 001 ch3's 2·d·r).
    expect(page.locator("#trainable")).to_have_text("73,728")
    expect(page.locator("#mergeable")).to_have_text("yes")
    assert len(plot_data(page, "count-chart", 0, "x")) == 8
    shot(page, "family-map-lora")

    # The rank slider, by keyboard: r = 16 doubles the count.
    colours = diagram_colours(page)
    bars = plot_data(page, "count-chart", 0, "x")
    page.locator("#knob-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#knob-value")).to_have_text("16")
    expect(page.locator("#trainable")).to_have_text("147,456")
    assert plot_data(page, "count-chart", 0, "x") != bars

    # Target modules: Q, K, V, O lights two more matrices.
    page.select_option("#targets-select", "QKVO")
    expect(page.locator("#trainable")).to_have_text("294,912")
    assert diagram_colours(page) != colours

    # Every method once: the diagram and the number change.
    seen = {}
    for key in ["full", "dora", "adapter", "prefix", "prompt", "ia3", "bitfit", "lora"]:
        before = (diagram_colours(page), page.locator("#trainable").inner_text())
        page.locator(f"input[name=method][value={key}]").check()
        expect(page.locator("#family-root input[name=method]:checked")).to_have_value(key)
        after = (diagram_colours(page), page.locator("#trainable").inner_text())
        assert after != before, key
        seen[key] = after[1]
    # The whole encoder trains under full fine-tuning: 22,565,376 without the head (no pooler).
    assert seen["full"] == "22,565,376"
    assert seen["prompt"] == "7,680"  # 20 tokens × d = 384

    # The part buttons explain; clicking one on the diagram does too.
    page.locator("input[name=method][value=ia3]").check()
    page.locator("#part-buttons button[data-part=ia3_v]").click()
    expect(page.locator("#part-text")).to_contain_text("values feature by feature")
    page.locator("#part-buttons button[data-part=ia3_ffn]").click()
    expect(page.locator("#part-text")).to_contain_text("inner activation")
    page.locator("#part-buttons button[data-part=q]").click()
    expect(page.locator("#part-text")).to_contain_text("frozen")
    # Liu et al. 2022's placement: (2·384 + 1536)·6 = 13,824 without the head; peft's default for
    # BERT also scales the attention output's input: + 384·6 (the note says why).
    expect(page.locator("#trainable")).to_have_text("13,824")
    expect(page.locator("#ia3-paper")).to_have_text("13,824")
    expect(page.locator("#ia3-peft")).to_have_text("16,128")
    expect(page.locator("#ia3-config-note")).to_contain_text("attention.output.dense")
    page.select_option("#model-select", "1")  # BERT-base
    expect(page.locator("#trainable")).to_have_text("55,296")
    expect(page.locator("#ia3-peft")).to_have_text("64,512")
    shot(page, "family-map-ia3-bert")
    page.select_option("#model-select", "0")

    # The adapter slider, then the model menu.
    page.locator("input[name=method][value=adapter]").check()
    page.locator("#knob-slider").focus()
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#knob-value")).to_have_text("32")
    before = page.locator("#trainable").inner_text()
    page.select_option("#model-select", "2")
    expect(page.locator("#total")).to_have_text("124,645,632")
    assert page.locator("#trainable").inner_text() != before
    expect(page.locator("#prefix-ratio")).to_have_text("24")
    expect(page.locator("#family-root .note").first).to_contain_text("Misconception")
    assert len(requests) == 1, f"a control asked the server: {requests}"
    shot(page, "family-map-adapter-roberta")

    url, state = page.url, query(page)
    assert state == {"model": "roberta-base", "method": "adapter", "targets": "QKVO", "r": "16", "m": "32", "n": "20"}
    trainable = page.locator("#trainable").inner_text()
    page.reload()
    wait_ready(page, "family-root")
    assert page.url == url
    expect(page.locator("#model-select")).to_have_value("2")
    expect(page.locator("#knob-value")).to_have_text("32")
    expect(page.locator("#trainable")).to_have_text(trainable)
    assert len(requests) == 2

    phone_shot(
        browser,
        embedded_lab,
        "/playgrounds/family-map/?method=ia3",
        "family-root",
        "family-map-phone",
        ("block-diagram", "count-chart"),
    )


def test_it_toggles_the_spectrum_methods_and_restores_them_from_the_url(page, browser, embedded_lab):
    requests = count_requests(page, "/api/playgrounds/method-spectrum")
    page.goto("/playgrounds/method-spectrum/")
    wait_ready(page, "spectrum-root")
    expect(page.locator("#spectrum-error")).to_be_hidden()
    # Five methods have a reported gap (BitFit has none): full FT, LoRA, adapter, prefix, prompt.
    names = page.evaluate("() => document.getElementById('glue-chart').data.map(t => t.name)")
    # Beside them, the LoRA paper's own Table 2 where the lab has its figures (LoRA).
    assert names == [
        "Full fine-tuning",
        "LoRA",
        "Adapter (Houlsby)",
        "Prefix tuning",
        "Prompt tuning",
        "Hu et al. 2021 (LoRA), Table 2, RoBERTa-base",
    ]
    # The PEFT derivations post: LoRA r = 8 at 0.24% of RoBERTa-base: 294,912 computed.
    assert plot_data(page, "glue-chart", 1, "x") == [294912]
    expect(page.locator("#bitfit-note")).to_contain_text("no figure")
    expect(page.locator("#notes")).to_contain_text("368,640")
    expect(page.locator("#gpt3-table")).to_contain_text("75,497,472")
    assert len(plot_data(page, "rank-chart", 0, "y")) == 5
    shot(page, "method-spectrum")

    toggles = page.locator("#method-toggles input[type=checkbox]")
    assert toggles.count() == 6
    for i in range(toggles.count()):
        key = toggles.nth(i).get_attribute("value")
        glue = page.evaluate("() => document.getElementById('glue-chart').data.length")
        shares = page.evaluate("() => document.getElementById('share-chart').data.length")
        toggles.nth(i).focus()
        page.keyboard.press("Space")
        expect(toggles.nth(i)).not_to_be_checked()
        assert key in query(page)["hide"].split(",")
        after = (
            page.evaluate("() => document.getElementById('glue-chart').data.length"),
            page.evaluate("() => document.getElementById('share-chart').data.length"),
            page.evaluate("() => document.getElementById('glue-chart').layout.shapes.length"),
        )
        assert after[:2] != (glue, shares) or after[2] == 0, key
        page.keyboard.press("Space")
    page.locator("#method-toggles input[value=prompt]").uncheck()
    page.locator("#method-toggles input[value=bitfit]").uncheck()
    assert query(page) == {"hide": "prompt,bitfit"}
    assert len(requests) == 1, f"a toggle asked the server: {requests}"
    url = page.url
    page.reload()
    wait_ready(page, "spectrum-root")
    assert page.url == url
    expect(page.locator("#method-toggles input[value=prompt]")).not_to_be_checked()
    expect(page.locator("#method-toggles input[value=lora]")).to_be_checked()
    assert "Prompt tuning" not in page.evaluate("() => document.getElementById('glue-chart').data.map(t => t.name)")
    assert len(requests) == 2
    shot(page, "method-spectrum-hidden")

    phone_shot(
        browser,
        embedded_lab,
        "/playgrounds/method-spectrum/",
        "spectrum-root",
        "method-spectrum-phone",
        ("glue-chart", "rank-chart", "share-chart"),
    )
