import asyncio
import os
import re

import pytest
from playwright.sync_api import sync_playwright

from tests.support.browsing import CHROMIUM_ARGS, SCREENSHOTS
from tests.support.labstack import Lab
from tests.support.services import postgres_database, redis_url

# The fault tests' `stack` fixture (tests/faults/test_faults_*.py).
pytest_plugins = ["tests.support.faultstack"]

# The suite checks the default precision (auto: bf16 where the CPU multiplies bf16 natively, fp32
# elsewhere; workers/precision.py) in what runs
# record; the tests of another set it themselves. Labs started here inherit this environment.
os.environ.pop("PEFTLAB_AUTOCAST", None)


def pytest_collection_modifyitems(items):
    """Files marked slow first, in their own order: a parallel run (`make test`) then spends its
    last minutes on many short files, not waiting on one long file that started late."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_configure(config):
    """This process's share of the cores for the models tests train here (tests/support/parallel.py)."""
    if threads := int(os.environ.get("PEFTLAB_TORCH_THREADS") or 0):
        import torch

        torch.set_num_threads(threads)


# Playwright's sync API drives the browser from an event loop that it marks as running in this
# thread between its calls, for as long as the session's browser lives. A test of its own
# (asyncio.run, an async view through Django's test client, and Django's connections, which are
# kept per task while a loop runs) runs with that mark lifted, from before its first fixture to
# after its last; browser tests keep it, as Playwright needs it.
PLAYWRIGHT_FIXTURES = {"browser", "page"}


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    loop = asyncio._get_running_loop()
    if loop is not None and not PLAYWRIGHT_FIXTURES & set(item.fixturenames):
        item.foreign_event_loop = loop
        asyncio._set_running_loop(None)
    yield


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    if (loop := getattr(item, "foreign_event_loop", None)) is not None:
        asyncio._set_running_loop(loop)


@pytest.fixture(autouse=True)
def _fresh_counters_and_quick_passwords(settings, tmp_path):
    """Each in-process test starts with empty rate-limit counters (the Django cache holds only
    those): every request of a test process comes from 127.0.0.1, and per-address counts would
    otherwise carry from one test to the next. Passwords hash quickly."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(tmp_path)}
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_connection_left_in_asgirefs_thread():
    """asyncio.run in a test sends the ORM's async calls to asgiref's one global thread, whose
    database connection outlives the test: closed after each test, so that nothing it holds
    (an open transaction takes SQLite's write lock) reaches the next one."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=30)


def start_embedded_lab(folder) -> Lab:
    """The laptop mode, as `make run` starts it: SQLite, filesystem broker, `lab all`."""
    lab = Lab(folder)
    lab.manage("migrate", "--noinput")
    lab.start("all")
    return lab


@pytest.fixture(scope="session")
def shared_embedded_lab(tmp_path_factory):
    lab = start_embedded_lab(tmp_path_factory.mktemp("embedded"))
    yield lab
    lab.stop_all()


@pytest.fixture(scope="module")
def embedded_lab(shared_embedded_lab):
    """The embedded lab, one per test process (its worker reads the model once), lent to each
    module in turn: the module's unfinished runs are cancelled when it is done, so the next one
    finds the worker idle. Runs of earlier modules stay listed."""
    yield shared_embedded_lab
    shared_embedded_lab.cancel_unfinished()


@pytest.fixture(scope="module")
def empty_lab(tmp_path_factory):
    """An embedded lab of the module's own, for tests of what a lab shows before any run. A
    module uses it as its `embedded_lab` by overriding that fixture."""
    lab = start_embedded_lab(tmp_path_factory.mktemp("empty"))
    yield lab
    lab.stop_all()


@pytest.fixture(scope="module")
def class_lab(tmp_path_factory):
    """The class topology natively: PostgreSQL + Redis (this test process's own), `lab web` and `lab worker` apart,
    runs sent to the gpu queue (this machine has no GPU: the worker records the CPU); the web
    process pools three database connections."""
    url, drop = postgres_database()
    lab = Lab(
        tmp_path_factory.mktemp("class"),
        DATABASE_URL=url,
        CELERY_BROKER_URL=redis_url(),
        PEFTLAB_RUN_QUEUE="gpu",
        PEFTLAB_WORKER_QUEUES="gpu,cpu",
        PEFTLAB_WORKER_NAME="gpu",
        PEFTLAB_DB_POOL_SIZE="3",
    )
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
    page.on(
        "console",
        lambda msg: (
            errors.append(
                f"console error: {msg.text} (at {msg.location.get('url')}:{msg.location.get('lineNumber')}) "
                f"on {page.url}"
            )
            if msg.type == "error"
            else None
        ),
    )
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
    from peftlab.runs import lifecycle

    calls = []
    monkeypatch.setattr(lifecycle, "send_message", lambda run: calls.append((run.pk, run.queue)))
    return calls
