"""What every benchmark script here shares: the machine's description, percentiles, process-tree
CPU seconds, and writing its own section of a Markdown document (docs/performance.md)."""

import importlib.metadata
import os
import platform
import re
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERFORMANCE = ROOT / "docs" / "performance.md"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def browser_machine(browser) -> str:
    return (
        f"CPU {cpu_name()}, {os.cpu_count()} threads, torch {importlib.metadata.version('torch')}, "
        f"Chromium {browser.version} (headless, Playwright {importlib.metadata.version('playwright')})"
    )


def p95(values) -> float:
    values = sorted(values)
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def descendants(pid: int) -> list[int]:
    """The process and all its descendants (gunicorn's master and workers; celery and its child)."""
    out = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                out += descendants(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process tree: the live processes, plus the children the root has
    already reaped (cutime/cstime), such as a worker child replaced after PEFTLAB_RUNS_PER_CHILD."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0.0
    for i, p in enumerate(descendants(pid)):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if i == 0 else 0)
    return total / ticks


def write_section(text: str, heading: str, path: Path = PERFORMANCE) -> None:
    """Replace the section that starts with `heading` (up to the next "## "), or add it at the
    end; the other sections stay as they are."""
    old = path.read_text() if path.exists() else "# Performance\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    section = text.rstrip() + "\n\n"
    new = pattern.sub(lambda _: section, old, count=1) if pattern.search(old) else old.rstrip() + "\n\n" + section
    path.write_text(new.rstrip() + "\n")
