"""P23 and P24 experiments over HTTP: a rank sweep or a target-module sweep, each a batch of real
LoRA runs queued like any other (peftlab/runs/batches.py), read back with each run's measurements.

POST /api/experiments          {"kind": "rank" | "targets", "task", "steps", "seed",
                                "ranks"?, "train_sizes"?, "rank"?}  -> 201 the experiment
GET  /api/experiments/plan     the lanes and their expected trainable parameters, before any run
GET  /api/experiments/{id}     the experiment with its runs
GET  /api/experiments          recent experiments (?kind=, ?task=, ?finished=true)
"""

import re

from django.db.models import Prefetch
from ninja import Field, Query, Router

from peftlab.api.csrf import require_csrf
from peftlab.api.errors import Error, StrictBody, checked_query
from peftlab.classroom import access, quotas
from peftlab.errors import Invalid, NotFound
from peftlab.runs.batches import BatchRequestError, batch_status, create_batch
from peftlab.runs.models import Batch, Run
from simulations import experiments
from workers import base_model, datasets, methods

router = Router(tags=["experiments"])
KIND_OF_BATCH = {v: k for k, v in experiments.BATCH_KINDS.items()}


KINDS = list(experiments.BATCH_KINDS)
# A rank and a training-set size as the method registry bounds them (validate_run checks each run).
RANKS = {"minimum": methods.RANK.minimum, "maximum": methods.RANK.maximum}
TRAIN_SIZES = {"minimum": methods.TRAIN_EXAMPLES.minimum, "maximum": methods.TRAIN_EXAMPLES.maximum}


def _list_of(most: int, items: dict) -> dict:
    return {"minItems": 1, "maxItems": most, "uniqueItems": True, "items": {"type": "integer", **items}}


class ExperimentIn(StrictBody):
    # The enums, lengths and bounds besides max_length, ge and le are documented, not enforced
    # here: experiments.plan and validate_run refuse anything else with a message of their own.
    kind: str = Field(
        ...,
        description="rank (P23: ranks × training-set sizes) or targets (P24)",
        max_length=16,
        json_schema_extra={"enum": KINDS},
    )
    task: str = Field(..., description="one of GET /api/tasks", max_length=64, json_schema_extra={"minLength": 1})
    steps: int = Field(experiments.DEFAULT_STEPS, ge=1, le=methods.MAX_STEPS, description="steps per run")
    seed: int = Field(0, ge=0, lt=2**31)
    ranks: list[int] | None = Field(
        None,
        json_schema_extra=_list_of(experiments.MAX_RANKS, RANKS),
        description=f"rank sweep: the ranks (default {list(experiments.DEFAULT_RANKS)})",
    )
    train_sizes: list[int] | None = Field(
        None,
        description="rank sweep: one or two training-set sizes "
        f"(default {experiments.SMALL_TRAIN_EXAMPLES} and the whole split), "
        "each at most the task's training split",
        json_schema_extra=_list_of(experiments.MAX_SIZES, TRAIN_SIZES),
    )
    rank: int | None = Field(
        None,
        json_schema_extra=RANKS,
        description=f"targets: the rank of every run (default {experiments.DEFAULT_TARGET_RANK})",
    )


def _task(request, name: str) -> datasets.Task:
    """A shipped task, or an upload this request may use; else 400 as for a missing one."""
    try:
        if not (datasets.is_shipped(name) or access.may_use_task(request)(name)):
            raise datasets.UnknownTask(name)
        return datasets.load_task(name)
    except datasets.UnknownTask:
        raise Invalid(f"unknown task {name!r}; choose from {datasets.task_names()}") from None


def _expected(params: dict, task: str) -> int:
    """The formula's count for run params (validated: defaults filled in). The task was checked
    already (`_task`, or a stored run's)."""
    spec = methods.validate_run(experiments.METHOD, task, 1, 0, params, may_use_task=methods.ANY_TASK)
    return experiments.expected_trainable(spec.params, base_model.dimensions(), len(datasets.load_task(task).labels))


def _stored_expected(run: Run) -> int | None:
    try:
        return _expected(run.params, run.task)
    except (methods.RunRequestError, datasets.UnknownTask):
        return None  # a run stored under other rules (an uploaded task since removed, say)


def _lane_fields(kind: str, params: dict) -> dict:
    label = experiments.lane_label(kind, params)
    if kind == "rank":
        return {"label": label, "rank": params["rank"], "train_examples": params["train_examples"]}
    return {"label": label, "rank": params["rank"], "target_modules": params["target_modules"]}


def _train_loss(run: Run) -> float | None:
    if not run.finished:
        return None
    newest = run.shown_points().order_by("-step").values_list("loss", flat=True)
    return experiments.final_train_loss(list(newest[: experiments.TRAIN_LOSS_WINDOW])[::-1])


def _run_row(kind: str, run: Run) -> dict:
    m = run.metrics or {}
    return {
        "id": run.pk,
        "lane": run.lane,
        "status": run.status,
        "error": run.error,
        "steps": run.steps,
        "steps_done": run.steps_done,
        "params": run.params,
        **_lane_fields(kind, run.params),
        "trainable_params_expected": _stored_expected(run),
        "trainable_params": m.get("trainable_params"),
        "total_params": m.get("total_params"),
        "val_accuracy": m.get("val_accuracy"),
        "val_loss": m.get("val_loss"),
        "train_loss": _train_loss(run),
        "train_examples_used": m.get("train_examples"),
        "train_seconds": m.get("train_seconds"),
        "url": f"/train/?run={run.pk}",
    }


def _experiment(batch: Batch) -> dict:
    kind = KIND_OF_BATCH[batch.kind]
    runs = getattr(batch, "lanes", None) or list(batch.runs.order_by("lane", "id"))
    return {
        "id": batch.pk,
        "kind": kind,
        "task": batch.task,
        "steps": batch.steps,
        "seed": batch.seed,
        "config": batch.config,
        "status": batch_status(r.status for r in runs),
        "created_at": batch.created_at.isoformat(),
        "url": f"?experiment={batch.pk}",
        "runs": [_run_row(kind, r) for r in runs],
    }


@router.post(
    "",
    response={201: dict, 400: Error, 403: Error, 409: Error, 413: Error, 429: Error, 503: Error},
    summary="Queue a rank sweep or a target-module sweep",
)
def create_experiment(request, payload: ExperimentIn):
    require_csrf(request)
    submitter = quotas.submitter(request)
    task = _task(request, payload.task)
    lanes, config = experiments.plan(
        payload.kind, task.train_size, ranks=payload.ranks, train_sizes=payload.train_sizes, rank=payload.rank
    )
    try:
        batch = create_batch(
            experiments.BATCH_KINDS[payload.kind],
            task.name,
            payload.steps,
            payload.seed,
            [(experiments.METHOD, lane.params) for lane in lanes],
            config=config,
            submitter=submitter,
        )
    except BatchRequestError as exc:
        # "lane 3: rank must be..." names a run the learner never numbered: say only what is wrong.
        raise Invalid(re.sub(r"^lane \d+: ", "", str(exc))) from None
    return 201, _experiment(batch)


@router.get(
    "/plan",
    response={200: dict, 400: Error},
    summary="The runs an experiment would queue, with their expected trainable parameters",
)
def plan_experiment(
    request,
    kind: str = checked_query(..., enum=KINDS),
    task: str = checked_query(..., description="one of GET /api/tasks", minLength=1),
    rank: int | None = checked_query(None, description="targets: the rank of every run", **RANKS),
):
    task_ = _task(request, task)
    lanes, config = experiments.plan(kind, task_.train_size, rank=rank)
    rows = []
    for lane in lanes:
        rows.append(
            {**_lane_fields(kind, lane.params), "trainable_params_expected": _expected(lane.params, task_.name)}
        )
    return {"kind": kind, "task": task_.name, "steps": experiments.DEFAULT_STEPS, "config": config, "runs": rows}


@router.get("/{experiment_id}", response={200: dict, 404: Error}, summary="An experiment with its runs")
def get_experiment(request, experiment_id: int):
    batch = access.visible_batches(request).filter(pk=experiment_id, kind__in=list(KIND_OF_BATCH)).first()
    if batch is None:
        raise NotFound(f"there is no experiment {experiment_id}")
    return _experiment(batch)


@router.get("", response={200: list, 400: Error}, summary="Recent experiments, newest first")
def list_experiments(
    request,
    kind: str | None = checked_query(None, enum=KINDS),
    task: str | None = None,
    finished: bool = False,
    limit: int = Query(10, ge=1, le=50),
):
    batches = access.visible_batches(request).filter(kind__in=list(KIND_OF_BATCH))
    if kind is not None:
        if kind not in experiments.BATCH_KINDS:
            raise Invalid(f"unknown experiment kind {kind!r}; choose from {sorted(experiments.BATCH_KINDS)}")
        batches = batches.filter(kind=experiments.BATCH_KINDS[kind])
    if task is not None:
        batches = batches.filter(task=task)
    if finished:
        # Finished: no lane still queued or running.
        batches = batches.exclude(runs__status__in=[Run.QUEUED, Run.RUNNING])
    batches = batches.prefetch_related(Prefetch("runs", queryset=Run.objects.order_by("lane", "id"), to_attr="lanes"))
    return [_experiment(b) for b in batches.distinct()[:limit]]
