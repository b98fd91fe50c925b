"""Faults of workers: a training process or a whole worker killed, a worker that never comes back,
a run out of memory.

Each ends with the run's points intact and no run stuck (issue 7's list of faults; its numbers
in the comments). The stacks are real processes (tests/support/faultstack.py)."""

import os
import signal

import pytest

from tests.support.faultstack import steps_of, stored_points
from tests.support.labstack import Lab

pytestmark = [pytest.mark.slow, pytest.mark.services]


# 1, 2
def test_a_worker_killed_mid_run_retries_the_run_and_its_last_attempt_has_every_point_once(stack):
    lab = stack()
    # The pool's training process is killed: its parent puts the message back at once.
    run_id = lab.create_run(steps=12)["id"]
    lab.wait_for(run_id, statuses=("running",), min_steps=5)
    [child] = lab.children("worker")
    os.kill(child, signal.SIGKILL)
    run = lab.wait_for(run_id, timeout=120)
    assert (run["status"], run["attempts"]) == ("succeeded", 2), run["error"]
    assert steps_of(run) == list(range(1, 13))
    stored = stored_points(lab, run_id)
    first = [step for attempt, step in stored if attempt == 1]
    assert len(first) >= 5 and first == list(range(1, len(first) + 1))  # kept, not shown
    assert [step for attempt, step in stored if attempt == 2] == list(range(1, 13))

    # The whole worker is killed: the run waits, and is retried once a worker starts again.
    run_id = lab.create_run(steps=15)["id"]
    lab.wait_for(run_id, statuses=("running",), min_steps=5)
    lab.stop("worker", sig=signal.SIGKILL, group=True)
    assert lab.run(run_id)["status"] == "running"
    lab.start("worker")
    run = lab.wait_for(run_id, timeout=120)
    assert (run["status"], run["attempts"]) == ("succeeded", 2), run["error"]
    assert steps_of(run) == list(range(1, 16))


# 7
def test_a_run_whose_worker_vanished_is_failed_after_the_timeout_by_the_web_server_alone(stack):
    lab = stack(PEFTLAB_STALE_RUN_SECONDS="3")
    run_id = lab.create_run(steps=2000)["id"]
    lab.wait_for(run_id, statuses=("running",), min_steps=5)
    lab.stop("worker", sig=signal.SIGKILL, group=True)  # and no worker comes back
    run = lab.wait_for(run_id, timeout=30)
    assert run["status"] == "failed" and "stopped reporting for over 3" in run["error"]
    assert len(run["points"]) >= 5


# 9
def test_a_run_out_of_memory_fails_with_a_message_and_the_worker_trains_the_next(tmp_path):
    # A LoRA run peaks near 1.7 GB of address space here; full fine-tuning at batch 256, 3.9 GB.
    lab = Lab(tmp_path, PEFTLAB_WORKER_MEMORY_MB="2600")
    lab.manage("migrate", "--noinput")
    worker = lab.start("worker")
    lab.start("web")
    try:
        huge = lab.create_run(steps=2, method="full", batch_size=256)
        lab.wait_for(huge["id"], statuses=("running",))
        [first] = lab.children("worker")
        run = lab.wait_for(huge["id"], timeout=120)
        assert run["status"] == "failed" and "ran out of memory on cpu" in run["error"], run["error"]
        assert lab.wait_for(lab.create_run(steps=3)["id"], timeout=120)["status"] == "succeeded"
        # The worker lives on; the training process that ran out was replaced by a fresh one.
        assert worker.poll() is None and lab.children("worker") != [first]
    finally:
        lab.stop_all()
