import re

import pytest
from playwright.sync_api import sync_playwright

from .browsing import CHROMIUM_ARGS, SCREENSHOTS
from .labstack import Lab, postgres_database, redis_url


@pytest.fixture(scope="module")
def embedded_lab(tmp_path_factory):
    """The laptop mode, as `make run` starts it: SQLite, filesystem broker, `lab all`."""
    lab = Lab(tmp_path_factory.mktemp("embedded"))
    lab.manage("migrate", "--noinput")
    lab.start("all")
    yield lab
    lab.stop_all()


@pytest.fixture(scope="module")
def class_lab(tmp_path_factory):
    """The class topology natively: PostgreSQL + Redis, `lab web` and `lab worker` apart,
    runs sent to the gpu queue (this machine has no GPU: the worker records the CPU)."""
    url, drop = postgres_database()
    lab = Lab(tmp_path_factory.mktemp("class"), DATABASE_URL=url, CELERY_BROKER_URL=redis_url(),
              PEFTLAB_RUN_QUEUE="gpu", PEFTLAB_WORKER_QUEUES="gpu,cpu", PEFTLAB_WORKER_NAME="gpu")
    lab.manage("migrate", "--noinput")
    lab.start("web")
    lab.start("worker")
    yield lab
    lab.stop_all()
    drop()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, never a downloaded one."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, embedded_lab):
    """A fresh context and page on the lab; fails the test on any page or console error."""
    SCREENSHOTS.mkdir(exist_ok=True)
    context = browser.new_context(base_url=embedded_lab.base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors, expected = [], []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(
        f"console error: {msg.text} (at {msg.location.get('url')}:{msg.location.get('lineNumber')}) "
        f"on {page.url}") if msg.type == "error" else None)
    page.expected_console_errors = expected
    yield page
    context.close()
    # An error the test declared must have happened, once it is accounted for; any other fails.
    unexpected = list(errors)
    for pattern in expected:
        matching = [e for e in unexpected if re.search(pattern, e)]
        assert matching, f"the expected console error /{pattern}/ never came; errors were {errors}"
        unexpected.remove(matching[0])
    assert not unexpected, "errors in the browser:\n" + "\n".join(unexpected)


@pytest.fixture
def csrf_client():
    """A Django test client that behaves like a browser: CSRF enforced, the token taken from a
    page's cookie and sent back as X-CSRFToken."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.get("/")
    client.defaults["HTTP_X_CSRFTOKEN"] = client.cookies["csrftoken"].value
    return client


@pytest.fixture
def sent(monkeypatch):
    """Messages to the broker, recorded instead of sent: (run id, queue) in the order sent."""
    from workers import tasks

    calls = []
    monkeypatch.setattr(tasks.train_run, "apply_async", lambda args, queue, **_: calls.append((args[0], queue)))
    return calls
