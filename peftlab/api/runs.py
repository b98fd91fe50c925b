"""The runs' endpoints: the methods and tasks a run may use, queueing a run, its estimate, the
list, one run with its points, its download, and cancelling it.

Request bodies are described by pydantic schemas built from the method registry, so the OpenAPI
document and the validation are the same code.
"""

from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.http import FileResponse
from ninja import Field, Query, Router
from pydantic import ConfigDict, create_model

from peftlab.api import events
from peftlab.api.csrf import require_csrf
from peftlab.api.errors import Error, StrictBody, checked_query
from peftlab.classroom import access, quotas
from peftlab.classroom.viewer import viewer_of
from peftlab.errors import Conflict, NotFound
from peftlab.runs import estimate, lifecycle, waiting
from peftlab.runs.models import Run
from workers import artifacts, card, methods, run_cost

router = Router(tags=["runs"])


def _field_for(param: methods.Param):
    if param.kind == "targets":
        return (
            list[str] | None,
            Field(
                None,
                description=param.help,
                min_length=1,
                json_schema_extra={"items": {"enum": list(param.describe()["choices"])}},
            ),
        )
    bounds = {"le": param.maximum}
    bounds["gt" if param.exclusive_minimum else "ge"] = param.minimum
    kind = int if param.kind == "int" else float
    return (kind | None, Field(None, description=param.help, **bounds))


_all_params = {p.name: p for m in methods.METHODS.values() for p in m.params}
RunParams = create_model(
    "RunParams",
    __config__=ConfigDict(extra="forbid", strict=True),
    **{name: _field_for(p) for name, p in _all_params.items()},
)
RunParams.__doc__ = "Method parameters; each method accepts only its own (see GET /api/methods)."


class RunIn(StrictBody):
    # The enum and minLength are documented, not enforced here: validate_run refuses any other
    # method or task with a message that lists the choices.
    method: str = Field(
        ..., description="one of GET /api/methods", max_length=32, json_schema_extra={"enum": list(methods.METHODS)}
    )
    task: str = Field(
        ...,
        description="one of GET /api/tasks: a shipped task, or an uploaded CSV this visitor may use (upload-<id>)",
        max_length=64,
        json_schema_extra={"minLength": 1},
    )
    steps: int = Field(100, ge=1, le=methods.MAX_STEPS, description="optimizer steps")
    seed: int = Field(0, ge=0, lt=2**31)
    params: RunParams = Field(default_factory=RunParams)


@router.get("/methods", response={200: list}, summary="Methods, their parameters, defaults and bounds")
def list_methods(request):
    common = {
        "steps": {"minimum": 1, "maximum": methods.MAX_STEPS, "default": 100},
        "seed": {"minimum": 0, "maximum": 2**31 - 1, "default": 0},
    }
    return [{**m.describe(), **common} for m in methods.METHODS.values()]


@router.get(
    "/tasks",
    response={200: list},
    summary="The tasks a run can train on: the shipped ones, and the uploaded CSVs this visitor may use "
    "(task upload-<id>)",
)
def list_tasks(request):
    return access.usable_tasks(request)


@router.post(
    "/runs",
    response={201: dict, 400: Error, 403: Error, 409: Error, 413: Error, 429: Error, 503: Error},
    summary="Queue a run",
)
def create_run(request, payload: RunIn):
    require_csrf(request)
    submitter = quotas.submitter(request)
    spec = methods.validate_run(
        payload.method,
        payload.task,
        payload.steps,
        payload.seed,
        payload.params.model_dump(exclude_unset=True),
        may_use_task=submitter.may_use_task,
    )
    with transaction.atomic():
        submitter.check([spec])
        run = Run.queue_spec(spec, **submitter.run_fields())
        lifecycle.send_on_commit([run])
    return 201, run.summary()


@router.get(
    "/runs/estimate",
    response={200: dict, 400: Error},
    summary="A run's estimated worker time, before it is queued, and the run budget of whoever asks",
)
def estimate_run(
    request,
    method: str = checked_query(..., max_length=32, enum=list(methods.METHODS)),
    task: str = Query(..., min_length=1, max_length=64),
    steps: int = Query(100, ge=1, le=methods.MAX_STEPS),
    batch_size: int = Query(methods.BATCH_SIZE.default, ge=1, le=methods.BATCH_SIZE.maximum),
    eval_every: int = Query(methods.EVAL_EVERY.default, ge=0, le=methods.EVAL_EVERY.maximum),
):
    spec = methods.validate_run(
        method,
        task,
        steps,
        0,
        {"batch_size": batch_size, "eval_every": eval_every},
        may_use_task=access.may_use_task(request),
    )
    limits = quotas.limits_of(viewer_of(request))
    return {
        "seconds": round(estimate.estimated_seconds(spec), 1),
        "machine": run_cost.machine(),
        "budget_seconds": limits.run_minutes * 60 or None,
        "where": limits.where,
    }


@router.get("/runs", response={200: list, 400: Error}, summary="Recent runs, newest first (without their points)")
def list_runs(request, limit: int = Query(50, ge=1, le=500)):
    lifecycle.check_now_and_then()
    return [run.summary() for run in access.visible_runs(request)[:limit]]


def _get_run(request, run_id: int) -> Run:
    """The run, if this request may see it (peftlab/classroom/access.py); else 404 as for a missing one."""
    lifecycle.check_now_and_then()
    run = access.visible_run(request, run_id)
    if run is None:
        raise NotFound(f"there is no run {run_id}")
    return run


@router.get("/runs/{run_id}", response={200: dict, 404: Error}, summary="A run with the points of its current attempt")
def get_run(request, run_id: int):
    run = _get_run(request, run_id)
    points = [p.as_dict() for p in run.shown_points()]
    last_step = points[-1]["step"] if points else 0
    return {
        **run.summary(),
        "points": points,
        "evals": [e.as_dict() for e in run.shown_evals()],
        "may_cancel": access.may_act_on_run(request, run),
        "cancel_requested": run.cancel_requested,
        # Before its first point: its place in its queue and an estimated start (None unless
        # queued); while it trains, the cost model's figures the page's time left starts from.
        "waiting": waiting.place(run),
        "timing": waiting.timing(run),
        # While it trains in a pack: how many runs train in its fused step, itself included.
        "pack": run.pack(),
        # Where the events stream should resume to follow on from these points.
        "last_event_id": events.event_id(run.attempt, last_step),
    }


@router.get(
    "/runs/{run_id}/adapter",
    response={200: None, 404: Error, 409: Error},
    openapi_extra={
        "responses": {
            200: {
                "description": "The zip",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
    summary="Download what the run trained, as a zip (peft's format where peft has the method)",
)
def download_adapter(request, run_id: int):
    run = _get_run(request, run_id)
    folder = Path(settings.PEFTLAB_ARTIFACTS_DIR) / str(run.pk)
    if run.status != Run.SUCCEEDED or not folder.is_dir():
        raise Conflict(
            f"run {run_id} has nothing to download ({run.status}); only a succeeded run saves what it trained"
        )
    spec = methods.RunSpec(run.method, run.task, run.steps, run.seed, run.params)
    labels = artifacts.read_manifest(folder).get("labels", [])
    archive = artifacts.zip_folder(folder, card.card(spec, labels, run.metrics or {}, run.pk, run.device))
    return FileResponse(
        archive.open("rb"),
        as_attachment=True,
        filename=f"peftlab-run-{run.pk}-{run.method}.zip",
        content_type="application/zip",
    )


@router.post(
    "/runs/{run_id}/cancel",
    response={202: dict, 403: Error, 404: Error, 409: Error},
    summary="Ask a queued or running run to stop",
)
def cancel_run(request, run_id: int):
    require_csrf(request)
    # Acting needs more than seeing: the owner, or the teacher of the owner's class.
    run = access.actable_run(request, run_id)
    if run is None:
        raise NotFound(f"there is no run {run_id}")
    if not lifecycle.request_cancel(run_id):
        run.refresh_from_db()
        raise Conflict(f"run {run_id} has already finished ({run.status})")
    run.refresh_from_db()
    # A running run stops at its next report or between the batches of its evaluation: the page
    # says "stopping after this step" from this answer on.
    return 202, {**run.summary(), "cancel_requested": run.cancel_requested}
