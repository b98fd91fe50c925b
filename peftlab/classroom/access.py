"""Who sees which runs, and who may act on them: the two rules, applied wherever a run, a batch
or a dataset is read or changed.

Seeing:
- an anonymous visitor sees the public runs (no class), as on a lab without classes;
- a student sees only their own runs;
- a teacher sees every run of their classes, and the public runs.

Acting (cancel, delete: any state change on a run, race, sweep or dataset) needs more than seeing:
- the owner acts on their own (the student, the teacher, or the visitor's browser session);
- the teacher of the owner's class acts on the runs and datasets of their class.
A public run is seen by everyone and acted on by its owner alone.

A run outside what a request may see, or act on, is answered exactly like a missing one ("there
is no run N", 404): its existence is not disclosed, and nothing changes.

Uploaded datasets (peftlab.runs.models.Dataset, task ``upload-<id>``) are private to fewer people:
- the one who uploaded it (student, teacher or visitor's browser session) sees and uses it;
- a teacher also sees and uses the uploads of the students of their classes;
- a student also sees and uses the uploads of their class's teacher (a teacher shares a dataset
  with a class by uploading it).
A public run on an upload (a visitor's or a teacher's) is seen only by whoever uploaded it, so
that its examples (a finished run stores a few validation sentences) never reach anyone else.
"""

from django.db.models import Q, QuerySet

from peftlab.classroom.viewer import STUDENT, TEACHER, Viewer, viewer_of
from peftlab.runs.models import Batch, Dataset, Run
from workers import datasets

_ON_UPLOAD = Q(task__startswith=Dataset.TASK_PREFIX)


def _public_runs(viewer: Viewer) -> Q:
    """Runs of no class that this viewer may see: all but others' runs on their uploads."""
    return Q(classroom__isnull=True) & (~_ON_UPLOAD | _own(viewer))


def _own(viewer: Viewer) -> Q:
    """What carries this viewer's owner key; a visitor without a session owns nothing."""
    return Q(owner=viewer.owner) if viewer.owner else Q(pk__in=[])


def _actable(viewer: Viewer) -> Q:
    """Runs or datasets this viewer may change: their own, and a teacher's classes' ones."""
    if viewer.kind == TEACHER:
        return _own(viewer) | Q(classroom__teacher=viewer.user)
    return _own(viewer)


def visible_runs(request) -> QuerySet[Run]:
    viewer = viewer_of(request)
    if viewer.kind == TEACHER:
        return Run.objects.filter(_public_runs(viewer) | Q(classroom__teacher=viewer.user))
    if viewer.kind == STUDENT:
        return Run.objects.filter(student=viewer.student)
    return Run.objects.filter(_public_runs(viewer))


def visible_run(request, run_id: int) -> Run | None:
    return visible_runs(request).filter(pk=run_id).first()


def visible_batches(request) -> QuerySet[Batch]:
    """Races and sweeps with a lane the request may see (every lane of a batch has the same
    submitter, so that is all of them)."""
    return Batch.objects.filter(pk__in=visible_runs(request).filter(batch__isnull=False).values("batch"))


def actable_runs(request) -> QuerySet[Run]:
    """The runs this request may cancel (or otherwise change): a subset of `visible_runs`."""
    return Run.objects.filter(_actable(viewer_of(request)))


def actable_run(request, run_id: int) -> Run | None:
    return actable_runs(request).filter(pk=run_id).first()


def may_act_on_run(request, run: Run) -> bool:
    return actable_runs(request).filter(pk=run.pk).exists()


def actable_batches(request) -> QuerySet[Batch]:
    """Races and sweeps this request may cancel (their lanes share one submitter)."""
    return Batch.objects.filter(pk__in=actable_runs(request).filter(batch__isnull=False).values("batch"))


def datasets_of(viewer: Viewer) -> QuerySet[Dataset]:
    """The uploaded datasets `viewer` may see and train on (see the module's docstring)."""
    if viewer.kind == TEACHER:
        return Dataset.objects.filter(Q(owner=viewer.owner) | Q(classroom__teacher=viewer.user))
    if viewer.kind == STUDENT:
        return Dataset.objects.filter(Q(student=viewer.student) | Q(owner=f"teacher:{viewer.classroom.teacher_id}"))
    if not viewer.owner:  # a visitor without a session has uploaded nothing
        return Dataset.objects.none()
    return Dataset.objects.filter(owner=viewer.owner, classroom__isnull=True)


def visible_datasets(request) -> QuerySet[Dataset]:
    return datasets_of(viewer_of(request))


def actable_datasets(viewer: Viewer) -> QuerySet[Dataset]:
    """The datasets `viewer` may delete: who uploaded it, and the teacher of its class (a
    student sees their teacher's uploads but may not delete them)."""
    return Dataset.objects.filter(_actable(viewer))


def task_checker(viewer: Viewer):
    """A `may_use_task` for workers.methods.validate_run: whether `viewer` may train on the
    uploaded task ``upload-<id>`` (a shipped task needs no say-so)."""
    from peftlab.runs.task_source import dataset_id

    def may_use(task: str) -> bool:
        pk = dataset_id(task)
        return pk is not None and datasets_of(viewer).filter(pk=pk).exists()

    return may_use


def may_use_task(request):
    return task_checker(viewer_of(request))


def usable_tasks(request) -> list[dict]:
    """The shipped tasks, then the uploaded datasets this request may train on (newest first)."""
    shipped = [{**t, "uploaded": False} for t in datasets.list_tasks()]
    uploaded = [
        {
            "name": d.task_name,
            "title": d.name,
            "description": f"Uploaded CSV \u201c{d.file_name or d.name}\u201d.",
            "labels": d.labels,
            "train_size": d.train_size,
            "val_size": d.val_size,
            "uploaded": True,
            "dataset": d.pk,
        }
        for d in visible_datasets(request)
    ]
    return shipped + uploaded
