"""A race through the real embedded lab (`manage.py lab all`: its web server and a real Celery
worker): its lanes train at the same time in one worker process, their points interleave by
step, and a lane cancelled mid-race stops alone while the others finish."""

import contextlib
import sqlite3

import pytest

pytestmark = pytest.mark.slow

STEPS = 8
METHODS = ["lora", "bitfit", "ia3", "prompt"]
AHEAD = 3  # steps a lane's stored points may run ahead of another's: up to FLUSH_SECONDS unreported


def stored_points(lab, run_ids) -> list[tuple[int, int]]:
    """(run, step) of the lanes' points in the order the worker stored them."""
    marks = ",".join("?" * len(run_ids))
    with contextlib.closing(sqlite3.connect(lab.var_dir / "peftlab.sqlite3", timeout=30)) as db:
        return db.execute(
            f"SELECT run_id, step FROM simulations_point WHERE run_id IN ({marks}) ORDER BY id", run_ids
        ).fetchall()


def test_a_races_lanes_train_at_once_and_a_cancelled_lane_stops_alone(embedded_lab):
    lab = embedded_lab
    response = lab.post("/api/races", {"task": "sentiment", "steps": STEPS, "seed": 0, "methods": METHODS})
    assert response.status_code == 201, response.text
    race = response.json()
    ids = [run["id"] for run in race["runs"]]
    stopped = ids[1]

    # The race's stream, in the order it tells: each lane's first point, each lane's end.
    first_point, ended, cancel = {}, {}, None
    for n, (event, _, data) in enumerate(lab.sse(race["events_url"])):
        if event == "point":
            first_point.setdefault(data["run"], n)
            if data["run"] == stopped and data["step"] >= 2 and cancel is None:
                cancel = lab.post(f"/api/runs/{stopped}/cancel", {})
        elif event == "status":
            ended[data["id"]] = (n, data)
        elif event == "race":
            break
    assert cancel is not None and cancel.status_code == 202, cancel and cancel.text

    # Every lane was running (had points, had not ended) before any lane ended.
    assert set(first_point) == set(ids)
    assert max(first_point.values()) < min(n for n, _ in ended.values())
    runs = {run_id: data for run_id, (_, data) in ended.items()}
    assert runs[stopped]["status"] == "cancelled" and runs[stopped]["steps_done"] < STEPS
    for run_id in ids:
        if run_id != stopped:
            assert (runs[run_id]["status"], runs[run_id]["steps_done"]) == ("succeeded", STEPS), runs[run_id]
    # Trained in one task, each lane its own first attempt.
    assert {lab.run(run_id)["attempts"] for run_id in ids} == {1}
    tasks = {run["task_id"] for run in _rows(lab, ids)}
    assert len(tasks) == 1 and "" not in tasks

    # The points interleave by step: as the worker stored each, every other lane that went as
    # far had stored its points up to a few steps before (a relay would have stored none).
    order = stored_points(lab, ids)
    last = {run_id: max(step for r, step in order if r == run_id) for run_id in ids}
    seen = dict.fromkeys(ids, 0)
    for run_id, step in order:
        for other in ids:
            if other != run_id and last[other] >= step - AHEAD:
                assert seen[other] >= step - AHEAD, (run_id, step, other, seen, order)
        seen[run_id] = step
    assert sorted(step for r, step in order if r == ids[0]) == list(range(1, STEPS + 1))


def _rows(lab, ids) -> list[dict]:
    marks = ",".join("?" * len(ids))
    with contextlib.closing(sqlite3.connect(lab.var_dir / "peftlab.sqlite3", timeout=30)) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(f"SELECT * FROM simulations_run WHERE id IN ({marks})", ids)]
