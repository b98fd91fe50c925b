"""The review chapter in a real browser: the quiz (P21) and the cheat sheet (P22)."""

import pytest
from playwright.sync_api import expect

from tests.support.browsing import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_it_explains_a_wrong_and_a_right_answer_and_remembers_them(page):
    page.goto("/playgrounds/quiz/?chapter=5")
    page.wait_for_selector("#quiz-root[data-ready='1']")
    expect(page.locator("#chapter-5")).to_have_class("card quiz-chapter focus")
    question = page.locator("fieldset[data-question='lora-count']")
    question.get_by_label("32,768").check()  # only A: wrong
    expect(question.locator(".quiz-feedback").first).to_have_attribute("data-correct", "false")
    expect(question).to_contain_text("That counts only A")
    expect(question).to_contain_text("The answer: 65,536")
    question.get_by_label("65,536").check()
    expect(question.locator(".quiz-feedback").first).to_have_attribute("data-correct", "true")
    init = page.locator("fieldset[data-question='lora-init']")
    init.get_by_label("Both could be zero just as well").check()
    expect(init.locator("aside.note")).to_contain_text("Both A and B start at zero")
    expect(page.locator("#quiz-progress")).to_contain_text("Chapter 5: 1 right of 3 (1 to go)")
    shot(page, "quiz-chapter5")

    page.reload()
    page.wait_for_selector("#quiz-root[data-ready='1']")
    expect(page.locator("fieldset[data-question='lora-count'] input:checked")).to_have_count(1)
    expect(page.locator("#quiz-progress")).to_contain_text("Chapter 5: 1 right of 3 (1 to go)")
    page.keyboard.press("Tab")  # the controls are native inputs: keyboard-reachable
    page.get_by_role("button", name="Forget my answers").click()
    expect(page.locator("#quiz-root input:checked")).to_have_count(0)


def test_it_shows_the_cheat_sheet_with_computed_values(page):
    page.goto("/playgrounds/cheat-sheet/")
    page.wait_for_selector("#cheat-sheet[data-ready='1']")
    rows = page.locator("#cheat-sheet tbody tr")
    expect(rows.first).to_contain_text("65,536 parameters")
    assert rows.count() >= 10
    expect(page.locator("#cheat-sheet")).to_contain_text("0.3906 %")
    shot(page, "cheat-sheet")
