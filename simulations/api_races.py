"""POST /api/races, GET /api/races/{id}, POST /api/races/{id}/cancel (P17, the four-method race).

The race's event stream, GET /api/races/{id}/events, is a plain Django view beside the run
stream (simulations/sse.py race_events): SSE needs a streaming response that ninja does not give.
"""
from ninja import Field, Router, Schema
from ninja.errors import HttpError
from pydantic import ConfigDict

from classroom import access, quotas
from workers import methods

from . import races
from .batches import BatchRequestError
from .cancelling import request_cancel
from .models import Batch, Run

router = Router(tags=["races"])


class RaceIn(Schema):
    model_config = ConfigDict(strict=True, extra="forbid")
    task: str = Field(races.DEFAULT_TASK, description="one of GET /api/tasks", max_length=64)
    steps: int = Field(races.DEFAULT_STEPS, ge=1, le=methods.MAX_STEPS, description="optimizer steps of every lane")
    seed: int = Field(0, ge=0, lt=2**31, description="the same seed for every lane")
    methods: list[str] = Field(default_factory=lambda: list(races.DEFAULT_METHODS), min_length=1,
                               max_length=races.MAX_LANES,
                               description="one method per lane, each at its defaults (GET /api/methods)")


class Error(Schema):
    error: str


def _get_race(request, race_id: int) -> Batch:
    """The race, if this request may see it (classroom/access.py); else 404 as for a missing one."""
    batch = access.visible_batches(request).filter(pk=race_id, kind=Batch.RACE).first()
    if batch is None:
        raise HttpError(404, f"there is no race {race_id}")
    return batch


@router.get("/options", summary="The race's defaults: task, steps, lane methods; the lane limit")
def race_options(request):
    return {"default_task": races.DEFAULT_TASK, "default_steps": races.DEFAULT_STEPS,
            "default_methods": list(races.DEFAULT_METHODS), "max_lanes": races.MAX_LANES,
            "max_steps": methods.MAX_STEPS, "evals_per_lane": races.EVALS_PER_LANE,
            # What each method trains at its defaults, drawn before a race starts.
            "diagrams": {name: races.diagram(name, methods.validate_run(
                name, races.DEFAULT_TASK, 1, 0, {}).params) for name in methods.METHODS}}


@router.post("", response={201: dict, 400: Error, 403: Error, 409: Error, 429: Error},
             summary="Start a race: one run per method")
def create_race(request, payload: RaceIn):
    from .api import _require_csrf

    _require_csrf(request)
    submitter = quotas.submitter(request)
    try:
        batch = races.start_race(payload.task, payload.steps, payload.seed, payload.methods, submitter)
    except BatchRequestError as exc:
        raise HttpError(400, str(exc)) from None
    return 201, races.describe_race(batch)


@router.get("/{race_id}", response={200: dict, 404: Error},
            summary="A race: its status and every lane's run with its predicted memory and parameters")
def get_race(request, race_id: int):
    return races.describe_race(_get_race(request, race_id))


@router.post("/{race_id}/cancel", response={202: dict, 403: Error, 404: Error, 409: Error},
             summary="Cancel every lane that has not finished")
def cancel_race(request, race_id: int):
    from .api import _require_csrf

    _require_csrf(request)
    batch = _get_race(request, race_id)
    # Last lanes first: the queued ones go before the worker could claim one of them.
    lanes = batch.runs.exclude(status__in=Run.FINISHED).order_by("-lane")
    cancelled = sorted(run.pk for run in lanes if request_cancel(run.pk))
    if not cancelled:
        raise HttpError(409, f"every lane of race {race_id} has already finished")
    return 202, {**races.describe_race(batch), "cancelled": cancelled}
