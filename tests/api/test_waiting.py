"""What a run waits for, through the API in process: a queued run's place in its queue and its
estimated start, the figures behind the training page's time left, and a cancel's answer."""

import asyncio

import pytest
from django.utils import timezone

from peftlab.api import events
from peftlab.runs import waiting
from peftlab.runs.estimate import estimated_seconds
from peftlab.runs.models import Batch, Point, Run
from tests.support.classrooms import visitor_owner
from tests.support.streams import progress_events
from workers import run_cost
from workers.methods import validate_run

pytestmark = pytest.mark.django_db(transaction=True)


def make_run(owner, steps=20, status=Run.QUEUED, **fields):
    spec = validate_run("lora", "sentiment", steps, 0, {"batch_size": 16, "eval_every": 10})
    return Run.objects.create(
        method=spec.method, task=spec.task, steps=spec.steps, params=spec.params, owner=owner, status=status, **fields
    )


def seconds(run, steps=None):
    spec = validate_run(run.method, run.task, run.steps if steps is None else steps, 0, run.params)
    return estimated_seconds(spec)


def test_a_queued_run_says_its_place_and_estimated_start_behind_the_runs_ahead(client):
    me = visitor_owner(client)
    training = make_run("session:other", steps=40, status=Run.RUNNING, attempts=1, steps_done=10)
    first, second = make_run("session:a"), make_run("session:b", steps=60)
    mine = make_run(me)
    later = make_run("session:c")

    got = client.get(f"/api/runs/{mine.pk}").json()
    place = got["waiting"]
    # Two queued runs of other owners come before it (three owners never served: in
    # submission order); the run training now is counted apart.
    assert (place["place"], place["ahead"], place["training"]) == (3, 2, 1)
    expected = seconds(training, 30) + seconds(first) + seconds(second)  # one busy slot
    assert place["starts_in_seconds"] == pytest.approx(expected, abs=0.1)
    assert "fair scheduler" in place["counts"]
    assert got["cancel_requested"] is False

    # The next in line is 1st; the run after mine sees mine ahead of it.
    assert client.get(f"/api/runs/{first.pk}").json()["waiting"]["place"] == 1
    assert waiting.place(later)["place"] == 4
    # A run that trains or has finished waits for nothing.
    assert client.get(f"/api/runs/{training.pk}").json()["waiting"] is None


def test_the_fair_scheduler_puts_a_run_of_someone_not_yet_served_before_a_busy_owners_runs(client):
    me = visitor_owner(client)
    make_run("session:busy", status=Run.RUNNING, attempts=1, started_at=timezone.now())
    flood = [make_run("session:busy") for _ in range(3)]
    mine = make_run(me)
    place = client.get(f"/api/runs/{mine.pk}").json()["waiting"]
    # Submitted last, but its owner has nothing training: the scheduler starts it first.
    assert (place["place"], place["ahead"], place["training"]) == (1, 0, 1)
    assert waiting.place(flood[0])["place"] == 2


def test_two_busy_slots_share_the_wait():
    running = [make_run(f"session:r{i}", status=Run.RUNNING, attempts=1) for i in range(2)]
    ahead = make_run("session:a")
    mine = make_run("session:me")
    place = waiting.place(mine)
    expected = (sum(seconds(r) for r in running) + seconds(ahead)) / 2
    assert place["starts_in_seconds"] == pytest.approx(expected, abs=0.1)


def test_a_races_lanes_training_in_one_process_are_one_busy_slot():
    """Its lanes take turns in one process: the rest of the race is the sum of theirs."""
    lanes = [
        make_run("session:r", status=Run.RUNNING, attempts=1, worker="host", worker_pid=4242, lane=lane)
        for lane in range(2)
    ]
    mine = make_run("session:me")
    place = waiting.place(mine)
    assert place["training"] == 2
    assert place["starts_in_seconds"] == pytest.approx(sum(seconds(r) for r in lanes), abs=0.1)


def test_a_packs_runs_are_one_busy_slot_that_frees_when_its_longest_run_ends():
    """A pack trains its runs at once: each one's points count the whole pack's steps (here three
    runs, each step three times the cost model's, the pack's share of each), so the rest of the
    pack is its longest run's, not the sum; the runs ahead go at one run's own pace."""
    packed = [
        make_run(
            f"session:s{i}",
            steps=40,
            status=Run.RUNNING,
            attempts=1,
            worker="host",
            worker_pid=4242,
            packed=True,
            steps_done=done,
        )
        for i, done in enumerate((10, 20, 30))
    ]
    step_seconds = waiting.timing(packed[0])["step_seconds"]
    for run in packed:
        Point.objects.create(
            run=run, attempt=1, step=run.steps_done, loss=1.0, elapsed=run.steps_done * 3 * step_seconds
        )
    ahead = make_run("session:a")
    mine = make_run("session:me")
    place = waiting.place(mine)
    assert place["training"] == 3
    # The longest run has 30 steps left at three times the model's pace; the run ahead goes at
    # the pace of one run of a pack of three: the model's.
    expected = 3 * seconds(packed[0], 30) + seconds(ahead)
    assert place["starts_in_seconds"] == pytest.approx(expected, abs=0.2)


def test_the_estimated_start_goes_at_the_pace_the_training_run_shows():
    training = make_run("session:r", steps=40, status=Run.RUNNING, attempts=1, steps_done=10)
    step_seconds = waiting.timing(training)["step_seconds"]
    # Three times slower than the cost model (a loaded machine): its points say so.
    Point.objects.create(run=training, attempt=1, step=10, loss=1.0, elapsed=10 * 3 * step_seconds)
    ahead = make_run("session:a")
    mine = make_run("session:me")
    expected = 3 * (seconds(training, 30) + seconds(ahead))
    assert waiting.place(mine)["starts_in_seconds"] == pytest.approx(expected, abs=0.2)


def test_a_run_gives_the_cost_models_step_and_after_steps_figures(client):
    run = make_run(visitor_owner(client), status=Run.RUNNING, attempts=1)
    timing = client.get(f"/api/runs/{run.pk}").json()["timing"]
    cost = run_cost.cost_of("lora")
    assert timing["after_steps_seconds"] == pytest.approx(cost.fixed_seconds)
    # Per step: the step itself and its share of the evaluations along the way.
    assert timing["step_seconds"] * run.steps + cost.fixed_seconds == pytest.approx(seconds(run), rel=1e-3)


def test_a_race_lanes_time_left_counts_the_steps_of_the_lanes_it_takes_turns_with():
    """A lane's points count only its own turns; each of its steps also waits for one step of
    every other lane still to train, which its timing gives in the cost model's seconds."""
    race = Batch.objects.create(kind=Batch.RACE, task="sentiment", steps=20, seed=0)
    mine = make_run("session:r", status=Run.RUNNING, batch=race, lane=0)
    other = make_run("session:r", status=Run.RUNNING, batch=race, lane=1)
    queued = make_run("session:r", batch=race, lane=2)
    make_run("session:r", status=Run.SUCCEEDED, batch=race, lane=3)  # ended: waits for nothing
    each = waiting.timing(other)["step_seconds"]
    assert waiting.timing(mine)["other_lanes_step_seconds"] == pytest.approx(2 * each, abs=1e-4)
    queued.status = Run.CANCELLED
    queued.save()
    assert waiting.timing(mine)["other_lanes_step_seconds"] == pytest.approx(each, abs=1e-4)
    assert waiting.timing(make_run("session:alone"))["other_lanes_step_seconds"] == 0


def test_cancelling_a_running_run_answers_that_it_is_stopping(csrf_client):
    run = make_run(visitor_owner(csrf_client), status=Run.RUNNING, attempts=1)
    answer = csrf_client.post(f"/api/runs/{run.pk}/cancel")
    assert answer.status_code == 202
    assert answer.json()["status"] == "running" and answer.json()["cancel_requested"] is True
    assert csrf_client.get(f"/api/runs/{run.pk}").json()["cancel_requested"] is True


def test_the_stream_of_a_queued_run_sends_its_place_again_when_it_changes(settings):
    settings.PEFTLAB_SSE_POLL_MS = 10
    ahead = make_run("session:a")
    mine = make_run("session:me")

    async def watch():
        task = asyncio.ensure_future(progress_events(mine.pk, 2))
        await asyncio.sleep(0.3)
        await Run.objects.filter(pk=ahead.pk).aupdate(status=Run.CANCELLED)
        return await asyncio.wait_for(task, timeout=10)

    events.PLACE_SECONDS, before = 0.05, events.PLACE_SECONDS
    try:
        first, then = asyncio.run(watch())
    finally:
        events.PLACE_SECONDS = before
    assert first["status"] == "queued" and first["waiting"]["place"] == 2
    assert then["waiting"]["place"] == 1 and then["waiting"]["ahead"] == 0


def test_the_streams_of_one_queue_share_its_order_and_a_new_run_gets_a_fresh_one(monkeypatch):
    """Every queued run's stream asks for its place every few seconds: within `max_age` they share
    one working-out of the queue's order, and a run that is not in it yet gets a fresh one."""
    from peftlab.runs import scheduler

    worked_out = []
    real = scheduler.queue_order
    monkeypatch.setattr(waiting, "queue_order", lambda queue: worked_out.append(queue) or real(queue))
    monkeypatch.setattr(waiting, "_orders", {})
    first, second = make_run("session:a"), make_run("session:b")
    assert [waiting.place(r, max_age=60)["place"] for r in (first, second)] == [1, 2]
    assert worked_out == ["cpu"]
    third = make_run("session:c")
    assert waiting.place(third, max_age=60)["place"] == 3
    assert worked_out == ["cpu", "cpu"]
    # Without a max age (GET /api/runs/{id}), the order is worked out each time.
    waiting.place(first)
    assert worked_out == ["cpu"] * 3
