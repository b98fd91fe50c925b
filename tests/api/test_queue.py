"""The queue's rules in-process: fair picking, attempts, lost runs, the stream of a retried run.
The same rules with real processes, brokers and faults: tests/faults/test_faults_*.py."""

import asyncio
import os
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone as dj_timezone

from peftlab.api import events
from peftlab.runs import lifecycle
from peftlab.runs.models import Batch, Point, Run
from peftlab.runs.scheduler import Waiting, order_of, pick
from tests.support.classrooms import visitor_owner

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_pick_serves_the_owner_with_fewest_runs_training_not_the_first_to_submit():
    waiting = [Waiting(i, "student:1", 0) for i in range(1, 51)] + [Waiting(51, "student:2", 0)]
    assert pick(waiting, running={"student:1": 1}, last_start={"student:1": T0}) == 51


def test_pick_goes_round_the_owners_by_who_was_served_longest_ago():
    waiting = [Waiting(1, "a", 0), Waiting(2, "b", 0), Waiting(3, "c", 0)]
    last = {"a": T0 + timedelta(seconds=30), "b": T0 + timedelta(seconds=10), "c": T0 + timedelta(seconds=20)}
    assert pick(waiting, running={}, last_start=last) == 2
    # Someone never served goes first; among equals, the older run.
    assert pick(waiting + [Waiting(4, "d", 0)], running={}, last_start=last) == 4
    assert pick(waiting, running={}, last_start={}) == 1


def test_pick_passes_over_an_owner_at_their_limit():
    waiting = [Waiting(1, "a", 1), Waiting(2, "a", 1), Waiting(3, "b", 2)]
    assert pick(waiting, running={"a": 1, "b": 1}, last_start={}) == 3
    assert pick(waiting, running={"a": 1, "b": 2}, last_start={}) is None
    # 0 means no limit.
    assert pick([Waiting(5, "c", 0)], running={"c": 40}, last_start={}) == 5


def test_pick_trains_a_limited_owners_batch_one_lane_at_a_time():
    """A batch (race or sweep) is one unit of its owner's limit: while one lane trains, the next
    lane waits for it, and the owner's other runs may still start within the limit."""
    race = [Waiting(i, "a", 2, batch=7) for i in (1, 2, 3)]
    lone = Waiting(4, "a", 2)
    assert pick(race + [lone], running={}, last_start={}) == 1
    assert pick(race[1:] + [lone], running={"a": 1}, last_start={}, training_batches={7}) == 4
    assert pick(race[1:], running={"a": 1}, last_start={}, training_batches={7}) is None
    assert pick(race[1:], running={"a": 1}, last_start={}, training_batches=set()) == 2
    # Without a limit (a teacher), lanes train side by side.
    free = [Waiting(i, "t", 0, batch=8) for i in (5, 6)]
    assert pick(free, running={"t": 1}, last_start={}, training_batches={8}) == 5


def test_the_queue_order_holds_when_a_race_is_claimed_between_its_reads():
    """queue_state reads in separate statements: a race whose lanes a worker claims between them
    shows its batch training while its owner's count of runs training is still 0. A queued lane's
    page asks for its place then (the whole worker was killed and the lanes wait); the order is
    still every waiting lane, not an error."""
    race = [Waiting(i, "a", 2, batch=9, together=True) for i in (4, 5)]
    assert order_of(race, running={}, last_start={}, training={9}) == [4, 5]
    other = Waiting(6, "b", 2)
    assert order_of([*race, other], running={}, last_start={}, training={9}) == [6, 4, 5]


def queued(owner="", max_concurrent=0, **fields):
    return Run.objects.create(
        method="lora", task="sentiment", steps=5, params={}, owner=owner, max_concurrent=max_concurrent, **fields
    )


def test_claim_interleaves_students_whatever_the_order_they_submitted_in():
    flood = [queued("student:1", 2) for _ in range(6)]
    late = [queued("student:2", 2) for _ in range(2)]
    order = []
    for _ in range(4):
        got = lifecycle.claim(flood[0].pk, task_id="t", device="cpu")
        order.append(got.run_id)
    assert order == [flood[0].pk, late[0].pk, flood[1].pk, late[1].pk]
    # Both students are at their limit of 2: the next message starts nothing.
    assert lifecycle.claim(flood[2].pk, task_id="t", device="cpu") is None
    Run.objects.filter(pk=flood[0].pk).update(status=Run.SUCCEEDED)
    assert lifecycle.claim(flood[2].pk, task_id="t", device="cpu").run_id == flood[2].pk


def ids(claims):
    return [c.run_id for c in claims]


def test_a_students_race_starts_its_lanes_together_as_one_of_their_two():
    """A student at the default 2 at once who started a race of three lanes and then two runs:
    the message of any lane claims the whole race (its lanes train together in one process) and
    it holds one place; one run takes the other; the last waits for the race or the run to end."""
    race = Batch.objects.create(kind=Batch.RACE, task="sentiment", steps=5, seed=0)
    lanes = [queued("student:1", 2, batch=race, lane=lane) for lane in range(3)]
    lone, last = queued("student:1", 2), queued("student:1", 2)
    claims = lifecycle.claim_together(lanes[2].pk, task_id="t", device="cpu")
    assert ids(claims) == [lane.pk for lane in lanes] and {c.attempt for c in claims} == {1}
    assert set(Run.objects.filter(batch=race).values_list("status", "task_id")) == {(Run.RUNNING, "t")}
    assert ids(lifecycle.claim_together(lanes[1].pk, task_id="u", device="cpu")) == [lone.pk]
    assert lifecycle.claim_together(lanes[0].pk, task_id="v", device="cpu") == []
    # A lane that ends early frees nothing: the race holds its place until its last lane ends.
    Run.objects.filter(pk__in=[lanes[0].pk, lanes[1].pk]).update(status=Run.SUCCEEDED)
    assert lifecycle.claim_together(last.pk, task_id="v", device="cpu") == []
    Run.objects.filter(pk=lanes[2].pk).update(status=Run.CANCELLED)
    assert ids(lifecycle.claim_together(last.pk, task_id="v", device="cpu")) == [last.pk]


def test_a_students_sweep_still_trains_one_lane_at_a_time_beside_their_run():
    """A sweep is one unit of the limit too, but its lanes are claimed one by one: while one
    lane trains, the next waits for it, not for the owner's other runs."""
    sweep = Batch.objects.create(kind=Batch.RANK_SWEEP, task="sentiment", steps=5, seed=0)
    lanes = [queued("student:1", 2, batch=sweep, lane=lane) for lane in range(3)]
    lone = queued("student:1", 2)
    assert ids(lifecycle.claim_together(lanes[0].pk, task_id="t", device="cpu")) == [lanes[0].pk]
    assert ids(lifecycle.claim_together(lanes[1].pk, task_id="t", device="cpu")) == [lone.pk]
    assert lifecycle.claim_together(lanes[1].pk, task_id="t", device="cpu") == []
    Run.objects.filter(pk=lanes[0].pk).update(status=Run.SUCCEEDED)
    assert ids(lifecycle.claim_together(lanes[1].pk, task_id="t", device="cpu")) == [lanes[1].pk]
    Run.objects.filter(pk=lone.pk).update(status=Run.SUCCEEDED)
    # The sweep is already training a lane: its last lane waits even with a place free.
    assert lifecycle.claim_together(lanes[2].pk, task_id="t", device="cpu") == []
    Run.objects.filter(pk=lanes[1].pk).update(status=Run.SUCCEEDED)
    assert ids(lifecycle.claim_together(lanes[2].pk, task_id="t", device="cpu")) == [lanes[2].pk]


def test_a_run_on_another_queue_is_not_picked():
    gpu = queued(queue="gpu")
    cpu = queued(queue="cpu")
    assert lifecycle.claim(gpu.pk, task_id="t", device="cpu").run_id == gpu.pk
    assert Run.objects.get(pk=cpu.pk).status == Run.QUEUED


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def running(attempts=1, pid=None, heartbeat=None, **fields):
    import socket

    return queued(
        status=Run.RUNNING,
        attempts=attempts,
        worker=socket.gethostname(),
        worker_pid=pid or os.getpid(),
        heartbeat_at=heartbeat or dj_timezone.now(),
        **fields,
    )


def test_a_duplicate_message_never_trains_a_live_run_twice():
    run = running(pid=os.getpid())
    assert lifecycle.claim(run.pk, task_id="again", device="cpu") is None
    assert Run.objects.get(pk=run.pk).attempts == 1


def test_a_redelivered_message_of_a_dead_attempt_starts_the_next_attempt():
    run = running(pid=dead_pid())
    got = lifecycle.claim(run.pk, task_id="again", device="cpu")
    assert (got.run_id, got.attempt) == (run.pk, 2)
    run.refresh_from_db()
    assert run.status == Run.RUNNING and run.worker_pid == os.getpid() and run.task_id == "again"


def test_the_redelivered_message_of_a_race_whose_process_died_starts_every_lane_again():
    """The race's lanes trained in one process, which died; its one message comes back (the
    other lanes' messages were spent). Every lane of that process starts its next attempt; a
    lane that had ended stays ended."""
    race = Batch.objects.create(kind=Batch.RACE, task="sentiment", steps=5, seed=0)
    gone = dead_pid()
    lanes = [running(pid=gone, batch=race, lane=lane) for lane in range(3)]
    Run.objects.filter(pk=lanes[0].pk).update(status=Run.SUCCEEDED)
    claims = lifecycle.claim_together(lanes[2].pk, task_id="again", device="cpu")
    assert [(c.run_id, c.attempt) for c in claims] == [(lanes[1].pk, 2), (lanes[2].pk, 2)]
    assert set(Run.objects.filter(pk__in=ids(claims)).values_list("task_id", "worker_pid")) == {("again", os.getpid())}
    assert Run.objects.get(pk=lanes[0].pk).status == Run.SUCCEEDED


def test_a_run_that_killed_its_worker_three_times_ends_failed():
    run = running(attempts=Run.MAX_ATTEMPTS, pid=dead_pid())
    assert lifecycle.claim(run.pk, task_id="again", device="cpu") is None
    run.refresh_from_db()
    assert run.status == Run.FAILED and "3 times" in run.error and "not tried again" in run.error


def test_a_superseded_attempt_cannot_finish_the_run():
    run = running(attempts=2)
    assert lifecycle.finish(lifecycle.Claim(run.pk, 1), Run.SUCCEEDED) == "superseded"
    assert Run.objects.get(pk=run.pk).status == Run.RUNNING
    assert lifecycle.finish(lifecycle.Claim(run.pk, 2), Run.SUCCEEDED) == Run.SUCCEEDED


def test_a_superseded_attempt_is_told_to_stop_and_its_points_stay_apart():
    run = running(attempts=2)
    old = lifecycle.Reporter(lifecycle.Claim(run.pk, 1))
    new = lifecycle.Reporter(lifecycle.Claim(run.pk, 2))
    point = type("P", (), {"step": 1, "loss": 0.5, "elapsed": 0.1})
    assert old([point], []) is False
    assert new([point], []) is True
    assert sorted(Point.objects.filter(run=run).values_list("attempt", "step")) == [(1, 1), (2, 1)]
    run.refresh_from_db()
    assert [p.attempt for p in run.shown_points()] == [2]


def test_a_worker_that_starts_or_reconnects_settles_lost_runs_and_sends_the_queue_again(settings, sent):
    """recover_runs, the worker's first act after (re)connecting to the broker: a stale run has
    failed, a run whose process died here goes back to the queue, and every queued run is sent
    again, oldest first (a broker restarted without its data lost their messages)."""
    settings.PEFTLAB_STALE_RUN_SECONDS = 30
    stale = running(heartbeat=dj_timezone.now() - timedelta(seconds=31))
    orphan = running(pid=dead_pid())
    alive = running(pid=os.getpid())
    waiting = queued()
    lifecycle.recover_runs()
    statuses = dict(Run.objects.values_list("pk", "status"))
    assert statuses == {stale.pk: Run.FAILED, orphan.pk: Run.QUEUED, alive.pk: Run.RUNNING, waiting.pk: Run.QUEUED}
    # The stale run's slot woke its queue (a message for the oldest waiting run), then every
    # queued run went again, oldest first.
    assert [pk for pk, _ in sent] == [waiting.pk, orphan.pk, waiting.pk]


def test_a_run_its_worker_stopped_goes_back_to_the_queue_with_its_points(sent):
    """put_back: the worker was shut down, or lost the broker, mid-run. The run waits for its next
    attempt with its points kept, and a message goes for it unless its worker is shutting down
    (recover_runs sends that one); a stale attempt or a run its owner cancelled is not put back."""
    run = running(attempts=1)
    Point.objects.create(run=run, attempt=1, step=1, loss=0.7, elapsed=0.1)
    assert lifecycle.put_back(lifecycle.Claim(run.pk, 1)) == Run.QUEUED
    run.refresh_from_db()
    assert (run.status, run.attempts, run.error) == (Run.QUEUED, 1, "")
    assert [p.step for p in run.shown_points()] == [1]
    assert sent == [(run.pk, run.queue)]
    assert lifecycle.claim(run.pk, task_id="next", device="cpu") == lifecycle.Claim(run.pk, 2)

    quiet = running(attempts=1)
    assert lifecycle.put_back(lifecycle.Claim(quiet.pk, 1), send=False) == Run.QUEUED
    assert Run.objects.get(pk=quiet.pk).status == Run.QUEUED and len(sent) == 1

    stale = running(attempts=2)
    cancelled = running(attempts=1, cancel_requested=True)
    for claim in (lifecycle.Claim(stale.pk, 1), lifecycle.Claim(cancelled.pk, 1)):
        assert lifecycle.put_back(claim) == "superseded"
        assert Run.objects.get(pk=claim.run_id).status == Run.RUNNING
    assert len(sent) == 1


def test_the_web_fails_a_run_whose_heartbeat_is_stale(settings):
    settings.PEFTLAB_STALE_RUN_SECONDS = 30
    lost = running(heartbeat=dj_timezone.now() - timedelta(seconds=31))
    alive = running(heartbeat=dj_timezone.now() - timedelta(seconds=5))
    assert lifecycle.fail_lost_runs() == 1
    lost.refresh_from_db()
    alive.refresh_from_db()
    assert lost.status == Run.FAILED and "stopped reporting for over 30" in lost.error
    assert alive.status == Run.RUNNING


async def read_stream(run_id, after):
    seen = []
    async for chunk in events._stream(run_id, after):
        for block in chunk.strip().split("\n\n"):
            lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "event" in lines:
                seen.append((lines["event"], lines.get("id")))
        if seen and seen[-1][0] == "status":
            return seen


def test_the_stream_resets_a_browser_that_saw_an_earlier_attempt(settings):
    settings.PEFTLAB_SSE_POLL_MS = 10
    run = queued(status=Run.FAILED, attempts=2, finished_at=dj_timezone.now())
    for attempt, steps in ((1, 4), (2, 2)):
        Point.objects.bulk_create(
            [Point(run=run, attempt=attempt, step=s, loss=1.0, elapsed=s) for s in range(1, steps + 1)]
        )
    stride = events.ATTEMPT_STRIDE
    # Resuming from attempt 1's third point: the reset, then attempt 2 from its first step.
    assert asyncio.run(read_stream(run.pk, 3)) == [
        ("attempt", str(stride)),
        ("point", str(stride + 1)),
        ("point", str(stride + 2)),
        ("status", str(stride + 2)),
    ]
    # Resuming inside attempt 2: no reset, no duplicate.
    assert asyncio.run(read_stream(run.pk, stride + 1)) == [("point", str(stride + 2)), ("status", str(stride + 2))]


def test_a_run_cancelled_while_queued_is_never_started(csrf_client):
    run = queued(visitor_owner(csrf_client))
    # Every worker is down: the cancel is a flag in the database, answered at once.
    assert csrf_client.post(f"/api/runs/{run.pk}/cancel").status_code == 202
    # When its message arrives at last, nothing starts.
    assert lifecycle.claim(run.pk, task_id="late", device="cpu") is None
    run.refresh_from_db()
    assert (run.status, run.attempts, run.started_at) == (Run.CANCELLED, 0, None)
