"""The lab's one JSON API: the NinjaAPI class, the statuses its OpenAPI document lists for every
operation, and the one place where an error becomes an answer. peftlab/urls.py mounts the routers.

django-ninja serves it and writes /api/openapi.json from the same code that validates requests.
"""

from functools import partial

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError
from pydantic import ValidationError as PydanticValidationError

from peftlab.api.errors import Error
from peftlab.errors import LabError
from simulations import experiments
from workers import datasets, methods

PLAYGROUNDS = "/playgrounds"  # the prefix peftlab/urls.py mounts every playground's router under


def _refusal(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


# The refusals every operation of a kind shares, added to its OpenAPI answers where its decorator
# has not declared them (each decorator declares what its own code raises: 404, 409, 429 ...).
SHARED_REFUSALS = {
    400: _refusal("A parameter or the body failed validation; the error names it"),
    403: _refusal("CSRF check failed: send the csrftoken cookie back in the X-CSRFToken header"),
    413: _refusal("The request body is larger than the server accepts"),
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again, where the lab knows",
        "schema": {"type": "integer", "minimum": 1},
    }
}
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
    - 403 on POST and DELETE: the CSRF refusal of peftlab/api/csrf.py;
    - 413 on POST: a body over DATA_UPLOAD_MAX_MEMORY_SIZE, which the CSRF check meets reading a
      form body even where the operation itself takes none;
    and its 429 and 503 answers may carry Retry-After (LabError's retry_after).
    """

    def get_openapi_operation_id(self, operation) -> str:
        """The operation's function name: unique across the API (tests/api checks), and the same
        wherever its module lives."""
        return operation.view_func.__name__

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


def _readable(errors: list[dict]) -> str:
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "payload"))
    message = first.get("msg", "invalid value")
    return f"{where}: {message}" if where else message


def _validation_error(api, request, exc: ValidationError):
    return api.create_response(request, {"error": _readable(exc.errors)}, status=400)


def _too_big(api, request, exc):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return api.create_response(request, {"error": f"request body is larger than {limit} bytes"}, status=413)


def _lab_error(api, request, exc: LabError):
    """Every refusal of the lab's own code (peftlab/errors.py): its message, its kind's status and,
    where the lab knows how long to wait, Retry-After."""
    response = api.create_response(request, {"error": exc.message}, status=exc.status)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


def _invalid(api, request, exc: Exception):
    """A request error of the engine or the math, which import nothing of the web project:
    400 with its message, as an Invalid would be."""
    return api.create_response(request, {"error": str(exc)}, status=400)


def _playground_math(api, request, exc: ValueError):
    """A ValueError inside a playground's operation (/api/playgrounds/...) is its math
    (simulations/) refusing a parameter: every function there checks its arguments and raises
    ValueError with a message for the learner, and the playground routers pass it on unchanged,
    so 400 with that message. Anywhere else a ValueError that no one turned into a LabError is a
    bug, answered 500 like any other. (A pydantic ValidationError is a ValueError too: a
    response that does not fit its schema, a bug wherever it happens.)"""
    playgrounds = api.get_root_path({}) + PLAYGROUNDS.strip("/") + "/"
    if request.path.startswith(playgrounds) and not isinstance(exc, PydanticValidationError):
        return _invalid(api, request, exc)
    raise exc


def _http_error(api, request, exc: HttpError):
    """What ninja itself refuses with HttpError (the lab's own code raises LabError)."""
    return api.create_response(request, {"error": str(exc)}, status=exc.status_code)


# Every error that becomes an answer, in this one table; ninja picks the entry nearest the
# exception's class (RunRequestError is a ValueError: its own entry wins over ValueError's).
HANDLERS = {
    LabError: _lab_error,
    # The framework's: a parameter or body that failed validation, a body over the size limit,
    # and HttpError for what ninja raises itself.
    ValidationError: _validation_error,
    RequestDataTooBig: _too_big,
    HttpError: _http_error,
    # The engine's and the math's request errors, wherever an operation lets them through.
    methods.RunRequestError: _invalid,
    experiments.ExperimentRequestError: _invalid,
    datasets.UnknownTask: _invalid,
    ValueError: _playground_math,
}


def lab_api(routers) -> LabAPI:
    """The API with its answers to errors, and `routers` ((prefix, router) pairs) mounted."""
    api = LabAPI(
        title="PEFT Lab API",
        version="1",
        urls_namespace="api",
        description="Real parameter-efficient fine-tuning runs of all-MiniLM-L6-v2.",
    )
    for kind, handler in HANDLERS.items():
        api.add_exception_handler(kind, partial(handler, api))
    for prefix, router in routers:
        api.add_router(prefix, router)
    return api
