"""A class in a real browser, against the embedded lab with its real worker: a teacher signs in
and creates a class; a student, in a browser of their own, joins with the code and trains a
tiny run; the teacher's live dashboard shows it finish and rank on the leaderboard, then cancels
the student's next (long) run from the dashboard."""

import re

import pytest
from playwright.sync_api import expect

from tests.support.browsing import shot
from tests.support.classrooms import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_TIMEOUT_MS = 300_000  # a 3-step run, the worker's first model load included, on a busy CPU


@pytest.fixture
def teacher_account(embedded_lab):
    return embedded_lab.create_teacher("ms-rivera", PASSWORD)


@pytest.fixture
def student_page(browser, embedded_lab):
    """A second browser (its own cookies: another person), watched for errors like `page`."""
    context = browser.new_context(base_url=embedded_lab.base_url, viewport={"width": 1100, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console error: {msg.text}") if msg.type == "error" else None)
    yield page
    context.close()
    assert not errors, errors


def train(student_page, steps: int) -> int:
    student_page.fill("#f-steps", str(steps))
    with student_page.expect_response(lambda r: r.url.endswith("/api/runs") and r.request.method == "POST") as answer:
        student_page.click("#train-button")
    assert answer.value.status == 201, answer.value.text()
    return answer.value.json()["id"]


def test_a_teacher_follows_a_students_run_on_the_dashboard_and_cancels_one(page, student_page, teacher_account):
    # The teacher signs in and creates a class.
    page.goto("/")
    page.get_by_role("link", name="Teachers").click()
    page.fill("#id_username", teacher_account)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/classes/")
    expect(page.locator("#no-classes")).to_be_visible()
    shot(page, "classroom-teacher-home")
    page.fill("#id_name", "Tuesday NLP")
    page.get_by_role("button", name="Create the class").click()
    page.wait_for_url(re.compile(r"/classes/[A-Z0-9]{6}/$"))
    code = page.locator("#join-code").inner_text().strip()
    assert re.fullmatch(r"[A-HJ-KM-NP-Z2-9]{6}", code), code
    expect(page.locator("#runs-table tbody")).to_contain_text("No run yet")

    # The student joins with the code, and the header says where they are.
    student_page.goto("/")
    student_page.locator("#join-link").click()
    student_page.fill("#id_code", code.lower())
    student_page.fill("#id_nickname", "Noor")
    student_page.get_by_role("button", name="Join").click()
    expect(student_page.locator("#joined")).to_contain_text("Tuesday NLP")
    expect(student_page.locator("#whoami")).to_have_text(re.compile(r"class\s+Tuesday NLP · Noor ·"))
    shot(student_page, "classroom-joined")

    # The student trains a tiny run; the teacher's dashboard shows it, then sees it finish.
    student_page.goto("/train/")
    student_page.wait_for_selector("#f-method option[value=lora]", state="attached")
    tiny = train(student_page, 3)
    row = page.locator(f'#runs-table tr[data-run="{tiny}"]')
    expect(row).to_contain_text("Noor", timeout=10_000)
    expect(row.locator("td[data-status]")).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    expect(row).to_contain_text("3/3")
    best = page.locator('#leaderboard tr[data-method="lora"] td.best')
    expect(best).to_contain_text("Noor")
    expect(best).to_contain_text(re.compile(r"\d+\.\d %"))
    expect(page.locator("#idle-students")).to_have_text("")

    # A long run: the teacher cancels it from the dashboard.
    long = train(student_page, 2000)
    row = page.locator(f'#runs-table tr[data-run="{long}"]')
    row.get_by_role("button", name=f"cancel run {long}").click(timeout=10_000)
    expect(row.locator("td[data-status]")).to_have_attribute("data-status", "cancelled", timeout=60_000)
    expect(page.locator("#dash-counts")).to_contain_text("1 cancelled")
    shot(page, "classroom-dashboard")
    # The student's own page says so too, and their history holds both runs (theirs alone).
    expect(student_page.locator("#progress-text")).to_contain_text("cancelled", timeout=60_000)
    expect(student_page.locator("#runs a[data-run]")).to_have_count(2)
    shot(student_page, "classroom-student-train")
