"""The word "seed" on the lab's pages means one thing: the random seed of a run or of a
playground's random draw. The documents the lab's figures come from are named by what a reader can
look up (a paper and its table) or described plainly ("a lecture on prompting, LoRA and adapters"),
never as "seed 000", "seed 001 ch3" or "the seeds": those are authoring notes.

Three walks, one rule (`citations`):
- every page the URL configuration serves (tests/unit/test_csp.py `site_urls`: each chapter, each
  playground on its own page and framed, the training, comparison and class pages), as a teacher,
  its text and the attributes a reader sees;
- the JSON of every playground endpoint (GET /api/playgrounds/..., from the OpenAPI document) at
  its defaults, every string in it;
- every string and template literal of the lab's scripts (static/js) that holds prose.
"""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.support.classrooms import classroom, teacher, teacher_browser
from tests.unit.test_csp import site_urls

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SEED = re.compile(r"\bseed(?:s|'s|s'|’s)?\b", re.I)
# The random seed, as the pages speak of it: a form's label ("Seed", "Seed (new random W, A, B
# and x)", "Initialisation seed"), a run's seed ("seed 3", "seed ${run.seed}"), "the same seed",
# "random seed(s)", the form's message "Seed: a whole number".
RANDOM_SEED = [
    re.compile(p, re.I)
    for p in (
        r"^\W*seed\W*$",
        # a run's or race's own seed, in a script's template ("seed ${run.seed}") or on the page
        r"\bseed (?:\$\{(?:run|r|f|race)\.seed\}|0|[1-9]\d*)(?![\d.,]\d)",
        r"\bsame seed\b",
        r"\brandom seeds?\b",
        r"\binitialisation seed\b",
        r"^\s*seed \((?:[^)]*\brandom\b|initial weights)[^)]*\)",
        r"^seed: a whole number",
    )
]


def citations(text: str) -> list[str]:
    """Each use of "seed" in `text` that is not the random seed, with its surroundings."""
    allowed = [m.span() for p in RANDOM_SEED for m in p.finditer(text)]
    found = []
    for m in SEED.finditer(text):
        if not any(start <= m.start() and m.end() <= end for start, end in allowed):
            found.append(text[max(0, m.start() - 60) : m.end() + 60].replace("\n", " "))
    return found


def test_the_rule_tells_a_citation_from_a_random_seed():
    for cited in (
        "as quoted in seed 000",
        "r = 1 or 2 often works (seed 001, chapter 3).",
        "seed 001 ch3: 65,536",
        "(seed 004)",
        "The seeds against the arithmetic",
        "The seed's worked example, recomputed.",
        "Reported by the papers seed 004 summarises",
        "Seeds say",
        "the seed gives no figure",
        "LoRA (seed 000, GPT-3)",
        "</strong> Seed ${g.seed} says LoRA on ",
    ):
        assert citations(cited), cited
    for random_seed in (
        "Seed",
        "Seed (target and random starts)",
        "Seed (new random W, A, B and x)",
        "Initialisation seed",
        "targets query, value, 200 steps, seed 3, trained on cpu.",
        "Run ${r.id} · ${r.steps} steps · seed ${r.seed}<br>",
        "with the same seed and the same number of steps",
        "learning rates, random seeds, epochs",
        "Seed: a whole number, 0 or more.",
    ):
        assert not citations(random_seed), random_seed


class VisibleText(HTMLParser):
    """The text nodes of a page outside scripts and styles, and the attributes a reader sees."""

    SHOWN = ("title", "alt", "aria-label", "placeholder", "content")

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.hidden += 1
        self.texts += [value for name, value in attrs if name in self.SHOWN and value]

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden and data.strip():
            self.texts.append(" ".join(data.split()))


def page_texts(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.texts


def test_no_page_cites_a_source_as_a_seed():
    ada = teacher("ada")
    code = classroom(ada).code
    client = teacher_browser(ada)
    pages = found = 0
    problems = []
    for url in site_urls(code):
        response = client.get(url)
        if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
            continue
        pages += 1
        for text in page_texts(response.content.decode()):
            problems += [f"{url}: …{c}…" for c in citations(text)]
            found += bool(SEED.search(text))
    assert pages > 40
    assert found, "no page spoke of a random seed: is the walk reading the pages?"
    assert not problems, "'seed' as a source citation:\n" + "\n".join(problems)


def playground_endpoints() -> list[str]:
    """Every GET /api/playgrounds/... of the OpenAPI document that needs no path parameter."""
    from peftlab.urls import api

    paths = api.get_openapi_schema()["paths"]
    return sorted(p for p, ops in paths.items() if p.startswith("/api/playgrounds/") and "get" in ops and "{" not in p)


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def seed_keys(value, path=""):
    """The keys of a JSON answer that speak of a seed, with where they stand."""
    if isinstance(value, dict):
        for k, v in value.items():
            if "seed" in k.lower():
                yield f"{path}.{k}"
            yield from seed_keys(v, f"{path}.{k}")
    elif isinstance(value, list):
        for v in value:
            yield from seed_keys(v, f"{path}[]")


def test_no_playground_answer_cites_a_source_as_a_seed(client):
    endpoints = playground_endpoints()
    assert {"/api/playgrounds/cheat-sheet", "/api/playgrounds/method-spectrum", "/api/playgrounds/qlora"} <= set(
        endpoints
    )
    problems, random_seeds = [], set()
    for url in endpoints:
        response = client.get(url)
        assert response.status_code == 200, (url, response.content[:200])
        body = response.json()
        problems += [f"{url}: …{c}…" for s in strings(body) for c in citations(s)]
        # A key may name the random seed ("settings.seed", "limits.seed"), never a source's figure.
        keys = set(seed_keys(body))
        problems += [f"{url}: key {k}" for k in keys if not k.endswith(".seed")]
        random_seeds |= {f"{url} {k}" for k in keys if k.endswith(".seed")}
    assert "/api/playgrounds/low-rank .settings.seed" in random_seeds
    assert not problems, "'seed' as a source citation:\n" + "\n".join(problems)


# A JavaScript string or template literal (template literals may span lines).
LITERAL = re.compile(r"`(?:[^`\\]|\\.)*`|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'", re.S)


def test_no_script_writes_seed_as_a_source_citation():
    scripts = sorted(p for p in (ROOT / "static" / "js").glob("*.js"))
    assert scripts
    problems = []
    for path in scripts:
        for m in LITERAL.finditer(path.read_text()):
            text = m.group(0)[1:-1]
            if not re.search(r"\s", text):
                continue  # an identifier, an element's id, a query key: not prose
            problems += [f"{path.name}: …{c}…" for c in citations(text)]
    assert not problems, "'seed' as a source citation:\n" + "\n".join(problems)
