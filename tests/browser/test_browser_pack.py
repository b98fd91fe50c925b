"""A class trains together: thirty students each submit a small LoRA run at once, a real worker
trains them in one pack (one fused step over one frozen base), and the teacher's dashboard in
Chromium shows thirty loss curves that advance together, each status cell saying the size of the
pack; at the end every run has succeeded and its training page says it trained in a pack.

The runs are queued before the worker starts (its web server first, then `lab worker`), so that
the worker's first claim finds all thirty waiting and its pack takes them before its first step:
thirty LoRA runs of rank 4 fit the pack's bounds (tokens per step, predicted memory, runs). Each
run's batch is 2 sequences: a fused step computes the frozen base for every run's tokens, so with
the default 16 a step of thirty runs took 40-60 s on this lab's 2 busy CPU cores.
Screenshots: the dashboard while the pack trains (desktop and phone) and a finished run's page.

Also: a packed run's time left on its training page, from a pack written half-way into the
database (no worker), against the formula."""

import re
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browsing import shot, wait_ready
from tests.support.classrooms import PASSWORD
from tests.support.labstack import Lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STUDENTS = 30
STEPS = 12
PHONE = {"width": 390, "height": 844}
# The worker's start and model load, thirty runs built, 12 fused steps, thirty final evaluations.
TRAINING_MS = 480_000
CLASS = """
from django.contrib.auth.models import User
from peftlab.classroom.models import Classroom
Classroom.objects.create(teacher=User.objects.get(username="ms-okafor"), name="Packed seminar")
"""

# Every student's curve on the chart has `points` points or more, and no run shown there has finished.
ALL_TRAINING = """([n, points]) => { const d = document.getElementById("curves-chart").data;
  return !!d && d.length === n
    && d.every((t) => t.x.length >= points && !["succeeded", "failed", "cancelled"].includes(t.meta.status)); }"""
# The status cells of the runs table that say a pack's size, and what they say.
PACK_CELLS = """() => Array.from(document.querySelectorAll("#runs-table td[data-pack]")).map((td) => td.textContent)"""


@pytest.fixture(scope="module")
def embedded_lab(tmp_path_factory):
    """A lab of this module's own: its web server alone until the runs are queued."""
    lab = Lab(tmp_path_factory.mktemp("pack"), PEFTLAB_JOINS_PER_MINUTE="0")
    lab.manage("migrate", "--noinput")
    lab.start("web")
    lab.create_teacher("ms-okafor", PASSWORD)
    lab.manage("shell", "-c", CLASS)
    yield lab
    lab.stop_all()


@pytest.fixture(scope="module")
def code(embedded_lab):
    with sqlite3.connect(embedded_lab.var_dir / "peftlab.sqlite3") as db:
        return db.execute("select code from classroom_classroom").fetchone()[0]


def student(lab: Lab, code: str, nickname: str) -> httpx.Client:
    """A student's browser: it joins the class with the code and a nickname, as the join form does."""
    client = httpx.Client(base_url=lab.base_url, timeout=60)
    client.get("/join/")
    answer = client.post(
        "/join/", data={"code": code, "nickname": nickname, "csrfmiddlewaretoken": client.cookies["csrftoken"]}
    )
    assert answer.status_code == 302, answer.text[:500]
    return client


def submit(client: httpx.Client, seed: int) -> int:
    body = {
        "method": "lora",
        "task": "sentiment",
        "steps": STEPS,
        "seed": seed,
        "params": {"rank": 4, "batch_size": 2, "eval_every": 0},
    }
    answer = client.post("/api/runs", json=body, headers={"X-CSRFToken": client.cookies["csrftoken"]})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def sign_in(page) -> None:
    page.goto("/teachers/login/")
    page.fill("#id_username", "ms-okafor")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/classes/")


def test_thirty_students_train_in_one_pack_and_the_dashboard_draws_their_curves_together(
    page, browser, embedded_lab, code
):
    lab = embedded_lab
    phone = browser.new_context(base_url=lab.base_url, viewport=PHONE, is_mobile=True, has_touch=True)
    phone.set_default_timeout(15_000)
    phone_page = phone.new_page()
    phone_errors = []
    phone_page.on("pageerror", lambda exc: phone_errors.append(str(exc)))
    for p in (page, phone_page):
        sign_in(p)
        p.goto(f"/classes/{code}/")
        expect(p.locator("#dash-root")).to_have_attribute("data-ready", "1")
    # Before any run: the chart says when curves appear.
    note = page.evaluate("document.getElementById('curves-chart').layout.annotations.map((a) => a.text).join(' ')")
    assert "Curves appear here when students train" in note

    students = [student(lab, code, f"Student-{i:02d}") for i in range(STUDENTS)]
    with ThreadPoolExecutor(max_workers=8) as pool:  # all at once
        runs = list(pool.map(submit, students, range(STUDENTS)))
    expect(page.locator("#dash-counts")).to_contain_text(f"{STUDENTS} queued")
    lab.start("worker")

    # Thirty curves, each with a point, none finished; then with three points each: they advance
    # together (one fused step for all).
    page.wait_for_function(ALL_TRAINING, arg=[STUDENTS, 1], timeout=TRAINING_MS, polling=250)
    page.wait_for_function(ALL_TRAINING, arg=[STUDENTS, 3], timeout=60_000, polling=250)
    names = page.evaluate("document.getElementById('curves-chart').data.map((t) => t.name)")
    assert sorted(names) == [f"Student-{i:02d}" for i in range(STUDENTS)]
    # The runs table: every run training says the size of its pack. The worker's pack took all
    # thirty before its first step (they were queued before it started).
    page.wait_for_function(f"() => ({PACK_CELLS})().length === {STUDENTS}", timeout=30_000, polling=250)
    assert set(page.evaluate(PACK_CELLS)) == {f"running · pack of {STUDENTS}"}
    shot(page, "class-pack-dashboard-desktop")
    phone_page.wait_for_function(ALL_TRAINING, arg=[STUDENTS, 3], timeout=30_000, polling=250)
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = phone_page.locator("#curves-chart").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    shot(phone_page, "class-pack-dashboard-phone")
    phone.close()
    assert not phone_errors, phone_errors

    # A student's run, on its training page while it trains: the progress line names its pack.
    watch = page.context.new_page()
    watch.goto(f"/train/?run={runs[0]}")
    wait_ready(watch, "train-root")
    progress = watch.locator("#progress-text")
    others = re.compile(
        rf"running in a pack with {STUDENTS - 1} other runs, one fused step for all: step \d+ of {STEPS}"
    )
    expect(progress).to_have_text(others, timeout=30_000)
    # Its form says that runs of its method share their steps, and why.
    expect(watch.locator("#method-pack")).to_contain_text("Shared steps: runs of this method started around the same")

    # At the end all thirty succeed; each trained in the pack of thirty from its first step.
    status = page.locator("#runs-table td[data-status='succeeded']")
    expect(status).to_have_count(STUDENTS, timeout=TRAINING_MS)
    for client, run_id in zip(students, runs):
        run = client.get(f"/api/runs/{run_id}").json()
        assert (run["status"], run["packed"], run["steps_done"]) == ("succeeded", True, STEPS), run["error"]
        assert run["metrics"]["pack"]["largest"] == STUDENTS, run["metrics"]["pack"]
        client.close()
    curves = page.evaluate("document.getElementById('curves-chart').data.map((t) => t.x[t.x.length - 1])")
    assert curves == [STEPS] * STUDENTS

    # Its page after it finished: the metrics say it trained in a pack, and what that means.
    expect(watch.locator("#run-title")).to_have_attribute("data-status", "succeeded", timeout=30_000)
    expect(watch.locator("#pack-row")).to_have_text(re.compile(rf"up to {STUDENTS} runs per step \(mean \d+\.\d\)"))
    assert "keeps its own weights, optimizer and random numbers" in watch.locator("#pack-row").get_attribute("title")
    expect(watch.locator("#pack-note")).to_contain_text("wall time, shared with the other runs")
    shot(watch, "class-pack-run-finished")


# Three runs of one pack, half-way: each of their steps took 10 s of wall time (the pack's whole
# step), written as a worker that is still running would have written them.
HALF_WAY_PACK = """
from django.utils import timezone
from peftlab.runs.models import Point, Run
from workers.methods import validate_run
spec = validate_run("lora", "sentiment", 100, 0, {})
for _ in range(3):
    run = Run.objects.create(method="lora", task="sentiment", steps=100, params=spec.params, status="running",
        attempts=1, packed=True, task_id="pack-1", worker="elsewhere", steps_done=50,
        started_at=timezone.now(), heartbeat_at=timezone.now())
    Point.objects.bulk_create([Point(run=run, attempt=1, step=s, loss=0.5, elapsed=10.0 * s) for s in range(1, 51)])
"""


# Every text the status line shows from now on.
WATCH_PROGRESS = """() => {
    const node = document.getElementById('progress-text');
    window.progressTexts = [];
    new MutationObserver(() => window.progressTexts.push(node.textContent))
        .observe(node, { childList: true, characterData: true, subtree: true });
}"""


def shown_seconds(text: str) -> float:
    found = re.search(r"about (?:(\d+) min )?(\d+) s left", text)
    assert found, text
    return 60 * int(found.group(1) or 0) + int(found.group(2))


def test_a_packed_runs_time_left_counts_its_own_end_of_run_work_not_the_packs(browser, tmp_path):
    """Its steps go at the pack's pace (each of its points counts the whole fused step), but its
    final evaluation and measurements are its own: the training page scales them by its own pace
    (the pack's over its size), with about half the pack's runs ending before it."""
    lab = Lab(tmp_path, PEFTLAB_STALE_RUN_SECONDS="3600")
    lab.manage("migrate", "--noinput")
    lab.manage("shell", "-c", HALF_WAY_PACK)
    lab.start("web")
    context = browser.new_context(base_url=lab.base_url)
    try:
        run = lab.run(1)
        assert run["pack"] == {"size": 3}
        timing = run["timing"]
        pace = 10.0 / timing["step_seconds"]
        expected = 50 * 10.0 + timing["after_steps_seconds"] * (pace / 3) * 2
        page = context.new_page()
        page.goto("/train/?run=1")
        text = page.wait_for_function(
            "() => { const t = document.getElementById('progress-text').textContent; return / left$/.test(t) && t; }"
        ).json_value()
        assert text.startswith("running in a pack with 2 other runs, one fused step for all: step 50 of 100"), text
        shown = shown_seconds(text)
        # The page counts down from the stream's news. The whole pack's pace for the tail said
        # about a minute more here (the tail 1.5 times as long).
        assert expected - 15 <= shown <= expected + 1, (shown, expected, timing)
        # It stays while the stream's progress events come (the run's last point is the one the
        # page opened with: no new point arrives here), counting down at the page's every second.
        page.evaluate(WATCH_PROGRESS)
        page.wait_for_function("() => window.progressTexts.length >= 3", timeout=15_000)
        texts = page.evaluate("() => window.progressTexts")
        assert all(t.endswith(" left") for t in texts), texts
    finally:
        context.close()
        lab.stop_all()
