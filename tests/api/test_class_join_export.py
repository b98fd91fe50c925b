"""The class dashboard's join link and its QR code (peftlab/classroom/joinlink.py), and the class's
runs as a CSV file (peftlab/classroom/export.py, GET /api/classes/{code}/runs.csv)."""

import csv
import io
import re

import pytest
import segno

from peftlab import lan
from peftlab.classroom.export import COLUMNS, safe_cell
from peftlab.classroom.joinlink import LISTENS_ON_LOOPBACK, NO_NETWORK, join_link, qr_svg
from peftlab.classroom.models import Student
from peftlab.runs.models import Run
from tests.support.classrooms import browser, classroom, run_of, student_browser, teacher, teacher_browser

pytestmark = pytest.mark.django_db

LAN = "192.168.1.20"


# --- the join link -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "host, bind, address, url, problem",
    [
        # Opened on this computer, the lab open to the network: the link names its network address.
        ("127.0.0.1:8000", "0.0.0.0", LAN, f"http://{LAN}:8000/join/?code=ABC234", ""),
        ("localhost:8080", "0.0.0.0", LAN, f"http://{LAN}:8080/join/?code=ABC234", ""),
        ("[::1]:8000", "0.0.0.0", LAN, f"http://{LAN}:8000/join/?code=ABC234", ""),
        # ... listening on this computer alone: the same link, once the lab is started again.
        ("127.0.0.1:8000", "127.0.0.1", LAN, f"http://{LAN}:8000/join/?code=ABC234", LISTENS_ON_LOOPBACK),
        ("127.0.0.1:8000", "127.0.0.1", None, "http://127.0.0.1:8000/join/?code=ABC234", LISTENS_ON_LOOPBACK),
        # ... no network at all.
        ("127.0.0.1:8000", "0.0.0.0", None, "http://127.0.0.1:8000/join/?code=ABC234", NO_NETWORK),
        # Opened at an address the students share (the network's, or a host name): as it is.
        (f"{LAN}:8000", "0.0.0.0", LAN, f"http://{LAN}:8000/join/?code=ABC234", ""),
        ("lab.example.edu", "127.0.0.1", LAN, "http://lab.example.edu/join/?code=ABC234", ""),
    ],
)
def test_the_join_link_is_one_the_students_devices_can_open(host, bind, address, url, problem):
    link = join_link("http", host, "ABC234", bind, address)
    assert (link.url, link.problem, link.reachable) == (url, problem, not problem)
    assert link.names_network_address is (address is not None or not lan.is_loopback(lan.split_host(host)[0]))
    if problem == LISTENS_ON_LOOPBACK:
        port = lan.split_host(host)[1]
        assert link.fix == "PEFTLAB_BIND=0.0.0.0 make run" if port == "8000" else link.fix.startswith("PEFTLAB_BIND")


def _svg_matrix(svg: str) -> list[list[bool]]:
    """The dark modules an SVG of segno's draws: its path of horizontal runs read back."""
    size = int(re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).group(1))
    path = re.search(r'<path class="qrline"[^>]* d="([^"]+)"', svg).group(1)
    grid = [[False] * size for _ in range(size)]
    x = y = 0.0
    for cmd, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path):
        if cmd == "M":
            x, y = float(a), float(b)
        elif cmd == "m":
            x, y = x + float(a), y + float(b)
        else:
            for i in range(int(float(a))):
                grid[int(y)][int(x) + i] = True
            x += float(a)
    return grid


def _matrix(url: str, border=4) -> list[list[bool]]:
    m = segno.make(url, error="m", micro=False, boost_error=False).matrix
    n = len(m) + 2 * border
    grid = [[False] * n for _ in range(n)]
    for r, row in enumerate(m):
        for c, v in enumerate(row):
            grid[r + border][c + border] = bool(v)
    return grid


def test_the_qr_code_encodes_exactly_the_join_link():
    url = f"http://{LAN}:8000/join/?code=ABC234"
    drawn = _svg_matrix(qr_svg(url))
    assert drawn == _matrix(url)
    assert drawn != _matrix(url.replace("ABC234", "ABC235"))  # one character apart: another code
    assert drawn != _matrix(url + "&")


def test_the_dashboard_shows_the_network_link_and_its_qr_code_when_opened_on_this_computer(
    room, ada, settings, monkeypatch
):
    settings.PEFTLAB_BIND = "0.0.0.0"
    monkeypatch.setattr(lan, "lan_address", lambda: LAN)
    response = teacher_browser(ada).get(f"/classes/{room.code}/", HTTP_HOST="127.0.0.1:8000")
    html = response.content.decode()
    url = f"http://{LAN}:8000/join/?code={room.code}"
    assert response.status_code == 200 and f'href="{url}"' in html
    svg = re.search(r'<figure class="join-qr"[^>]*>(<svg.*?</svg>)</figure>', html, re.S).group(1)
    assert _svg_matrix(svg) == _matrix(url)
    # Nothing the page's Content-Security-Policy would block: no script, no style attribute, no URL.
    assert not re.search(r"<script|style=|href=|on\w+=", svg)
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert 'id="join-problem"' not in html


def test_the_dashboard_says_when_the_lab_listens_on_this_computer_alone(room, ada, settings, monkeypatch):
    settings.PEFTLAB_BIND = "127.0.0.1"
    monkeypatch.setattr(lan, "lan_address", lambda: LAN)
    html = teacher_browser(ada).get(f"/classes/{room.code}/", HTTP_HOST="127.0.0.1:8080").content.decode()
    assert 'data-problem="loopback"' in html and "Students cannot open this lab yet" in html
    assert '<code id="join-fix">PEFTLAB_BIND=0.0.0.0 PORT=8080 make run</code>' in html
    assert f"http://{LAN}:8080/join/?code={room.code}" in html
    assert 'id="join-qr"' not in html  # no code to scan that leads nowhere


def test_with_no_network_either_the_dashboard_hands_out_no_link_of_this_computer(room, ada, settings, monkeypatch):
    settings.PEFTLAB_BIND = "127.0.0.1"
    monkeypatch.setattr(lan, "lan_address", lambda: None)
    html = teacher_browser(ada).get(f"/classes/{room.code}/", HTTP_HOST="127.0.0.1:8000").content.decode()
    assert 'data-problem="loopback"' in html and "no network address either" in html
    assert "127.0.0.1:8000/join/" not in html


def test_the_dashboard_keeps_the_address_it_was_opened_at_when_that_is_not_this_computers_alone(room, ada):
    html = teacher_browser(ada).get(f"/classes/{room.code}/").content.decode()  # Host: testserver
    assert f'href="http://testserver/join/?code={room.code}"' in html and 'id="join-qr"' in html


# --- the CSV export ------------------------------------------------------------------------------
def _read(response) -> list[dict]:
    body = response.content
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8's byte order mark, for Excel
    text = body.decode("utf-8-sig")
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == COLUMNS
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows[1:]]


def test_the_csv_holds_every_run_of_the_class_and_nothing_else(room, ada):
    _, zoe = student_browser(room, "Zoë")
    _, ana = student_browser(room, "Ana")
    done = run_of(zoe, metrics={"val_accuracy": 0.8125, "train_seconds": 12.5, "trainable_params": 147456})
    failed = run_of(ana, status=Run.FAILED, method="bitfit")
    queued = run_of(zoe, status=Run.QUEUED)
    Run.objects.filter(pk=queued.pk).update(params={"rank": 4, "alpha": 8.0, "target_modules": ["query", "value"]})
    run_of(student_browser(classroom(teacher("bob")), "Cy")[1])  # another class's
    run_of(None)  # a visitor's

    response = teacher_browser(ada).get(f"/api/classes/{room.code}/runs.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="peftlab-class-{room.code}-runs.csv"'
    rows = _read(response)
    assert [(r["student"], int(r["run"])) for r in rows] == [("Ana", failed.pk), ("Zoë", done.pk), ("Zoë", queued.pk)]
    first = rows[1]
    assert first["method"] == "LoRA" and first["task"] == "sentiment" and first["status"] == "succeeded"
    assert (float(first["validation accuracy"]), float(first["training time (s)"])) == (0.8125, 12.5)
    assert int(first["trainable parameters"]) == 147456
    assert first["settings"].startswith("rank=8; alpha=16.0;") and "target_modules=query,value" in first["settings"]
    assert (first["steps"], first["seed"]) == ("10", "0")
    assert first["created (UTC)"] == done.created_at.strftime("%Y-%m-%d %H:%M:%S")
    assert rows[0]["status"] == "failed" and rows[0]["validation accuracy"] == rows[0]["training time (s)"] == ""
    assert rows[2]["settings"] == "rank=4; alpha=8.0; target_modules=query,value"


@pytest.mark.parametrize(
    "nickname", ['=HYPERLINK("http://x.example","a")', "+1+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR"]
)
def test_a_nickname_that_starts_a_formula_is_written_as_text(room, ada, nickname):
    student = Student.objects.create(classroom=room, nickname=nickname, nickname_key=nickname)
    run_of(student)
    rows = _read(teacher_browser(ada).get(f"/api/classes/{room.code}/runs.csv"))
    assert rows[0]["student"] == "'" + nickname


def test_a_formula_nickname_joined_through_the_form_is_quoted_too(room, ada):
    _, student = student_browser(room, "=1+2")
    run_of(student)
    rows = _read(teacher_browser(ada).get(f"/api/classes/{room.code}/runs.csv"))
    assert rows[0]["student"] == "'=1+2"


@pytest.mark.parametrize("value", ["Ana", "a=b", "1-2", "", 0.5, -3, 12])
def test_other_cells_are_written_as_they_are(value):
    assert safe_cell(value) == value


def test_the_csv_is_its_teachers_alone(room, ada):
    code = room.code
    student, ana = student_browser(room, "Ana")
    run_of(ana)
    for client in (browser(), student, teacher_browser(teacher("bob"))):
        response = client.get(f"/api/classes/{code}/runs.csv")
        assert response.status_code == 404 and "there is no class" in response.json()["error"]
        assert "Ana" not in response.content.decode()
    assert teacher_browser(ada).get(f"/api/classes/{code.lower()}/runs.csv").status_code == 200


def test_the_dashboard_links_to_the_csv(room, ada):
    html = teacher_browser(ada).get(f"/classes/{room.code}/").content.decode()
    assert f'href="/api/classes/{room.code}/runs.csv" download' in html
