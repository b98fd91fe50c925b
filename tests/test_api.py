"""The public API in-process: contract, validation, CSRF. Nothing here needs a worker."""
import json

import pytest
from django.test import Client

from simulations.models import Point, Run

pytestmark = pytest.mark.django_db


def post(client, url, body):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json")


GOOD = {"method": "lora", "task": "sentiment", "steps": 50, "seed": 3, "params": {"rank": 4, "lr": 0.001}}


def test_it_queues_a_valid_run_and_sends_it_to_the_configured_queue(
        csrf_client, sent, settings, django_capture_on_commit_callbacks):
    settings.PEFTLAB_RUN_QUEUE = "gpu"
    with django_capture_on_commit_callbacks(execute=True):
        response = post(csrf_client, "/api/runs", GOOD)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued" and body["events_url"] == f"/api/runs/{body['id']}/events"
    assert body["params"] == {"rank": 4, "alpha": 16.0, "dropout": 0.0, "target_modules": ["query", "value"],
                              "lr": 0.001, "batch_size": 16, "eval_every": 25}
    assert sent == [(body["id"], "gpu")]
    assert Run.objects.get().queue == "gpu"


@pytest.mark.parametrize("body, message", [
    ({**GOOD, "method": "magic"}, "unknown method 'magic'"),
    ({**GOOD, "method": "bitfit"}, "'rank' does not apply to bitfit"),
    ({**GOOD, "method": "adapter", "params": {"bottleneck": 0}}, "bottleneck"),
    ({**GOOD, "method": "prompt", "params": {"virtual_tokens": 500}}, "virtual_tokens"),
    ({**GOOD, "task": "nope"}, "unknown task 'nope'"),
    ({**GOOD, "steps": 0}, "steps"),
    ({**GOOD, "steps": 2001}, "steps"),
    ({**GOOD, "steps": "100"}, "steps"),
    ({**GOOD, "steps": 1.5}, "steps"),
    ({**GOOD, "seed": -1}, "seed"),
    ({k: v for k, v in GOOD.items() if k != "task"}, "task"),
    ({**GOOD, "params": {"rank": 0}}, "rank"),
    ({**GOOD, "params": {"rank": 257}}, "rank"),
    ({**GOOD, "params": {"rank": "8"}}, "rank"),
    ({**GOOD, "params": {"lr": 1e9}}, "lr"),
    ({**GOOD, "params": {"lr": 0}}, "lr"),
    ({**GOOD, "params": {"lr": -0.1}}, "lr"),
    ({**GOOD, "params": {"batch_size": 0}}, "batch_size"),
    ({**GOOD, "params": {"batch_size": 1000}}, "batch_size"),
    ({**GOOD, "params": {"target_modules": ["query", "wings"]}}, "unknown target module 'wings'"),
    ({**GOOD, "params": {"target_modules": []}}, "target_modules"),
    ({**GOOD, "params": {"bottleneck": 16}}, "'bottleneck' does not apply to lora"),
    ({**GOOD, "params": {"colour": "red"}}, "colour"),
    ({**GOOD, "params": [1, 2]}, "params"),
    ([1, 2, 3], ""),
    ("{not json", ""),
    ("", ""),
])
def test_it_refuses_bad_input_with_a_message_and_stores_nothing(csrf_client, sent, body, message):
    response = post(csrf_client, "/api/runs", body)
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]
    assert Run.objects.count() == 0 and sent == []


def test_it_refuses_a_huge_body(csrf_client, sent, settings):
    body = {**GOOD, "task": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)}
    response = post(csrf_client, "/api/runs", body)
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]
    assert Run.objects.count() == 0


def test_it_requires_the_csrf_token_on_posts(sent):
    client = Client(enforce_csrf_checks=True)
    response = post(client, "/api/runs", GOOD)
    assert response.status_code == 403
    assert "X-CSRFToken" in response.json()["error"]
    assert Run.objects.count() == 0


def test_it_returns_a_run_with_its_points_in_order(client):
    run = Run.objects.create(method="lora", task="sentiment", steps=3, params={})
    for step in (2, 1, 3):
        Point.objects.create(run=run, step=step, loss=1.0 / step, elapsed=step * 0.1)
    body = client.get(f"/api/runs/{run.pk}").json()
    assert [p["step"] for p in body["points"]] == [1, 2, 3]
    assert body["status"] == "queued" and body["metrics"] == {}


def test_it_answers_404_for_an_unknown_run(client):
    assert client.get("/api/runs/999").status_code == 404
    assert client.get("/api/runs/999/events").status_code == 404
    assert "no run 999" in client.get("/api/runs/999").json()["error"]


def test_it_cancels_a_queued_run_at_once_and_refuses_a_finished_one(csrf_client):
    run = Run.objects.create(method="lora", task="sentiment", steps=3, params={})
    response = post(csrf_client, f"/api/runs/{run.pk}/cancel", {})
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    response = post(csrf_client, f"/api/runs/{run.pk}/cancel", {})
    assert response.status_code == 409 and "already finished" in response.json()["error"]


def test_it_flags_a_running_run_for_its_worker_to_stop(csrf_client):
    run = Run.objects.create(method="lora", task="sentiment", steps=3, params={}, status=Run.RUNNING)
    assert post(csrf_client, f"/api/runs/{run.pk}/cancel", {}).status_code == 202
    run.refresh_from_db()
    assert run.status == Run.RUNNING and run.cancel_requested


def test_it_lists_methods_with_bounds_from_the_registry(client):
    methods = {m["name"]: m for m in client.get("/api/methods").json()}
    assert set(methods) == {"full", "lora", "dora", "adapter", "prompt", "prefix", "ia3", "bitfit", "qlora"}
    rank = next(p for p in methods["lora"]["params"] if p["name"] == "rank")
    assert (rank["minimum"], rank["maximum"], rank["default"]) == (1, 256, 8)
    assert methods["lora"]["steps"]["maximum"] == 2000


def test_it_lists_the_shipped_tasks(client):
    tasks_ = {t["name"]: t for t in client.get("/api/tasks").json()}
    assert tasks_["sentiment"]["labels"] == ["negative", "positive"]
    assert tasks_["sentiment"]["train_size"] == 800 and tasks_["topic"]["val_size"] == 160


def test_it_serves_an_openapi_schema_generated_from_the_validators(client):
    schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    for path in ("/api/methods", "/api/tasks", "/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/cancel"):
        assert path in paths, path
    run_in = schema["components"]["schemas"]["RunIn"]["properties"]
    assert run_in["steps"]["maximum"] == 2000
    rank = schema["components"]["schemas"]["RunParams"]["properties"]["rank"]
    assert "256" in json.dumps(rank)


def test_it_renders_every_chapter_page(client):
    from simulations.chapters import CHAPTERS

    home = client.get("/").content.decode()
    for chapter in CHAPTERS:
        for pg in chapter.playgrounds:
            page = client.get(f"/playgrounds/{pg.slug}/")
            assert page.status_code == 200
            assert pg.pid in home
            if not pg.live:
                assert "This playground is coming" in page.content.decode()
    assert client.get("/playgrounds/nothing-here/").status_code == 404
    assert client.get("/train/").status_code == 200
