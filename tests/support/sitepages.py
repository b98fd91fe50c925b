"""Every page of the site, for the tests that walk them all (tests/browser/test_browser_csp.py,
tests/browser/test_browser_phone.py): the URLs made concrete from the URL configuration, and a
browser context that visits one and waits until every playground and chart on it (its framed
playgrounds' included) has drawn."""

import itertools
import re

from django.urls import URLResolver, get_resolver, reverse
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from peftlab.pages.chapters import CHAPTERS
from tests.support.classrooms import PASSWORD


def site_urls(code: str, every_value: bool = True) -> list[str]:
    """Every URL of the site outside the API (/api/...: JSON and event streams), made concrete from
    the URL configuration: each chapter for <number>, each playground (on its own page and framed,
    ?embed=1) for <slug>, the class `code` for <code>. With every_value=False, one URL per route."""
    values = {
        "number": [ch.number for ch in CHAPTERS],
        "slug": [pg.slug for ch in CHAPTERS for pg in ch.playgrounds],
        "code": [code],
    }
    urls = []

    def walk(patterns, prefix: str, namespace: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if route.startswith("api/"):
                continue
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route, f"{pattern.namespace}:" if pattern.namespace else namespace)
                continue
            params = list(pattern.pattern.converters)
            unknown = set(params) - set(values)
            assert not unknown, f"the route {route!r} takes {unknown}: say here which values to visit"
            choices = [values[p] if every_value else values[p][:1] for p in params]
            for combination in itertools.product(*choices):
                url = reverse(namespace + pattern.name, kwargs=dict(zip(params, combination)))
                urls.append(url)
                if "slug" in params:
                    urls.append(f"{url}?embed=1")

    walk(get_resolver().url_patterns, "", "")
    return urls


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


class SiteVisitor:
    """One person's browser context (cookies: one person) at one window size. `visit` loads a page,
    scrolls each framed playground into view (chapters frame them lazily), and waits until every
    frame has settled and drawn its charts; the frames are then in `page.frames`. Page errors and
    console messages are kept in `problems` (`noted(msg)` says which console messages count)."""

    def __init__(self, browser, lab, who: str, viewport: dict, init_script: str = "", noted=None):
        self.who = who
        self.context = browser.new_context(base_url=lab.base_url, viewport=viewport)
        self.context.set_default_timeout(15_000)
        if init_script:
            self.context.add_init_script(init_script)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.noted = noted or (lambda msg: msg.type == "error")
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error on {self.page.url}: {exc}"))
        self.page.on("console", self._console)
        self.visited: dict[str, dict] = {}

    def _console(self, msg) -> None:
        if self.noted(msg):
            self.problems.append(f"console {msg.type} on {self.page.url}: {msg.text}")

    def is_page(self, url: str) -> bool:
        """Whether the URL answers this person with a page (not a redirect, a 404 or a 405)."""
        answer = self.context.request.get(url, max_redirects=0)
        return answer.status == 200 and answer.headers["content-type"].startswith("text/html")

    def load(self, url: str):
        """Load `url` and wait until it has settled; returns the response and the charts drawn."""
        response = self.page.goto(url)
        assert response.status == 200, f"{url}: {response.status}"
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
        self.visited[url] = charts
        return response, charts

    def sign_in_as_teacher(self, username: str) -> None:
        self.page.goto("/teachers/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url("**/classes/")

    def create_class(self, name: str) -> str:
        """From a signed-in teacher's classes page: the new class's join code."""
        self.page.fill("#id_name", name)
        self.page.get_by_role("button", name="Create the class").click()
        self.page.wait_for_url(re.compile(r"/classes/[A-Z0-9]{6}/$"))
        return self.page.locator("#join-code").inner_text().strip()

    def close(self) -> None:
        self.context.close()
