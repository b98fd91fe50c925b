"""The race API (P17) in-process: creation, validation, predictions, cancel, the race stream's
cursor. Nothing here needs a worker."""

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from peftlab.api import events
from peftlab.runs import races, tasks
from peftlab.runs.models import Batch, EvalPoint, Point, Run

pytestmark = pytest.mark.django_db


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_it_starts_a_default_race_of_four_lanes_dispatched_after_commit(
    csrf_client, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(csrf_client, "/api/races", {"task": "sentiment"})
    assert response.status_code == 201, response.content
    race = response.json()
    assert race["status"] == "running" and race["steps"] == races.DEFAULT_STEPS and race["seed"] == 0
    assert race["events_url"] == f"/api/races/{race['id']}/events"
    assert [r["method"] for r in race["runs"]] == ["full", "adapter", "lora", "prompt"]
    assert [r["lane"] for r in race["runs"]] == [0, 1, 2, 3]
    assert [run_id for run_id, _ in sent] == [r["id"] for r in race["runs"]]
    every = races.eval_every(races.DEFAULT_STEPS)
    assert all(r["params"]["eval_every"] == every and r["batch"] == race["id"] for r in race["runs"])
    assert Batch.objects.get().config == {"methods": ["full", "adapter", "lora", "prompt"]}


def test_every_lane_carries_the_calculators_prediction(csrf_client, sent):
    body = {"task": "topic", "steps": 5, "seed": 3, "methods": ["full", "lora", "qlora", "dora", "prefix", "bitfit"]}
    race = post(csrf_client, "/api/races", body).json()
    got = csrf_client.get(f"/api/races/{race['id']}").json()
    assert got["task"] == "topic" and len(got["runs"]) == 6
    # In each precision a worker may train in: under bf16 autocast, more activations.
    for r in got["runs"]:
        assert set(r["predictions"]) == {"fp32", "bf16 autocast"}
        bf16, fp32 = r["predictions"]["bf16 autocast"], r["predictions"]["fp32"]
        assert bf16["breakdown"]["activations"] >= fp32["breakdown"]["activations"], r["method"]
        assert bf16["trainable_params"] == fp32["trainable_params"]
    preds = {r["method"]: r["predictions"]["fp32"] for r in got["runs"]}
    for _method, pred in preds.items():
        assert pred["peak_memory_bytes"] == pytest.approx(sum(pred["breakdown"].values()))
        assert pred["seq"] > 2 and "layers" in pred["activation_formula"]
    # The formula's trainable count is the one the engine stores beside its own count.
    run = Run.objects.get(pk=got["runs"][1]["id"])
    assert preds["lora"]["trainable_params"] == tasks.predicted_trainable(
        tasks.validate_run(run.method, run.task, run.steps, run.seed, run.params)
    )
    assert preds["full"]["peak_memory_bytes"] > 2 * max(p["peak_memory_bytes"] for m, p in preds.items() if m != "full")
    assert preds["qlora"]["breakdown"]["params"] < preds["lora"]["breakdown"]["params"]
    assert preds["bitfit"]["trainable_params"] < preds["lora"]["trainable_params"] < preds["full"]["trainable_params"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"methods": ["lora", "magic"]}, "lane 2: unknown method 'magic'"),
        ({"methods": []}, "methods"),
        ({"methods": ["lora"] * 7}, "methods"),
        ({"task": "nope"}, "unknown task 'nope'"),
        ({"steps": 0}, "steps"),
        ({"steps": "40"}, "steps"),
        ({"seed": -1}, "seed"),
        ({"methods": "lora"}, "methods"),
        ({"speed": 3}, "speed"),
    ],
)
def test_bad_input_gets_400_and_stores_nothing(csrf_client, sent, body, message):
    response = post(csrf_client, "/api/races", body)
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]
    assert not Batch.objects.exists() and not Run.objects.exists() and sent == []


def test_posts_need_the_csrf_token(sent):
    client = Client(enforce_csrf_checks=True)
    assert post(client, "/api/races", {}).status_code == 403
    assert not Batch.objects.exists()


def test_an_unknown_race_is_404_and_a_sweep_is_not_a_race(csrf_client, sent):
    assert csrf_client.get("/api/races/999").status_code == 404
    assert csrf_client.get("/api/races/999/events").status_code == 404
    from peftlab.runs.batches import create_batch

    sweep = create_batch(Batch.RANK_SWEEP, "sentiment", 3, 0, [("lora", {})])
    assert csrf_client.get(f"/api/races/{sweep.pk}").status_code == 404


def test_cancel_stops_every_unfinished_lane_and_only_those(csrf_client, sent):
    race = post(csrf_client, "/api/races", {"steps": 3, "methods": ["lora", "bitfit", "ia3"]}).json()
    ids = [r["id"] for r in race["runs"]]
    Run.objects.filter(pk=ids[0]).update(status=Run.SUCCEEDED)
    Run.objects.filter(pk=ids[1]).update(status=Run.RUNNING)
    response = post(csrf_client, f"/api/races/{race['id']}/cancel", {})
    assert response.status_code == 202
    assert response.json()["cancelled"] == ids[1:]
    lanes = {r.pk: r for r in Run.objects.all()}
    assert lanes[ids[0]].status == Run.SUCCEEDED and not lanes[ids[0]].cancel_requested
    assert lanes[ids[1]].status == Run.RUNNING and lanes[ids[1]].cancel_requested  # its worker stops it
    assert lanes[ids[2]].status == Run.CANCELLED
    Run.objects.filter(pk=ids[1]).update(status=Run.CANCELLED)
    assert csrf_client.get(f"/api/races/{race['id']}").json()["status"] == "cancelled"
    assert post(csrf_client, f"/api/races/{race['id']}/cancel", {}).status_code == 409


# --- the race stream ------------------------------------------------------------------------
def test_the_cursor_round_trips_and_ignores_what_it_does_not_know():
    assert events.format_cursor({13: 7, 12: 40}) == "12:40.13:7"
    assert events.parse_cursor("12:40.13:7", [12, 13, 14]) == {12: 40, 13: 7, 14: 0}
    assert events.parse_cursor("12:40.99:5.x:y.13", [12, 13]) == {12: 40, 13: 0}
    assert events.parse_cursor(None, [5]) == {5: 0}


def _read(batch, cursor):
    async def collect():
        return [chunk async for chunk in events._race_stream(batch, cursor, races.describe_race)]

    seen = []
    for chunk in async_to_sync(collect)():
        fields = dict(line.split(": ", 1) for line in chunk.strip().splitlines() if ": " in line)
        if "event" in fields:
            seen.append((fields["event"], fields.get("id"), json.loads(fields["data"])))
    return seen


def test_the_race_stream_resumes_every_lane_from_its_cursor(csrf_client, sent, settings):
    settings.PEFTLAB_SSE_POLL_MS = 10
    race = post(csrf_client, "/api/races", {"steps": 4, "methods": ["lora", "bitfit"]}).json()
    a, b = (r["id"] for r in race["runs"])
    # The lanes' points committed interleaved, out of step order across lanes.
    for run_id, step in ((b, 1), (a, 1), (a, 2), (b, 2), (a, 3), (b, 3), (b, 4), (a, 4)):
        Point.objects.create(run_id=run_id, step=step, loss=1.0 / step, elapsed=step)
    EvalPoint.objects.create(run_id=a, step=4, val_loss=0.5, val_accuracy=0.75)
    Run.objects.filter(pk__in=[a, b]).update(status=Run.SUCCEEDED, steps_done=4)
    batch = Batch.objects.get()

    seen = _read(batch, events.parse_cursor(f"{a}:2.{b}:3", [a, b]))
    points = [(e[2]["run"], e[2]["step"]) for e in seen if e[0] == "point"]
    assert sorted(points) == [(a, 3), (a, 4), (b, 4)]
    assert [e[0] for e in seen] == ["point", "eval", "point", "status", "point", "status", "race"]
    assert seen[1][2] == {"run": a, "lane": 0, "step": 4, "val_loss": 0.5, "val_accuracy": 0.75}
    assert seen[-1][1] == f"{a}:4.{b}:4" and seen[-1][2]["status"] == "succeeded"
    # Resuming from any event's id gives exactly what came after it.
    middle = seen[2][1]
    rest = _read(batch, events.parse_cursor(middle, [a, b]))
    assert [(e[2]["run"], e[2]["step"]) for e in rest if e[0] == "point"] == [(b, 4)]
