"""The public API in-process: contract, validation, CSRF. Nothing here needs a worker."""

import json
import re

import pytest
from django.test import Client

from peftlab.api import uploads
from peftlab.api.datasets import BODY_SLACK
from peftlab.runs.models import Point, Run
from tests.support.classrooms import visitor_owner
from workers.methods import METHODS

pytestmark = pytest.mark.django_db


def post(client, url, body):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json")


GOOD = {"method": "lora", "task": "sentiment", "steps": 50, "seed": 3, "params": {"rank": 4, "lr": 0.001}}


def test_it_queues_a_valid_run_and_sends_it_to_the_configured_queue(
    csrf_client, sent, settings, django_capture_on_commit_callbacks
):
    settings.PEFTLAB_RUN_QUEUE = "gpu"
    with django_capture_on_commit_callbacks(execute=True):
        response = post(csrf_client, "/api/runs", GOOD)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued" and body["events_url"] == f"/api/runs/{body['id']}/events"
    assert body["params"] == {
        "rank": 4,
        "alpha": 16.0,
        "dropout": 0.0,
        "target_modules": ["query", "value"],
        "lr": 0.001,
        "batch_size": 16,
        "eval_every": 25,
    }
    assert sent == [(body["id"], "gpu")]
    assert Run.objects.get().queue == "gpu"


@pytest.mark.parametrize(
    "body, message",
    [
        ({**GOOD, "method": "magic"}, "unknown method 'magic'"),
        ({**GOOD, "method": ""}, "unknown method ''; choose from"),
        ({**GOOD, "task": ""}, "unknown task ''"),
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
    ],
)
def test_it_refuses_bad_input_with_a_message_and_stores_nothing(csrf_client, sent, body, message):
    response = post(csrf_client, "/api/runs", body)
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]
    assert Run.objects.count() == 0 and sent == []


def test_it_refuses_an_unknown_top_level_key_naming_it_and_queues_nothing(csrf_client, sent):
    # "step" for "steps" used to be ignored: a 100-step run was queued.
    response = post(csrf_client, "/api/runs", {"method": "lora", "task": "sentiment", "step": 1})
    assert response.status_code == 400
    assert response.json()["error"] == "step: unknown field; the fields are method, task, steps, seed, params"
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
    run = Run.objects.create(method="lora", task="sentiment", steps=3, params={}, owner=visitor_owner(csrf_client))
    response = post(csrf_client, f"/api/runs/{run.pk}/cancel", {})
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    response = post(csrf_client, f"/api/runs/{run.pk}/cancel", {})
    assert response.status_code == 409 and "already finished" in response.json()["error"]


def test_it_flags_a_running_run_for_its_worker_to_stop(csrf_client):
    run = Run.objects.create(
        method="lora", task="sentiment", steps=3, params={}, status=Run.RUNNING, owner=visitor_owner(csrf_client)
    )
    assert post(csrf_client, f"/api/runs/{run.pk}/cancel", {}).status_code == 202
    run.refresh_from_db()
    assert run.status == Run.RUNNING and run.cancel_requested


def test_it_lists_methods_with_bounds_from_the_registry(client):
    methods = {m["name"]: m for m in client.get("/api/methods").json()}
    assert set(methods) == {"full", "lora", "dora", "adapter", "prompt", "prefix", "ia3", "bitfit", "qlora"}
    rank = next(p for p in methods["lora"]["params"] if p["name"] == "rank")
    assert (rank["minimum"], rank["maximum"], rank["default"]) == (1, 256, 8)
    assert methods["lora"]["steps"]["maximum"] == 2000
    # What the pages draw and say of each method comes with it.
    assert all(
        m["colour"] == METHODS[name].colour and m["summary"] == METHODS[name].summary for name, m in methods.items()
    )
    assert methods["bitfit"]["saved_by"] == "lab" and methods["lora"]["mergeable"]


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
    from peftlab.pages.chapters import CHAPTERS

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


# --- the OpenAPI document says what the code does ------------------------------------------------
def _responses(client, method: str, template: str) -> dict:
    return client.get("/api/openapi.json").json()["paths"][template][method]["responses"]


def _url(template: str) -> str:
    return re.sub(r"\{\w+\}", "999", template)


@pytest.mark.parametrize(
    "method, url, template, status",
    [
        # 400s the document did not list: a path or query parameter that fails validation.
        ("get", "/api/runs?limit=0", "/api/runs", 400),
        ("get", "/api/runs/null", "/api/runs/{run_id}", 400),
        ("get", "/api/runs/null/adapter", "/api/runs/{run_id}/adapter", 400),
        ("get", "/api/runs/null/script.py", "/api/runs/{run_id}/script.py", 400),
        ("get", "/api/runs/null/notebook.ipynb", "/api/runs/{run_id}/notebook.ipynb", 400),
        ("post", "/api/runs/null/cancel", "/api/runs/{run_id}/cancel", 400),
        ("get", "/api/races/null", "/api/races/{race_id}", 400),
        ("post", "/api/races/null/cancel", "/api/races/{race_id}/cancel", 400),
        ("get", "/api/experiments/null", "/api/experiments/{experiment_id}", 400),
        ("get", "/api/datasets?limit=0", "/api/datasets", 400),
        ("get", "/api/datasets/null", "/api/datasets/{dataset_id}", 400),
        ("delete", "/api/datasets/null", "/api/datasets/{dataset_id}", 400),
        ("get", "/api/playgrounds/decision-tree?q1=maybe", "/api/playgrounds/decision-tree", 400),
        ("get", "/api/playgrounds/low-rank?size=100", "/api/playgrounds/low-rank", 400),
        ("get", "/api/playgrounds/qlora?seed=-1", "/api/playgrounds/qlora", 400),
        ("get", "/api/playgrounds/adapter-block?bottleneck=100", "/api/playgrounds/adapter-block", 400),
        ("get", "/api/playgrounds/low-rank-lab?noise=2", "/api/playgrounds/low-rank-lab", 400),
        ("get", "/api/playgrounds/memory-calculator?quant=int3", "/api/playgrounds/memory-calculator", 400),
        ("get", "/api/playgrounds/memory-calculator?params=nan", "/api/playgrounds/memory-calculator", 400),  # was 500
        ("get", "/api/playgrounds/memory-calculator/lab?num_labels=0", "/api/playgrounds/memory-calculator/lab", 400),
        ("get", "/api/playgrounds/cost-of-fine-tuning?bytes_per_param=3", "/api/playgrounds/cost-of-fine-tuning", 400),
        ("get", "/api/playgrounds/lottery-ticket?scope=row", "/api/playgrounds/lottery-ticket", 400),
        ("get", "/api/playgrounds/intrinsic-dimension?seed=10000", "/api/playgrounds/intrinsic-dimension", 400),
        ("get", "/api/playgrounds/lora-forward?d=100", "/api/playgrounds/lora-forward", 400),
        ("get", "/api/playgrounds/zero-start?alpha=100", "/api/playgrounds/zero-start", 400),
        ("get", "/api/playgrounds/family-map?model=", "/api/playgrounds/family-map", 400),
        ("get", "/api/playgrounds/in-context-learning?query=", "/api/playgrounds/in-context-learning", 400),
        ("get", "/api/playgrounds/prompt-sensitivity?query=+", "/api/playgrounds/prompt-sensitivity", 400),
        ("get", "/api/playgrounds/chain-of-thought?values=", "/api/playgrounds/chain-of-thought", 400),
        ("get", "/api/playgrounds/merge-and-swap?limit=500", "/api/playgrounds/merge-and-swap", 400),
        (
            "get",
            "/api/playgrounds/four-method-race/simulated?steps=0",
            "/api/playgrounds/four-method-race/simulated",
            400,
        ),
        # Required parameters the document called optional.
        ("get", "/api/compare", "/api/compare", 400),
        ("get", "/api/compare?runs=", "/api/compare", 400),
        ("get", "/api/experiments/plan?kind=rank", "/api/experiments/plan", 400),
        # Lookups.
        ("get", "/api/runs/999/script.py", "/api/runs/{run_id}/script.py", 404),
        ("get", "/api/compare?runs=999", "/api/compare", 404),
        ("get", "/api/classes/NOPE/dashboard", "/api/classes/{code}/dashboard", 404),
    ],
)
def test_the_openapi_document_lists_each_status_the_api_answers(csrf_client, method, url, template, status):
    response = getattr(csrf_client, method)(url)
    assert response.status_code == status, response.content
    assert response.json()["error"]
    assert str(status) in _responses(csrf_client, method, template)


# Bodies that pass validation, so that the request reaches the CSRF check.
VALID_BODIES = {"/api/runs": GOOD, "/api/experiments": {"kind": "targets", "task": "sentiment"}}


def test_every_post_and_delete_lists_the_csrf_refusal_it_answers(sent):
    client = Client(enforce_csrf_checks=True)
    paths = client.get("/api/openapi.json").json()["paths"]
    unsafe = [
        (template, method)
        for template, operations in paths.items()
        for method in operations
        if method in ("post", "delete")
    ]
    assert len(unsafe) == 7
    for template, method in unsafe:
        response = getattr(client, method)(
            _url(template), data=json.dumps(VALID_BODIES.get(template, {})), content_type="application/json"
        )
        assert response.status_code == 403, (template, response.content)
        assert "X-CSRFToken" in response.json()["error"]
        assert "403" in paths[template][method]["responses"], template
    assert Run.objects.count() == 0


def test_every_post_lists_the_413_a_body_over_the_limit_answers(csrf_client, settings):
    # A form body too: Django's CSRF check reads one even where the operation takes no body.
    size = max(settings.DATA_UPLOAD_MAX_MEMORY_SIZE, uploads.MAX_BYTES + BODY_SLACK) + 1
    body = "x=" + "a" * size
    paths = csrf_client.get("/api/openapi.json").json()["paths"]
    posts = [template for template, operations in paths.items() if "post" in operations]
    assert len(posts) == 6
    for template in posts:
        response = csrf_client.post(_url(template), data=body, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 413, (template, response.content)
        assert "413" in paths[template]["post"]["responses"], template


def test_a_rate_limited_submission_answers_the_documented_429_and_retry_after(csrf_client, sent, settings):
    settings.PEFTLAB_SUBMISSIONS_PER_MINUTE = 1
    assert post(csrf_client, "/api/runs", GOOD).status_code == 201
    response = post(csrf_client, "/api/runs", GOOD)
    assert response.status_code == 429
    documented = _responses(csrf_client, "post", "/api/runs")["429"]
    assert documented["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}
    assert int(response["Retry-After"]) >= 1


def test_the_schema_allows_only_what_the_code_accepts(client):
    schema = client.get("/api/openapi.json").json()
    run_in = schema["components"]["schemas"]["RunIn"]
    assert run_in["additionalProperties"] is False
    assert run_in["properties"]["method"]["enum"] == list(METHODS)  # "" was allowed, then refused
    assert run_in["properties"]["task"]["minLength"] == 1
    for name in ("RaceIn", "ExperimentIn"):
        assert schema["components"]["schemas"][name]["additionalProperties"] is False
    compare = schema["paths"]["/api/compare"]["get"]["parameters"]
    assert [(p["name"], p["required"]) for p in compare] == [("runs", True)]
    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (
                        method,
                        template,
                        status,
                    )


def test_every_operation_id_is_unique_wherever_its_module_lives():
    from peftlab.urls import api

    ids = [op["operationId"] for path in api.get_openapi_schema()["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids)) > 40
    assert "create_run" in ids and not any("." in i or i.startswith("peftlab") for i in ids)
