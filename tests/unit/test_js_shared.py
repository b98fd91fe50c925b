"""static/js: the pages import their helpers from the shared modules (lab.js, format.js,
playground.js) and keep no copy of them; the colours the charts use are read from lab.css."""

import re
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[2] / "static" / "js"
SHARED = {"lab.js", "format.js", "playground.js"}  # the modules the pages import their helpers from
COPIES = {
    "the $ shorthand (lab.js)": re.compile(r"\bconst \$ =|\bfunction \$\(|getElementById\(id\)"),
    "an error box (lab.js errorBox)": re.compile(r"\bfunction (showError|setError)\b|\.hidden = !(message|msg)\b"),
    "the plot config (lab.js PLOT_CONFIG)": re.compile(r"\bPLOT_CONFIG\s*=|displaylogo:"),
    "a method colour table (lab.js METHOD_COLOURS)": re.compile(r"\b(lora|bitfit):\s*\"#"),
    "the API's error message (lab.js messageOf)": re.compile(r"\bfunction messageOf\b|body\??\.error\b"),
    "the CSRF token (lab.js csrfToken)": re.compile(r"csrftoken="),
    "a count format (format.js fmtInt)": re.compile(r"new Intl\.NumberFormat\(\"en-US\"\)"),
}


def root_colours() -> dict:
    """lab.css's :root colours, name -> hex: the charts read them with lab.js cssColor."""
    css = (JS.parent / "css" / "lab.css").read_text()
    root = re.search(r":root\s*\{([^}]*)\}", css).group(1)
    return dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{6})\b", root))


def test_no_page_keeps_a_copy_of_a_shared_helper():
    """A page imports $, its error box, the plot config, the method colours, its fetch helpers and
    its formats from the shared modules; a copy drifts (train.js's fetch once showed 'HTTP 400'
    instead of the server's message, two colour tables gave BitFit two colours)."""
    colours = root_colours()
    assert colours["--accent"] == "#3a5bd9"
    found = []
    for path in sorted(JS.glob("*.js")):
        if path.name in SHARED:
            continue
        text = path.read_text()
        found += [f"{path.name}: {what}" for what, pattern in COPIES.items() if pattern.search(text)]
        found += [
            f"{path.name}: {hexv} (lab.js cssColor('{name}'))"
            for name, hexv in colours.items()
            if hexv.lower() in text.lower()
        ]
    assert not found, "\n".join(found)


def test_the_shared_modules_are_the_only_copies():
    lab = (JS / "lab.js").read_text()
    for name in ("$", "errorBox", "PLOT_CONFIG", "cssColor", "METHOD_COLOURS", "messageOf", "getJson", "postJson"):
        assert re.search(rf"export (const|function|async function) {re.escape(name)}(?![\w$])", lab), name
    assert "export function messageOf" not in (JS / "playground.js").read_text()


@pytest.mark.django_db
def test_the_method_colours_are_the_records_written_into_every_page(client):
    """lab.js METHOD_COLOURS reads #method-colours, which the server writes from the method
    records: no page, lab.js included, keeps a colour table of its own."""
    import json

    from simulations.methods import METHODS

    for url in ("/", "/playgrounds/four-method-race/", "/playgrounds/method-spectrum/"):
        page = client.get(url).content.decode()
        found = re.search(r'<script id="method-colours" type="application/json">(.*?)</script>', page)
        assert found, url
        assert json.loads(found.group(1)) == {m.name: m.colour for m in METHODS.values()}
    assert not re.search(r"\b(lora|bitfit):\s*\"#", (JS / "lab.js").read_text())
