"""Error pages say what happened in the lab's words and never show a traceback or settings."""

import pytest
from django.template.loader import render_to_string
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_missing_page_is_the_labs_404():
    response = Client().get("/no/such/page/")
    assert response.status_code == 404
    text = response.content.decode()
    assert "That page is not here" in text and "Traceback" not in text and "urlpatterns" not in text


def test_the_server_error_page_renders_without_any_context():
    # Django renders 500.html with no context (the database may be what failed).
    html = render_to_string("500.html")
    assert "Something went wrong on our side" in html and "{%" not in html


def test_a_form_posted_without_its_csrf_token_gets_the_labs_403():
    response = Client(enforce_csrf_checks=True).post("/join/", {"code": "ABCDEF", "nickname": "x"})
    assert response.status_code == 403 and "This form has expired" in response.content.decode()
