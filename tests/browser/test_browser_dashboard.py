"""A class's dashboard on a phone (390 px) and on a desktop: the join link students' devices can
open with its QR code, tables that keep their words whole and scroll in their own box, Cancel
buttons that stay horizontal, and the CSV download.

The lab here listens on every interface (PEFTLAB_BIND=0.0.0.0), as a teacher's laptop does for a
class; its web server alone (no worker: the queued runs stay queued), with the class's students
and runs written into its database as a worker would leave them."""

import csv
import io
import sqlite3

import pytest
from playwright.sync_api import expect

from peftlab import lan
from tests.support.browsing import shot
from tests.support.classrooms import PASSWORD
from tests.support.labstack import Lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
NICKNAMES = ("Maximiliana-Beatriz", "=1+2", "Zoë", "Noor")
# Students and runs as a class leaves them: two finished with metrics, one failed, and queued ones.
SEED = (
    f"NICKNAMES = {NICKNAMES!r}\n"
    + """
from django.contrib.auth.models import User
from peftlab.classroom.models import Classroom, Student
from peftlab.runs.models import Run
from workers import methods
room = Classroom.objects.create(teacher=User.objects.get(username="ms-rivera"), name="Tuesday NLP")
spec = methods.validate_run("lora", "sentiment", 200, 0, {})
def run(student, status, **metrics):
    Run.objects.create(method="lora", task="sentiment", steps=200, seed=0, params=spec.params, status=status,
        steps_done=200 if status == "succeeded" else 0, classroom=room, student=student, owner=student.owner,
        metrics=metrics)
for i, name in enumerate(NICKNAMES):
    s = Student.objects.create(classroom=room, nickname=name, nickname_key=name.lower())
    run(s, "succeeded", val_accuracy=0.7 + i / 20, train_seconds=40.0 + i, trainable_params=147456)
    run(s, "queued")
    if i == 1:
        run(s, "failed")
"""
)


@pytest.fixture(scope="module")
def embedded_lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("dashboard"), PEFTLAB_BIND="0.0.0.0")
    lab.manage("migrate", "--noinput")
    lab.start("web")
    lab.create_teacher("ms-rivera", PASSWORD)
    yield lab
    lab.stop_all()


@pytest.fixture(scope="module")
def code(embedded_lab):
    """The class's join code, its students and runs written into the lab's database."""
    embedded_lab.manage("shell", "-c", SEED)
    with sqlite3.connect(embedded_lab.var_dir / "peftlab.sqlite3") as db:
        return db.execute("select code from classroom_classroom").fetchone()[0]


def sign_in(page):
    page.goto("/teachers/login/")
    page.fill("#id_username", "ms-rivera")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/classes/")


def open_dashboard(page, code):
    page.goto(f"/classes/{code}/")
    expect(page.locator("#dash-root")).to_have_attribute("data-ready", "1")
    expect(page.locator("#runs-table tbody tr")).to_have_count(2 * len(NICKNAMES) + 1)


def check_join_link(page, port, code):
    address = lan.lan_address()
    if address is None:  # no network on this machine: the dashboard says so
        expect(page.locator("#join-problem")).to_have_attribute("data-problem", "no-network")
        return
    url = f"http://{address}:{port}/join/?code={code}"
    expect(page.locator("#join-url")).to_have_text(url)
    expect(page.locator("#join-qr")).to_have_attribute("aria-label", f"QR code of {url}")
    box = page.locator("#join-qr svg").bounding_box()
    assert box["width"] >= 140 and abs(box["width"] - box["height"]) < 1, box


# Per cell of a table: its text's lines (distinct tops of its text's boxes), and its width.
LAYOUT = """(table) => Array.from(document.querySelectorAll(`#${table} th, #${table} td`))
  .filter((cell) => !cell.querySelector('.progress, button') && cell.colSpan === 1)
  .map((cell) => { const range = document.createRange(); range.selectNodeContents(cell);
    const tops = new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top)));
    return {text: cell.textContent, lines: tops.size, width: cell.getBoundingClientRect().width}; })"""


def test_the_dashboard_on_a_phone_keeps_words_whole_and_scrolls_tables_in_their_box(browser, embedded_lab, code):
    context = browser.new_context(base_url=embedded_lab.base_url, viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page)
    open_dashboard(page, code)
    check_join_link(page, embedded_lab.port, code)

    # Nothing makes the page itself wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for table in ("runs-table", "leaderboard", "queue-table"):
        for cell in page.evaluate(LAYOUT, table):
            assert cell["lines"] <= 1, (table, cell)  # no word broken over lines
    # The runs table is wider than the phone: it scrolls sideways inside its own box.
    scroll = page.locator("#runs-table").locator("xpath=..")
    sizes = scroll.evaluate("(el) => [el.scrollWidth, el.clientWidth, getComputedStyle(el).overflowX]")
    assert sizes[0] > sizes[1] and sizes[2] == "auto", sizes
    # Each nickname on one line, whole.
    names = page.locator("#runs-table tbody tr td:first-child")
    assert set(names.all_inner_texts()) == set(NICKNAMES)
    # Cancel buttons stay horizontal: wider than tall, their word on one line.
    buttons = page.locator("#runs-table button[data-cancel]")
    expect(buttons).to_have_count(len(NICKNAMES))
    for button in buttons.all():
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box["width"] > box["height"] and box["height"] < 48, box
    page.evaluate("document.querySelectorAll('.table-scroll').forEach((el) => { el.scrollLeft = 0; })")  # the picture
    shot(page, "classroom-dashboard-phone")
    context.close()
    assert not errors, errors


def test_the_dashboard_on_a_desktop_and_its_csv(page, embedded_lab, code):
    sign_in(page)
    open_dashboard(page, code)
    check_join_link(page, embedded_lab.port, code)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    shot(page, "classroom-dashboard-desktop")
    with page.expect_download() as download:
        page.locator("#runs-csv").click()
    assert download.value.suggested_filename == f"peftlab-class-{code}-runs.csv"
    text = open(download.value.path(), encoding="utf-8-sig").read()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 2 * len(NICKNAMES) + 1
    assert {r["student"] for r in rows} == {"Maximiliana-Beatriz", "'=1+2", "Zoë", "Noor"}
