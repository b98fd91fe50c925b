"""What a submitter may queue: the one check behind POST /api/runs and every batch (a race or a
sweep, simulations/batches.create_batch), run before anything is stored.

A student is held to their class's settings (paused, allowed methods, maximum steps, worker
minutes per run, runs at once, runs a day); a visitor outside any class to the instance's public
limits (settings PEFTLAB_PUBLIC_*), per browser session and, since a session is only a cookie,
per client address too (PEFTLAB_ADDRESS_*); a teacher only to the registry's bounds. A race or a
sweep counts all its runs. Each run's estimated cost (workers/run_cost.py: steps, batch size,
evaluations and the method's measured speed) must fit the run budget, so that 2000 steps of full
fine-tuning at batch 256 cannot hold the only worker for an hour. Each refusal is a LabError
(peftlab/errors.py) of the kind that fits, with a message that says how to fit; nothing is stored.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from peftlab.classroom import access, ratelimit
from peftlab.classroom.models import Classroom, Student
from peftlab.classroom.viewer import ANONYMOUS, STUDENT, TEACHER, Viewer, establish_owner, viewer_of
from peftlab.errors import Conflict, Invalid, NotAllowed, TooMany
from peftlab.runs.models import Dataset, Run
from peftlab.runs.task_source import dataset_id
from workers import datasets, methods, run_cost


@dataclass(frozen=True)
class Limits:
    max_steps: int
    max_concurrent: int  # queued + running at once; 0: no limit
    daily_runs: int  # runs queued per day; 0: no limit
    allowed_methods: tuple[str, ...] | None = None  # None: every method
    paused: bool = False
    where: str = "this lab"  # who set them, for the messages
    run_minutes: float = 0  # estimated worker minutes per run (workers/run_cost.py); 0: no limit
    # Where only the teacher can raise a limit, the refusals say so.
    ask: str = ""

    @classmethod
    def of_classroom(cls, classroom: Classroom) -> "Limits":
        return cls(
            classroom.max_steps,
            classroom.max_concurrent_per_student,
            classroom.daily_runs_per_student,
            tuple(classroom.allowed_methods),
            classroom.submissions_paused,
            f"the class {classroom.name}",
            classroom.max_run_minutes,
            ", or ask your teacher to raise it on the class dashboard",
        )

    @classmethod
    def public(cls) -> "Limits":
        return cls(
            min(settings.PEFTLAB_PUBLIC_MAX_STEPS, methods.MAX_STEPS),
            settings.PEFTLAB_PUBLIC_MAX_CONCURRENT,
            settings.PEFTLAB_PUBLIC_DAILY_RUNS,
            where="this lab (outside a class)",
            run_minutes=settings.PEFTLAB_PUBLIC_MAX_RUN_MINUTES,
        )

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


def _val_size(task: str) -> int:
    """The validation split's size, which each evaluation's cost grows with."""
    if (pk := dataset_id(task)) is not None:
        return Dataset.objects.filter(pk=pk).values_list("val_size", flat=True).first() or 0
    return len(datasets.load_task(task).val)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"


def estimated_seconds(spec: methods.RunSpec) -> float:
    """The run's estimated worker time (workers/run_cost.py) on its task."""
    return run_cost.cost_of(spec.method).seconds(
        spec.steps, spec.params["batch_size"], spec.params.get("eval_every", 0), _val_size(spec.task)
    )


def limits_of(viewer: Viewer) -> Limits:
    """The limits a viewer's runs are held to: their class's, a teacher's, or the public ones."""
    if viewer.kind == STUDENT:
        return Limits.of_classroom(viewer.classroom)
    if viewer.kind == TEACHER:
        return Limits.teacher()
    return Limits.public()


def check_budget(spec: methods.RunSpec, limits: Limits) -> None:
    """Refuse a run whose estimated worker time is past the run budget, saying what would fit."""
    if not limits.run_minutes:
        return
    budget = limits.run_minutes * 60
    cost = run_cost.cost_of(spec.method)
    batch = spec.params["batch_size"]
    eval_every = spec.params.get("eval_every", 0)
    val_size = _val_size(spec.task)
    seconds = cost.seconds(spec.steps, batch, eval_every, val_size)  # as estimated_seconds(spec)
    if seconds <= budget:
        return
    fits = []
    if steps := cost.steps_within(budget, batch, eval_every, val_size):
        fits.append(f"at most {steps} steps at batch {batch}")
    if (smaller := min(cost.batch_within(budget, spec.steps, eval_every, val_size), batch - 1)) >= 1:
        fits.append(f"batch {smaller} for {spec.steps} steps")
    if eval_every and cost.seconds(spec.steps, batch, 0, val_size) <= budget:
        fits.append("fewer evaluations (eval_every 0 evaluates only at the end)")
    advice = ("; to fit, use " + ", or ".join(fits)) if fits else "; no setting of this method fits it"
    raise Invalid(
        f"{_label(spec.method)} for {spec.steps} steps at batch {batch} would take about "
        f"{_minutes(seconds)} of the worker (estimated from runs measured on {run_cost.machine()}); "
        f"{limits.where} allows {limits.run_minutes:g} min per run{advice}{limits.ask}."
    )


class Submitter:
    """The person queuing runs in this request: their owner key, their limits, and the fields
    every run they queue carries. A visitor without a session yet has the owner "" until
    `run_fields` makes their session, once the runs are accepted."""

    def __init__(self, request, owner: str):
        self.request, self.viewer, self.owner = request, viewer_of(request), owner
        self.limits = limits_of(self.viewer)
        self.client = ratelimit.address_key(request)

    def may_use_task(self, task: str) -> bool:
        """Whether this submitter may train on the uploaded task `task` (peftlab/classroom/access.py)."""
        return access.task_checker(self.viewer)(task)

    def run_fields(self) -> dict:
        """What every run of this submission stores about who sent it (a visitor's session is
        made here: only for a submission that is accepted)."""
        if not self.owner:
            self.owner = establish_owner(self.request)
            ratelimit.counted_for_new_session(self.owner)
        self.viewer = viewer_of(self.request)
        return {
            "classroom": self.viewer.classroom,
            "student": self.viewer.student,
            "owner": self.owner,
            "client": self.client,
            "max_concurrent": self.limits.max_concurrent,
        }

    def check(self, specs: list[methods.RunSpec]) -> None:
        """Raise a LabError unless every run of `specs` may be queued now. Call it inside the
        transaction that stores the runs (SQLite's IMMEDIATE transactions and, on PostgreSQL,
        the student's row lock make two submissions of one student count one after the other)."""
        limits, count = self.limits, len(specs)
        if self.viewer.kind == STUDENT:
            # One query: the student's row locked, with their class's settings as they are now,
            # not as they were when the request began.
            student = (
                Student.objects.select_for_update(of=("self",))
                .select_related("classroom")
                .get(pk=self.viewer.student.pk)
            )
            limits = self.limits = Limits.of_classroom(student.classroom)
        if limits.paused:
            raise Conflict(
                f"your teacher has paused new runs in {limits.where}; runs already queued "
                "still train. Try again when they resume submissions."
            )
        if limits.allowed_methods is not None:
            refused = [s.method for s in specs if s.method not in limits.allowed_methods]
            if refused:
                allowed = ", ".join(_label(m) for m in limits.allowed_methods) or "no method"
                raise NotAllowed(
                    f"{_label(refused[0])} is not allowed in {limits.where}; your teacher allows: {allowed}"
                )
        steps = max(s.steps for s in specs)
        if steps > limits.max_steps:
            raise Invalid(
                f"{limits.where} allows at most {limits.max_steps} steps per run (asked for {steps}){limits.ask}"
            )
        for spec in specs:
            check_budget(spec, limits)
        # A visitor without a session yet has no runs, but may still ask for too many at once.
        mine = Run.objects.filter(owner=self.owner) if self.owner else Run.objects.none()
        self._check_counts(mine, count, limits.max_concurrent, limits.daily_runs, "you have", limits.where, limits.ask)
        if self.viewer.kind == ANONYMOUS:
            # Every visitor's run from this address, whatever their cookies say.
            self._check_counts(
                Run.objects.filter(client=self.client, classroom__isnull=True, owner__startswith="session:"),
                count,
                settings.PEFTLAB_ADDRESS_MAX_CONCURRENT,
                settings.PEFTLAB_ADDRESS_DAILY_RUNS,
                "visitors from your network address have",
                f"{limits.where} from one address",
                "; a class joined with its code has limits of its own",
            )

    def check_dataset(self) -> None:
        """Raise Conflict unless one more uploaded dataset may be kept: PEFTLAB_DATASETS_PER_OWNER
        per person and, for visitors, PEFTLAB_ADDRESS_DATASETS per client address."""
        limit = settings.PEFTLAB_DATASETS_PER_OWNER
        if limit and self.owner and Dataset.objects.filter(owner=self.owner).count() >= limit:
            raise Conflict(
                f"you have {limit} uploaded datasets, the most this lab keeps per person: "
                "delete one (DELETE /api/datasets/<id>, or the Delete button) first"
            )
        limit = settings.PEFTLAB_ADDRESS_DATASETS
        if (
            limit
            and self.viewer.kind == ANONYMOUS
            and Dataset.objects.filter(client=self.client, classroom__isnull=True, owner__startswith="session:").count()
            >= limit
        ):
            raise Conflict(
                f"visitors from your network address keep {limit} uploaded datasets, the most "
                "this lab keeps per address outside a class: delete one of yours first, or "
                "join your class with its code"
            )

    def dataset_fields(self) -> dict:
        """What an accepted upload stores about who sent it (a visitor's session is made here)."""
        fields = self.run_fields()
        return {
            "owner": fields["owner"],
            "client": fields["client"],
            "classroom": fields["classroom"],
            "student": fields["student"],
        }

    @staticmethod
    def _check_counts(runs, count: int, max_concurrent: int, daily_runs: int, who: str, where: str, ask: str) -> None:
        """Refuse `count` more of `runs` past `max_concurrent` queued or running, or past
        `daily_runs` today (0: no such limit)."""
        if not (max_concurrent or daily_runs):
            return
        today = _start_of_day()
        counts = runs.aggregate(  # both counts in one query
            active=Count("pk", filter=Q(status__in=[Run.QUEUED, Run.RUNNING])),
            used=Count("pk", filter=Q(created_at__gte=today)),
        )
        if max_concurrent:
            active = counts["active"]
            if active + count > max_concurrent:
                raise TooMany(
                    f"{who} {active} runs queued or running, and {_these(count)} would "
                    f"make {active + count}; {where} allows {max_concurrent} "
                    f"at a time. Wait for one to finish, or cancel one{ask}."
                )
        if daily_runs:
            used = counts["used"]
            if used + count > daily_runs:
                tomorrow = today + timedelta(days=1)
                wait = int((tomorrow - timezone.now()).total_seconds()) + 1
                raise TooMany(
                    f"{who} queued {used} runs today, and {_these(count)} would make "
                    f"{used + count}; {where} allows {daily_runs} a day. "
                    f"The count starts again at midnight ({settings.TIME_ZONE}){ask}.",
                    retry_after=wait,
                )


def submitter(request) -> Submitter:
    """Who submits, counted against the submission rate limits (raises TooMany)."""
    return Submitter(request, ratelimit.submission(request))
