"""Every chapter page in a real browser: the playgrounds load in their frames with no console
error, every control of every playground changes what it shows, the quiz answers wrong and
right, and the visitor's progress is remembered. At phone width nothing overflows sideways.
"""

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from peftlab.pages.chapters import CHAPTERS
from tests.support.browsing import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

READY_MS = 90_000  # the lottery and intrinsic-dimension playgrounds train small networks first
CHANGE_MS = 90_000  # a new seed retrains the small networks: seconds (far more on a busy machine)

# What a playground shows: the text of its page and the data and drawings of its charts, hashed.
FINGERPRINT = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')].map((p) =>
    JSON.stringify([p.data, p.layout && p.layout.shapes, p.layout && p.layout.annotations]));
  const text = document.querySelector('main').innerText + '|' + plots.join('|');
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) | 0;
  return `${text.length}:${h}`;
}"""
SETTLED = "() => document.querySelector('main [data-ready=\"1\"]') && !document.querySelector('[data-loading=\"1\"]')"


def live_chapters():
    return [ch for ch in CHAPTERS if any(pg.live for pg in ch.playgrounds)]


def frames(page):
    """The chapter's playground frames, each scrolled into view (they load lazily) and ready."""
    out = []
    for figure in page.locator(".embed:has(iframe)").all():
        figure.scroll_into_view_if_needed()
        frame = figure.locator("iframe").element_handle().content_frame()
        frame.wait_for_load_state()
        frame.wait_for_function(SETTLED, timeout=READY_MS)
        out.append((figure.get_attribute("data-slug"), frame))
    return out


def controls(frame):
    """Every visible, enabled input and select of a playground, once per radio group. Controls
    marked data-run-settings set up real runs the learner starts (race, sweeps): they change
    nothing until Start, and their own browser tests start runs with them."""
    found, groups = [], set()
    for el in frame.locator("main input:not([data-run-settings] *), main select:not([data-run-settings] *)").all():
        kind = el.evaluate("e => e.tagName === 'SELECT' ? 'select' : e.type")
        if kind in ("hidden", "text", "button", "submit") or not el.is_visible() or not el.is_enabled():
            continue
        if kind == "radio":
            # One radio per group: the last one not chosen (the first is often the default's
            # neighbour, e.g. rank 1, where α and α/r coincide).
            name = el.get_attribute("name")
            if el.is_checked():
                continue
            if name in groups:
                found = [(k, e) for k, e in found if not (k == "radio" and e.get_attribute("name") == name)]
            groups.add(name)
        found.append((kind, el))
    return found


def change(kind, el):
    """Move a control the way a person would, to a value it does not have now."""
    if kind == "range":
        at_max = el.evaluate("e => e.value === e.max")
        el.focus()
        el.press("Home" if at_max else "End")
    elif kind in ("checkbox", "radio"):
        el.click()
    elif kind == "select":
        value = el.evaluate("e => [...e.options].find((o) => !o.selected && !o.disabled)?.value ?? null")
        if value is None:
            return False
        el.select_option(value)
    elif kind == "number":
        # Doubling keeps a model's config consistent (heads still divide the hidden size).
        value = el.evaluate("""e => { const v = Number(e.value), max = e.max === '' ? null : Number(e.max),
          min = e.min === '' ? 1 : Number(e.min);
          if (!v) return Math.max(min, 1) * 10; return max !== null && 2 * v > max ? min : 2 * v; }""")
        el.fill(str(value))
        el.press("Enter")
        el.evaluate("e => e.dispatchEvent(new Event('change', { bubbles: true }))")
    return True


def describe(el):
    return el.evaluate("e => e.id || e.name || e.outerHTML.slice(0, 80)")


@pytest.mark.parametrize("chapter", live_chapters(), ids=lambda ch: f"chapter-{ch.number}")
def test_every_control_of_every_playground_in_the_chapter_changes_what_it_shows(page, chapter):
    live = [pg for pg in chapter.playgrounds if pg.live]
    page.goto(f"/chapters/{chapter.number}/")
    expect(page.locator(".chapter-progress .progress-text")).to_contain_text(f"of {len(live)} playgrounds explored")
    unchanged = []
    exercised = 0
    for slug, frame in frames(page):
        badge = page.locator(f'.embed[data-slug="{slug}"] .explored-badge')
        if frame.locator("[data-explored-on-view]").count() == 0:
            expect(badge).to_be_hidden()  # not before the visitor has moved something
        frame_controls = controls(frame)
        for kind, el in frame_controls:
            # An earlier choice may have switched this control off (k in zero-shot mode).
            if not el.is_visible() or not el.is_enabled():
                continue
            before = frame.evaluate(FINGERPRINT)
            if not change(kind, el):
                continue
            exercised += 1
            try:
                frame.wait_for_function(
                    f"(before) => ({SETTLED})() && ({FINGERPRINT})() !== before", arg=before, timeout=CHANGE_MS
                )
            except PlaywrightTimeout:
                unchanged.append(f"{slug}: {kind} {describe(el)}")
        if not frame_controls and frame.locator("[data-run-settings] select").count():
            # Only run settings here (the race): choosing one is exploring the page too.
            change("select", frame.locator("[data-run-settings] select").first)
        expect(badge).to_be_visible()
    assert exercised >= 1
    assert not unchanged, f"controls that changed nothing: {unchanged}"
    expect(page.locator(".chapter-progress .progress-text")).to_contain_text(
        f"{len(live)} of {len(live)} playgrounds explored"
    )
    shot(page, f"chapter-{chapter.number}")


def answer_until(question, correct: bool) -> None:
    """Pick choices in order until the feedback says right (or wrong): only the page's data
    knows which choice is which."""
    labels = question.locator("label")
    for i in range(labels.count()):
        labels.nth(i).click()
        if question.locator(".quiz-feedback").first.get_attribute("data-correct") == str(correct).lower():
            return
    raise AssertionError(f"no choice gave correct={correct}")


@pytest.mark.parametrize("chapter", [ch for ch in CHAPTERS if ch.number != 10], ids=lambda ch: f"chapter-{ch.number}")
def test_the_chapter_quiz_answers_wrong_then_right_and_is_remembered(page, chapter):
    # The quiz is the page's own; its playgrounds (tested above) are left empty here, as each
    # costs the browser seconds of CPU to load.
    page.route("**/playgrounds/*/?embed=1", lambda route: route.fulfill(content_type="text/html", body=""))
    page.goto(f"/chapters/{chapter.number}/")
    first = page.locator("#quiz-root fieldset").first
    expect(first).to_be_visible()
    total = page.locator("#quiz-root fieldset").count()
    answer_until(first, correct=False)
    expect(first.locator(".quiz-feedback").first).to_contain_text("Not quite.")
    expect(page.locator(".progress-text")).to_contain_text(f"0 of {total} questions answered right")
    answer_until(first, correct=True)
    expect(first.locator(".quiz-feedback").first).to_contain_text("Right.")
    expect(page.locator(".progress-text")).to_contain_text(f"1 of {total} questions answered right")
    page.reload()
    expect(page.locator(".progress-text")).to_contain_text(f"1 of {total} questions answered right")
    page.goto("/")
    standing = page.locator(f'#chapter-list > li[data-chapter="{chapter.number}"] .chapter-standing')
    expect(standing).to_contain_text(f"1 of {total} quiz questions right")
    expect(page.locator("#resume a")).to_have_text(f"Continue with chapter {CHAPTERS[0].number}")


def test_at_phone_width_no_chapter_overflows_sideways(browser, embedded_lab):
    context = browser.new_context(
        base_url=embedded_lab.base_url, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        for chapter in CHAPTERS:
            page.goto(f"/chapters/{chapter.number}/")
            wide = []
            for slug, frame in frames(page):
                width = frame.evaluate(
                    "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
                )
                if width[0] > width[1] + 1:
                    wide.append((slug, width))
            assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), chapter.number
            assert not wide, f"chapter {chapter.number}: playgrounds wider than the phone: {wide}"
            shot(page, f"chapter-{chapter.number}-phone")
    finally:
        context.close()
    assert not errors
