"""Helpers for browser tests (the `browser` and `page` fixtures live in conftest.py)."""

import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def expect_console_error(page, pattern: str) -> None:
    """Declare, before the action that causes it, one console error the test means to provoke."""
    page.expected_console_errors.append(pattern)


def shot(page, name: str, settle_ms: int = 0) -> None:
    """A full-page screenshot under screenshots/, for a person to look at (no test reads it back).
    Each costs about a second of CPU on a long page; `.ci/run` turns them off with
    PEFTLAB_SCREENSHOTS=0."""
    if os.environ.get("PEFTLAB_SCREENSHOTS") == "0":
        return
    if settle_ms:  # a resize's or a transition's last frame, for the picture only
        page.wait_for_timeout(settle_ms)
    # Finished CSS transitions (the progress bar's), so the picture shows the settled page.
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, animations="disabled")


def plot_data(page, element_id: str, trace: int = 0, key: str = "x"):
    return page.evaluate(
        "([id, i, k]) => { const d = document.getElementById(id).data;"
        " return d && d[i] ? Array.from(d[i][k]) : null; }",
        [element_id, trace, key],
    )


def ring_anchors(page, element_id: str) -> list[tuple]:
    """(x, y) in data units of each chosen-point ring of a chart (static/js/playground.js `ring`)."""
    shapes = page.evaluate(f"() => document.getElementById('{element_id}').layout.shapes || []")
    return [(s["xanchor"], s["yanchor"]) for s in shapes if s.get("xsizemode") == "pixel"]


def query(page) -> dict:
    """The page's query string as a dict of single values (playgrounds keep their state there)."""
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def slide(page, selector: str, value) -> None:
    """Set a range input and fire its input event, as dragging it would."""
    page.locator(selector).evaluate(
        "(s, v) => { s.value = v; s.dispatchEvent(new Event('input', { bubbles: true })); }", value
    )


def wait_ready(page, root: str, timeout: float = 60_000) -> None:
    """Until the playground's root says it has drawn and no fetch is in flight (the first request
    of some playgrounds trains small networks: seconds)."""
    page.wait_for_selector(f'#{root}[data-ready="1"]:not([data-loading="1"])', state="attached", timeout=timeout)


def api_requests(page, slug: str) -> list:
    """The URLs of the page's requests to its playground's API, collected as they happen."""
    requests = []
    page.on("request", lambda r: requests.append(r.url) if f"/api/playgrounds/{slug}" in r.url else None)
    return requests


def default_precision() -> str:
    """What a run of a test lab records as its precision: this machine's default (auto: bf16
    autocast where the CPU multiplies bf16 natively, workers/precision.py)."""
    import torch

    from workers import precision

    return precision.name(precision.training_dtype(torch.device("cpu"), "auto"))


def cancel_from_page(page, run_id: int) -> int:
    """Cancel a run that the page's browser started, as its Cancel button does (only the browser
    that started a run, or its teacher, may cancel it); returns the status (202, or 409 if it
    had already finished)."""
    return page.evaluate(
        """async (id) => {
        const token = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1];
        const r = await fetch(`/api/runs/${id}/cancel`, { method: "POST", body: "{}",
            headers: { "Content-Type": "application/json", "X-CSRFToken": token } });
        return r.status; }""",
        run_id,
    )
