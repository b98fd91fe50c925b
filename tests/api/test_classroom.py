"""Classes in-process: joining, teacher accounts, the quotas every submission is held to, rate
limits, the teacher's dashboard (its JSON and its forms) and CSRF on every state-changing POST.
Nothing here needs a worker: runs are stored rows, finished by hand where a test needs it."""

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from peftlab.classroom import models as classroom_models
from peftlab.classroom.models import CODE_ALPHABET, Classroom, Student
from peftlab.runs import lifecycle, scheduler
from peftlab.runs.models import Batch, Run
from peftlab.urls import api
from tests.support.classrooms import (
    PASSWORD,
    browser,
    classroom,
    join,
    run_of,
    student_browser,
    teacher,
    teacher_browser,
)
from workers import methods

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """No broker (each test has its own rate-limit counters: tests/conftest.py)."""
    monkeypatch.setattr(lifecycle, "send_message", lambda run: None)


def post_json(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


RUN = {"method": "lora", "task": "sentiment", "steps": 10, "seed": 0, "params": {"rank": 4}}


# --- join codes and joining ---------------------------------------------------------------------
def test_a_class_gets_a_six_character_code_from_the_unambiguous_alphabet(ada):
    codes = {classroom(ada, f"c{i}").code for i in range(20)}
    assert len(codes) == 20
    assert all(len(c) == 6 and set(c) <= set(CODE_ALPHABET) for c in codes)
    assert not set("01OIL") & set(CODE_ALPHABET)


def test_a_code_that_clashes_is_drawn_again(ada, monkeypatch):
    taken = classroom(ada, "first").code
    draws = iter([taken, taken, "ZZZZZ2"])
    monkeypatch.setattr(classroom_models, "new_code", lambda: next(draws))
    assert classroom(ada, "second").code == "ZZZZZ2"


def test_a_student_joins_with_the_code_and_a_nickname_and_the_header_says_so(room):
    client = browser()
    response = join(client, f" {room.code.lower()[:3]} {room.code.lower()[3:]} ", "  Ana   Lee ")
    assert response.status_code == 302
    student = Student.objects.get()
    assert (student.classroom, student.nickname) == (room, "Ana Lee")
    page = client.get("/train/").content.decode()
    assert re.search(r"class <strong>First</strong> · Ana Lee ·", page)
    assert 'id="leave-class"' in page
    # Leaving clears it (a POST, with the CSRF token), and the header offers to join again.
    assert client.post("/leave/").status_code == 302
    assert 'id="join-link"' in client.get("/train/").content.decode()


@pytest.mark.parametrize(
    "code, nickname, status, message",
    [
        ("NOPE99", "Ana", 404, "there is no class with the code NOPE99"),
        ("", "Ana", 400, "This field is required"),
        ("{code}", "", 400, "This field is required"),
        ("{code}", "    ", 400, "This field is required"),
        ("{code}", "x" * 33, 400, "at most 32 characters"),
        ("{code}", "bell\x07", 400, "the nickname contains a control character (U+0007)"),
        ("{code}", "private\ue000", 400, "a nickname is letters, digits"),
    ],
)
def test_a_bad_join_says_what_is_wrong_and_joins_nothing(room, code, nickname, status, message):
    client = browser()
    response = join(client, code.format(code=room.code), nickname)
    assert response.status_code == status
    assert message in response.content.decode()
    assert Student.objects.count() == 0
    assert "classroom_student" not in client.session


def test_a_taken_nickname_is_refused_to_another_browser_in_any_case(room):
    first, ana = student_browser(room, "Ana")
    other = browser()
    response = join(other, room.code, "ANA")
    assert response.status_code == 409
    assert "that nickname, or one that looks the same, is taken in this class" in response.content.decode()
    assert Student.objects.count() == 1 and "classroom_student" not in other.session
    # The same nickname in another class is another student.
    assert join(other, classroom(room.teacher, "Second").code, "Ana").status_code == 302


def test_the_same_browser_gets_its_student_back_after_leaving(room):
    client, ana = student_browser(room, "Ana")
    run = run_of(ana)
    client.post("/leave/")
    assert client.get(f"/api/runs/{run.pk}").status_code == 404  # a visitor now
    assert join(client, room.code, "ana").status_code == 302
    assert client.session["classroom_student"] == ana.pk and Student.objects.count() == 1
    assert client.get(f"/api/runs/{run.pk}").status_code == 200


def test_a_signed_in_teacher_cannot_join_as_a_student(room, ada):
    response = join(teacher_browser(ada), room.code, "Ana")
    assert response.status_code == 400 and "signed in as a teacher" in response.content.decode()


# --- teachers -----------------------------------------------------------------------------------
def test_signup_is_a_404_unless_the_switch_is_on(settings):
    settings.PEFTLAB_TEACHER_SIGNUP = False
    client = browser()
    assert client.get("/teachers/signup/").status_code == 404
    assert (
        client.post("/teachers/signup/", {"username": "eve", "password1": PASSWORD, "password2": PASSWORD}).status_code
        == 404
    )
    assert not get_user_model().objects.exists()


def test_with_the_switch_on_a_teacher_signs_up_and_lands_on_their_classes(settings):
    settings.PEFTLAB_TEACHER_SIGNUP = True
    client = browser()
    assert "Create a teacher account" in client.get("/teachers/signup/").content.decode()
    weak = client.post("/teachers/signup/", {"username": "eve", "password1": "1234", "password2": "1234"})
    assert weak.status_code == 400 and not get_user_model().objects.exists()
    response = client.post("/teachers/signup/", {"username": "eve", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/classes/"
    assert "No class yet" in client.get("/classes/").content.decode()


def test_createsuperuser_makes_a_teacher_who_signs_in_and_creates_a_class(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("createsuperuser", "--noinput", "--username", "head", "--email", "head@example.org")
    client = browser()
    assert client.get("/classes/").status_code == 302  # sign in first
    response = client.post("/teachers/login/", {"username": "head", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/classes/"
    client.defaults["HTTP_X_CSRFTOKEN"] = client.cookies["csrftoken"].value  # rotated at sign-in
    created = client.post("/classes/", {"name": "Evening group"})
    room = Classroom.objects.get()
    assert created["Location"] == f"/classes/{room.code}/"
    assert room.teacher.username == "head" and room.allowed_methods == list(methods.METHODS)
    page = client.get(created["Location"]).content.decode()
    assert room.code in page and "Evening group" in page


def test_a_wrong_password_is_refused(ada):
    response = browser().post("/teachers/login/", {"username": "ada", "password": "not it"})
    assert response.status_code == 200 and "enter a correct username and password" in response.content.decode()


# --- quotas --------------------------------------------------------------------------------------
def test_a_students_run_belongs_to_them_and_their_class(room):
    client, ana = student_browser(room, "Ana")
    response = post_json(client, "/api/runs", RUN)
    assert response.status_code == 201, response.content
    run = Run.objects.get()
    assert (run.classroom, run.student, run.owner, run.max_concurrent) == (room, ana, f"student:{ana.pk}", 2)


def test_an_anonymous_run_is_owned_by_the_browser_session_created_for_it(csrf_client, settings):
    settings.PEFTLAB_PUBLIC_MAX_CONCURRENT = 5
    assert post_json(csrf_client, "/api/runs", RUN).status_code == 201
    run = Run.objects.get()
    key = csrf_client.cookies["sessionid"].value
    assert run.owner == f"session:{key}" and run.max_concurrent == 5
    assert run.classroom is None and run.student is None
    assert post_json(csrf_client, "/api/runs", RUN).status_code == 201
    assert set(Run.objects.values_list("owner", flat=True)) == {f"session:{key}"}


def test_a_teachers_run_is_public_and_owned_by_the_teacher(ada):
    assert post_json(teacher_browser(ada), "/api/runs", {**RUN, "steps": methods.MAX_STEPS}).status_code == 201
    run = Run.objects.get()
    assert (run.owner, run.max_concurrent, run.classroom) == (f"teacher:{ada.pk}", 0, None)


def _refused(response, status, *words):
    assert response.status_code == status, response.content
    message = response.json()["error"]
    for word in words:
        assert word in message, message
    assert Run.objects.count() == 0 and Batch.objects.count() == 0
    return response


QUOTA_CASES = {
    "paused": ({"submissions_paused": True}, RUN, 409, ["your teacher has paused new runs"]),
    "method": (
        {"allowed_methods": ["bitfit", "ia3"]},
        RUN,
        403,
        [
            "LoRA is not allowed in the class NLP seminar; your teacher allows: BitFit, IA3. Choose one of those, "
            "or ask your teacher to allow LoRA under “Methods students may run”."
        ],
    ),
    "no method": ({"allowed_methods": []}, RUN, 403, ["allows no method now: ask your teacher to allow LoRA"]),
    "steps": (
        {"max_steps": 5},
        RUN,
        400,
        [
            "the class NLP seminar allows at most 5 steps per run (asked for 10): choose 5 steps or fewer, "
            "or ask your teacher to raise “Maximum steps per run”."
        ],
    ),
}


@pytest.mark.parametrize("case", list(QUOTA_CASES))
def test_each_class_setting_refuses_with_its_status_and_stores_nothing(ada, case):
    settings_, body, status, words = QUOTA_CASES[case]
    client, _ = student_browser(classroom(ada, **settings_), "Ana")
    _refused(post_json(client, "/api/runs", body), status, *words)


CONCURRENT_ADVICE = (
    "Wait for one to finish, or cancel one, or ask your teacher to raise “Runs queued or running at once, per student”."
)


def test_with_the_class_defaults_a_student_starts_the_race_and_the_default_rank_sweep(ada):
    """A race or a sweep is one submission against the runs at once: the defaults (2 at once)
    take the four-method race and the default rank sweep (12 runs) together."""
    room = classroom(ada)
    assert (room.max_concurrent_per_student, room.daily_runs_per_student) == (2, 20)
    client, ana = student_browser(room, "Ana")
    race = post_json(client, "/api/races", {})
    assert race.status_code == 201, race.content
    sweep = post_json(client, "/api/experiments", {"kind": "rank", "task": "sentiment"})
    assert sweep.status_code == 201, sweep.content
    assert len(race.json()["runs"]) == 4 and len(sweep.json()["runs"]) == 12
    assert Run.objects.filter(student=ana, status=Run.QUEUED).count() == 16
    # A third submission, while both wait, passes the 2 at once: the advice fits a student.
    response = post_json(client, "/api/runs", RUN)
    assert response.status_code == 429
    assert response.json()["error"] == (
        "you have 2 runs, races or sweeps queued or running, and this run would make 3; the class NLP seminar "
        f"allows 2 at a time (a race or a sweep counts as one). {CONCURRENT_ADVICE}"
    )
    # One lane ending frees nothing: the race holds its place until every lane has ended.
    Run.objects.filter(batch_id=race.json()["id"], lane=0).update(status=Run.SUCCEEDED)
    assert post_json(client, "/api/runs", RUN).status_code == 429
    Run.objects.filter(batch_id=race.json()["id"]).update(status=Run.SUCCEEDED)
    assert post_json(client, "/api/runs", RUN).status_code == 201


def test_a_race_counts_as_one_against_the_concurrency_limit(ada):
    client, ana = student_browser(classroom(ada, max_concurrent_per_student=1), "Ana")
    assert post_json(client, "/api/races", {"steps": 5}).status_code == 201
    _refused_with_runs = post_json(client, "/api/races", {"steps": 5})
    assert _refused_with_runs.status_code == 429
    assert (
        "you have 1 run, race or sweep queued or running, and this race would make 2"
        in (_refused_with_runs.json()["error"])
    )
    assert Run.objects.filter(student=ana).count() == 4


def test_queued_and_running_runs_count_finished_ones_do_not(ada):
    client, ana = student_browser(classroom(ada, max_concurrent_per_student=2), "Ana")
    run_of(ana, status=Run.RUNNING), run_of(ana, status=Run.SUCCEEDED), run_of(ana, status=Run.CANCELLED)
    assert post_json(client, "/api/runs", RUN).status_code == 201
    response = post_json(client, "/api/runs", RUN)
    assert response.status_code == 429
    assert "you have 2 runs, races or sweeps queued or running" in response.json()["error"]
    assert response.json()["error"].endswith(CONCURRENT_ADVICE)
    assert Run.objects.count() == 4
    # Another student of the class has their own allowance.
    other, _ = student_browser(Classroom.objects.get(), "Ben")
    assert post_json(other, "/api/runs", RUN).status_code == 201


def test_a_sweep_is_refused_whole_when_it_would_pass_the_daily_budget(ada):
    client, ana = student_browser(classroom(ada, daily_runs_per_student=10, max_concurrent_per_student=50), "Ana")
    for _ in range(3):
        run_of(ana, status=Run.SUCCEEDED)
    yesterday = run_of(ana, status=Run.SUCCEEDED)
    Run.objects.filter(pk=yesterday.pk).update(created_at=timezone.now() - timezone.timedelta(days=1, hours=1))
    sweep = {"kind": "targets", "task": "sentiment", "steps": 5}  # 4 runs: 3 + 4 = 7 fits
    assert post_json(client, "/api/experiments", sweep).status_code == 201
    response = post_json(client, "/api/experiments", sweep)  # 7 + 4 = 11 > 10
    assert response.status_code == 429
    assert response.json()["error"] == (
        "you have queued 7 runs today, and this sweep's 4 runs would make 11; the class NLP seminar allows 10 a day "
        "(a race or a sweep counts each of its runs). 3 more fit today: choose a race or a sweep of at most 3 runs, "
        "or wait: the count starts again at midnight (UTC), or ask your teacher to raise “Runs per student per day”."
    )
    assert 0 < int(response["Retry-After"]) <= 24 * 3600
    assert Run.objects.filter(student=ana).count() == 8 and Batch.objects.count() == 1


def test_a_student_at_the_daily_limit_waits_for_midnight_or_asks_their_teacher(ada):
    client, ana = student_browser(classroom(ada, daily_runs_per_student=2), "Ana")
    run_of(ana), run_of(ana)
    response = post_json(client, "/api/runs", RUN)
    assert response.status_code == 429 and "Retry-After" in response
    assert response.json()["error"].endswith(
        "allows 2 a day (a race or a sweep counts each of its runs). The count starts again at midnight (UTC), "
        "or ask your teacher to raise “Runs per student per day”."
    )
    # A race bigger than the whole day's allowance: waiting would not help, so it is not advised.
    Run.objects.all().delete()
    response = post_json(client, "/api/races", {"steps": 5})
    assert response.status_code == 429 and "Retry-After" not in response
    assert (
        "This race alone is more than that: choose a race or a sweep of at most 2 runs, or ask your teacher"
        in (response.json()["error"])
    )
    assert "Wait for" not in response.json()["error"] and "midnight" not in response.json()["error"]


@pytest.mark.parametrize(
    "setting, value, status, words",
    [
        (
            "PEFTLAB_PUBLIC_MAX_STEPS",
            5,
            400,
            ["this lab (outside a class) allows at most 5 steps per run (asked for 10): choose 5 steps or fewer."],
        ),
        (
            "PEFTLAB_PUBLIC_DAILY_RUNS",
            3,
            429,
            [
                "this race's 4 runs would make 4",
                "allows 3 a day",
                "This race alone is more than that: choose a race or a sweep of at most 3 runs.",
            ],
        ),
    ],
)
def test_public_limits_hold_anonymous_visitors(csrf_client, settings, setting, value, status, words):
    setattr(settings, setting, value)
    response = _refused(post_json(csrf_client, "/api/races", {"steps": 10}), status, *words)
    assert "teacher" not in response.json()["error"]


def test_a_visitor_at_the_public_concurrency_limit_is_told_to_wait_or_cancel(csrf_client, settings):
    settings.PEFTLAB_PUBLIC_MAX_CONCURRENT = 1
    assert post_json(csrf_client, "/api/races", {"steps": 5}).status_code == 201
    response = post_json(csrf_client, "/api/runs", RUN)
    assert response.status_code == 429
    assert response.json()["error"] == (
        "you have 1 run, race or sweep queued or running, and this run would make 2; this lab (outside a class) "
        "allows 1 at a time (a race or a sweep counts as one). Wait for one to finish, or cancel one."
    )


def test_a_teacher_is_held_to_no_count(ada):
    client = teacher_browser(ada)
    for _ in range(3):
        assert post_json(client, "/api/races", {"steps": 5}).status_code == 201
    assert post_json(client, "/api/runs", {**RUN, "steps": methods.MAX_STEPS}).status_code == 201


def test_paused_submissions_refuse_races_and_sweeps_too(ada):
    room = classroom(ada, submissions_paused=True, max_concurrent_per_student=20)
    client, _ = student_browser(room, "Ana")
    _refused(post_json(client, "/api/races", {"steps": 5}), 409, "paused")
    _refused(post_json(client, "/api/experiments", {"kind": "targets", "task": "sentiment", "steps": 5}), 409, "paused")


STATEMENTS = ("SELECT", "INSERT", "UPDATE", "DELETE")  # not BEGIN, SAVEPOINT, COMMIT


def test_a_students_submission_takes_the_same_few_queries_however_many_runs_they_have(room):
    # A class pressing "Train" at once: each submission holds a database connection of its web
    # process for every query. The session, the student; then in the transaction the student
    # locked with the class's settings, both counts in one, the insert.
    room.max_concurrent_per_student, room.daily_runs_per_student = 50, 50
    room.save()
    client, ana = student_browser(room, "Ana")
    counted = []
    for earlier in (1, 12):
        while Run.objects.filter(student=ana).count() < earlier:
            run_of(ana, status=Run.SUCCEEDED)
        with CaptureQueriesContext(connection) as queries:
            assert post_json(client, "/api/runs", RUN).status_code == 201
        counted.append([q["sql"] for q in queries.captured_queries if q["sql"].startswith(STATEMENTS)])
    assert len(counted[0]) == len(counted[1]) == 5, counted


def test_a_students_run_list_takes_the_same_few_queries_however_many_runs_it_shows(room, monkeypatch):
    monkeypatch.setattr(lifecycle, "due", lambda: False)  # its look for lost runs, every few seconds
    client, ana = student_browser(room, "Ana")
    counted = []
    for shown in (1, 12):
        while Run.objects.filter(student=ana).count() < shown:
            run_of(ana, status=Run.SUCCEEDED, metrics={"val_accuracy": 0.5})
        with CaptureQueriesContext(connection) as queries:
            assert len(client.get("/api/runs").json()) == shown
        counted.append(len([q for q in queries.captured_queries if q["sql"].startswith(STATEMENTS)]))
    assert counted == [3, 3]  # the session, the student, the runs


# --- rate limits ---------------------------------------------------------------------------------
def test_submissions_are_rate_limited_per_student_with_retry_after(room, settings):
    settings.PEFTLAB_SUBMISSIONS_PER_MINUTE = 2
    room.max_concurrent_per_student = 20
    room.save()
    client, ana = student_browser(room, "Ana")
    assert post_json(client, "/api/runs", RUN).status_code == 201
    assert post_json(client, "/api/races", {"steps": 3, "methods": ["lora"]}).status_code == 201
    response = post_json(client, "/api/experiments", {"kind": "targets", "task": "sentiment", "steps": 5})
    assert response.status_code == 429
    assert "too many run submissions: at most 2 a minute" in response.json()["error"]
    assert 1 <= int(response["Retry-After"]) <= 61
    assert Run.objects.count() == 2
    # Keyed by student, not by address: a classmate on the same IP still submits.
    other, _ = student_browser(room, "Ben")
    assert post_json(other, "/api/runs", RUN).status_code == 201


def _visitor() -> "Client":
    """A browser with a visitor's session, as a first submission leaves it."""
    client = browser()
    session = client.session
    session["visitor"] = True
    session.save()
    return client


def test_joins_are_rate_limited_per_browser(room, settings):
    settings.PEFTLAB_JOINS_PER_MINUTE = 2
    client = _visitor()
    assert join(client, "WRONG2", "Ana").status_code == 404
    assert join(client, "WRONG3", "Ana").status_code == 404
    response = join(client, room.code, "Ana")
    assert response.status_code == 429 and "too many attempts to join a class" in response.content.decode()
    assert 1 <= int(response["Retry-After"]) <= 61
    assert Student.objects.count() == 0
    assert join(browser(), room.code, "Ana").status_code == 302


def test_wrong_codes_are_limited_per_address_for_clients_without_cookies(room, settings):
    """Fresh sessions cannot reset the count: every client without a session from one address
    shares it; joins with the right code use none of it, and no refused request leaves a session."""
    from django.contrib.sessions.models import Session

    limit = settings.PEFTLAB_ADDRESS_WRONG_JOINS_PER_MINUTE
    for i in range(limit):
        assert join(browser(), f"WRONG{i}", "Ana").status_code == 404
    sessions = Session.objects.count()
    for code in ("WRONGX", room.code):
        response = join(browser(), code, "Ana")
        assert (
            response.status_code == 429 and "wrong class codes from your network address" in response.content.decode()
        )
    assert Session.objects.count() == sessions == 0 and Student.objects.count() == 0
    # Another address is not held back.
    assert (
        browser().post("/join/", {"code": room.code, "nickname": "Ana"}, REMOTE_ADDR="203.0.113.7").status_code == 302
    )


def test_a_class_joining_from_one_address_is_never_held_back(room, settings):
    for i in range(2 * settings.PEFTLAB_ADDRESS_WRONG_JOINS_PER_MINUTE):
        assert join(browser(), room.code, f"student {i}").status_code == 302


def test_failed_sign_ins_count_per_account_and_address(ada, settings):
    settings.PEFTLAB_LOGINS_PER_MINUTE = 2
    for _ in range(2):  # a guesser without cookies, from one address
        assert browser().post("/teachers/login/", {"username": "ada", "password": "guess"}).status_code == 200
    response = browser().post("/teachers/login/", {"username": "ADA", "password": PASSWORD})
    assert response.status_code == 429 and "Retry-After" in response
    assert "failed sign-ins for this account from your network address" in response.content.decode()
    # The teacher, elsewhere, still signs in: failures from one address lock no one else out.
    teacher_elsewhere = browser()
    response = teacher_elsewhere.post(
        "/teachers/login/", {"username": "ada", "password": PASSWORD}, REMOTE_ADDR="203.0.113.7"
    )
    assert response.status_code == 302
    # and a right password is no failure: it uses none of the count.
    for _ in range(3):
        assert (
            browser()
            .post("/teachers/login/", {"username": "ada", "password": PASSWORD}, REMOTE_ADDR="203.0.113.8")
            .status_code
            == 302
        )


# --- the dashboard -------------------------------------------------------------------------------
def test_the_dashboard_json_has_every_students_runs_the_leaderboard_and_the_queue(room, ada):
    _, ana = student_browser(room, "Ana")
    _, ben = student_browser(room, "Ben")
    _, cy = student_browser(room, "Cy")
    a1 = run_of(ana, metrics={"val_accuracy": 0.70, "train_seconds": 9.0})
    a2 = run_of(ana, metrics={"val_accuracy": 0.81, "train_seconds": 12.0})
    b1 = run_of(ben, metrics={"val_accuracy": 0.81, "train_seconds": 4.5})  # ties Ana's best, later
    b2 = run_of(ben, method="bitfit", metrics={"val_accuracy": 0.66, "train_seconds": 3.0})
    run_of(ben, status=Run.FAILED, metrics={"val_accuracy": 0.99, "train_seconds": 0.1})  # not ranked
    running = run_of(ana, status=Run.RUNNING)
    # The queue: Ana submits three, then Ben one; the scheduler goes round the students, and Ana
    # already has a run training, so Ben's run comes first.
    q = [
        run_of(ana, status=Run.QUEUED),
        run_of(ana, status=Run.QUEUED),
        run_of(ana, status=Run.QUEUED),
        run_of(ben, status=Run.QUEUED),
    ]
    Run.objects.filter(pk=running.pk).update(steps_done=4, started_at=timezone.now())
    Run.objects.filter(student__isnull=False).update(max_concurrent=2)
    other_class_run = run_of(student_browser(classroom(teacher("bob")), "Zed")[1], status=Run.QUEUED)
    visitors_run = run_of(None, status=Run.QUEUED)  # an outside visitor's, on the same queue

    response = teacher_browser(ada).get(f"/api/classes/{room.code}/dashboard")
    assert response.status_code == 200
    data = response.json()
    assert data["classroom"]["code"] == room.code and data["classroom"]["settings"]["max_concurrent_per_student"] == 2
    students = {s["nickname"]: s for s in data["students"]}
    assert list(students) == ["Ana", "Ben", "Cy"]
    assert [r["id"] for r in students["Ana"]["runs"]] == [q[2].pk, q[1].pk, q[0].pk, running.pk, a2.pk, a1.pk]
    assert students["Ana"]["active_runs"] == 4 and students["Cy"]["runs"] == []
    live = next(r for r in students["Ana"]["runs"] if r["id"] == running.pk)
    assert (live["status"], live["steps_done"], live["steps"], live["progress"]) == ("running", 4, 10, 0.4)
    assert data["counts"] == {"queued": 4, "running": 1, "succeeded": 4, "failed": 1, "cancelled": 0}

    board = {row["method"]: row for row in data["leaderboard"]}
    assert list(board) == ["lora", "bitfit"]
    assert board["lora"]["runs"] == 3
    assert board["lora"]["best_accuracy"] == {"run": a2.pk, "student": "Ana", "value": 0.81}
    assert board["lora"]["fastest"] == {"run": b1.pk, "student": "Ben", "seconds": 4.5}
    assert board["bitfit"]["best_accuracy"]["run"] == board["bitfit"]["fastest"]["run"] == b2.pk

    queue = [(row["position"], row["run"], row["student"]) for row in data["queue"]]
    # The workers' order: Ben (nothing running, submitted before the others), Zed of another
    # class and the visitor (neither listed), then Ana's three: she has one running, and at two
    # she waits for one to end. The places count the class's own waiting runs only.
    assert queue == [(1, q[3].pk, "Ben"), (2, q[0].pk, "Ana"), (3, q[1].pk, "Ana"), (4, q[2].pk, "Ana")]
    assert scheduler.queue_order("cpu") == [q[3].pk, other_class_run.pk, visitors_run.pk, q[0].pk, q[1].pk, q[2].pk]
    assert other_class_run.pk not in {r["id"] for s in data["students"] for r in s["runs"]}
    assert visitors_run.pk not in {r["id"] for s in data["students"] for r in s["runs"]}


# The API's reads of a class (peftlab/api/classes.py), its teacher's alone.
CLASS_ENDPOINTS = ("dashboard", "curves", "runs.csv")


def test_every_class_endpoint_is_checked_for_its_teacher():
    paths = {p for p in api.get_openapi_schema()["paths"] if p.startswith("/api/classes/")}
    assert paths == {f"/api/classes/{{code}}/{e}" for e in CLASS_ENDPOINTS}


def test_the_dashboard_is_its_teachers_alone(room, ada):
    code = room.code
    anonymous = browser()
    assert anonymous.get(f"/classes/{code}/")["Location"] == f"/teachers/login/?next=/classes/{code}/"
    student, _ = student_browser(room, "Ana")
    bob = teacher_browser(teacher("bob"))
    for client in (anonymous, student, bob):
        for endpoint in CLASS_ENDPOINTS:  # every read of a class
            response = client.get(f"/api/classes/{code}/{endpoint}")
            assert response.status_code == 404 and "there is no class" in response.json()["error"]
    assert bob.get(f"/classes/{code}/").status_code == 404
    assert bob.post(f"/classes/{code}/pause/", {"paused": "1"}).status_code == 404
    assert teacher_browser(ada).get(f"/classes/{code.lower()}/").status_code == 200


def test_the_teacher_cancels_any_run_of_the_class(room, ada):
    _, ana = student_browser(room, "Ana")
    queued, running = run_of(ana, status=Run.QUEUED), run_of(ana, status=Run.RUNNING)
    client = teacher_browser(ada)
    assert post_json(client, f"/api/runs/{queued.pk}/cancel", {}).status_code == 202
    assert post_json(client, f"/api/runs/{running.pk}/cancel", {}).status_code == 202
    queued.refresh_from_db(), running.refresh_from_db()
    assert queued.status == Run.CANCELLED and running.cancel_requested


def test_pause_and_resume_from_the_dashboard(room, ada):
    client = teacher_browser(ada)
    assert "Pause new submissions" in client.get(f"/classes/{room.code}/").content.decode()
    assert client.post(f"/classes/{room.code}/pause/", {"paused": "1"}).status_code == 302
    room.refresh_from_db()
    assert room.submissions_paused
    assert "Resume submissions" in client.get(f"/classes/{room.code}/").content.decode()
    student, _ = student_browser(room, "Ana")
    assert post_json(student, "/api/runs", RUN).status_code == 409
    client.post(f"/classes/{room.code}/pause/", {"paused": "0"})
    assert post_json(student, "/api/runs", RUN).status_code == 201


def test_the_settings_form_saves_good_values_and_explains_bad_ones(room, ada):
    client = teacher_browser(ada)
    url = f"/classes/{room.code}/"
    good = {
        "allowed_methods": ["lora", "bitfit"],
        "max_steps": 300,
        "max_run_minutes": 20,
        "max_concurrent_per_student": 4,
        "daily_runs_per_student": 12,
    }
    response = client.post(url, good)
    assert response.status_code == 302 and response["Location"] == f"{url}?saved=1"
    room.refresh_from_db()
    assert (room.allowed_methods, room.max_steps, room.max_concurrent_per_student, room.daily_runs_per_student) == (
        ["lora", "bitfit"],
        300,
        4,
        12,
    )
    for bad, words in (
        ({"max_steps": methods.MAX_STEPS + 1}, "less than or equal to 2000"),
        ({"allowed_methods": []}, "This field is required"),
        ({"allowed_methods": ["magic"]}, "magic is not one of the available choices"),
        ({"daily_runs_per_student": 0}, "greater than or equal to 1"),
    ):
        response = client.post(url, {**good, **bad})
        assert response.status_code == 400 and words in response.content.decode()
    room.refresh_from_db()
    assert room.max_steps == 300 and room.allowed_methods == ["lora", "bitfit"]


# --- CSRF ----------------------------------------------------------------------------------------
def test_every_state_changing_post_needs_the_csrf_token(room, ada):
    _, ana = student_browser(room, "Ana")
    queued = run_of(ana, status=Run.QUEUED)
    tokenless = Client(enforce_csrf_checks=True)
    tokenless.force_login(ada)
    assert tokenless.post(f"/classes/{room.code}/pause/", {"paused": "1"}).status_code == 403
    assert tokenless.post(f"/classes/{room.code}/", {"max_steps": 5}).status_code == 403
    assert tokenless.post("/classes/", {"name": "sneaky"}).status_code == 403
    cancel = tokenless.post(f"/api/runs/{queued.pk}/cancel", "{}", content_type="application/json")
    assert cancel.status_code == 403 and "CSRF" in cancel.json()["error"]
    visitor = Client(enforce_csrf_checks=True)
    assert visitor.post("/join/", {"code": room.code, "nickname": "Ben"}).status_code == 403
    assert visitor.post("/leave/").status_code == 403
    assert visitor.post("/teachers/login/", {"username": "ada", "password": PASSWORD}).status_code == 403
    room.refresh_from_db(), queued.refresh_from_db()
    assert not room.submissions_paused and room.max_steps == methods.MAX_STEPS
    assert queued.status == Run.QUEUED and Classroom.objects.count() == 1 and Student.objects.count() == 1


def test_the_queue_order_follows_the_fair_scheduler_when_everyone_is_at_their_limit():
    """Owners at their limit wait for one of their runs to end; the estimate lets each running
    run end in turn rather than stopping."""
    a = [
        Run.objects.create(
            method="lora",
            task="sentiment",
            steps=1,
            owner="x",
            max_concurrent=1,
            status=Run.RUNNING,
            started_at=timezone.now(),
        )
    ]
    waiting = [
        Run.objects.create(method="lora", task="sentiment", steps=1, owner=o, max_concurrent=1) for o in ("x", "x", "y")
    ]
    assert a and scheduler.queue_order("cpu") == [waiting[2].pk, waiting[0].pk, waiting[1].pk]


def test_the_queue_order_starts_a_races_lanes_together_and_a_sweep_one_lane_at_a_time(ada):
    """A student at 2 at once with a race of three lanes, a sweep of two and a run: the race's
    lanes start together and hold one of their two places, the sweep's first lane the other;
    the run and the sweep's next lane wait for a place, the sweep's next lane for its first."""
    _, ana = student_browser(classroom(ada), "Ana")
    race = Batch.objects.create(kind=Batch.RACE, task="sentiment", steps=10, seed=0)
    sweep = Batch.objects.create(kind=Batch.RANK_SWEEP, task="sentiment", steps=10, seed=0)
    lanes = [run_of(ana, status=Run.QUEUED, batch=race, lane=lane, max_concurrent=2) for lane in range(3)]
    swept = [run_of(ana, status=Run.QUEUED, batch=sweep, lane=lane, max_concurrent=2) for lane in range(2)]
    lone = run_of(ana, status=Run.QUEUED, max_concurrent=2)
    assert scheduler.queue_order("cpu") == [*(lane.pk for lane in lanes), swept[0].pk, lone.pk, swept[1].pk]
    # The race training (one place): the sweep's first lane takes the other, then the run.
    Run.objects.filter(batch=race).update(status=Run.RUNNING, started_at=timezone.now())
    assert scheduler.queue_order("cpu") == [swept[0].pk, lone.pk, swept[1].pk]
