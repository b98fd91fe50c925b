"""What a teacher's dashboard shows, as one JSON document (GET /api/classes/{code}/dashboard,
polled by the page every two seconds): every student's runs with their progress (a run training
in a pack with how many runs its pack holds now), a leaderboard per method, and the class's place
in the queue. And the class's curves (GET /api/classes/{code}/curves, polled with it): the
training loss of each student's latest run, thinned to at most CURVE_POINTS points a run.

Every number is read from the runs' rows: status and steps as the worker writes them, accuracy
and time from the metrics each finished run measured.
"""

from datetime import datetime

from django.db.models import F, Q
from django.db.models.lookups import Exact
from django.urls import reverse
from django.utils import timezone

from peftlab.classroom.models import Classroom
from peftlab.runs.models import Point, Run, pack_sizes
from peftlab.runs.scheduler import queue_order
from workers import methods

RUNS_PER_STUDENT = 20  # the newest runs listed per student (the count says how many in all)
CURVE_POINTS = 100  # the most points of a run's curve the class's chart gets (its last one too)


def _label(method: str) -> str:
    return methods.METHODS[method].label if method in methods.METHODS else method


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def run_row(run: Run, packs: dict[str, int] | None = None) -> dict:
    """A run as the dashboard lists it; `packs`: the runs training now in each pack (pack_sizes),
    read once for the whole dashboard."""
    m = run.metrics or {}
    in_pack = run.packed and run.status == Run.RUNNING
    return {
        "id": run.pk,
        "method": run.method,
        "label": _label(run.method),
        "task": run.task,
        "status": run.status,
        "steps": run.steps,
        "steps_done": run.steps_done,
        "progress": round(run.steps_done / run.steps, 4) if run.steps else 0,
        # While it trains in a pack: the runs in its fused step now, itself included.
        "pack": {"size": (packs or {}).get(run.task_id, 1)} if in_pack else None,
        "queue": run.queue,
        "batch": run.batch_id,
        "error": run.error,
        "val_accuracy": _number(m.get("val_accuracy")),
        "train_seconds": _number(m.get("train_seconds")),
        "created_at": run.created_at.isoformat(),
        "url": f"{reverse('train')}?run={run.pk}",
        "student": run.student_id,
    }


def leaderboard(runs: list[Run], nicknames: dict[int, str]) -> list[dict]:
    """Per method, among its succeeded runs: the best validation accuracy and the fastest
    training (ties go to the earlier run)."""
    rows = []
    for name in methods.METHODS:
        done = [r for r in runs if r.method == name and r.status == Run.SUCCEEDED]
        if not done:
            continue
        scored = [r for r in done if _number(r.metrics.get("val_accuracy")) is not None]
        timed = [r for r in done if _number(r.metrics.get("train_seconds")) is not None]
        best = max(scored, key=lambda r: (r.metrics["val_accuracy"], -r.pk), default=None)
        fastest = min(timed, key=lambda r: (r.metrics["train_seconds"], r.pk), default=None)
        rows.append(
            {
                "method": name,
                "label": _label(name),
                "runs": len(done),
                "best_accuracy": best
                and {"run": best.pk, "student": nicknames.get(best.student_id), "value": best.metrics["val_accuracy"]},
                "fastest": fastest
                and {
                    "run": fastest.pk,
                    "student": nicknames.get(fastest.student_id),
                    "seconds": fastest.metrics["train_seconds"],
                },
            }
        )
    return rows


def _queue(classroom: Classroom, nicknames: dict[int, str]) -> list[dict]:
    """The class's waiting runs in the order they should start, per worker queue: `position` 1,
    2, 3... counts the class's own runs only (runs of other classes and of visitors on the same
    queue take turns between them, and are neither listed nor counted)."""
    mine = {r.pk: r for r in Run.objects.filter(classroom=classroom, status=Run.QUEUED)}
    rows = []
    for queue in sorted({r.queue for r in mine.values()}):
        ours = [mine[run_id] for run_id in queue_order(queue) if run_id in mine]
        for position, run in enumerate(ours, start=1):
            rows.append(
                {
                    "position": position,
                    "queue": queue,
                    "run": run.pk,
                    "method": run.method,
                    "label": _label(run.method),
                    "steps": run.steps,
                    "student": nicknames.get(run.student_id),
                    "created_at": run.created_at.isoformat(),
                }
            )
    return rows


def settings_of(classroom: Classroom) -> dict:
    return {
        "allowed_methods": classroom.allowed_methods,
        "max_steps": classroom.max_steps,
        "max_concurrent_per_student": classroom.max_concurrent_per_student,
        "daily_runs_per_student": classroom.daily_runs_per_student,
        "submissions_paused": classroom.submissions_paused,
    }


def dashboard(classroom: Classroom, now: datetime | None = None) -> dict:
    students = list(classroom.students.order_by("nickname", "id"))
    nicknames = {s.pk: s.nickname for s in students}
    runs = list(Run.objects.filter(classroom=classroom).order_by("-id"))
    by_student: dict[int, list[Run]] = {}
    for run in runs:
        by_student.setdefault(run.student_id, []).append(run)
    # The size of every pack a run of the class trains in, in one query.
    packs = pack_sizes(r.task_id for r in runs if r.packed and r.status == Run.RUNNING)
    counts = {status: 0 for status, _ in Run.STATUSES}
    for run in runs:
        counts[run.status] += 1
    return {
        "classroom": {
            "name": classroom.name,
            "code": classroom.code,
            "settings": settings_of(classroom),
            "join_url": reverse("classroom:join"),
        },
        "students": [
            {
                "id": s.pk,
                "nickname": s.nickname,
                "joined_at": s.created_at.isoformat(),
                "total_runs": len(by_student.get(s.pk, [])),
                "active_runs": sum(r.status in (Run.QUEUED, Run.RUNNING) for r in by_student.get(s.pk, [])),
                "runs": [run_row(r, packs) for r in by_student.get(s.pk, [])[:RUNS_PER_STUDENT]],
            }
            for s in students
        ],
        "leaderboard": leaderboard(runs, nicknames),
        "queue": _queue(classroom, nicknames),
        "counts": counts,
        "updated_at": (now or timezone.now()).isoformat(),
    }


def _thinned(runs: list[Run]) -> dict[int, list[Point]]:
    """The points of each run's current attempt, at most about CURVE_POINTS of them: every
    stride-th step, where the stride spreads its steps done over CURVE_POINTS, and its last
    steps (so that a curve reaches the step the run is on). One query for all the runs."""
    if not runs:
        return {}
    wanted = Q()
    for run in runs:
        stride = max(1, -(-run.steps_done // CURVE_POINTS))
        mine = Q(run_id=run.pk, attempt=run.attempt)
        wanted |= mine if stride == 1 else mine & (Exact(F("step") % stride, 0) | Q(step__gte=run.steps_done))
    curves: dict[int, list[Point]] = {run.pk: [] for run in runs}
    read = Point.objects.filter(wanted, run_id__in=curves).only("run_id", "step", "loss").order_by("run_id", "step")
    for point in read:
        curves[point.run_id].append(point)
    return curves


def curves(classroom: Classroom, now: datetime | None = None) -> dict:
    """Each student's latest run that has started (training now or finished): its training loss
    by step, thinned (`_thinned`), named by the student's nickname. A student whose latest run
    still waits keeps the curve of the run before it until the new one starts."""
    nicknames = dict(classroom.students.values_list("pk", "nickname"))
    latest: dict[int, Run] = {}
    started = Run.objects.filter(classroom=classroom, student__isnull=False, started_at__isnull=False)
    for run in started.defer("metrics", "params").order_by("-id"):
        latest.setdefault(run.student_id, run)
    runs = sorted(latest.values(), key=lambda r: (nicknames.get(r.student_id, ""), r.pk))
    points = _thinned(runs)
    return {
        "runs": [
            {
                "id": run.pk,
                "student": nicknames.get(run.student_id),
                "method": run.method,
                "label": _label(run.method),
                "status": run.status,
                "steps": run.steps,
                "steps_done": run.steps_done,
                "step": [p.step for p in points[run.pk]],
                "loss": [p.loss for p in points[run.pk]],
            }
            for run in runs
        ],
        "most_points": CURVE_POINTS,
        "updated_at": (now or timezone.now()).isoformat(),
    }
