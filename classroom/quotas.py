"""What a submitter may queue: the one check behind POST /api/runs and every batch (a race or a
sweep, simulations/batches.create_batch), run before anything is stored.

A student is held to their class's settings (paused, allowed methods, maximum steps, runs at
once, runs a day); a visitor outside any class to the instance's public limits (settings
PEFTLAB_PUBLIC_*); a teacher only to the registry's bounds. A race or a sweep counts all its
runs. Each refusal is a `Refused` with its status and a message; nothing is stored.
"""
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from simulations.models import Run
from workers import methods

from . import access, ratelimit
from .models import Classroom, Student
from .refusals import Refused
from .viewer import STUDENT, TEACHER, Viewer, viewer_of


@dataclass(frozen=True)
class Limits:
    max_steps: int
    max_concurrent: int  # queued + running at once; 0: no limit
    daily_runs: int  # runs queued per day; 0: no limit
    allowed_methods: tuple[str, ...] | None = None  # None: every method
    paused: bool = False
    where: str = "this lab"  # who set them, for the messages

    @classmethod
    def of_classroom(cls, classroom: Classroom) -> "Limits":
        return cls(classroom.max_steps, classroom.max_concurrent_per_student, classroom.daily_runs_per_student,
                   tuple(classroom.allowed_methods), classroom.submissions_paused, f"the class {classroom.name}")

    @classmethod
    def public(cls) -> "Limits":
        return cls(min(settings.PEFTLAB_PUBLIC_MAX_STEPS, methods.MAX_STEPS), settings.PEFTLAB_PUBLIC_MAX_CONCURRENT,
                   settings.PEFTLAB_PUBLIC_DAILY_RUNS, where="this lab (outside a class)")

    @classmethod
    def teacher(cls) -> "Limits":
        return cls(methods.MAX_STEPS, 0, 0, where="a teacher")


def _label(method: str) -> str:
    return methods.METHODS[method].label if method in methods.METHODS else method


def _these(count: int) -> str:
    return "this run" if count == 1 else f"these {count} runs"


def _start_of_day():
    now = timezone.localtime()
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


class Submitter:
    """The person queuing runs in this request: their owner key, their limits, and the fields
    every run they queue carries."""

    def __init__(self, viewer: Viewer, owner: str):
        self.viewer, self.owner = viewer, owner
        if viewer.kind == STUDENT:
            self.limits = Limits.of_classroom(viewer.classroom)
        elif viewer.kind == TEACHER:
            self.limits = Limits.teacher()
        else:
            self.limits = Limits.public()

    def may_use_task(self, task: str) -> bool:
        """Whether this submitter may train on the uploaded task `task` (classroom/access.py)."""
        return access.task_checker(self.viewer)(task)

    def run_fields(self) -> dict:
        return {"classroom": self.viewer.classroom, "student": self.viewer.student,
                "owner": self.owner, "max_concurrent": self.limits.max_concurrent}

    def check(self, specs: list[methods.RunSpec]) -> None:
        """Raise Refused unless every run of `specs` may be queued now. Call it inside the
        transaction that stores the runs (SQLite's IMMEDIATE transactions and, on PostgreSQL,
        the student's row lock make two submissions of one student count one after the other)."""
        limits, count = self.limits, len(specs)
        if self.viewer.kind == STUDENT:
            # One query: the student's row locked, with their class's settings as they are now,
            # not as they were when the request began.
            student = (Student.objects.select_for_update(of=("self",)).select_related("classroom")
                       .get(pk=self.viewer.student.pk))
            limits = self.limits = Limits.of_classroom(student.classroom)
        if limits.paused:
            raise Refused(409, f"your teacher has paused new runs in {limits.where}; runs already queued "
                               "still train. Try again when they resume submissions.")
        if limits.allowed_methods is not None:
            refused = [s.method for s in specs if s.method not in limits.allowed_methods]
            if refused:
                allowed = ", ".join(_label(m) for m in limits.allowed_methods) or "no method"
                raise Refused(403, f"{_label(refused[0])} is not allowed in {limits.where}; "
                                   f"your teacher allows: {allowed}")
        steps = max(s.steps for s in specs)
        if steps > limits.max_steps:
            raise Refused(400, f"{limits.where} allows at most {limits.max_steps} steps per run "
                               f"(asked for {steps})")
        if not (limits.max_concurrent or limits.daily_runs):
            return
        today = _start_of_day()
        # Both counts in one query.
        counts = Run.objects.filter(owner=self.owner).aggregate(
            active=Count("pk", filter=Q(status__in=[Run.QUEUED, Run.RUNNING])),
            used=Count("pk", filter=Q(created_at__gte=today)))
        if limits.max_concurrent:
            active = counts["active"]
            if active + count > limits.max_concurrent:
                raise Refused(429, f"you have {active} runs queued or running, and {_these(count)} would "
                                   f"make {active + count}; {limits.where} allows {limits.max_concurrent} "
                                   "at a time. Wait for one to finish, or cancel one.")
        if limits.daily_runs:
            used = counts["used"]
            if used + count > limits.daily_runs:
                tomorrow = today + timedelta(days=1)
                wait = int((tomorrow - timezone.now()).total_seconds()) + 1
                raise Refused(429, f"you have queued {used} runs today, and {_these(count)} would make "
                                   f"{used + count}; {limits.where} allows {limits.daily_runs} a day. "
                                   f"The count starts again at midnight ({settings.TIME_ZONE}).", retry_after=wait)


def submitter(request) -> Submitter:
    """Who submits, counted against the submission rate limit (raises RateLimited)."""
    owner = ratelimit.submission(request)
    return Submitter(viewer_of(request), owner)
