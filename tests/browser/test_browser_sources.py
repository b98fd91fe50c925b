"""The pages whose source figures were corrected, in Chromium: each shows the corrected figure,
computed by the lab, beside the source's; and once their scripts have drawn, no text on them cites
a source as a "seed" (tests/api/test_wording.py `citations`, here on the rendered page). Each page
is also photographed at desktop and phone width."""

import pytest
from playwright.sync_api import expect

from tests.api.test_wording import citations
from tests.support.browsing import plot_data, shot
from tests.support.sitepages import SETTLED

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The pages whose wording or figures changed, by slug.
CHANGED = (
    "cheat-sheet",
    "method-spectrum",
    "qlora",
    "memory-calculator",
    "chain-of-thought",
    "decision-tree",
    "parameter-counter",
    "in-context-learning",
    "prompt-sensitivity",
    "cost-of-fine-tuning",
    "adapter-block",
    "freeze-attach-merge",
    "merge-and-swap",
)
# Every text the page shows (its frames' too), plus what its charts write in SVG.
RENDERED_TEXT = "() => document.body.innerText + ' ' + [...document.querySelectorAll('svg text')].map((t) => t.textContent).join(' ')"


def settled(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function(SETTLED, timeout=60_000)


def test_the_cheat_sheet_counts_what_a_run_counts(page):
    settled(page, "/playgrounds/cheat-sheet/")
    rows = page.locator("#cheat-sheet tbody tr")
    matrices = rows.filter(has_text="LoRA on all-MiniLM-L6-v2, query + value")
    expect(matrices).to_contain_text("73,728")
    expect(matrices).to_contain_text("the LoRA matrices alone")
    with_head = rows.filter(has_text="with the classifier head")
    expect(with_head).to_contain_text("74,498")
    expect(with_head).to_contain_text("measured on every lab LoRA run")
    expect(page.locator("#cheat-sheet")).not_to_contain_text("seed")


def test_the_glue_chart_sets_the_lora_papers_table_beside_the_post(page):
    settled(page, "/playgrounds/method-spectrum/")
    expect(page.locator("#notes")).to_contain_text("87.24 for LoRA and 86.35 for full fine-tuning")
    expect(page.locator("#notes")).to_contain_text("LoRA is 0.89 points ahead")
    names = page.evaluate("() => document.getElementById('glue-chart').data.map((t) => t.name)")
    table = names.index("Hu et al. 2021 (LoRA), Table 2, RoBERTa-base")
    assert plot_data(page, "glue-chart", table, "y") == [-0.89]
    # Each bubble's hover names where its gap comes from.
    hovers = page.evaluate("() => document.getElementById('glue-chart').data.map((t) => t.hovertemplate)")
    for name, hover in zip(names, hovers):
        if name != "Hu et al. 2021 (LoRA), Table 2, RoBERTa-base":
            assert "the PEFT derivations post" in hover, name
    expect(page.locator("#glue-chart")).to_contain_text("Hu et al. 2021 (LoRA), Table 2")  # its legend
    page.locator("#glue-chart").screenshot(path="screenshots/sources-glue-chart.png")


def test_the_qlora_page_checks_the_lectures_70b_example(page):
    settled(page, "/playgrounds/qlora/")
    expect(page.locator("#note-70-printed")).to_have_text("18,874,368")
    expect(page.locator("#note-70-formula")).to_have_text("32,768,000")
    expect(page.locator("#note-70-gpt3")).to_have_text("18,874,368")
    expect(page.locator("#note-70-card")).to_have_text("24.0 GB")
    expect(page.locator("#note-70-weights")).to_have_text("35.0 GB")


def test_the_memory_calculator_corrects_the_a100s_and_the_56_mb(page):
    settled(page, "/playgrounds/memory-calculator/")
    notes = page.locator("#source-notes")
    expect(notes).to_contain_text("“at least 27 A100s just for the optimizer states”")
    expect(notes).to_contain_text("2.10 TB at 12 bytes per parameter fills 27 A100s")
    expect(notes).to_contain_text("1.40 TB: 18 A100s")
    expect(notes).to_contain_text("“4.7M × 12 bytes = 56 MB”")
    expect(notes).to_contain_text("8 bytes per trainable parameter: 37.6 MB")


def test_the_decision_tree_names_its_guides(page):
    settled(page, "/playgrounds/decision-tree/")
    table = page.locator("#scenario-table")
    expect(table.locator("tbody tr").first).to_contain_text("(lecture)")
    expect(table.locator("tbody tr").last).to_contain_text("(blog post)")
    expect(page.get_by_text("the decision framework of a lecture on prompting")).to_be_visible()


@pytest.mark.parametrize("slug", CHANGED)
def test_the_rendered_page_cites_no_seed_and_is_photographed(page, browser, embedded_lab, slug):
    settled(page, f"/playgrounds/{slug}/")
    text = page.evaluate(RENDERED_TEXT)
    assert not citations(text), citations(text)
    shot(page, f"sources-{slug}")
    context = browser.new_context(base_url=embedded_lab.base_url, viewport={"width": 390, "height": 844})
    phone = context.new_page()
    try:
        settled(phone, f"/playgrounds/{slug}/")
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390, slug
        assert not citations(phone.evaluate(RENDERED_TEXT))
        shot(phone, f"sources-{slug}-phone")
    finally:
        context.close()
