"""Training runs and their loss points: the source of truth for every run the lab shows."""

from django.conf import settings
from django.db import models
from django.urls import reverse


class Batch(models.Model):
    """Runs launched together and shown together: a race (P17) or an experiment's sweep (P23,
    P24). Each run keeps its own status and points; the batch only groups and orders them."""

    RACE, RANK_SWEEP, TARGET_SWEEP = "race", "rank-sweep", "target-sweep"
    KINDS = [(k, k) for k in (RACE, RANK_SWEEP, TARGET_SWEEP)]

    kind = models.CharField(max_length=16, choices=KINDS)
    task = models.CharField(max_length=64)
    steps = models.PositiveIntegerField()
    seed = models.IntegerField(default=0)
    # What the learner asked for (methods, ranks, data sizes...), as the API received it.
    config = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.kind} {self.pk} {self.task}"


class Run(models.Model):
    QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
    STATUSES = [(s, s) for s in (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)]
    FINISHED = (SUCCEEDED, FAILED, CANCELLED)
    # A first delivery and two redeliveries; a run that kills its worker a third time is failed.
    MAX_ATTEMPTS = 3

    method = models.CharField(max_length=32)
    task = models.CharField(max_length=64)
    steps = models.PositiveIntegerField()
    seed = models.IntegerField(default=0)
    params = models.JSONField(default=dict)
    queue = models.CharField(max_length=32, default="cpu")
    # A run launched as part of a race or sweep, and its place (lane) in it.
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    lane = models.PositiveSmallIntegerField(default=0)

    # Who submitted it, for fairness and quotas: "student:<id>", "teacher:<id>" or
    # "session:<key>"; and how many runs of that owner may train at once (0: no limit). The
    # worker's scheduler reads both when it picks the next run.
    owner = models.CharField(max_length=64, blank=True, default="", db_index=True)
    max_concurrent = models.PositiveSmallIntegerField(default=0)
    # The submitter's network address as a keyed hash (peftlab/classroom/ratelimit.py address_key): a
    # visitor's quotas also count per address, since a browser session is only a cookie.
    client = models.CharField(max_length=32, blank=True, default="", db_index=True)
    # The class and student a run belongs to; both empty for a public run (an anonymous
    # visitor's or a teacher's). They decide who sees the run (peftlab/classroom/access.py).
    classroom = models.ForeignKey(
        "classroom.Classroom", null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    student = models.ForeignKey(
        "classroom.Student", null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )

    status = models.CharField(max_length=16, choices=STATUSES, default=QUEUED, db_index=True)
    cancel_requested = models.BooleanField(default=False)
    # How many times a worker has started this run. A worker that dies mid-run (killed, out of
    # memory, time limit) gets the run delivered again; past MAX_ATTEMPTS it ends failed.
    attempts = models.PositiveSmallIntegerField(default=0)
    # The process training the current attempt, so that a redelivery can tell a dead attempt
    # (retry it) from a live one (a duplicate message: skip it).
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    # The Celery task that claimed the current attempt: a hard time limit kills that task's
    # process, and the worker then fails the run it was training.
    task_id = models.CharField(max_length=64, blank=True, default="")
    # The current attempt trains in a pack (workers/runpack.py): with the other packed runs of the
    # same task_id, in one fused step.
    packed = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    device = models.CharField(max_length=32, blank=True, default="")
    worker = models.CharField(max_length=255, blank=True, default="")
    steps_done = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written by the worker with every batch of points; a running run whose heartbeat is old has
    # lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"run {self.pk} {self.method}/{self.task} {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def attempt(self) -> int:
        """The attempt the lab shows: the latest (1 before any worker started the run)."""
        return max(self.attempts, 1)

    def shown_points(self):
        return self.points.filter(attempt=self.attempt)

    def shown_evals(self):
        return self.evals.filter(attempt=self.attempt)

    @classmethod
    def queue_spec(cls, spec, **fields) -> "Run":
        """A queued run of `spec` (a validated workers.methods.RunSpec) on the lab's run queue;
        `fields`: its owner (quotas.Submitter.run_fields), its batch and lane."""
        return cls.objects.create(
            method=spec.method,
            task=spec.task,
            steps=spec.steps,
            seed=spec.seed,
            params=spec.params,
            queue=settings.PEFTLAB_RUN_QUEUE,
            **fields,
        )

    def pack(self) -> dict | None:
        """{"size": the runs training in its pack now, itself included} while it trains in one
        (GET /api/runs/{id}, the events stream's "progress"), else None."""
        if not self.packed or self.status != self.RUNNING:
            return None
        return {"size": pack_sizes([self.task_id]).get(self.task_id, 1)}

    def summary(self) -> dict:
        """The run without its points, as the API and the SSE final event give it."""
        return {
            "id": self.pk,
            "method": self.method,
            "task": self.task,
            "steps": self.steps,
            "seed": self.seed,
            "params": self.params,
            "status": self.status,
            "error": self.error,
            "device": self.device,
            "queue": self.queue,
            "batch": self.batch_id,
            "lane": self.lane,
            "steps_done": self.steps_done,
            "attempts": self.attempts,
            "packed": self.packed,
            "metrics": self.metrics,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "events_url": reverse("run-events", args=[self.pk]),
        }


def pack_sizes(task_ids) -> dict[str, int]:
    """How many runs train now in each of these packs (runs of one pack share their task_id),
    in one query: {task_id: runs}."""
    rows = (
        Run.objects.filter(status=Run.RUNNING, packed=True, task_id__in=set(task_ids))
        .values("task_id")
        .annotate(runs=models.Count("id"))
        .order_by()
    )
    return {row["task_id"]: row["runs"] for row in rows}


class Point(models.Model):
    """One training step's loss; `elapsed` is the seconds of training the run had by then (for
    time-left and the race's per-second view): the wall time since its first step for a run
    trained alone, only its own turns for a race's lane (workers/training.py).

    A retried run starts again from step 1 under its next attempt number; the points of the
    attempts before stay stored, and what the lab shows is the run's current attempt."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="points")
    attempt = models.PositiveSmallIntegerField(default=1)
    step = models.PositiveIntegerField()
    loss = models.FloatField()
    elapsed = models.FloatField()

    class Meta:
        ordering = ["attempt", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "attempt", "step"], name="one_point_per_attempt_step")]

    def as_dict(self) -> dict:
        return {"step": self.step, "loss": self.loss, "elapsed": round(self.elapsed, 3)}


class EvalPoint(models.Model):
    """A validation measurement during a run, written with the training point of its step."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="evals")
    attempt = models.PositiveSmallIntegerField(default=1)
    step = models.PositiveIntegerField()
    val_loss = models.FloatField()
    val_accuracy = models.FloatField()

    class Meta:
        ordering = ["attempt", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "attempt", "step"], name="one_eval_per_attempt_step")]

    def as_dict(self) -> dict:
        return {"step": self.step, "val_loss": self.val_loss, "val_accuracy": self.val_accuracy}


class Dataset(models.Model):
    """A learner's own CSV (POST /api/datasets), checked by peftlab/api/uploads.py and kept in the
    database (not on disk: a worker on another machine shares only the database). Its task name
    is ``upload-<id>``; runs, races and sweeps train on it like on a shipped task
    (peftlab/runs/task_source.py). Who sees it: peftlab/classroom/access.py `visible_datasets`."""

    TASK_PREFIX = "upload-"

    name = models.CharField(max_length=80)
    file_name = models.CharField(max_length=255, blank=True, default="")
    # Who uploaded it, with the same keys as Run.owner; the class and student for a student's.
    owner = models.CharField(max_length=64, db_index=True)
    client = models.CharField(max_length=32, blank=True, default="", db_index=True)  # as Run.client
    classroom = models.ForeignKey(
        "classroom.Classroom", null=True, blank=True, on_delete=models.CASCADE, related_name="datasets"
    )
    student = models.ForeignKey(
        "classroom.Student", null=True, blank=True, on_delete=models.CASCADE, related_name="datasets"
    )
    labels = models.JSONField()  # label names; an example's label is an index into this list
    train_size = models.PositiveIntegerField()
    val_size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"dataset {self.pk} {self.name!r}"

    @property
    def task_name(self) -> str:
        return f"{self.TASK_PREFIX}{self.pk}"

    def summary(self) -> dict:
        return {
            "id": self.pk,
            "task": self.task_name,
            "name": self.name,
            "file_name": self.file_name,
            "labels": self.labels,
            "train_size": self.train_size,
            "val_size": self.val_size,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


class DatasetExample(models.Model):
    """One row of an uploaded CSV, exactly as written, in its split."""

    TRAIN, VAL = "train", "val"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="examples")
    position = models.PositiveIntegerField()  # the row's place in the file (0: the first example)
    split = models.CharField(max_length=5, choices=[(TRAIN, TRAIN), (VAL, VAL)])
    text = models.TextField()
    label = models.PositiveSmallIntegerField()  # index into Dataset.labels

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["dataset", "position"], name="one_example_per_position")]
