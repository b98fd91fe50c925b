"""What a run waits for, in words a learner can check: its place in its queue and an estimated
start before its first point, and the figures the training page turns into time left.

The place counts what the workers' fair scheduler would start before the run (scheduler.queue_order
simulates scheduler.pick round the owners, each within their limit), not the order
of submission. The estimated start is the run-cost estimates (workers/run_cost.py, one CPU's
seconds) of what stands before it: the rest of each run training now on its queue, then each run
ahead, scaled by the pace the training runs' points show (a loaded or faster machine), shared
between the worker slots. The web server does not know how many slots the workers of a queue
have; it counts as many as are busy now (at least one), which is never more than there are: a
training process is one, whether it trains one run, a race's lanes in turn (whose points count
each lane's own seconds, so that the rest of a race is the sum of its lanes') or a pack's runs at
once (whose points count the whole pack's steps, so that the rest of a pack is its longest run's).
An estimate: a run that ends early, is cancelled or is submitted by someone served less changes
it, and a GPU worker is faster than the CPU the costs were measured on.
"""

from __future__ import annotations

import time

from peftlab.runs.estimate import estimated_seconds
from peftlab.runs.models import Batch, Run
from peftlab.runs.scheduler import queue_order
from workers import datasets, run_cost
from workers.methods import RunSpec

# What the place counts, as the API says it (GET /api/runs/{id} "waiting.counts").
COUNTS = (
    "ahead: the queued runs of this run's queue that the fair scheduler would start before it; "
    "training: the runs training now on that queue; starts_in_seconds: the run-cost estimates of "
    "what is left of those and of the runs ahead, at the pace the training runs' points show "
    "against the estimate, shared between as many worker slots as are busy now (at least one; "
    "a race's lanes share one, and so do the runs of a pack)"
)


# The order each queue was worked out in lately, by queue, with when: every queued run's event
# stream asks for its place every few seconds, and the streams of a class share one queue.
_orders: dict[str, tuple[float, list[int]]] = {}


def _order(run: Run, max_age: float) -> list[int]:
    """The run's queue in the scheduler's order, worked out again unless this process did so less
    than `max_age` seconds ago with the run already in it."""
    now = time.monotonic()
    at, order = _orders.get(run.queue, (0.0, []))
    if now - at >= max_age or run.pk not in order:
        order = queue_order(run.queue)
        _orders[run.queue] = (now, order)
    return order


def _spec(run: Run, steps: int | None = None) -> RunSpec:
    return RunSpec(
        method=run.method, task=run.task, steps=run.steps if steps is None else steps, seed=0, params=run.params
    )


def _seconds(run: Run, steps: int | None = None) -> float:
    """The run's estimated worker time for `steps` of its steps (all of them by default); 0 when
    it cannot be estimated (a method or task that no longer exists)."""
    try:
        return estimated_seconds(_spec(run, steps))
    except (KeyError, datasets.UnknownTask):
        return 0.0


def _pace(run: Run) -> float | None:
    """How much slower (> 1) or faster than the cost model a running run steps, from its last
    point; None before its first."""
    last = run.points.filter(attempt=run.attempt).order_by("-step").first()
    step = _step_seconds(run)
    if last is None or not last.step or not step:
        return None
    return (last.elapsed / last.step) / step


def left_seconds(run: Run, pace: float | None) -> float:
    """What is left of a running run: its steps not yet done, the final evaluation and the
    end-of-run measurements, at the pace its points show (the cost model's before its first)."""
    return _seconds(run, max(0, run.steps - run.steps_done)) * (pace or 1.0)


def place(run: Run, max_age: float = 0.0) -> dict | None:
    """A queued run's place: {"place", "ahead", "training", "starts_in_seconds", "counts"};
    None for a run that is not queued. `max_age`: how old a queue order this may reuse (0: none)."""
    if run.status != Run.QUEUED:
        return None
    order = _order(run, max_age)
    ahead_ids = order[: order.index(run.pk)] if run.pk in order else order
    ahead = Run.objects.filter(pk__in=ahead_ids)
    training = list(Run.objects.filter(status=Run.RUNNING, queue=run.queue))
    # A busy slot is a training process: a race's lanes share one, which trains them in turn, and
    # so do the runs of a pack, which it trains at once.
    slots: dict = {}
    for r in training:
        slots.setdefault((r.worker, r.worker_pid) if r.worker_pid else r.pk, []).append(r)
    paces = {r.pk: _pace(r) for r in training}
    # The runs ahead go at the pace of those training now (the same workers), else the model's. A
    # packed run's points count the whole pack's steps: its own pace is theirs over the pack's size.
    known = [
        paces[r.pk] / len(runs) if r.packed else paces[r.pk]
        for runs in slots.values()
        for r in runs
        if paces[r.pk] is not None
    ]
    pace = sum(known) / len(known) if known else 1.0
    seconds = sum(_slot_left(runs, paces) for runs in slots.values()) + pace * sum(_seconds(r) for r in ahead)
    return {
        "place": len(ahead_ids) + 1,
        "ahead": len(ahead_ids),
        "training": len(training),
        "starts_in_seconds": round(seconds / max(1, len(slots)), 1),
        "counts": COUNTS,
    }


def _slot_left(runs: list[Run], paces: dict) -> float:
    """What is left of one training process's work: a pack's runs train at once, each at the pace
    its points show, so the process is free when the last of them ends; a race's lanes take turns,
    so theirs add up."""
    left = [left_seconds(r, paces[r.pk]) for r in runs]
    return max(left) if all(r.packed for r in runs) else sum(left)


def timing(run: Run) -> dict | None:
    """The cost model's figures for the run, which the training page scales by the speed its
    points show: "step_seconds", one step with its share of the evaluations along the way, and
    "after_steps_seconds", the cost model's fixed term: the final evaluation and the end-of-run
    measurements (with the model's build, over by then: the figure errs long); and for a race's
    lane "other_lanes_step_seconds", the other lanes' steps that each of its steps waits for."""
    step = _step_seconds(run)
    if step is None:
        return None
    return {
        "step_seconds": round(step, 5),
        "after_steps_seconds": round(run_cost.cost_of(run.method).fixed_seconds, 3),
        "other_lanes_step_seconds": round(_other_lanes_step_seconds(run), 5),
    }


def _step_seconds(run: Run) -> float | None:
    """The cost model's seconds of one of the run's steps with its share of the evaluations,
    without the fixed term; None when it cannot be estimated (a method or task that no longer
    exists)."""
    try:
        fixed = run_cost.cost_of(run.method).fixed_seconds
    except KeyError:
        return None
    total = _seconds(run)
    if not total or not run.steps:
        return None
    return (total - fixed) / run.steps


def _other_lanes_step_seconds(run: Run) -> float:
    """For a lane of a race, the cost model's seconds of one step of each other lane still to
    train (queued or training): the lanes take turns in one process (training.train_together),
    so each of this lane's steps waits for one of theirs, and its time left on the wall clock is
    its own steps plus theirs. 0 for a run that is not a race's lane."""
    if run.batch_id is None or run.batch.kind != Batch.RACE:
        return 0.0
    others = Run.objects.filter(batch=run.batch_id, status__in=(Run.QUEUED, Run.RUNNING)).exclude(pk=run.pk)
    return sum(_step_seconds(lane) or 0.0 for lane in others)
