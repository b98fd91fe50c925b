"""POST /api/races, GET /api/races/{id}, POST /api/races/{id}/cancel (P17, the four-method race).

The race's event stream, GET /api/races/{id}/events, is a plain Django view beside the run
stream (peftlab/api/events.py race_events): SSE needs a streaming response that ninja does not give.
"""

from ninja import Field, Router

from peftlab.api.csrf import require_csrf
from peftlab.api.errors import Error, StrictBody
from peftlab.classroom import access, quotas
from peftlab.errors import Conflict, NotFound
from peftlab.runs import races
from peftlab.runs.lifecycle import request_cancel
from peftlab.runs.models import Batch, Run
from workers import methods

router = Router(tags=["races"])


class RaceIn(StrictBody):
    # minLength and the methods' enum are documented, not enforced here: start_race refuses an
    # unknown task or method with a message that lists the choices.
    task: str = Field(
        races.DEFAULT_TASK, description="one of GET /api/tasks", max_length=64, json_schema_extra={"minLength": 1}
    )
    steps: int = Field(races.DEFAULT_STEPS, ge=1, le=methods.MAX_STEPS, description="optimizer steps of every lane")
    seed: int = Field(0, ge=0, lt=2**31, description="the same seed for every lane")
    methods: list[str] = Field(
        default_factory=lambda: list(races.DEFAULT_METHODS),
        min_length=1,
        max_length=races.MAX_LANES,
        description="one method per lane, each at its defaults (GET /api/methods)",
        json_schema_extra={"items": {"type": "string", "enum": list(methods.METHODS)}},
    )


def _get_race(request, race_id: int, act: bool = False) -> Batch:
    """The race, if this request may see it (or, with `act`, cancel it: peftlab/classroom/access.py);
    else 404 as for a missing one."""
    batches = access.actable_batches(request) if act else access.visible_batches(request)
    batch = batches.filter(pk=race_id, kind=Batch.RACE).first()
    if batch is None:
        raise NotFound(f"there is no race {race_id}")
    return batch


@router.get("/options", response={200: dict}, summary="The race's defaults: task, steps, lane methods; the lane limit")
def race_options(request):
    return {
        "default_task": races.DEFAULT_TASK,
        "default_steps": races.DEFAULT_STEPS,
        "default_methods": list(races.DEFAULT_METHODS),
        "max_lanes": races.MAX_LANES,
        "max_steps": methods.MAX_STEPS,
        "evals_per_lane": races.EVALS_PER_LANE,
        # What each method trains at its defaults, drawn before a race starts.
        "diagrams": {
            name: races.diagram(name, methods.validate_run(name, races.DEFAULT_TASK, 1, 0, {}).params)
            for name in methods.METHODS
        },
    }


@router.post(
    "",
    response={201: dict, 400: Error, 403: Error, 409: Error, 413: Error, 429: Error, 503: Error},
    summary="Start a race: one run per method",
)
def create_race(request, payload: RaceIn):
    require_csrf(request)
    submitter = quotas.submitter(request)
    batch = races.start_race(payload.task, payload.steps, payload.seed, payload.methods, submitter)
    return 201, races.describe_race(batch)


@router.get(
    "/{race_id}",
    response={200: dict, 404: Error},
    summary="A race: its status and every lane's run with its predicted memory and parameters",
)
def get_race(request, race_id: int):
    batch = _get_race(request, race_id)
    return {**races.describe_race(batch), "may_cancel": access.actable_batches(request).filter(pk=batch.pk).exists()}


@router.post(
    "/{race_id}/cancel",
    response={202: dict, 403: Error, 404: Error, 409: Error},
    summary="Cancel every lane that has not finished",
)
def cancel_race(request, race_id: int):
    require_csrf(request)
    batch = _get_race(request, race_id, act=True)
    # Last lanes first: the queued ones go before the worker could claim one of them.
    lanes = batch.runs.exclude(status__in=Run.FINISHED).order_by("-lane")
    cancelled = sorted(run.pk for run in lanes if request_cancel(run.pk))
    if not cancelled:
        raise Conflict(f"every lane of race {race_id} has already finished")
    return 202, {**races.describe_race(batch), "cancelled": cancelled}
