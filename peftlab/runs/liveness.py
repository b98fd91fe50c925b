"""Runs whose worker vanished: found and failed by whoever looks, the web server included.

A running run's worker writes a heartbeat with every batch of points. When a worker machine is
switched off or its process killed and no worker comes back, nothing else would ever end the
run: the web server fails it once its heartbeat is PEFTLAB_STALE_RUN_SECONDS old, at most once
every few seconds per process (it is asked on every run read and every SSE poll).
"""
import time

from django.conf import settings
from django.utils import timezone

from peftlab.runs.models import Run

_CHECK_EVERY_SECONDS = 5.0
_last_check = 0.0


def fail_lost_runs() -> int:
    """Fail every running run whose heartbeat is stale; send a message for the next waiting run
    of each queue that got a slot back. Returns how many runs were failed."""
    from peftlab.runs.tasks import wake

    stale = timezone.now() - timezone.timedelta(seconds=settings.PEFTLAB_STALE_RUN_SECONDS)
    lost = list(Run.objects.filter(status=Run.RUNNING, heartbeat_at__lt=stale).values_list("pk", "queue"))
    failed = 0
    for pk, queue in lost:
        failed += Run.objects.filter(pk=pk, status=Run.RUNNING, heartbeat_at__lt=stale).update(
            status=Run.FAILED, finished_at=timezone.now(),
            error=f"the worker running this stopped reporting for over {settings.PEFTLAB_STALE_RUN_SECONDS} s "
                  "and is presumed lost; its points so far are kept")
    for queue in {q for _, q in lost}:
        wake(queue)
    return failed


def due() -> bool:
    """Whether this process should look again (it looks at most every few seconds); a True
    answer counts as looking."""
    global _last_check
    now = time.monotonic()
    if now - _last_check < _CHECK_EVERY_SECONDS:
        return False
    _last_check = now
    return True


def check_now_and_then() -> None:
    """fail_lost_runs, unless this process did it less than a few seconds ago."""
    if due():
        fail_lost_runs()
