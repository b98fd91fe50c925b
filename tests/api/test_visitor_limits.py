"""Limits a client cannot reset by dropping its cookies (peftlab/classroom/ratelimit.py, quotas.py), and
run budgets by estimated worker time (workers/run_cost.py), through real requests."""

import json
import math

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from peftlab.runs.models import Run
from tests.support.classrooms import classroom, student_browser, teacher, teacher_browser
from workers import methods, run_cost

pytestmark = pytest.mark.django_db


def cookieless(address: str | None = None) -> Client:
    """A client that keeps no cookies: a new visitor on every request (the CSRF token is sent as
    an unmasked secret in cookie and header alike, as a script can)."""
    token = "cookielesscookielesscookieless00"
    client = Client(enforce_csrf_checks=True, HTTP_X_CSRFTOKEN=token, **({"REMOTE_ADDR": address} if address else {}))
    original = client.request

    def request(**kwargs):
        client.cookies.clear()
        client.cookies["csrftoken"] = token
        return original(**kwargs)

    client.request = request
    return client


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


SWEEP = {"kind": "rank", "task": "sentiment", "steps": 5}


def test_fresh_sessions_cannot_reset_a_visitors_quota(sent, settings):
    """The reported case: refused a second sweep, a visitor queued more from fresh sessions."""
    settings.PEFTLAB_ADDRESS_MAX_CONCURRENT = 3
    for _ in range(3):  # a sweep counts as one of the address's 3 at once
        assert post(cookieless(), "/api/experiments", SWEEP).status_code == 201
    sessions, runs = Session.objects.count(), Run.objects.count()
    refused = post(cookieless(), "/api/experiments", SWEEP)
    assert refused.status_code == 429
    # This visitor has nothing of theirs to cancel: they are told to wait for the others'.
    assert refused.json()["error"] == (
        "visitors from your network address have 3 runs, races or sweeps queued or running, and this sweep would "
        "make 4; this lab (outside a class) from one address allows 3 at a time (a race or a sweep counts as one). "
        "Wait for one of theirs to finish; if you are in a class, join it with its code: a class has limits of "
        "its own."
    )
    # Nothing stored: no run, and no session row for the refused request.
    assert (Session.objects.count(), Run.objects.count()) == (sessions, runs)
    # Another address, and a class's students, are not held back by it.
    assert post(cookieless("203.0.113.9"), "/api/experiments", SWEEP).status_code == 201
    room = classroom(teacher("ada"), max_concurrent_per_student=1)
    student, _ = student_browser(room, "Ana")
    assert post(student, "/api/experiments", SWEEP).status_code == 201


def test_a_visitor_with_runs_of_their_own_at_the_address_limit_may_cancel_one(sent, settings, csrf_client):
    settings.PEFTLAB_ADDRESS_MAX_CONCURRENT = 2
    assert post(csrf_client, "/api/races", {"steps": 5}).status_code == 201
    assert post(cookieless(), "/api/experiments", SWEEP).status_code == 201
    refused = post(csrf_client, "/api/runs", {"method": "lora", "task": "sentiment", "steps": 5})
    assert refused.status_code == 429
    assert refused.json()["error"].endswith(
        "Wait for one to finish, or cancel one of yours; if you are in a class, join it with its code: a class "
        "has limits of its own."
    )


def test_submissions_are_rate_limited_per_address_for_clients_without_cookies(sent, settings):
    settings.PEFTLAB_ADDRESS_SUBMISSIONS_PER_MINUTE = 3
    run = {"method": "lora", "task": "sentiment", "steps": 2}
    for _ in range(3):
        assert post(cookieless(), "/api/runs", run).status_code == 201
    sessions = Session.objects.count()
    for _ in range(20):
        refused = post(cookieless(), "/api/runs", run)
        assert refused.status_code == 429 and "from your network address" in refused.json()["error"]
        assert 1 <= int(refused["Retry-After"]) <= 61
    assert Session.objects.count() == sessions == 3 and Run.objects.count() == 3


def test_a_refused_request_leaves_no_session_row(sent, settings):
    settings.PEFTLAB_PUBLIC_MAX_STEPS = 5
    for _ in range(20):
        assert post(cookieless(), "/api/runs", {"method": "lora", "task": "sentiment", "steps": 50}).status_code == 400
        assert post(cookieless(), "/api/runs", {"method": "nope", "task": "sentiment"}).status_code == 400
    assert Session.objects.count() == 0 and Run.objects.count() == 0


def test_forwarded_for_is_believed_only_from_a_configured_proxy(sent, settings):
    settings.PEFTLAB_ADDRESS_SUBMISSIONS_PER_MINUTE = 1
    settings.PEFTLAB_TRUSTED_PROXIES = ["127.0.0.1"]
    run = {"method": "lora", "task": "sentiment", "steps": 2}
    behind_proxy = [cookieless("127.0.0.1") for _ in range(2)]
    assert (
        post(
            behind_proxy[0],
            "/api/runs",
            run,
        ).status_code
        == 201
    )  # 127.0.0.1 itself
    # Through the proxy: each client is its own forwarded address, whatever it wrote first.
    for forged in ("198.51.100.1", "198.51.100.2"):
        response = behind_proxy[1].post(
            "/api/runs",
            json.dumps(run),
            content_type="application/json",
            HTTP_X_FORWARDED_FOR=f"{forged}, 203.0.113.20",
        )
        assert response.status_code == (201 if forged == "198.51.100.1" else 429)
    # Without a trusted proxy in front, the header is anyone's to write: ignored.
    settings.PEFTLAB_TRUSTED_PROXIES = []
    direct = cookieless("203.0.113.30")
    assert post(direct, "/api/runs", run).status_code == 201
    response = direct.post(
        "/api/runs", json.dumps(run), content_type="application/json", HTTP_X_FORWARDED_FOR="198.51.100.3"
    )
    assert response.status_code == 429


# --- run budgets by estimated worker time ----------------------------------------------------------
def test_the_cost_model_covers_every_method_and_its_inverses_agree():
    assert set(run_cost.measured()["methods"]) == set(methods.METHODS)
    for name in methods.METHODS:
        cost = run_cost.cost_of(name)
        assert cost.seconds(200, 32, 25, 200) > cost.seconds(100, 32, 25, 200) > cost.seconds(100, 8, 25, 200)
        assert cost.seconds(100, 16, 10, 200) > cost.seconds(100, 16, 0, 200)
        budget = 300.0
        steps = cost.steps_within(budget, 64, 25, 200)
        assert (
            cost.seconds(steps, 64, 25, 200)
            <= budget
            < cost.seconds(steps + 1, 64, 25, 200) + cost.evaluation_seconds(200)
        )
        batch = cost.batch_within(budget, 500, 25, 200)
        if batch:
            assert cost.seconds(500, batch, 25, 200) <= budget < cost.seconds(500, batch + 1, 25, 200)


def test_full_fine_tuning_at_batch_256_for_2000_steps_is_refused_with_what_fits(sent):
    visitor = cookieless()
    big = {"method": "full", "task": "sentiment", "steps": 2000, "params": {"batch_size": 256}}
    response = post(visitor, "/api/runs", big)
    assert response.status_code == 400
    message = response.json()["error"]
    assert "Full fine-tuning for 2000 steps at batch 256 would take about" in message
    assert "allows 5 min per run" in message and run_cost.machine() in message and "teacher" not in message
    assert Run.objects.count() == 0
    # The advice fits: the steps it names at that batch, and the batch it names for those steps.
    steps = int(message.split("at most ")[1].split(" steps")[0])
    batch = int(message.split(", or batch ")[1].split(" for")[0])
    assert 1 <= steps < 2000 and 1 <= batch < 256
    assert post(visitor, "/api/runs", {**big, "steps": steps}).status_code == 201
    assert post(visitor, "/api/runs", {**big, "params": {"batch_size": batch}}).status_code == 201
    assert post(visitor, "/api/runs", {**big, "steps": steps + 1}).status_code == 400


def test_every_default_run_race_and_sweep_fits_the_public_budget(sent, settings):
    budget = settings.PEFTLAB_PUBLIC_MAX_RUN_MINUTES * 60
    for name in methods.METHODS:
        spec = methods.validate_run(name, "sentiment", 100, 0, {})
        seconds = run_cost.cost_of(name).seconds(100, spec.params["batch_size"], spec.params["eval_every"], 200)
        assert seconds < budget / 2, name
    visitor = cookieless()
    assert post(visitor, "/api/races", {}).status_code == 201
    assert post(visitor, "/api/experiments", {"kind": "rank", "task": "sentiment"}).status_code == 201
    assert post(visitor, "/api/experiments", {"kind": "targets", "task": "sentiment"}).status_code == 201


def test_a_class_sets_its_own_budget_and_a_teacher_has_none(sent):
    ada = teacher("ada")
    room = classroom(ada, max_run_minutes=1)
    student, _ = student_browser(room, "Ana")
    run = {"method": "lora", "task": "sentiment", "steps": 2000}
    refused = post(student, "/api/runs", run)
    assert refused.status_code == 400
    assert "allows 1 min per run; to fit, use at most" in refused.json()["error"]
    assert refused.json()["error"].endswith(", or ask your teacher to raise “Worker minutes per run (estimated)”.")
    lora = run_cost.cost_of("lora")
    needed = math.ceil(lora.seconds(2000, 16, 25, 200) / 60)
    dashboard = teacher_browser(ada)
    form = {
        "allowed_methods": list(methods.METHODS),
        "max_steps": 2000,
        "max_run_minutes": needed,
        "max_concurrent_per_student": 2,
        "daily_runs_per_student": 20,
    }
    assert dashboard.post(f"/classes/{room.code}/", form).status_code == 302
    assert post(student, "/api/runs", run).status_code == 201
    # A teacher's own runs: only the registry's bounds.
    huge = {"method": "full", "task": "sentiment", "steps": 2000, "params": {"batch_size": 256}}
    assert post(dashboard, "/api/runs", huge).status_code == 201


def test_the_estimate_says_a_runs_worker_time_and_the_callers_budget_before_it_is_queued():
    visitor = cookieless()
    small = visitor.get("/api/runs/estimate?method=lora&task=sentiment").json()
    lora = run_cost.cost_of("lora")
    assert small["seconds"] == pytest.approx(lora.seconds(100, 16, 25, 200), abs=0.05)
    assert small["budget_seconds"] == 300 and small["machine"] == run_cost.machine()
    big = visitor.get("/api/runs/estimate?method=full&task=sentiment&steps=2000&batch_size=256").json()
    assert big["seconds"] > big["budget_seconds"]
    # The estimate is the one the budget refuses by: the refusal gives the same minutes.
    refused = post(
        visitor, "/api/runs", {"method": "full", "task": "sentiment", "steps": 2000, "params": {"batch_size": 256}}
    ).json()["error"]
    assert f"about {big['seconds'] / 60:.0f} min" in refused
    assert Session.objects.count() == 0  # asking stores nothing
    room = classroom(teacher("ada"), max_run_minutes=3)
    student, _ = student_browser(room, "Ana")
    assert student.get("/api/runs/estimate?method=lora&task=sentiment").json()["budget_seconds"] == 180
    assert (
        teacher_browser(teacher("bob")).get("/api/runs/estimate?method=lora&task=sentiment").json()["budget_seconds"]
        is None
    )
    for bad in (
        "method=nope&task=sentiment",
        "method=lora&task=nope",
        "task=sentiment",
        "method=lora&task=sentiment&steps=0",
    ):
        response = visitor.get(f"/api/runs/estimate?{bad}")
        assert response.status_code == 400 and response.json()["error"], bad
