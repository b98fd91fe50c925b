"""Schemathesis fuzzes every operation of /api/openapi.json, a bounded number of generated
requests each (valid and invalid bodies, parameters and query strings), through the real WSGI
application with CSRF satisfied: none may produce a server error."""
import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings

pytestmark = pytest.mark.django_db(transaction=True)

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())

# Django accepts a CSRF secret sent back unmasked, as cookie and header alike.
CSRF = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz"
CASES_PER_OPERATION = 12


@schema.parametrize()
@settings(max_examples=CASES_PER_OPERATION, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_generated_request_makes_a_server_error(case, sent, settings_for_fuzz):
    response = case.call(headers={"X-CSRFToken": CSRF}, cookies={"csrftoken": CSRF})
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"


@pytest.fixture
def settings_for_fuzz(settings, tmp_path):
    settings.PEFTLAB_ARTIFACTS_DIR = tmp_path
    settings.PEFTLAB_SUBMISSIONS_PER_MINUTE = 0
    return settings
