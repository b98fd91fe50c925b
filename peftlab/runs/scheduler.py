"""Which run a worker trains next (lifecycle.claim starts it): fair between the people who submit runs.

A Celery message says "a run on this queue may start"; the worker does not simply train the run
the message names (first come, first served, so one student's 50 runs would hold the queue).
It picks, among the queued runs of the queue, one of the owner who has the fewest runs training
now and, among equals, who was served longest ago: the queue goes round the owners. An owner at
their concurrency limit (Run.max_concurrent) is passed over until one of their runs ends.

A batch (a race or a sweep, batches.py) is one unit against that limit, as it is at submission
(peftlab/classroom/quotas.py). A race's lanes start together: the worker that picks one lane
claims the race's other waiting lanes with it (lifecycle.claim_together) and trains them in one
process, round-robin, so the race holds one of its owner's places however many lanes it has,
and counts as one of the runs they have training. A sweep, where its owner has a limit, trains
one lane at a time, so that a lane training holds one of the owner's places and the sweep's
next lane waits for it to end, never for the owner's other runs. An owner never trains more
units than their limit at once, and a student whose limit is 2 can still race four methods. An
owner without a limit (0: a teacher) has their sweeps' lanes picked like any other runs.

Every queued run has been sent as one message, and every run that ends sends one more while
runs are waiting, so a run passed over is picked up by a later message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Max
from django.utils import timezone

from peftlab.runs.models import Batch, Run

# Any fixed number: the PostgreSQL advisory lock that makes picking-and-claiming one step for
# every worker (SQLite's IMMEDIATE transactions already serialize writers).
_PICK_LOCK = 7_411_207


@dataclass(frozen=True)
class Waiting:
    id: int
    owner: str
    max_concurrent: int
    batch: int | None = None  # the race or sweep the run is a lane of
    together: bool = False  # a lane of a race: its batch's waiting lanes start with it
    method: str = ""


def startable(run: Waiting, running: dict[str, int], training_batches: Collection[int]) -> bool:
    """Whether `run` may start now: its owner is under their limit and, where they have one, no
    other lane of its batch is training (a batch is one unit of the limit)."""
    limit = run.max_concurrent
    if not limit:
        return True
    return running.get(run.owner, 0) < limit and not (run.batch is not None and run.batch in training_batches)


def pick(
    waiting: list[Waiting],
    running: dict[str, int],
    last_start: dict[str, datetime],
    training_batches: Collection[int] = frozenset(),
) -> int | None:
    """The id of the run to start: `waiting` in submission order, `running` the number of runs
    training per owner, `last_start` when each owner's newest run started, `training_batches`
    the batches with a lane training now. None when every waiting run must wait (its owner at
    their limit, or its batch training another lane)."""
    first_of: dict[str, Waiting] = {}
    for run in waiting:
        if run.owner not in first_of and startable(run, running, training_batches):
            first_of[run.owner] = run
    if not first_of:
        return None
    never = datetime.min.replace(tzinfo=UTC)
    chosen = min(first_of.values(), key=lambda r: (running.get(r.owner, 0), last_start.get(r.owner, never), r.id))
    return chosen.id


def queue_state(queue: str) -> tuple[list[Waiting], dict[str, int], dict[str, datetime], set[int]]:
    """What `pick` needs for a queue: its waiting runs in submission order; for their owners the
    number of runs training now and when their newest run started; and which of their batches
    have a lane training now."""
    waiting = [
        Waiting(*row, together=kind == Batch.RACE, method=method)
        for *row, kind, method in Run.objects.filter(status=Run.QUEUED, queue=queue)
        .order_by("id")
        .values_list("id", "owner", "max_concurrent", "batch_id", "batch__kind", "method")
    ]
    batches = {w.batch for w in waiting if w.batch is not None}
    owners = {w.owner for w in waiting}
    running = training_units(owners)
    last_start = dict(
        Run.objects.filter(owner__in=owners, started_at__isnull=False)
        .values_list("owner")
        .annotate(last=Max("started_at"))
    )
    training_batches = (
        set(Run.objects.filter(status=Run.RUNNING, batch__in=batches).values_list("batch_id", flat=True))
        if batches
        else set()
    )
    return waiting, running, last_start, training_batches


def training_units(owners: Collection[str]) -> dict[str, int]:
    """How many runs each owner has training, a race's lanes (which train together, in one
    process) counting as one."""
    units = {
        (owner, ("race", batch) if kind == Batch.RACE else ("run", pk))
        for pk, owner, batch, kind in Run.objects.filter(status=Run.RUNNING, owner__in=owners).values_list(
            "pk", "owner", "batch_id", "batch__kind"
        )
    }
    return dict(Counter(owner for owner, _ in units))


def lock_for_pick() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PICK_LOCK])


def next_waiting(queue: str) -> Run | None:
    """The oldest queued run of a queue: the run a fresh message names when a slot frees."""
    return Run.objects.filter(status=Run.QUEUED, queue=queue).order_by("id").first()


def queue_order(queue: str) -> list[int]:
    """The queued runs of one Celery queue in the order the workers' fair scheduler would start
    them (`pick`), if no run ended early: round the owners, each within their limit, a race's
    waiting lanes together, a sweep one lane at a time where its owner has a limit. An estimate:
    a run that ends or is cancelled changes what comes next."""
    return order_of(*queue_state(queue))


def order_of(
    waiting: list[Waiting], running: dict[str, int], last_start: dict[str, datetime], training: Collection[int]
) -> list[int]:
    """queue_order on a queue's state as queue_state reads it. Its reads are separate statements,
    so a race claimed between them may show a lane's batch training while its owner's count of
    runs training does not have it yet: the order holds for such a state too."""
    waiting, running, last_start = list(waiting), dict(running), dict(last_start)
    # What each owner has training, oldest first: the batches seen training now, then runs.
    owner_of = {w.batch: w.owner for w in waiting if w.batch is not None}
    started: dict[str, list[int | None]] = {}
    for batch in sorted(training):
        started.setdefault(owner_of[batch], []).append(batch)
    for owner, n in running.items():
        started.setdefault(owner, []).extend([None] * max(0, n - len(started.get(owner, []))))
    training = set(training)
    clock = max([timezone.now(), *last_start.values()])
    order = []
    while waiting:
        chosen = pick(waiting, running, last_start, training)
        if chosen is None:
            # Every waiting run must wait: the oldest run each owner has training ends.
            if not any(started.values()):
                order.extend(w.id for w in waiting)  # cannot happen; never loop for ever
                break
            for owner, runs in started.items():
                if runs:
                    training.discard(runs.pop(0))
                    running[owner] = max(0, running.get(owner, 0) - 1)
            continue
        run = next(w for w in waiting if w.id == chosen)
        # A race's waiting lanes start with the one picked (lifecycle.claim_together).
        starting = [w for w in waiting if w.batch == run.batch and w.together] if run.together else [run]
        for w in starting:
            waiting.remove(w)
            order.append(w.id)
        running[run.owner] = running.get(run.owner, 0) + 1
        started.setdefault(run.owner, []).append(run.batch)
        if run.batch is not None:
            training.add(run.batch)
        clock += timedelta(microseconds=1)
        last_start[run.owner] = clock
    return order
