"""Every page of the site in Chromium under the Content-Security-Policy (peftlab/csp.py), as a
visitor, a student and a teacher: the browser reports no violation (no `securitypolicyviolation`
event in any frame, no console message about the policy), every playground's script ran (each
root says it is ready) and every Plotly chart drew, so a silently blocked script cannot pass.

The pages are those of the URL configuration (tests/unit/test_csp.py `site_urls`): every chapter with
its framed playgrounds, every playground on its own page, the training, comparison and Pareto pages, joining and signing in, a teacher's classes and a class's dashboard."""

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from peftlab.csp import POLICY
from peftlab.pages.chapters import CHAPTERS
from tests.support.browsing import shot
from tests.support.classrooms import PASSWORD
from tests.unit.test_csp import site_urls

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Before any script of the page, in every frame: each violation, kept on the window.
WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(
  `${e.effectiveDirective} blocked ${e.blockedURI || "?"} (${e.sourceFile || "the page"}:${e.lineNumber}) ` +
  `in ${location.pathname}${location.search}`));
"""
# A page has settled when each playground root has drawn and no fetch of one is in flight (a
# hidden root waits for a button: the four-method race's instant simulation).
PENDING = """'[data-ready="0"]:not([hidden]), [data-loading="1"]'"""
SETTLED = """() => document.readyState === "complete" && !document.querySelector(PENDING)""".replace("PENDING", PENDING)
UNSETTLED = """() => [document.readyState, ...[...document.querySelectorAll(PENDING)].map(
  (el) => `#${el.id} ready=${el.dataset.ready} loading=${el.dataset.loading}`)]""".replace("PENDING", PENDING)
# Plotly loaded where a page asks for it, and each of its charts drew its SVG.
CHARTS = """() => ({
  wanted: !!document.querySelector('script[src*="plotly"]'),
  loaded: typeof window.Plotly === "object",
  charts: document.querySelectorAll(".js-plotly-plot").length,
  blank: [...document.querySelectorAll(".js-plotly-plot")].filter((el) => !el.querySelector(".main-svg"))
    .map((el) => el.id),
})"""


class Visitor:
    """A browser of its own (cookies: one person), watched for violations and errors."""

    def __init__(self, browser, lab, who: str):
        self.who = who
        self.context = browser.new_context(base_url=lab.base_url, viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(15_000)
        self.context.add_init_script(WATCH)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error on {self.page.url}: {exc}"))
        self.page.on("console", self._console)
        self.visited: dict[str, dict] = {}

    def _console(self, msg) -> None:
        if msg.type == "error" or "Content Security Policy" in msg.text:
            self.problems.append(f"console {msg.type} on {self.page.url}: {msg.text}")

    def is_page(self, url: str) -> bool:
        """Whether the URL answers this person with a page (not a redirect, a 404 or a 405)."""
        answer = self.context.request.get(url, max_redirects=0)
        return answer.status == 200 and answer.headers["content-type"].startswith("text/html")

    def visit(self, url: str) -> dict:
        response = self.page.goto(url)
        assert response.status == 200, f"{url}: {response.status}"
        assert response.headers.get("content-security-policy") == POLICY, url
        # Chapters frame their playgrounds lazily: each frame loads once scrolled to (and a
        # playground then writes its state into its URL, in place of ?embed=1).
        for frame_element in self.page.locator("iframe").all():
            frame_element.scroll_into_view_if_needed()
            frame = frame_element.element_handle().content_frame()
            frame.wait_for_url(re.compile(r"/playgrounds/"))
        frames = self.page.frames
        charts = {"charts": 0, "frames": len(frames)}
        for frame in frames:
            frame.wait_for_load_state()
            try:
                frame.wait_for_function(SETTLED, timeout=60_000)
            except PlaywrightTimeout:
                waiting = frame.evaluate(UNSETTLED)
                raise AssertionError(f"{url} (frame {frame.url}) did not settle: {waiting}") from None
            found = frame.evaluate(CHARTS)
            where = f"{url} (frame {frame.url})"
            assert found["loaded"] or not found["wanted"], f"Plotly did not load in {where}"
            assert not found["blank"], f"charts that did not draw in {where}: {found['blank']}"
            assert found["charts"] or not found["wanted"], f"no chart drew in {where}"
            charts["charts"] += found["charts"]
        # Violations of the last drawing steps reach the window after them.
        self.page.wait_for_timeout(100)
        for frame in self.page.frames:
            self.problems += frame.evaluate("() => window.__cspViolations || []")
        assert not self.problems, f"{self.who} on {url}, under the Content-Security-Policy:\n" + "\n".join(
            self.problems
        )
        self.visited[url] = charts
        return charts

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitors(browser, embedded_lab):
    made = []
    yield lambda who: made.append(Visitor(browser, embedded_lab, who)) or made[-1]
    for visitor in made:
        visitor.close()


@pytest.fixture
def teacher_account(embedded_lab):
    return embedded_lab.create_teacher("mr-okafor", PASSWORD)


def test_every_page_works_under_the_content_security_policy(visitors, teacher_account):
    # A teacher signs in and creates a class (both forms post under form-action 'self').
    teacher = visitors("teacher")
    teacher.visit("/teachers/login/")
    teacher.page.fill("#id_username", teacher_account)
    teacher.page.fill("#id_password", PASSWORD)
    teacher.page.get_by_role("button", name="Sign in").click()
    teacher.page.wait_for_url("**/classes/")
    teacher.page.fill("#id_name", "CSP seminar")
    teacher.page.get_by_role("button", name="Create the class").click()
    teacher.page.wait_for_url(re.compile(r"/classes/[A-Z0-9]{6}/$"))
    code = teacher.page.locator("#join-code").inner_text().strip()

    # A visitor sees every page of the site.
    visitor = visitors("visitor")
    # A playground framed alone (?embed=1) is what its chapter frames: visit() checks the frames.
    pages = [url for url in site_urls(code) if visitor.is_page(url) and not url.endswith("?embed=1")]
    for url in pages:
        visitor.visit(url)
    assert {f"/chapters/{ch.number}/" for ch in CHAPTERS} <= set(pages)
    assert {f"/playgrounds/{pg.slug}/" for ch in CHAPTERS for pg in ch.playgrounds} <= set(pages)
    # visit() checked that each page loading Plotly drew all its charts: low-rank has four.
    assert visitor.visited["/playgrounds/low-rank/"]["charts"] == 4
    # The mode bar's PNG download draws the chart's SVG through a blob: URL (img-src).
    visitor.visit("/playgrounds/low-rank/")
    chart = visitor.page.locator("#heatmap-original")
    chart.hover()
    with visitor.page.expect_download() as download:
        chart.locator('.modebar-btn[data-title="Download plot as a PNG"]').click()
    assert download.value.suggested_filename.endswith(".png")
    visitor.page.wait_for_timeout(200)
    assert not visitor.page.evaluate("() => window.__cspViolations"), "the PNG download was blocked"
    visitor.visit("/chapters/5/")
    shot(visitor.page, "csp-chapter-5")

    # A student joins the class, and a teacher sees one page of each kind (their header, the
    # class pages): the pages that differ by who is looking.
    student = visitors("student")
    student.visit("/join/")
    student.page.fill("#id_code", code)
    student.page.fill("#id_nickname", "Ines")
    student.page.get_by_role("button", name="Join").click()
    expect(student.page.locator("#whoami")).to_contain_text("CSP seminar")
    for person in (student, teacher):
        for url in site_urls(code, every_value=False):
            if person.is_page(url):
                person.visit(url)
    assert {"/classes/", f"/classes/{code}/"} <= set(teacher.visited)
    teacher.visit(f"/classes/{code}/")
    shot(teacher.page, "csp-class-dashboard")

    problems = [f"{v.who}: {p}" for v in (visitor, student, teacher) for p in v.problems]
    assert not problems, "under the Content-Security-Policy:\n" + "\n".join(problems)
