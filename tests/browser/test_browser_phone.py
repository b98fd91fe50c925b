"""Every page of the site on a phone (390 × 844, Chromium): nothing runs off the page's right
edge (the document does not scroll sideways, and no element ends past the window unless it sits
in a container that scrolls sideways), no select or button cuts its own text, and the console
stays free of warnings and errors. Framed playgrounds are checked inside their frames too.

The pages are those of the URL configuration (tests/support/sitepages.py `site_urls`), as the
Content-Security-Policy test walks them: every chapter with its framed playgrounds, every
playground, the training, comparison and Pareto pages, joining and signing in as a visitor; a
teacher's classes and a class's dashboard as a teacher."""

import time

import pytest

from tests.support.browsing import SCREENSHOTS, shot
from tests.support.classrooms import PASSWORD
from tests.support.sitepages import SiteVisitor, site_urls

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}

# In one frame: what sticks out past its right edge. An element counts when it is drawn (it has a
# size and is visible), is HTML (a chart's SVG is clipped by its own box, which is checked) and has
# no ancestor that scrolls or clips sideways (a wide table in a scrolling box is fine; the box
# itself is checked). A select or button whose text is wider than its box is cut.
OVERFLOW = """() => {
  const width = window.innerWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? `#${el.id}` : "")
    + (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  const contained = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== "visible") return true;
    }
    return false;
  };
  const drawn = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none";
  };
  const wide = [...document.body.querySelectorAll("*")]
    .filter((el) => el instanceof HTMLElement && drawn(el) && el.getBoundingClientRect().right > width + 1
      && !contained(el))
    .map((el) => `${name(el)} ends at ${Math.round(el.getBoundingClientRect().right)} px`);
  // A select shows its chosen option's text: measured in the select's font, against its box less
  // its padding and arrow.
  const canvas = document.createElement("canvas").getContext("2d");
  const textWidth = (el, text) => {
    const s = getComputedStyle(el);
    canvas.font = `${s.fontStyle} ${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
    return canvas.measureText(text).width;
  };
  const cut = [...document.querySelectorAll("select, button")].filter(drawn).filter((el) => {
    if (el.scrollWidth > el.clientWidth + 1) return true;
    if (el.tagName !== "SELECT" || el.selectedIndex < 0) return false;
    const s = getComputedStyle(el);
    const room = el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight) - 16;
    return textWidth(el, el.options[el.selectedIndex].text) > room + 1;
  }).map((el) => `${name(el)} cuts "${(el.tagName === "SELECT" ? el.options[el.selectedIndex].text : el.textContent).trim()}"`);
  // A table cell that breaks a word over two lines (one letter per line in a squeezed column); a
  // line may still end at a hyphen or slash ("fine-" / "tuning"), as print does.
  const split = [];
  for (const cell of [...document.querySelectorAll("td, th")].filter(drawn)) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/[^\\s\\-/]+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
        if (tops.size > 1) split.push(`${name(cell)} breaks "${m[0]}"`);
      }
    }
  }
  return {
    scroll: document.documentElement.scrollWidth > width ? [`the document is ${document.documentElement.scrollWidth} px wide`] : [],
    wide, cut, split: split.slice(0, 5),
  };
}"""


class Phone(SiteVisitor):
    """A browser at a phone's size whose console must stay quiet: warnings count."""

    def __init__(self, browser, lab, who: str):
        super().__init__(browser, lab, who, viewport=PHONE, noted=lambda msg: msg.type in ("error", "warning"))

    def check(self, url: str) -> list[str]:
        """What is wrong with `url` on this phone (nothing: an empty list)."""
        self.problems = []
        try:
            self.load(url)
        except AssertionError as failed:
            return [str(failed), *self.problems]
        found = []
        for frame in self.page.frames:
            where = url if frame == self.page.main_frame else f"{url} (frame {frame.url})"
            for kind, items in frame.evaluate(OVERFLOW).items():
                found += [f"{where}: {kind}: {item}" for item in items[:5]]
        return found + self.problems


@pytest.fixture(scope="module")
def phones(browser, embedded_lab):
    """A visitor and a signed-in teacher with a class, each one phone-sized page for every visit."""
    username = embedded_lab.create_teacher("ms-adeyemi", PASSWORD)
    teacher = Phone(browser, embedded_lab, "teacher")
    teacher.sign_in_as_teacher(username)
    code = teacher.create_class("Phone seminar")
    visitor = Phone(browser, embedded_lab, "visitor")
    yield visitor, teacher, code
    visitor.close()
    teacher.close()


def test_every_page_fits_a_phone(phones):
    visitor, teacher, code = phones
    SCREENSHOTS.mkdir(exist_ok=True)
    started = time.monotonic()
    # A playground framed alone (?embed=1) is what its chapter frames: check() looks into the frames.
    urls = [u for u in site_urls(code) if not u.endswith("?embed=1")]
    mine = [u for u in urls if visitor.is_page(u)]
    # The teacher's pages: their classes and a class's dashboard.
    theirs = [u for u in urls if u not in mine and teacher.is_page(u)]
    assert {"/", "/train/", "/compare/", "/pareto/", "/join/", "/chapters/1/", "/playgrounds/four-method-race/"} <= set(
        mine
    )
    assert {"/classes/", f"/classes/{code}/"} <= set(theirs)
    problems = []
    for person, pages in ((visitor, mine), (teacher, theirs)):
        for url in pages:
            problems += [f"{person.who}: {p}" for p in person.check(url)]
    print(f"{len(mine) + len(theirs)} pages at 390 × 844 in {time.monotonic() - started:.1f} s")
    assert not problems, "on a phone:\n" + "\n".join(problems)
    shot(teacher.page, "phone-class-dashboard")


# A chart drawn empty: its axes hidden, its message, and whether Plotly put a mode bar on it.
EMPTY_CHART = """(id) => { const el = document.getElementById(id); return {
  axes: [el.layout.xaxis.visible, el.layout.yaxis.visible],
  note: (el.layout.annotations || []).map((a) => a.text).join(" "),
  modebar: !!el.querySelector(".modebar"),
}; }"""


def test_empty_charts_say_what_to_do_and_a_phone_shows_no_mode_bar(phones, browser, embedded_lab):
    visitor, _, _ = phones
    visitor.check("/compare/")
    loss = visitor.page.evaluate(EMPTY_CHART, "loss-chart")
    assert loss["axes"] == [False, False] and "Tick finished runs" in loss["note"], loss
    assert "<br>" in loss["note"], "the message is broken into lines that fit a phone"
    assert not loss["modebar"], "a phone's chart has no mode bar over its title"
    visitor.check("/playgrounds/four-method-race/")
    race = visitor.page.evaluate(EMPTY_CHART, "acc-chart")
    assert race["axes"] == [False, False] and "Press Start race" in race["note"], race

    # On a laptop the mode bar stays; the race's lane menus and chapter 1's cost table are whole.
    laptop = SiteVisitor(browser, embedded_lab, "laptop", viewport={"width": 1280, "height": 900})
    try:
        laptop.load("/playgrounds/four-method-race/")
        assert laptop.page.evaluate(EMPTY_CHART, "acc-chart")["modebar"]
        assert not laptop.page.evaluate(OVERFLOW)["cut"]
        laptop.load("/chapters/1/")
        wrap = laptop.page.frame_locator("iframe").first.locator("#cost-root .table-wrap")
        assert wrap.evaluate("(el) => el.scrollWidth <= el.clientWidth"), "the cost table scrolls sideways"
    finally:
        laptop.close()
