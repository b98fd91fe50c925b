"""A run's change reaches its event streams by a signal, not at their next database poll
(peftlab/runs/notify.py): through files in the embedded lab, through Redis pub/sub in the class
topology. Streams here poll once every ten minutes, so only the signal can wake them in time."""

import asyncio
import threading

import pytest

from peftlab.api import events
from peftlab.runs import lifecycle, notify
from peftlab.runs.models import Run
from tests.support.services import redis_url

pytestmark = pytest.mark.django_db(transaction=True)

A_POLL_NEVER_REACHED_MS = 600_000
WITHIN = 20  # seconds: a bound for a hang, far below the poll


@pytest.fixture(params=["files", pytest.param("redis", marks=pytest.mark.services)])
def carrier(request, settings, tmp_path):
    settings.PEFTLAB_NOTIFY_DIR = tmp_path / "notify"
    settings.PEFTLAB_NOTIFY_URL = redis_url() if request.param == "redis" else ""
    settings.PEFTLAB_SSE_POLL_MS = A_POLL_NEVER_REACHED_MS
    notify._publisher = None
    yield request.param
    notify._publisher = None


def test_a_watch_wakes_for_its_own_runs_only(carrier):
    async def scenario():
        async with notify.Watch([7, 9]) as watch:
            notify.changed(8)
            await asyncio.sleep(0.5)  # what a signal for another run would have woken by now
            assert not watch.event.is_set()
            notify.changed(9)
            await asyncio.wait_for(watch.wait(A_POLL_NEVER_REACHED_MS / 1000), WITHIN)
            # A change while the stream reads the database is not lost: the next wait returns.
            notify.changed(7)
            await asyncio.wait_for(watch.wait(A_POLL_NEVER_REACHED_MS / 1000), WITHIN)

    asyncio.run(scenario())


def test_a_signal_that_cannot_be_sent_is_no_error(settings, tmp_path):
    settings.PEFTLAB_NOTIFY_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    notify._publisher = None
    notify.changed(1)
    notify._publisher = None
    settings.PEFTLAB_NOTIFY_URL = ""
    settings.PEFTLAB_NOTIFY_DIR = tmp_path / "a-file" / "in-the-way"
    (tmp_path / "a-file").write_text("")
    notify.changed(1)


def test_the_stream_sends_each_reported_point_at_once(carrier):
    run = Run.objects.create(method="lora", task="sentiment", steps=3, params={}, status=Run.RUNNING, attempts=1)
    reporter = lifecycle.Reporter(lifecycle.Claim(run.pk, 1))
    point = lambda step: type("P", (), {"step": step, "loss": 1.0 / step, "elapsed": 0.1 * step})  # noqa: E731

    async def scenario():
        stream = events._stream(run.pk, 0)
        assert (await anext(stream)).startswith("retry:")
        assert "event: progress" in await asyncio.wait_for(anext(stream), WITHIN)
        for step in (1, 2):
            # The worker reports from its own thread; the stream, waiting on its poll, wakes.
            threading.Thread(target=reporter, args=([point(step)], [])).start()
            assert f"id: {step}\n" in await asyncio.wait_for(anext(stream), WITHIN)
            assert "event: progress" in await asyncio.wait_for(anext(stream), WITHIN)
        await stream.aclose()

    asyncio.run(scenario())
