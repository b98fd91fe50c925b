"""Static files as `make run` serves them: collected first, each with a gzip and a Brotli copy
that WhiteNoise sends to a browser that accepts it (Plotly's bundle is 4.7 MB as it is)."""
import pytest

from .labstack import Lab

pytestmark = pytest.mark.slow

PLOTLY = "/static/vendor/plotly/plotly.min.js"


def test_collected_static_files_are_served_compressed(tmp_path):
    lab = Lab(tmp_path)
    lab.manage("migrate", "--noinput")
    lab.manage("collectstatic", "--noinput")
    lab.start("web")
    try:
        plain = lab.client.get(PLOTLY, headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200 and "content-encoding" not in plain.headers
        for encoding in ("gzip", "br"):
            answer = lab.client.get(PLOTLY, headers={"Accept-Encoding": encoding})
            assert answer.headers["content-encoding"] == encoding
            assert int(answer.headers["content-length"]) < len(plain.content) / 3
            assert answer.content == plain.content  # httpx decoded it: the same file
    finally:
        lab.stop_all()
