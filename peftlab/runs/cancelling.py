"""Asking a run to stop, for POST /api/runs/{id}/cancel and POST /api/races/{id}/cancel."""
from peftlab.runs import notify
from peftlab.runs.models import Run


def request_cancel(run_id: int) -> bool:
    """Cancel a queued run here; flag a running one, whose worker stops at its next report (so
    that every point it wrote stays and the final status comes after them). False when the run
    has already finished."""
    if Run.objects.filter(pk=run_id, status=Run.QUEUED).update(status=Run.CANCELLED, cancel_requested=True):
        notify.changed(run_id)
        return True
    return bool(Run.objects.filter(pk=run_id, status=Run.RUNNING).update(cancel_requested=True))
