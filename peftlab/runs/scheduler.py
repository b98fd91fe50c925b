"""Which run a worker trains next (lifecycle.claim starts it): fair between the people who submit runs.

A Celery message says "a run on this queue may start"; the worker does not simply train the run
the message names (first come, first served, so one student's 50 runs would hold the queue).
It picks, among the queued runs of the queue, one of the owner who has the fewest runs training
now and, among equals, who was served longest ago: the queue goes round the owners. An owner at
their concurrency limit (Run.max_concurrent) is passed over until one of their runs ends.

Every queued run has been sent as one message, and every run that ends sends one more while
runs are waiting, so a run passed over is picked up by a later message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.db.models import Count, Max

from peftlab.runs.models import Run

# Any fixed number: the PostgreSQL advisory lock that makes picking-and-claiming one step for
# every worker (SQLite's IMMEDIATE transactions already serialize writers).
_PICK_LOCK = 7_411_207


@dataclass(frozen=True)
class Waiting:
    id: int
    owner: str
    max_concurrent: int


def pick(waiting: list[Waiting], running: dict[str, int], last_start: dict[str, datetime]) -> int | None:
    """The id of the run to start: `waiting` in submission order, `running` the number of runs
    training per owner, `last_start` when each owner's newest run started. None when every
    waiting owner is at their limit."""
    first_of: dict[str, Waiting] = {}
    for run in waiting:
        limit = run.max_concurrent
        if run.owner not in first_of and not (limit and running.get(run.owner, 0) >= limit):
            first_of[run.owner] = run
    if not first_of:
        return None
    never = datetime.min.replace(tzinfo=UTC)
    chosen = min(first_of.values(), key=lambda r: (running.get(r.owner, 0), last_start.get(r.owner, never), r.id))
    return chosen.id


def queue_state(queue: str) -> tuple[list[Waiting], dict[str, int], dict[str, datetime]]:
    """What `pick` needs for a queue: its waiting runs in submission order, and for their owners
    the number of runs training now and when their newest run started."""
    waiting = [
        Waiting(*row)
        for row in Run.objects.filter(status=Run.QUEUED, queue=queue)
        .order_by("id")
        .values_list("id", "owner", "max_concurrent")
    ]
    owners = {w.owner for w in waiting}
    running = dict(
        Run.objects.filter(status=Run.RUNNING, owner__in=owners).values_list("owner").annotate(n=Count("id"))
    )
    last_start = dict(
        Run.objects.filter(owner__in=owners, started_at__isnull=False)
        .values_list("owner")
        .annotate(last=Max("started_at"))
    )
    return waiting, running, last_start


def lock_for_pick() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PICK_LOCK])


def next_waiting(queue: str) -> Run | None:
    """The oldest queued run of a queue: the run a fresh message names when a slot frees."""
    return Run.objects.filter(status=Run.QUEUED, queue=queue).order_by("id").first()
