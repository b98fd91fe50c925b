"""Helpers for browser tests (the `browser` and `page` fixtures live in conftest.py)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def expect_console_error(page, pattern: str) -> None:
    """Declare, before the action that causes it, one console error the test means to provoke."""
    page.expected_console_errors.append(pattern)


def shot(page, name: str) -> None:
    # Finished CSS transitions (the progress bar's), so the picture shows the settled page.
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, animations="disabled")


def plot_data(page, element_id: str, trace: int = 0, key: str = "x"):
    return page.evaluate("([id, i, k]) => { const d = document.getElementById(id).data;"
                         " return d && d[i] ? Array.from(d[i][k]) : null; }", [element_id, trace, key])
