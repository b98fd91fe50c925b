"""The lab's one error model (peftlab/errors.py) and the one place that answers it
(peftlab/api/lab.py): every kind reaches the client as {"error": message} with its status and,
where it knows one, Retry-After; the engine's and the math's request errors are 400; a ValueError
is the math refusing a parameter under /api/playgrounds/ and a bug (500) anywhere else.

The answers go through a throwaway API (this module is its URLconf), built by lab_api like the
lab's own, and through the lab's own URLs where an operation is made to fail."""

import ast
from pathlib import Path

import pytest
from django.test import Client
from django.urls import path
from ninja import Router
from pydantic import BaseModel

from peftlab import errors
from peftlab.api.lab import HANDLERS, PLAYGROUNDS, lab_api
from peftlab.errors import LabError
from simulations import decision
from simulations.experiments import ExperimentRequestError
from workers.datasets import UnknownTask
from workers.methods import RunRequestError

ROOT = Path(__file__).resolve().parents[2]
STATUSES = {
    errors.Invalid: 400,
    errors.NotAllowed: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.TooMany: 429,
    errors.Unavailable: 503,
}
BY_NAME = {kind.__name__: kind for kind in errors.KINDS}

probe = Router()


@probe.get("/kind/{name}")
def raise_kind(request, name: str, retry_after: int | None = None):
    raise BY_NAME[name](f"{name}: what went wrong, and what to do", retry_after=retry_after)


ENGINE_ERRORS = {
    "run": RunRequestError("rank must be between 1 and 64 (got 0)"),
    "experiment": ExperimentRequestError("ranks must be 1 to 6 distinct ranks"),
    "task": UnknownTask("unknown task 'nope'; known tasks: sentiment"),
}


@probe.get("/engine/{name}")
def raise_engine_error(request, name: str):
    raise ENGINE_ERRORS[name]


@probe.get("/value-error")
def a_bug(request):
    raise ValueError("a ValueError outside the playgrounds is a bug")


playground = Router()


@playground.get("/refuses")
def math_refuses(request):
    raise ValueError("seed must be between 0 and 9999 (got -1)")


class _Shape(BaseModel):
    n: int


@playground.get("/bad-shape")
def a_response_bug(request):
    _Shape.model_validate({"n": "not a number"})  # a pydantic ValidationError: a ValueError, and a bug


api = lab_api([("/probe", probe), (PLAYGROUNDS, playground)])
urlpatterns = [path("api/", api.urls)]

here = pytest.mark.urls(__name__)


def test_every_kind_has_its_status_and_every_kind_is_listed():
    assert {kind: kind.status for kind in errors.KINDS} == STATUSES
    assert all(issubclass(kind, LabError) and not issubclass(kind, ValueError) for kind in errors.KINDS)
    exc = errors.TooMany("slow down", retry_after=7)
    assert (exc.message, exc.retry_after, str(exc)) == ("slow down", 7, "slow down")


@here
@pytest.mark.parametrize("kind", errors.KINDS, ids=lambda kind: kind.__name__)
def test_every_kind_reaches_the_client_as_its_status_and_message(client, kind):
    name = kind.__name__
    response = client.get(f"/api/probe/kind/{name}")
    assert response.status_code == STATUSES[kind]
    assert response.json() == {"error": f"{name}: what went wrong, and what to do"}
    assert "Retry-After" not in response


@here
@pytest.mark.parametrize("kind", [errors.TooMany, errors.Unavailable], ids=lambda kind: kind.__name__)
def test_a_kind_that_knows_when_to_try_again_says_so(client, kind):
    response = client.get(f"/api/probe/kind/{kind.__name__}?retry_after=42")
    assert response.status_code == STATUSES[kind] and response["Retry-After"] == "42"


def test_the_domain_refusals_are_kinds():
    from peftlab.api.uploads import UploadError, UploadTooLarge
    from peftlab.runs.batches import BatchRequestError
    from peftlab.runs.lifecycle import BrokerUnavailable

    assert issubclass(UploadError, errors.Invalid) and issubclass(UploadTooLarge, errors.TooLarge)
    assert issubclass(BatchRequestError, errors.Invalid) and issubclass(BrokerUnavailable, errors.Unavailable)


@here
@pytest.mark.parametrize("name", list(ENGINE_ERRORS))
def test_the_engines_and_the_maths_request_errors_are_400_anywhere(client, name):
    response = client.get(f"/api/probe/engine/{name}")
    assert response.status_code == 400
    assert response.json() == {"error": str(ENGINE_ERRORS[name])}


@here
def test_a_value_error_under_the_playgrounds_is_the_math_refusing_a_parameter(client):
    response = client.get("/api/playgrounds/refuses")
    assert response.status_code == 400
    assert response.json() == {"error": "seed must be between 0 and 9999 (got -1)"}


@here
def test_a_value_error_outside_the_playgrounds_is_a_bug():
    response = Client(raise_request_exception=False).get("/api/probe/value-error")
    assert response.status_code == 500
    with pytest.raises(ValueError, match="is a bug"):  # not answered: Django's 500 and its log
        Client().get("/api/probe/value-error")


@here
def test_a_response_that_fails_its_schema_is_a_bug_even_in_a_playground():
    assert Client(raise_request_exception=False).get("/api/playgrounds/bad-shape").status_code == 500


@pytest.mark.django_db
def test_the_labs_own_urls_follow_the_rule(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise ValueError("the math says no")

    monkeypatch.setattr(decision, "recommend", refuse)
    response = client.get("/api/playgrounds/decision-tree")
    assert response.status_code == 400 and response.json() == {"error": "the math says no"}

    monkeypatch.setattr("peftlab.classroom.access.usable_tasks", refuse)
    assert Client(raise_request_exception=False).get("/api/tasks").status_code == 500


def test_the_handler_table_answers_the_lab_the_framework_and_the_lower_layers_request_errors():
    from django.core.exceptions import RequestDataTooBig
    from ninja.errors import HttpError, ValidationError

    assert set(HANDLERS) == {
        LabError,
        ValidationError,
        RequestDataTooBig,
        HttpError,
        RunRequestError,
        ExperimentRequestError,
        UnknownTask,
        ValueError,
    }


# --- what the code no longer does -----------------------------------------------------------------
def _modules(folder: str):
    for file in sorted((ROOT / folder).rglob("*.py")):
        if "migrations" not in file.parts:
            yield file, ast.parse(file.read_text(), filename=str(file))


def _names(node) -> set[str]:
    if node is None:
        return set()
    parts = node.elts if isinstance(node, ast.Tuple) else [node]
    return {part.attr if isinstance(part, ast.Attribute) else getattr(part, "id", "") for part in parts}


def test_no_module_of_the_lab_raises_ninjas_http_error():
    """The lab's code raises the kinds of peftlab/errors.py; HttpError is only answered (lab.py),
    for what ninja raises itself."""
    raised, imported = [], []
    for file, tree in _modules("peftlab"):
        where = file.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and "HttpError" in _names(node.func):
                raised.append(f"{where}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and any(alias.name == "HttpError" for alias in node.names):
                imported.append(where)
    assert raised == []
    assert imported == ["peftlab/api/lab.py"]


# The one except clause naming ValueError that the playgrounds keep: a cached result that cannot be
# read (missing, or half-written JSON) is computed again.
KEPT_VALUE_ERROR_CLAUSES = {("peftlab/playgrounds/sparsity.py", "except (OSError, ValueError):")}


def test_the_playgrounds_leave_the_maths_value_errors_to_the_api():
    clauses = set()
    for file, tree in _modules("peftlab/playgrounds"):
        lines = file.read_text().splitlines()
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and "ValueError" in _names(node.type):
                clauses.add((file.relative_to(ROOT).as_posix(), lines[node.lineno - 1].strip()))
    assert clauses == KEPT_VALUE_ERROR_CLAUSES
