"""The Celery task in-process (its function, not a worker) on a race: the message of one lane
claims every waiting lane of the race and trains them together; each lane ends on its own."""

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from peftlab.runs import lifecycle, tasks
from peftlab.runs.models import Batch, EvalPoint, Point, Run
from workers import training
from workers.methods import validate_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(autouse=True)
def artifacts_dir(settings, tmp_path):
    settings.PEFTLAB_ARTIFACTS_DIR = tmp_path
    return tmp_path


def race(*methods, steps=4, kind=Batch.RACE):
    batch = Batch.objects.create(kind=kind, task="sentiment", steps=steps, seed=0)
    lanes = []
    for lane, method in enumerate(methods):
        spec = validate_run(method, "sentiment", steps, 0, {"eval_every": 2})
        lanes.append(
            Run.objects.create(
                method=method, task="sentiment", steps=steps, seed=0, params=spec.params, batch=batch, lane=lane
            )
        )
    return lanes


def steps_of(run):
    return list(Point.objects.filter(run=run).order_by("step").values_list("step", flat=True))


def watch_steps(monkeypatch, act=None):
    """The (run id, step) of every step the engine takes, in order; `act(run_id, step)` runs
    before each (it may raise as the step would). Each lane's model is named after its run by
    the Reporter the task hands the engine."""
    taken = []
    real_init, real_step = training.Training.__init__, training._step

    def init(self, spec, report, *args, **kwargs):
        real_init(self, spec, report, *args, **kwargs)
        self.run.run_id = report.run_id

    def step(run, ids, labels, number):
        taken.append((run.run_id, number))
        if act is not None:
            act(run.run_id, number)
        return real_step(run, ids, labels, number)

    monkeypatch.setattr(training.Training, "__init__", init)
    monkeypatch.setattr(training, "_step", step)
    return taken


def test_one_message_trains_every_lane_together_and_a_cancelled_lane_stops_alone(monkeypatch):
    lanes = race("lora", "bitfit", "lora")
    real_report = lifecycle.Reporter.__call__

    def report(self, points, evals):
        if self.run_id == lanes[1].pk and points[-1].step == 2:  # what POST /api/runs/{id}/cancel does
            Run.objects.filter(pk=self.run_id).update(cancel_requested=True)
        return real_report(self, points, evals)

    monkeypatch.setattr(lifecycle.Reporter, "__call__", report)
    taken = watch_steps(monkeypatch)
    assert tasks.train_run(lanes[0].pk) == "succeeded,cancelled,succeeded"

    a, b, c = (Run.objects.get(pk=r.pk) for r in lanes)
    assert (a.status, b.status, c.status) == ("succeeded", "cancelled", "succeeded")
    # Claimed together: one task, one process, each lane its own first attempt.
    assert {r.task_id for r in (a, b, c)} == {a.task_id} and {r.attempts for r in (a, b, c)} == {1}
    # One step of each lane in turn; the cancelled lane left after its step 2.
    ids = [r.pk for r in lanes]
    assert taken[:6] == [(ids[0], 1), (ids[1], 1), (ids[2], 1), (ids[0], 2), (ids[1], 2), (ids[2], 2)]
    assert taken[6:] == [(ids[0], 3), (ids[2], 3), (ids[0], 4), (ids[2], 4)]
    assert steps_of(a) == steps_of(c) == [1, 2, 3, 4] and steps_of(b) == [1, 2]
    assert list(EvalPoint.objects.filter(run=a).values_list("step", flat=True)) == [2, 4]
    assert a.metrics["trainable_params"] == a.metrics["trainable_params_predicted"] and a.metrics["adapter_bytes"] > 0
    assert b.metrics["adapter_bytes"] is None
    # The lanes' seconds are their own: each no more than the race's.
    race_seconds = (max(r.finished_at for r in (a, c)) - a.started_at).total_seconds()
    assert a.metrics["train_seconds"] + c.metrics["train_seconds"] < race_seconds
    # Every lane was claimed: a second message finds nothing to start.
    assert tasks.train_run(lanes[2].pk) == "skipped"


def test_a_lane_that_fails_ends_alone_with_its_message(monkeypatch):
    lanes = race("lora", "lora", "bitfit")

    def nan_in_lane_1(run_id, step):
        if run_id == lanes[1].pk and step == 2:
            raise training.TrainingError("the loss became nan at step 2; try a smaller learning rate")

    watch_steps(monkeypatch, nan_in_lane_1)
    assert tasks.train_run(lanes[2].pk) == "succeeded,failed,succeeded"
    failed = Run.objects.get(pk=lanes[1].pk)
    assert "loss became nan at step 2" in failed.error and steps_of(failed) == [1]


def test_the_time_limit_ends_every_lane_with_its_message(monkeypatch, settings):
    lanes = race("lora", "bitfit", "lora", steps=6)

    def limit_in_lane_1(run_id, step):
        if run_id == lanes[1].pk and step == 3:
            raise SoftTimeLimitExceeded()

    watch_steps(monkeypatch, limit_in_lane_1)
    assert tasks.train_run(lanes[0].pk) == "failed,failed,failed"
    for run in lanes:
        run.refresh_from_db()
        assert f"passed its time limit of {settings.CELERY_TASK_SOFT_TIME_LIMIT} s at step" in run.error
        assert 2 <= run.steps_done < 6 and steps_of(run) == list(range(1, run.steps_done + 1))


def test_a_lane_out_of_memory_fails_alone_and_the_process_is_replaced_after_the_race(monkeypatch):
    lanes = race("lora", "bitfit")
    monkeypatch.setattr(tasks, "_replace_process", False)

    def out_of_memory_in_lane_0(run_id, step):
        if run_id == lanes[0].pk and step == 2:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory")

    watch_steps(monkeypatch, out_of_memory_in_lane_0)
    with pytest.raises(SystemExit):
        tasks.train_run(lanes[0].pk)
    oom, other = (Run.objects.get(pk=r.pk) for r in lanes)
    assert oom.status == "failed" and "ran out of memory on cpu at step 2" in oom.error
    assert other.status == "succeeded" and steps_of(other) == [1, 2, 3, 4]


def test_a_sweeps_lanes_are_claimed_one_by_one_without_packs_and_train_in_one_pack_with_them(settings):
    settings.PEFTLAB_PACKS = 0
    lanes = race("lora", "lora", steps=2, kind=Batch.RANK_SWEEP)
    assert tasks.train_run(lanes[0].pk) == "succeeded"
    assert Run.objects.get(pk=lanes[1].pk).status == Run.QUEUED
    Run.objects.filter(pk=lanes[1].pk).update(status=Run.CANCELLED)
    # With packs (the default), the message of a sweep's LoRA lane starts a pack that takes the
    # sweep's other lanes (its owner has no limit here; a limited owner's sweep keeps one lane at
    # a time: tests/api/test_packs.py).
    settings.PEFTLAB_PACKS = 1
    lanes = race("lora", "lora", "lora", steps=2, kind=Batch.RANK_SWEEP)
    assert tasks.train_run(lanes[0].pk) == "succeeded,succeeded,succeeded"
    runs = Run.objects.filter(pk__in=[lane.pk for lane in lanes])
    assert {(r.packed, r.metrics["pack"]["largest"]) for r in runs} == {(True, 3)}
