"""Runs trained in a pack by a real worker (peftlab/runs/tasks.py `_train_pack`, workers/runpack.py):
runs submitted while a pack trains join it at a step boundary; each keeps a single run's
guarantees: its own cancel, its own time limit, its points per attempt, a retry when the worker
dies or loses the broker. Its own file, so that the suite's workers run it beside the other fault files."""

import os
import signal

import pytest

from tests.support.faultstack import steps_of, stored_points

pytestmark = [pytest.mark.slow, pytest.mark.services]


def submit(lab, count, steps, **params):
    return [lab.create_run(steps=steps, **params)["id"] for _ in range(count)]


def test_runs_submitted_together_train_in_one_pack_and_a_cancel_stops_only_its_own(stack):
    lab = stack()
    first = submit(lab, 1, steps=40)
    lab.wait_for(first[0], statuses=("running",), min_steps=2)
    # Submitted while the first trains: they join its pack at a step boundary.
    later = submit(lab, 4, steps=25, rank=2)
    ids = first + later
    for run_id in ids:
        run = lab.wait_for(run_id, statuses=("running",), min_steps=1)
        assert run["packed"] is True
    live = lab.run(later[0])
    assert live["pack"]["size"] >= 2, live["pack"]  # the run page can say how many train with it
    cancelled = later[1]
    assert lab.post(f"/api/runs/{cancelled}/cancel", {}).status_code == 202
    runs = {run_id: lab.wait_for(run_id) for run_id in ids}
    assert runs[cancelled]["status"] == "cancelled"
    for run_id in (first[0], later[0], later[2], later[3]):
        run = runs[run_id]
        assert run["status"] == "succeeded", run["error"]
        assert steps_of(run) == list(range(1, run["steps"] + 1))
        assert run["metrics"]["pack"]["largest"] >= 4
    assert runs[first[0]]["metrics"]["adapter_bytes"] > 0


def test_a_worker_killed_mid_pack_retries_every_run(stack):
    lab = stack()
    ids = submit(lab, 3, steps=12)
    for run_id in ids:
        lab.wait_for(run_id, statuses=("running",), min_steps=3)
    [child] = lab.children("worker")
    os.kill(child, signal.SIGKILL)
    for run_id in ids:
        run = lab.wait_for(run_id, timeout=240)
        assert (run["status"], run["attempts"]) == ("succeeded", 2), run["error"]
        assert steps_of(run) == list(range(1, 13))
        first = [step for attempt, step in stored_points(lab, run_id) if attempt == 1]
        assert len(first) >= 3 and first == list(range(1, len(first) + 1))  # kept, not shown


def test_a_redis_restart_mid_pack_puts_every_run_back_and_each_trains_again(stack):
    lab = stack()
    ids = submit(lab, 3, steps=30)
    for run_id in ids:
        lab.wait_for(run_id, statuses=("running",), min_steps=3)
    lab.redis.stop()  # Celery ends the pack's task: it can no longer acknowledge its message
    lab.redis.start()  # empty: what the worker sends from now on is all there is
    for run_id in ids:
        run = lab.wait_for(run_id, timeout=240)
        assert (run["status"], run["attempts"]) == ("succeeded", 2), run["error"]
        assert run["packed"] is True and steps_of(run) == list(range(1, 31))
        first = [step for attempt, step in stored_points(lab, run_id) if attempt == 1]
        assert len(first) >= 3 and first == list(range(1, len(first) + 1))  # kept, not shown


def test_a_run_past_its_time_limit_leaves_the_pack_and_the_others_go_on(stack):
    # The short run's own clock starts when it joins; its few steps, final evaluation and
    # measurements take a few seconds, far within the limit even on a loaded machine.
    lab = stack(PEFTLAB_RUN_TIME_LIMIT="20")
    [endless] = submit(lab, 1, steps=2000)
    lab.wait_for(endless, statuses=("running",), min_steps=3)
    [short] = submit(lab, 1, steps=6)
    done = lab.wait_for(endless, timeout=120)
    assert done["status"] == "failed"
    assert "time limit of 20 s" in done["error"] and done["steps_done"] < 2000
    run = lab.wait_for(short, timeout=120)
    assert run["status"] == "succeeded", run["error"]
    assert run["packed"] and steps_of(run) == list(range(1, 7))
