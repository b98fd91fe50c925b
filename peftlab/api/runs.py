"""The public JSON API (DESIGN.md), served by django-ninja, which also writes /api/openapi.json.

Request bodies are described by pydantic schemas built from the method registry, so the OpenAPI
document and the validation are the same code.
"""
from importlib import import_module
from pathlib import Path

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import FileResponse, HttpRequest
from django.middleware.csrf import CsrfViewMiddleware
from ninja import Field, NinjaAPI, Query
from ninja.errors import HttpError, ValidationError
from pydantic import ConfigDict, create_model

from peftlab.classroom import access, quotas
from peftlab.classroom.refusals import Refused
from peftlab.classroom.viewer import viewer_of
from workers import artifacts, datasets, methods, run_cost
from peftlab.runs.tasks import BrokerUnavailable

from peftlab.runs import liveness, sse
from peftlab.api.errors import Error, StrictBody, checked_query
from peftlab.runs.cancelling import request_cancel
from peftlab.runs.sending import send_on_commit
from peftlab.runs.models import Run


def _refusal(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


# The refusals every operation of a kind shares, added to its OpenAPI answers where its decorator
# has not declared them (each decorator declares what its own code raises: 404, 409, 429 ...).
SHARED_REFUSALS = {
    400: _refusal("A parameter or the body failed validation; the error names it"),
    403: _refusal("CSRF check failed: send the csrftoken cookie back in the X-CSRFToken header"),
    413: _refusal("The request body is larger than the server accepts"),
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again, where the lab knows",
                               "schema": {"type": "integer", "minimum": 1}}}
_ANNOTATIONS = {"type", "title", "description", "default", "examples"}


def _may_fail_validation(parameter: dict) -> bool:
    """Whether a parameter can be refused: anything but free text (a number, a boolean, a
    bounded or enumerated string) is checked by ninja or by the operation's own code."""
    schema = parameter.get("schema", {})
    return schema.get("type") != "string" or bool(set(schema) - _ANNOTATIONS)


class LabAPI(NinjaAPI):
    """The lab's NinjaAPI: its OpenAPI document lists every status an operation can answer.

    Besides what each decorator declares, an operation answers
    - 400 when it has a body or a parameter that can fail validation (ValidationError, below);
    - 403 on POST and DELETE: the CSRF refusal of _require_csrf;
    - 413 on POST: a body over DATA_UPLOAD_MAX_MEMORY_SIZE, which the CSRF check meets reading a
      form body even where the operation itself takes none;
    and its 429 and 503 answers may carry Retry-After (Refused's retry_after).
    """

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schema.setdefault("components", {}).setdefault("schemas", {}).setdefault("Error", Error.json_schema())
        for operations in schema["paths"].values():
            for method, operation in operations.items():
                responses = operation["responses"]
                shared = []
                if "requestBody" in operation or any(map(_may_fail_validation, operation.get("parameters", ()))):
                    shared.append(400)
                if method in ("post", "delete"):
                    shared.append(403)
                if method == "post":
                    shared.append(413)
                for status in shared:  # ninja keys the answers by int
                    responses.setdefault(status, SHARED_REFUSALS[status])
                for status in (429, 503):
                    if status in responses:
                        responses[status].setdefault("headers", RETRY_AFTER)
                operation["responses"] = dict(sorted(responses.items(), key=lambda item: int(item[0])))
        return schema


api = LabAPI(title="PEFT Lab API", version="1", urls_namespace="api",
             description="Real parameter-efficient fine-tuning runs of all-MiniLM-L6-v2.")


# Playground routers: one module per playground family, each mounted under /api/playgrounds.
PLAYGROUND_ROUTERS = (
    "peftlab.playgrounds.decide",
    "peftlab.playgrounds.lowrank",
    "peftlab.playgrounds.quant",
    "peftlab.playgrounds.memory",
    "peftlab.playgrounds.sparsity",
    "peftlab.playgrounds.review",
    "peftlab.playgrounds.lora",
    "peftlab.playgrounds.family",
    "peftlab.playgrounds.prompting",
    "peftlab.playgrounds.serving",
    "peftlab.playgrounds.race_sim",
)
for _module in PLAYGROUND_ROUTERS:
    api.add_router("/playgrounds", import_module(_module).router)
api.add_router("/races", import_module("peftlab.api.races").router)
api.add_router("", import_module("peftlab.api.compare").router)  # compare, Pareto, run code
api.add_router("/experiments", import_module("peftlab.api.experiments").router)
api.add_router("/classes", import_module("peftlab.api.classes").router)
api.add_router("/datasets", import_module("peftlab.api.datasets").router)


def _readable(errors: list[dict]) -> str:
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "payload"))
    message = first.get("msg", "invalid value")
    return f"{where}: {message}" if where else message


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    return api.create_response(request, {"error": _readable(exc.errors)}, status=400)


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return api.create_response(request, {"error": f"request body is larger than {limit} bytes"}, status=413)


@api.exception_handler(BrokerUnavailable)
def _broker_down(request, exc):
    return api.create_response(request, {"error": (
        f"{exc}: nothing was queued; try again in a minute")}, status=503)


@api.exception_handler(Refused)
def _refused(request, exc: Refused):
    """A quota, a class setting or a rate limit said no (peftlab/classroom/quotas.py, ratelimit.py)."""
    response = api.create_response(request, {"error": exc.message}, status=exc.status)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return api.create_response(request, {"error": str(exc)}, status=exc.status_code)


def _require_csrf(request: HttpRequest) -> None:
    """ninja exempts its views from CSRF; POSTs here follow Django's rules all the same."""
    reason = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
    if reason is not None:
        raise HttpError(403, "CSRF check failed: load any page to get the csrftoken cookie and "
                             "send it back in the X-CSRFToken header")


def _field_for(param: methods.Param):
    if param.kind == "targets":
        return (list[str] | None, Field(None, description=param.help, min_length=1,
                                        json_schema_extra={"items": {"enum": list(param.describe()["choices"])}}))
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
    method: str = Field(..., description="one of GET /api/methods", max_length=32,
                        json_schema_extra={"enum": list(methods.METHODS)})
    task: str = Field(..., description="one of GET /api/tasks: a shipped task, or an uploaded CSV "
                                       "this visitor may use (upload-<id>)", max_length=64,
                      json_schema_extra={"minLength": 1})
    steps: int = Field(100, ge=1, le=methods.MAX_STEPS, description="optimizer steps")
    seed: int = Field(0, ge=0, lt=2**31)
    params: RunParams = Field(default_factory=RunParams)


@api.get("/methods", response={200: list}, summary="Methods, their parameters, defaults and bounds")
def list_methods(request):
    common = {"steps": {"minimum": 1, "maximum": methods.MAX_STEPS, "default": 100},
              "seed": {"minimum": 0, "maximum": 2**31 - 1, "default": 0}}
    return [{**m.describe(), **common} for m in methods.METHODS.values()]


def tasks_for(request) -> list[dict]:
    """The shipped tasks, then the uploaded datasets this request may train on (newest first)."""
    shipped = [{**t, "uploaded": False} for t in datasets.list_tasks()]
    uploaded = [{"name": d.task_name, "title": d.name,
                 "description": f"Uploaded CSV \u201c{d.file_name or d.name}\u201d.",
                 "labels": d.labels, "train_size": d.train_size, "val_size": d.val_size,
                 "uploaded": True, "dataset": d.pk} for d in access.visible_datasets(request)]
    return shipped + uploaded


@api.get("/tasks", response={200: list},
         summary="The tasks a run can train on: the shipped ones, and the uploaded CSVs this visitor may use "
                 "(task upload-<id>)")
def list_tasks(request):
    return tasks_for(request)


@api.post("/runs", response={201: dict, 400: Error, 403: Error, 409: Error, 413: Error, 429: Error, 503: Error},
          summary="Queue a run")
def create_run(request, payload: RunIn):
    _require_csrf(request)
    submitter = quotas.submitter(request)
    try:
        spec = methods.validate_run(payload.method, payload.task, payload.steps, payload.seed,
                                    payload.params.model_dump(exclude_unset=True),
                                    may_use_task=submitter.may_use_task)
    except methods.RunRequestError as exc:
        raise HttpError(400, str(exc)) from None
    with transaction.atomic():
        submitter.check([spec])
        run = Run.objects.create(method=spec.method, task=spec.task, steps=spec.steps,
                                 seed=spec.seed, params=spec.params, queue=settings.PEFTLAB_RUN_QUEUE,
                                 **submitter.run_fields())
        send_on_commit([run])
    return 201, run.summary()


@api.get("/runs/estimate", response={200: dict, 400: Error},
         summary="A run's estimated worker time, before it is queued, and the run budget of whoever asks")
def estimate_run(request, method: str = checked_query(..., max_length=32, enum=list(methods.METHODS)),
                 task: str = Query(..., min_length=1, max_length=64),
                 steps: int = Query(100, ge=1, le=methods.MAX_STEPS),
                 batch_size: int = Query(methods.BATCH_SIZE.default, ge=1, le=methods.BATCH_SIZE.maximum),
                 eval_every: int = Query(methods.EVAL_EVERY.default, ge=0, le=methods.EVAL_EVERY.maximum)):
    try:
        spec = methods.validate_run(method, task, steps, 0, {"batch_size": batch_size, "eval_every": eval_every},
                                    may_use_task=access.may_use_task(request))
    except methods.RunRequestError as exc:
        raise HttpError(400, str(exc)) from None
    limits = quotas.limits_of(viewer_of(request))
    return {"seconds": round(quotas.estimated_seconds(spec), 1), "machine": run_cost.machine(),
            "budget_seconds": limits.run_minutes * 60 or None, "where": limits.where}


@api.get("/runs", response={200: list, 400: Error}, summary="Recent runs, newest first (without their points)")
def list_runs(request, limit: int = Query(50, ge=1, le=500)):
    liveness.check_now_and_then()
    return [run.summary() for run in access.visible_runs(request)[:limit]]


def _get_run(request, run_id: int) -> Run:
    """The run, if this request may see it (peftlab/classroom/access.py); else 404 as for a missing one."""
    liveness.check_now_and_then()
    run = access.visible_run(request, run_id)
    if run is None:
        raise HttpError(404, f"there is no run {run_id}")
    return run


@api.get("/runs/{run_id}", response={200: dict, 404: Error},
         summary="A run with the points of its current attempt")
def get_run(request, run_id: int):
    run = _get_run(request, run_id)
    points = [p.as_dict() for p in run.shown_points()]
    last_step = points[-1]["step"] if points else 0
    return {**run.summary(), "points": points, "evals": [e.as_dict() for e in run.shown_evals()],
            "may_cancel": access.may_act_on_run(request, run),
            # Where the events stream should resume to follow on from these points.
            "last_event_id": sse.event_id(run.attempt, last_step)}


@api.get("/runs/{run_id}/adapter", response={200: None, 404: Error, 409: Error},
         openapi_extra={"responses": {200: {"description": "The zip", "content": {
             "application/zip": {"schema": {"type": "string", "format": "binary"}}}}}},
         summary="Download what the run trained, as a zip (peft's format where peft has the method)")
def download_adapter(request, run_id: int):
    run = _get_run(request, run_id)
    folder = Path(settings.PEFTLAB_ARTIFACTS_DIR) / str(run.pk)
    if run.status != Run.SUCCEEDED or not folder.is_dir():
        raise HttpError(409, f"run {run_id} has nothing to download ({run.status}); only a "
                             "succeeded run saves what it trained")
    archive = artifacts.zip_folder(folder)
    return FileResponse(archive.open("rb"), as_attachment=True,
                        filename=f"peftlab-run-{run.pk}-{run.method}.zip", content_type="application/zip")


@api.post("/runs/{run_id}/cancel", response={202: dict, 403: Error, 404: Error, 409: Error},
          summary="Ask a queued or running run to stop")
def cancel_run(request, run_id: int):
    _require_csrf(request)
    # Acting needs more than seeing: the owner, or the teacher of the owner's class.
    run = access.actable_run(request, run_id)
    if run is None:
        raise HttpError(404, f"there is no run {run_id}")
    if not request_cancel(run_id):
        run.refresh_from_db()
        raise HttpError(409, f"run {run_id} has already finished ({run.status})")
    run.refresh_from_db()
    return 202, run.summary()
