"""The Content-Security-Policy (peftlab/csp.py): every response carries it, scripts may come only
from the lab itself, and no template or script of the lab needs more (inline scripts, inline event
handlers, `javascript:` URLs, strings evaluated as code). tests/browser/test_browser_csp.py checks in
Chromium that every page works under it."""

import re
from pathlib import Path

import pytest
from django.test import Client

from peftlab.csp import POLICY
from peftlab.pages.chapters import CHAPTERS
from tests.support.classrooms import classroom, teacher, teacher_browser
from tests.support.sitepages import site_urls

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def directives(policy: str) -> dict[str, list[str]]:
    return {name: sources for name, *sources in (d.split() for d in policy.split(";") if d.strip())}


@pytest.fixture
def ada():
    return teacher("ada")


def test_the_site_urls_cover_every_chapter_playground_and_class_page(ada):
    code = classroom(ada).code
    urls = site_urls(code)
    assert {f"/chapters/{ch.number}/" for ch in CHAPTERS} <= set(urls)
    assert {
        f"/playgrounds/{pg.slug}/{embed}" for ch in CHAPTERS for pg in ch.playgrounds for embed in ("", "?embed=1")
    } <= set(urls)
    assert {
        "/",
        "/train/",
        "/compare/",
        "/pareto/",
        "/join/",
        "/teachers/login/",
        "/classes/",
        f"/classes/{code}/",
    } <= set(urls)
    assert not [u for u in urls if u.startswith("/api/")]


def test_every_page_carries_the_policy(ada):
    """As a signed-in teacher, so that the class pages answer with their page."""
    code = classroom(ada).code
    client = teacher_browser(ada)
    answers = {url: client.get(url) for url in site_urls(code)}
    missing = [
        f"{url} ({r.status_code})" for url, r in answers.items() if r.headers.get("Content-Security-Policy") != POLICY
    ]
    assert not missing, f"without the policy: {missing}"
    pages = [
        url for url, r in answers.items() if r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    ]
    assert f"/classes/{code}/" in pages and "/compare/" in pages and len(pages) > 2 * len(CHAPTERS)


def test_api_answers_and_error_pages_carry_it_too():
    client = Client()
    for url, status in (("/api/methods", 200), ("/healthz", 200), ("/no/such/page/", 404), ("/chapters/999/", 404)):
        response = client.get(url)
        assert response.status_code == status, url
        assert response.headers["Content-Security-Policy"] == POLICY, url


def test_a_policy_the_view_set_itself_is_kept():
    from django.http import HttpResponse

    from peftlab.csp import ContentSecurityPolicyMiddleware

    own = HttpResponse("x", headers={"Content-Security-Policy": "default-src 'none'"})
    response = ContentSecurityPolicyMiddleware(lambda request: own)(None)
    assert response.headers["Content-Security-Policy"] == "default-src 'none'"


def test_djangos_debug_error_pages_are_left_without_it(settings):
    # The traceback and URL-list pages of DEBUG use inline scripts; the lab's pages never do.
    settings.DEBUG = True
    assert "Content-Security-Policy" not in Client().get("/no/such/page/").headers
    assert Client().get("/").headers["Content-Security-Policy"] == POLICY


def test_scripts_come_from_the_lab_alone_and_nothing_runs_strings_as_code():
    d = directives(POLICY)
    assert d["default-src"] == ["'self'"]
    assert d["script-src"] == ["'self'"]
    assert d["object-src"] == ["'none'"]
    assert d["base-uri"] == d["form-action"] == d["frame-ancestors"] == d["frame-src"] == ["'self'"]
    assert d["connect-src"] == ["'self'"]
    for sources in d.values():
        # No eval, no inline script, no other site: every source is the lab or a local scheme.
        assert "'unsafe-eval'" not in sources and "'unsafe-hashes'" not in sources
        assert not [s for s in sources if s not in ("'self'", "'none'", "'unsafe-inline'", "data:", "blob:")], sources
    # Inline styles only (Plotly's, see peftlab/csp.py), never inline scripts.
    assert [name for name, sources in d.items() if "'unsafe-inline'" in sources] == ["style-src"]


INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[a-z][^<>]*\son[a-z]+\s*=", re.I)
JS_URL = re.compile(r"javascript:", re.I)
EVAL = re.compile(r"\beval\s*\(|\bnew\s+Function\s*\(|\bset(?:Timeout|Interval)\s*\(\s*[\"'`]")


def test_no_template_has_an_inline_script_an_event_handler_or_a_javascript_url():
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        for what, pattern in (
            ("inline script", INLINE_SCRIPT),
            ("event handler", EVENT_HANDLER),
            ("javascript: URL", JS_URL),
        ):
            found += [f"{path.relative_to(ROOT)}: {what}: {m.group(0)[:80]}" for m in pattern.finditer(text)]
    assert not found, "blocked by script-src 'self':\n" + "\n".join(found)


def test_no_script_evaluates_strings_or_writes_event_handlers_into_html():
    found = []
    for path in sorted((ROOT / "static" / "js").rglob("*.js")):
        text = path.read_text()
        for what, pattern in (("eval", EVAL), ("event handler in HTML", EVENT_HANDLER), ("javascript: URL", JS_URL)):
            found += [f"{path.relative_to(ROOT)}: {what}: {m.group(0)[:80]}" for m in pattern.finditer(text)]
    assert not found, "blocked by script-src 'self':\n" + "\n".join(found)
