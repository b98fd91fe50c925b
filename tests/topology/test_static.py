"""Static files as `make run` serves them: collected first, each with a gzip and a Brotli copy
that WhiteNoise sends to a browser that accepts it. Plotly is its cartesian bundle (npm, pinned in
package-lock.json): the lab draws scatter, bar and heatmap traces only."""

import pytest

from peftlab.apps import PLOTLY, plotly_installed
from tests.support.labstack import Lab

pytestmark = pytest.mark.slow

URL = f"/static/{PLOTLY}"
FULL_PLOTLY_BYTES = 4_815_814  # plotly.js 4.1.1's full bundle, which the lab served before

# Every Plotly chart of a page: the trace types drawn, and the SVG/canvas nodes each type drew.
DRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')].map((gd) => ({
  id: gd.id, types: gd._fullData.map((t) => t.type),
  lines: gd.querySelectorAll('.scatterlayer .trace path.js-line').length,
  bars: gd.querySelectorAll('.barlayer .point path').length,
  heatmaps: gd.querySelectorAll('.heatmaplayer image').length,
}))"""


@pytest.fixture(scope="module")
def collected_lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("static"))
    lab.manage("migrate", "--noinput")
    lab.manage("collectstatic", "--noinput")
    lab.start("web")
    yield lab
    lab.stop_all()


def test_collected_static_files_are_served_compressed(collected_lab):
    plain = collected_lab.client.get(URL, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert plain.content.startswith(b"/**\n* plotly.js (cartesian - minified)")
    assert len(plain.content) < FULL_PLOTLY_BYTES / 2
    for encoding in ("gzip", "br"):
        answer = collected_lab.client.get(URL, headers={"Accept-Encoding": encoding})
        assert answer.headers["content-encoding"] == encoding
        assert int(answer.headers["content-length"]) < len(plain.content) / 3
        assert answer.content == plain.content  # httpx decoded it: the same file
    # Only the bundle: not the npm package's README or package.json.
    for other in ("README.md", "package.json"):
        assert collected_lab.client.get(f"/static/vendor/plotly/{other}").status_code == 404


def test_the_cartesian_bundle_draws_every_trace_type_the_lab_uses(collected_lab, browser):
    """P12 draws lines, grouped bars and heatmaps on one page, with the collected bundle."""
    context = browser.new_context(base_url=collected_lab.base_url)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type in ("error", "warning") else None)
        page.goto("/playgrounds/zero-start/")
        page.wait_for_selector('#zero-root[data-ready="1"]', state="attached", timeout=60_000)
        charts = {c["id"]: c for c in page.evaluate(DRAWN)}
        assert set(page.evaluate("() => Object.keys(Plotly.PlotSchema.get().traces)")) >= {"scatter", "bar", "heatmap"}
        assert set(charts["norm-chart"]["types"]) == {"scatter"} and charts["norm-chart"]["lines"] >= 3
        assert set(charts["ranks-chart"]["types"]) == {"bar"} and charts["ranks-chart"]["bars"] >= 2
        assert charts["heat-delta"]["types"] == ["heatmap"] and charts["heat-delta"]["heatmaps"] == 1
        assert charts["heat-target"]["heatmaps"] == 1
        assert not errors, errors
    finally:
        context.close()


def test_the_lab_says_so_when_plotly_is_not_installed(settings, tmp_path):
    assert plotly_installed() == []
    settings.STATICFILES_DIRS = [d for d in settings.STATICFILES_DIRS if not isinstance(d, tuple)] + [
        ("vendor/plotly", tmp_path)
    ]  # an empty node_modules package
    [error] = plotly_installed()
    assert error.id == "peftlab.E002" and "make setup" in error.hint
