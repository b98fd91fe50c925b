"""Packs as the pages show them, in process (the runs are stored rows as a worker leaves them): a
packed run's pack size in GET /api/runs/{id} and its events stream, the dashboard's "pack of N"
(one query for every pack), and the class's curves (GET /api/classes/{code}/curves): each
student's latest run, thinned, its teacher's alone."""

import asyncio

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from peftlab.classroom import dashboard
from peftlab.runs import lifecycle
from peftlab.runs.models import Point, Run
from tests.support.classrooms import browser, run_of, student_browser, teacher, teacher_browser
from tests.support.streams import progress_events


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(lifecycle, "send_message", lambda run: None)


def training(student, task_id: str, packed=True, steps_done=3, **fields) -> Run:
    """A run training now (in the pack `task_id` if packed), `steps_done` steps in."""
    run = run_of(student, status=Run.RUNNING, task_id=task_id, packed=packed, attempts=1)
    Run.objects.filter(pk=run.pk).update(steps_done=steps_done, started_at=timezone.now(), **fields)
    run.refresh_from_db()
    return run


def points(run: Run, steps, attempt=1) -> None:
    Point.objects.bulk_create(Point(run=run, attempt=attempt, step=s, loss=1.0 / s, elapsed=0.1 * s) for s in steps)


@pytest.mark.django_db
def test_a_packed_runs_page_reads_how_many_runs_train_in_its_pack(room):
    students = [student_browser(room, f"S{i}")[1] for i in range(4)]
    mine = [training(s, "pack-a") for s in students[:3]]
    elsewhere = training(students[3], "pack-b")
    alone = run_of(students[0], status=Run.RUNNING, attempts=1)
    finished = run_of(students[1], task_id="pack-a", packed=True)  # succeeded: no longer in it
    client = teacher_browser(room.teacher)

    assert client.get(f"/api/runs/{mine[0].pk}").json()["pack"] == {"size": 3}
    assert client.get(f"/api/runs/{elsewhere.pk}").json()["pack"] == {"size": 1}
    for run in (alone, finished):
        got = client.get(f"/api/runs/{run.pk}").json()
        assert got["pack"] is None and got["packed"] is (run == finished)


@pytest.mark.django_db(transaction=True)
def test_the_events_stream_sends_the_pack_size_again_with_each_step(room, settings):
    settings.PEFTLAB_SSE_POLL_MS = 10
    students = [student_browser(room, f"S{i}")[1] for i in range(3)]
    mine, other, third = (training(s, "pack-a") for s in students)

    async def watch():
        task = asyncio.ensure_future(progress_events(mine.pk, 2))
        await asyncio.sleep(0.3)
        # One run leaves the pack; the next step of this one reads the pack again.
        await Run.objects.filter(pk=third.pk).aupdate(status=Run.SUCCEEDED)
        await Run.objects.filter(pk=mine.pk).aupdate(steps_done=4)
        return await asyncio.wait_for(task, timeout=10)

    first, then = asyncio.run(watch())
    assert (first["packed"], first["pack"], first["steps_done"]) == (True, {"size": 3}, 3)
    assert (then["pack"], then["steps_done"]) == ({"size": 2}, 4)


@pytest.mark.django_db
def test_the_dashboard_says_the_size_of_each_runs_pack_with_one_query_for_all(room):
    students = [student_browser(room, f"S{i}")[1] for i in range(6)]
    outsider = student_browser(room.__class__.objects.create(teacher=teacher("bob"), name="B"), "Zed")[1]
    client = teacher_browser(room.teacher)

    def queries() -> int:
        with CaptureQueriesContext(connection) as read:
            assert client.get(f"/api/classes/{room.code}/dashboard").status_code == 200
        return len(read)

    training(students[0], "pack-a")
    training(students[1], "pack-a")
    two_runs = queries()
    for s in students[2:4]:
        training(s, "pack-a")
    training(students[4], "pack-b")
    training(outsider, "pack-b")  # another class's run in the same pack counts: it shares the step
    run_of(students[5], status=Run.RUNNING, attempts=1)  # trains alone
    assert queries() == two_runs  # as many queries for five packed runs in two packs as for two

    rows = {s["nickname"]: s["runs"][0] for s in client.get(f"/api/classes/{room.code}/dashboard").json()["students"]}
    assert [rows[f"S{i}"]["pack"] for i in range(6)] == [{"size": 4}] * 4 + [{"size": 2}, None]
    run_of(students[0], status=Run.SUCCEEDED, task_id="pack-a", packed=True)
    finished = client.get(f"/api/classes/{room.code}/dashboard").json()["students"][0]["runs"][0]
    assert finished["status"] == "succeeded" and finished["pack"] is None


@pytest.mark.django_db
def test_the_class_curves_hold_each_students_latest_started_run_thinned(room, settings):
    ana, ben, cy, dee = (student_browser(room, n)[1] for n in ("Ana", "Ben", "Cy", "Dee"))
    old = training(ana, "pack-a", steps_done=5)
    Run.objects.filter(pk=old.pk).update(status=Run.SUCCEEDED)
    points(old, range(1, 6))
    long = training(ana, "pack-a", steps_done=450, steps=1000)  # her latest: 450 steps, thinned
    points(long, range(1, 451))
    retried = training(ben, "pack-a", steps_done=2, attempts=2)  # its first attempt's points hidden
    points(retried, range(1, 8), attempt=1)
    points(retried, range(1, 3), attempt=2)
    run_of(cy, status=Run.QUEUED)  # not started: no curve
    dee_done = training(dee, "", packed=False, steps_done=7)
    Run.objects.filter(pk=dee_done.pk).update(status=Run.SUCCEEDED)
    points(dee_done, range(1, 8))
    run_of(dee, status=Run.QUEUED)  # her next run waits: her last curve stays

    response = teacher_browser(room.teacher).get(f"/api/classes/{room.code}/curves")
    assert response.status_code == 200
    curves = {c["student"]: c for c in response.json()["runs"]}
    assert list(curves) == ["Ana", "Ben", "Dee"]
    assert curves["Ana"]["id"] == long.pk and curves["Ana"]["status"] == "running"
    steps = curves["Ana"]["step"]
    assert len(steps) <= dashboard.CURVE_POINTS + 1 and steps[-1] == 450, steps[-5:]
    assert steps[:3] == [5, 10, 15] and steps == sorted(steps)
    assert curves["Ana"]["loss"][-1] == pytest.approx(1 / 450)
    assert curves["Ben"]["step"] == [1, 2] and curves["Ben"]["loss"] == [1.0, 0.5]
    assert curves["Dee"]["id"] == dee_done.pk and curves["Dee"]["step"] == list(range(1, 8))


@pytest.mark.django_db
def test_the_class_curves_are_its_teachers_alone(room):
    student, ana = student_browser(room, "Ana")
    run = training(ana, "pack-a")
    points(run, [1])
    stranger = teacher_browser(teacher("bob"))
    for client in (browser(), student, stranger):
        response = client.get(f"/api/classes/{room.code}/curves")
        assert response.status_code == 404 and "there is no class" in response.json()["error"]
    assert teacher_browser(room.teacher).get(f"/api/classes/{room.code}/curves.json").status_code == 404
