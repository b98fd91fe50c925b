"""Batches of runs launched together: a race (P17) or an experiment's sweep (P23, P24).

`create_batch` is the one way to start several runs at once: it validates every lane with the
method registry first (one bad lane stores nothing), then creates the Batch and one Run per lane
in a single transaction and sends the runs to the worker only once that transaction has
committed. `batch_status` sums up the lanes' statuses.
"""

from collections.abc import Iterable, Sequence

from django.db import transaction

from peftlab.errors import Invalid
from peftlab.runs.lifecycle import send_on_commit
from peftlab.runs.models import Batch, Run
from workers import methods

MAX_LANES = 24  # a guard for sweeps; a race allows fewer (peftlab.api.races)


class BatchRequestError(Invalid):
    """A batch request that cannot be accepted (400); the message is shown to the person who sent it."""


def validate_lanes(
    task: str, steps, seed, lanes: Sequence[tuple[str, dict]], max_lanes: int = MAX_LANES, may_use_task=None
) -> list[methods.RunSpec]:
    """Every lane as a validated RunSpec (defaults filled in); the first bad lane raises,
    naming its number (from 1). may_use_task: who may train on an uploaded task (see
    methods.validate_run; None: the shipped tasks only)."""
    if not isinstance(lanes, (list, tuple)) or not 1 <= len(lanes) <= max_lanes:
        count = len(lanes) if isinstance(lanes, (list, tuple)) else lanes
        raise BatchRequestError(f"a batch has between 1 and {max_lanes} lanes (got {count})")
    specs = []
    for number, (method, params) in enumerate(lanes, start=1):
        try:
            specs.append(methods.validate_run(method, task, steps, seed, params or {}, may_use_task=may_use_task))
        except methods.RunRequestError as exc:
            # A task or steps error is the same for every lane: say it without a lane number.
            prefix = "" if str(exc).startswith(("unknown task", "steps", "seed")) else f"lane {number}: "
            raise BatchRequestError(f"{prefix}{exc}") from None
    return specs


def create_batch(
    kind: str,
    task: str,
    steps,
    seed,
    lanes: Sequence[tuple[str, dict]],
    config: dict | None = None,
    max_lanes: int = MAX_LANES,
    submitter=None,
) -> Batch:
    """Validate, store and dispatch a batch: one Run per lane (run.lane = 0, 1, ...).

    lanes: [(method, params), ...]; params as POST /api/runs takes them (defaults fill the rest).
    config: what the caller wants kept about the request (shown back by its API).
    submitter: who queues it (peftlab.classroom.quotas.Submitter): checked against their quotas as
    one submission (one place against the runs at once, every lane against the runs a day and the
    run budget), and recorded on every run; None for the lab's own use (public, unchecked).
    Raises BatchRequestError, or the quotas' LabError (peftlab/errors.py; nothing stored).
    """
    if kind not in dict(Batch.KINDS):
        raise BatchRequestError(f"unknown batch kind {kind!r}; choose from {sorted(dict(Batch.KINDS))}")
    specs = validate_lanes(
        task, steps, seed, lanes, max_lanes, may_use_task=submitter.may_use_task if submitter is not None else None
    )
    with transaction.atomic():
        if submitter is not None:
            submitter.check(specs, "race" if kind == Batch.RACE else "sweep")
        owned = submitter.run_fields() if submitter is not None else {}
        batch = Batch.objects.create(
            kind=kind, task=specs[0].task, steps=specs[0].steps, seed=specs[0].seed, config=config or {}
        )
        runs = [Run.queue_spec(s, batch=batch, lane=lane, **owned) for lane, s in enumerate(specs)]
        send_on_commit(runs, batch)
    return batch


def batch_status(statuses: Iterable[str]) -> str:
    """running while any lane is queued or running; then succeeded if every lane did, else
    failed if any failed, else cancelled."""
    statuses = list(statuses)
    if any(s in (Run.QUEUED, Run.RUNNING) for s in statuses):
        return Run.RUNNING
    if statuses and all(s == Run.SUCCEEDED for s in statuses):
        return Run.SUCCEEDED
    return Run.FAILED if Run.FAILED in statuses else Run.CANCELLED


def lanes_of(batch: Batch) -> list[Run]:
    return list(batch.runs.order_by("lane", "id"))
