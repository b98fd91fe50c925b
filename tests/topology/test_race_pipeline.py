"""A real race through the embedded lab: web server, broker, one Celery worker, SQLite."""

import pytest

pytestmark = pytest.mark.slow

STEPS = 6
METRICS = (
    "trainable_params",
    "total_params",
    "trainable_percent",
    "peak_memory_bytes",
    "memory_breakdown",
    "train_seconds",
    "val_accuracy",
    "adapter_bytes",
    "latency_ms",
    "trainable_params_predicted",
)


def _points(events):
    return [(data["run"], data["step"]) for kind, _, data in events if kind == "point"]


def test_a_race_of_four_lanes_streams_through_one_resumable_stream(embedded_lab):
    response = embedded_lab.post("/api/races", {"task": "sentiment", "steps": STEPS, "seed": 1})
    assert response.status_code == 201, response.text
    race = response.json()
    run_ids = [r["id"] for r in race["runs"]]
    assert [r["method"] for r in race["runs"]] == ["full", "adapter", "lora", "prompt"]

    # Read until the second lane has begun (the lanes train together), then drop the connection.
    first = []
    for event in embedded_lab.sse(race["events_url"]):
        first.append(event)
        if event[0] == "point" and event[2]["run"] == run_ids[1]:
            break
    last_id = [e[1] for e in first if e[1] is not None][-1]
    # Lanes go on writing while nobody listens.
    embedded_lab.wait_for(run_ids[2], statuses=("running", "succeeded"), min_steps=2)
    rest = list(embedded_lab.sse(race["events_url"], last_event_id=last_id))

    seen = _points(first) + _points(rest)
    for run_id in run_ids:
        assert [step for run, step in seen if run == run_id] == list(range(1, STEPS + 1)), run_id
    statuses = [data for kind, _, data in first + rest if kind == "status"]
    assert {s["run"] for s in statuses} == set(run_ids)
    assert all(s["status"] == "succeeded" for s in statuses)
    assert rest[-1][0] == "race" and rest[-1][2]["status"] == "succeeded"
    evals = [(data["run"], data["step"]) for kind, _, data in first + rest if kind == "eval"]
    assert {run for run, _ in evals} == set(run_ids)

    finished = embedded_lab.client.get(f"/api/races/{race['id']}").json()
    assert finished["status"] == "succeeded"
    by_method = {}
    for run in finished["runs"]:
        for key in METRICS:
            assert run["metrics"].get(key) is not None, (run["method"], key)
        pred = run["predictions"][run["metrics"]["precision"]]  # the precision it trained in
        assert pred["trainable_params"] == run["metrics"]["trainable_params"]
        # Predicted at the longest sentence's length: an upper bound on the padding, close enough
        # to the measured peak of a short run.
        assert run["metrics"]["peak_memory_bytes"] == pytest.approx(pred["peak_memory_bytes"], rel=0.2)
        by_method[run["method"]] = run["metrics"]
    assert by_method["full"]["peak_memory_bytes"] == max(m["peak_memory_bytes"] for m in by_method.values())
    assert by_method["prompt"]["trainable_params"] == min(m["trainable_params"] for m in by_method.values())
    assert by_method["lora"]["latency_merged_ms"] > 0


def test_cancelling_a_race_stops_the_lanes_that_have_not_finished(embedded_lab):
    race = embedded_lab.post("/api/races", {"steps": 2000, "methods": ["bitfit", "lora"]}).json()
    first = race["runs"][0]["id"]
    embedded_lab.wait_for(first, statuses=("running",), min_steps=2)
    response = embedded_lab.post(f"/api/races/{race['id']}/cancel", {})
    assert response.status_code == 202
    events = list(embedded_lab.sse(race["events_url"]))
    assert events[-1][0] == "race" and events[-1][2]["status"] == "cancelled"
    lanes = {r["lane"]: r for r in events[-1][2]["runs"]}
    # The lanes train together: both had taken steps, and both stop.
    assert lanes[0]["status"] == "cancelled" and 2 <= lanes[0]["steps_done"] < 2000
    assert lanes[1]["status"] == "cancelled" and 1 <= lanes[1]["steps_done"] < 2000
