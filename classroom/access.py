"""Who sees which runs: the one rule, applied wherever a run or a batch is read or acted on.

- an anonymous visitor sees the public runs (no class), as on a lab without classes;
- a student sees only their own runs;
- a teacher sees every run of their classes, and the public runs.

A run outside what a request may see is answered exactly like a missing one ("there is no run
N", 404): its existence is not disclosed.
"""
from django.db.models import Q, QuerySet

from simulations.models import Batch, Run

from .viewer import STUDENT, TEACHER, viewer_of


def visible_runs(request) -> QuerySet[Run]:
    viewer = viewer_of(request)
    if viewer.kind == TEACHER:
        return Run.objects.filter(Q(classroom__isnull=True) | Q(classroom__teacher=viewer.user))
    if viewer.kind == STUDENT:
        return Run.objects.filter(student=viewer.student)
    return Run.objects.filter(classroom__isnull=True)


def visible_run(request, run_id: int) -> Run | None:
    return visible_runs(request).filter(pk=run_id).first()


def visible_batches(request) -> QuerySet[Batch]:
    """Races and sweeps with a lane the request may see (every lane of a batch has the same
    submitter, so that is all of them)."""
    return Batch.objects.filter(pk__in=visible_runs(request).filter(batch__isnull=False).values("batch"))
