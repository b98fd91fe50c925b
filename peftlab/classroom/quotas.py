"""What a submitter may queue: the one check behind POST /api/runs and every batch (a race or a
sweep, simulations/batches.create_batch), run before anything is stored.

A student is held to their class's settings (paused, allowed methods, maximum steps, worker
minutes per run, runs at once, runs a day); a visitor outside any class to the instance's public
limits (settings PEFTLAB_PUBLIC_*), per browser session and, since a session is only a cookie,
per client address too (PEFTLAB_ADDRESS_*); a teacher only to the registry's bounds.

How a race or a sweep counts: as ONE against the runs queued or running at once (it is one
submission, and the workers' scheduler, peftlab/runs/scheduler.py, trains its lanes one at a time
where a limit applies, so it holds one place), but every lane against the runs a day and the run
budget, since each lane is a run the worker trains: those limits bound worker time, and each lane
is real worker time. With the class defaults (2 at once, 20 a day, 10 min per run) a student can
start the four-method race (4 runs) and the default rank sweep (12) on the same day. Each run's
estimated cost (workers/run_cost.py: steps, batch size,
evaluations and the method's measured speed) must fit the run budget, so that 2000 steps of full
fine-tuning at batch 256 cannot hold the only worker for an hour. Each refusal is a LabError
(peftlab/errors.py) of the kind that fits, with advice its reader can follow: what would fit, what
to wait for, and for a student, where only their teacher can change a limit, "ask your teacher to
raise" the setting as the dashboard names it (peftlab/classroom/models.py SETTING_LABELS);
nothing is stored.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from peftlab.classroom import access, ratelimit
from peftlab.classroom.models import SETTING_LABELS, Classroom, Student
from peftlab.classroom.viewer import ANONYMOUS, STUDENT, TEACHER, Viewer, establish_owner, viewer_of
from peftlab.errors import Conflict, Invalid, NotAllowed, TooMany
from peftlab.runs import estimate
from peftlab.runs.models import Dataset, Run
from workers import methods, run_cost


@dataclass(frozen=True)
class Limits:
    max_steps: int
    max_concurrent: int  # queued + running at once; 0: no limit
    daily_runs: int  # runs queued per day; 0: no limit
    allowed_methods: tuple[str, ...] | None = None  # None: every method
    paused: bool = False
    where: str = "this lab"  # who set them, for the messages
    run_minutes: float = 0  # estimated worker minutes per run (workers/run_cost.py); 0: no limit
    # Whose limits: a class's (only its teacher changes them), or the instance's.
    in_class: bool = False

    def ask(self, setting: str) -> str:
        """For a student, the advice that only their teacher can follow: ", or ask your teacher
        to raise “<setting as the dashboard names it>”"; "" for anyone else."""
        return f", or ask your teacher to raise “{SETTING_LABELS[setting]}”" if self.in_class else ""

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
            in_class=True,
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


def _these(count: int, what: str) -> str:
    """The submission as a refusal names it: "this run", or "this race's 4 runs"."""
    return "this run" if what == "run" else f"this {what}'s {count} runs"


def _submissions(count: int) -> str:
    return "run, race or sweep" if count == 1 else "runs, races or sweeps"


def _start_of_day():
    now = timezone.localtime()
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"


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
    val_size = estimate.val_size(spec.task)
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
    advice = ("; to fit, use " + ", or ".join(fits)) if fits else "; no setting of this method fits it: choose another"
    raise Invalid(
        f"{_label(spec.method)} for {spec.steps} steps at batch {batch} would take about "
        f"{_minutes(seconds)} of the worker (estimated from runs measured on {run_cost.machine()}); "
        f"{limits.where} allows {limits.run_minutes:g} min per run{advice}{limits.ask('max_run_minutes')}."
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

    def check(self, specs: list[methods.RunSpec], what: str = "run") -> None:
        """Raise a LabError unless every run of `specs` may be queued now, as one submission:
        `what` is "run" (one run), "race" or "sweep" (a batch: one place against the runs at
        once, every lane against the runs a day). Call it inside the transaction that stores the
        runs (SQLite's IMMEDIATE transactions and, on PostgreSQL, the student's row lock make two
        submissions of one student count one after the other)."""
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
                name = _label(refused[0])
                ask = f"ask your teacher to allow {name} under “{SETTING_LABELS['allowed_methods']}”"
                if limits.allowed_methods:
                    allowed = ", ".join(_label(m) for m in limits.allowed_methods)
                    advice = f"your teacher allows: {allowed}. Choose one of those, or {ask}"
                else:
                    advice = f"your teacher allows no method now: {ask}"
                raise NotAllowed(f"{name} is not allowed in {limits.where}; {advice}.")
        steps = max(s.steps for s in specs)
        if steps > limits.max_steps:
            raise Invalid(
                f"{limits.where} allows at most {limits.max_steps} steps per run (asked for {steps}): "
                f"choose {limits.max_steps} steps or fewer{limits.ask('max_steps')}."
            )
        for spec in specs:
            check_budget(spec, limits)
        # A visitor without a session yet has no runs, but may still ask for too many at once.
        mine = Run.objects.filter(owner=self.owner) if self.owner else Run.objects.none()
        own_active = _check_counts(
            mine,
            count,
            what,
            limits.max_concurrent,
            limits.daily_runs,
            Counted(
                "you have",
                limits.where,
                limits.ask("max_concurrent_per_student"),
                limits.ask("daily_runs_per_student"),
            ),
        )
        if self.viewer.kind == ANONYMOUS:
            # Every visitor's run from this address, whatever their cookies say.
            _check_counts(
                Run.objects.filter(client=self.client, classroom__isnull=True, owner__startswith="session:"),
                count,
                what,
                settings.PEFTLAB_ADDRESS_MAX_CONCURRENT,
                settings.PEFTLAB_ADDRESS_DAILY_RUNS,
                Counted(
                    "visitors from your network address have",
                    f"{limits.where} from one address",
                    JOIN_YOUR_CLASS,
                    JOIN_YOUR_CLASS,
                    shared=True,
                    own_active=own_active,
                ),
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


# What a visitor who is a student may do about the limits of visitors from one address.
JOIN_YOUR_CLASS = "; if you are in a class, join it with its code: a class has limits of its own"


@dataclass(frozen=True)
class Counted:
    """Whose runs `_check_counts` counts, for its messages."""

    who: str  # "you have"
    where: str  # whose limit: "the class NLP seminar"
    ask_concurrent: str  # what else may lift each limit, after the advice: a student's teacher
    ask_daily: str
    shared: bool = False  # runs of several people (visitors from one address), not only the submitter's
    own_active: int | None = None  # where shared: the submitter's own runs or batches active (None: unknown)


def _check_counts(runs, count: int, what: str, max_concurrent: int, daily_runs: int, counted: Counted) -> int | None:
    """Refuse one more submission of `count` runs (`what`: "run", "race" or "sweep") past
    `max_concurrent` runs or batches queued or running (a batch counts as one), or past
    `daily_runs` runs queued today (every lane counts); 0: no such limit. Returns how many runs
    or batches were active (None: not counted)."""
    if not (max_concurrent or daily_runs):
        return None
    today = _start_of_day()
    live = Q(status__in=[Run.QUEUED, Run.RUNNING])
    counts = runs.aggregate(  # every count in one query
        lone=Count("pk", filter=live & Q(batch__isnull=True)),
        batches=Count("batch", filter=live & Q(batch__isnull=False), distinct=True),
        used=Count("pk", filter=Q(created_at__gte=today)),
    )
    active = counts["lone"] + counts["batches"]
    if max_concurrent and active + 1 > max_concurrent:
        if not counted.shared:
            wait = "Wait for one to finish, or cancel one" if active else ""
        elif counted.own_active:
            wait = "Wait for one to finish, or cancel one of yours"
        else:
            wait = "Wait for one to finish" if counted.own_active is None else "Wait for one of theirs to finish"
        if wait:
            advice = f"{wait}{counted.ask_concurrent}"
        else:  # nothing of theirs to wait for: only the teacher can help ("Ask your teacher ...")
            ask = counted.ask_concurrent.removeprefix(", or ")
            advice = ask[:1].upper() + ask[1:] if ask else "Try again later"
        raise TooMany(
            f"{counted.who} {active} {_submissions(active)} queued or running, and this {what} would make "
            f"{active + 1}; {counted.where} allows {max_concurrent} at a time (a race or a sweep counts as one). "
            f"{advice}."
        )
    if daily_runs:
        used = counts["used"]
        if used + count > daily_runs:
            tomorrow = today + timedelta(days=1)
            at_midnight = f"the count starts again at midnight ({settings.TIME_ZONE})"
            left = max(0, daily_runs - used)
            retry_after = None
            if count > daily_runs:
                advice = f"This {what} alone is more than that: choose a race or a sweep of at most {daily_runs} runs"
            elif left:
                advice = (
                    f"{left} more fit today: choose a race or a sweep of at most {left} runs, or wait: {at_midnight}"
                )
                retry_after = int((tomorrow - timezone.now()).total_seconds()) + 1
            else:
                advice = at_midnight[0].upper() + at_midnight[1:]
                retry_after = int((tomorrow - timezone.now()).total_seconds()) + 1
            raise TooMany(
                f"{counted.who} queued {used} runs today, and {_these(count, what)} would make "
                f"{used + count}; {counted.where} allows {daily_runs} a day (a race or a sweep counts "
                f"each of its runs). {advice}{counted.ask_daily}.",
                retry_after=retry_after,
            )
    return active


def submitter(request) -> Submitter:
    """Who submits, counted against the submission rate limits (raises TooMany)."""
    return Submitter(request, ratelimit.submission(request))
