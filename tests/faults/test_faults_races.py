"""Faults of a race's worker: its training process or the whole worker killed while the lanes
train together in one process (decision 0009). Every lane is retried, together, and keeps its
points. Its own file so that the test suite's workers can run it beside the other worker faults
(tests/faults/test_faults_workers.py), each file on one worker."""

import os
import signal

import pytest

from tests.support.faultstack import steps_of, stored_points

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_a_worker_killed_mid_race_retries_every_lane_and_they_train_together_again(stack):
    lab = stack()
    race = lab.post("/api/races", {"task": "sentiment", "steps": 10, "seed": 0, "methods": ["lora", "bitfit", "ia3"]})
    ids = [run["id"] for run in race.json()["runs"]]
    for run_id in ids:  # the lanes train together: each has steps before any ends
        lab.wait_for(run_id, statuses=("running",), min_steps=3)
    # The training process is killed: its one message comes back and claims every lane again.
    [child] = lab.children("worker")
    os.kill(child, signal.SIGKILL)
    runs = [lab.wait_for(run_id, timeout=180) for run_id in ids]
    for run in runs:
        assert (run["status"], run["attempts"]) == ("succeeded", 2), run["error"]
        assert steps_of(run) == list(range(1, 11))
        first = [step for attempt, step in stored_points(lab, run["id"]) if attempt == 1]
        assert len(first) >= 3 and first == list(range(1, len(first) + 1))  # kept, not shown

    # The whole worker is killed: the lanes wait, and train together again once a worker starts.
    race = lab.post("/api/races", {"task": "sentiment", "steps": 8, "seed": 0, "methods": ["lora", "bitfit"]})
    ids = [run["id"] for run in race.json()["runs"]]
    for run_id in ids:
        lab.wait_for(run_id, statuses=("running",), min_steps=3)
    lab.stop("worker", sig=signal.SIGKILL, group=True)
    lab.start("worker")
    for run_id in ids:
        run = lab.wait_for(run_id, timeout=180)
        assert (run["status"], run["attempts"]) == ("succeeded", 2), run["error"]
        assert steps_of(run) == list(range(1, 9))
