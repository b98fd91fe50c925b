"""Schemathesis fuzzes every operation of /api/openapi.json through the real WSGI application,
with CSRF satisfied, and checks each answer against the document:

- not_a_server_error: no 5xx;
- status_code_conformance: the status is one the operation lists;
- content_type_conformance and response_schema_conformance: the body is what the document says
  for that status (an {"error": ...} for every refusal);
- response_headers_conformance: Retry-After, where a 429 or 503 sends it, is whole seconds;
- negative_data_rejection: a request the schema forbids is refused;
- positive_data_acceptance: a request the schema allows is carried out (or meets 404, 409 ...),
  except on the operations of POSITIVE_OFF, whose schema cannot say everything the code checks.

Cases per operation: CASES_PER_OPERATION generated ones, plus Schemathesis's examples and
coverage phases (each bound, enum value and required field of the document).

P6 and P7 train a small network for every seed, about a second of CPU each (tests/unit/test_sparsity.py
checks what they compute): here each seed is answered with seed 0's real result, so that the fuzz
spends its time on the HTTP contract (validation, statuses, bodies), not on training.
"""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.django_db(transaction=True)

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())

# Django accepts a CSRF secret sent back unmasked, as cookie and header alike.
CSRF = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz"
CASES_PER_OPERATION = 12

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]

# Where input the schema allows may still be refused with 400, and why the schema cannot say more.
_TASK = "a task is a shipped one or an upload (upload-<id>) that only some visitors may use"
POSITIVE_OFF = {
    "POST /api/runs": _TASK + "; and each method takes only its own params",
    "GET /api/runs/estimate": _TASK,
    "POST /api/races": _TASK,
    "POST /api/experiments": _TASK,
    "GET /api/experiments/plan": _TASK,
    "GET /api/pareto": _TASK,
    "POST /api/datasets": "the file must be a CSV with a text,label header and enough examples per label",
    "GET /api/playgrounds/low-rank": "true_rank is at most size",
    "GET /api/playgrounds/memory-calculator": "rank is at most the smaller side of the targeted matrices; "
    "a custom model's hidden is a multiple of its heads",
    "GET /api/playgrounds/memory-calculator/lab": "LoRA, QLoRA and DoRA need targets and a rank at most "
    "the smaller side of the targeted matrices",
    "GET /api/playgrounds/chain-of-thought": "each problem takes its own number of values, and its steps "
    "must divide evenly",
    "GET /api/playgrounds/four-method-race/simulated": "each method must have been fitted on the task",
}


def test_every_operation_left_out_of_positive_data_acceptance_exists():
    labels = {operation.ok().label for operation in schema.get_all_operations()}
    assert set(POSITIVE_OFF) <= labels


@schema.parametrize()
@settings(
    max_examples=CASES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_conforms_to_the_openapi_document(case, sent, settings_for_fuzz, one_training_per_playground):
    checks = [c for c in CHECKS if not (c is positive_data_acceptance and case.operation.label in POSITIVE_OFF)]
    case.call_and_validate(headers={"X-CSRFToken": CSRF}, cookies={"csrftoken": CSRF}, checks=checks)


@pytest.fixture
def settings_for_fuzz(settings, tmp_path):
    settings.PEFTLAB_ARTIFACTS_DIR = tmp_path
    settings.PEFTLAB_SUBMISSIONS_PER_MINUTE = settings.PEFTLAB_ADDRESS_SUBMISSIONS_PER_MINUTE = 0
    return settings


@pytest.fixture
def one_training_per_playground(monkeypatch):
    """P6 and P7 answer every seed with seed 0's result (cached as usual: it is the real one)."""
    from peftlab.playgrounds import sparsity as api_sparsity

    lottery, intrinsic = api_sparsity._lottery, api_sparsity._intrinsic
    monkeypatch.setattr(api_sparsity, "_lottery", lambda seed, scope: lottery(0, scope))
    monkeypatch.setattr(api_sparsity, "_intrinsic", lambda seed: intrinsic(0))
