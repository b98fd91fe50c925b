"""Sending stored runs to the broker once their rows are committed, or taking them back.

A worker must never get a message for a row it cannot read yet, so messages go out on commit.
If the broker is down the request answers 503 and leaves nothing behind: the runs it stored are
removed again (one a worker already claimed through another message stays, and trains).
"""
from django.db import transaction

from peftlab.runs.tasks import BrokerUnavailable, dispatch

from peftlab.runs.models import Batch, Run


def send_on_commit(runs: list[Run], batch: Batch | None = None) -> None:
    """Call inside the transaction that creates `runs`; raises BrokerUnavailable when the
    transaction ends if the broker did not take them."""
    transaction.on_commit(lambda: _send_or_take_back(runs, batch))


def _send_or_take_back(runs: list[Run], batch: Batch | None) -> None:
    try:
        for run in runs:  # in order: lane 0 first
            dispatch(run)
    except BrokerUnavailable:
        Run.objects.filter(pk__in=[r.pk for r in runs], status=Run.QUEUED).delete()
        if batch is not None and not batch.runs.exists():
            batch.delete()
        raise
