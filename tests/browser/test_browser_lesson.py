"""Lesson links: a teacher hides chosen controls of a playground and shares the link."""

from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from tests.support.browsing import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_it_hides_the_chosen_controls_and_keeps_them_hidden_as_the_state_changes(page):
    page.goto("/playgrounds/low-rank/?r=2&hide=kind-select,noise-input")
    page.wait_for_selector("[data-ready='1']")
    expect(page.locator("#kind-select")).to_be_hidden()
    expect(page.locator("label[for='noise-input']")).to_be_hidden()
    expect(page.locator("#rank-slider")).to_be_visible()
    page.locator("#rank-slider").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#rank-value")).to_have_text("3")
    query = parse_qs(urlparse(page.url).query)
    assert query["hide"] == ["kind-select,noise-input"] and query["r"] == ["3"]


def test_it_builds_a_lesson_link_from_ticked_controls(page):
    page.goto("/playgrounds/low-rank/")
    page.wait_for_selector("[data-ready='1']")
    page.locator("#lesson-link summary").click()
    page.locator("#lesson-link input[value='seed-input']").check()
    link = page.locator("#lesson-link input[type=text]").input_value()
    assert parse_qs(urlparse(link).query)["hide"] == ["seed-input"]
    shot(page, "lesson-link-builder")
    page.goto(link)
    page.wait_for_selector("[data-ready='1']")
    expect(page.locator("#seed-input")).to_be_hidden()
    expect(page.locator("#size-input")).to_be_visible()
