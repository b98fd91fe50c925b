"""Every page root that a script marks ready (data-ready="1") starts marked not ready
(data-ready="0") in its template: the browser tests wait on that mark (tests/support/sitepages.py
and browsing.py), and a root without it counts as settled before its script has drawn."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKED = re.compile(r'(\w+)\.dataset\.ready = "1"')


def element_ids(script: str) -> set[str]:
    """The ids of the elements the script marks ready: `const root = document.getElementById("x")`."""
    ids = set()
    for var in set(MARKED.findall(script)):
        ids.update(re.findall(rf'\b{var} = document\.getElementById\("([\w-]+)"\)', script))
    return ids


def opening_tags(element_id: str) -> list[str]:
    tags = []
    for template in (ROOT / "templates").rglob("*.html"):
        tags += re.findall(rf'<[^<>]*\bid="{element_id}"[^<>]*>', template.read_text(), flags=re.S)
    return tags


def test_every_root_a_script_marks_ready_starts_not_ready():
    checked, missing = 0, []
    for script in (ROOT / "static" / "js").glob("*.js"):
        for element_id in element_ids(script.read_text()):
            for tag in opening_tags(element_id):
                checked += 1
                if 'data-ready="0"' not in tag:
                    missing.append(f"{script.name}: #{element_id}")
    assert checked >= 25  # the walk found the pages' roots
    assert not missing, missing
