"""Every page of the site in Chromium under the Content-Security-Policy (peftlab/csp.py), as a
visitor, a student and a teacher: the browser reports no violation (no `securitypolicyviolation`
event in any frame, no console message about the policy), every playground's script ran (each
root says it is ready) and every Plotly chart drew, so a silently blocked script cannot pass.

The pages are those of the URL configuration (tests/support/sitepages.py `site_urls`): every chapter with
its framed playgrounds, every playground on its own page, the training, comparison and Pareto pages, joining and signing in, a teacher's classes and a class's dashboard."""

import pytest
from playwright.sync_api import expect

from peftlab.csp import POLICY
from peftlab.pages.chapters import CHAPTERS
from tests.support.browsing import shot
from tests.support.classrooms import PASSWORD
from tests.support.sitepages import SiteVisitor, site_urls

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Before any script of the page, in every frame: each violation, kept on the window.
WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(
  `${e.effectiveDirective} blocked ${e.blockedURI || "?"} (${e.sourceFile || "the page"}:${e.lineNumber}) ` +
  `in ${location.pathname}${location.search}`));
"""


class Visitor(SiteVisitor):
    """A browser of its own (cookies: one person), watched for violations and errors."""

    def __init__(self, browser, lab, who: str):
        super().__init__(
            browser,
            lab,
            who,
            viewport={"width": 1280, "height": 900},
            init_script=WATCH,
            noted=lambda msg: msg.type == "error" or "Content Security Policy" in msg.text,
        )

    def visit(self, url: str) -> dict:
        response, charts = self.load(url)
        assert response.headers.get("content-security-policy") == POLICY, url
        # Violations of the last drawing steps reach the window after them.
        self.page.wait_for_timeout(100)
        for frame in self.page.frames:
            self.problems += frame.evaluate("() => window.__cspViolations || []")
        assert not self.problems, f"{self.who} on {url}, under the Content-Security-Policy:\n" + "\n".join(
            self.problems
        )
        return charts


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
    teacher.sign_in_as_teacher(teacher_account)
    code = teacher.create_class("CSP seminar")

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
