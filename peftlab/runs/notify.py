"""Tells the web server's event streams that a run has changed, so that a point reaches the
browser milliseconds after the worker wrote it rather than at the stream's next database poll.

The worker calls `changed(run_id)` after it commits points or a status. A stream holds a
`Watch` on its runs and awaits `watch.wait(timeout)`, which returns as soon as one of them has
changed, or after `timeout`. Either way the stream then reads the database, the source of truth:
a lost signal costs latency, never a point.

Two carriers, one per topology (settings.PEFTLAB_NOTIFY_URL):
- Redis pub/sub, where the broker is Redis (web servers and workers on separate machines or
  containers): one channel, the run's id as the message; one subscription per web process.
- Files, in the embedded lab (one machine, no Redis): a file per run under var/notify that the
  worker appends a byte to; one task per web process watches the sizes of the watched runs'
  files every FILE_POLL_SECONDS (a stat each: microseconds).
"""

import asyncio
import logging
import os
import weakref
from collections import defaultdict
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

CHANNEL = "peftlab:runs"
FILE_POLL_SECONDS = 0.02
SUBSCRIBE_SECONDS = 0.5  # a stream waits at most this for the subscription (Redis down: polls)


def _uses_redis() -> bool:
    return settings.PEFTLAB_NOTIFY_URL.startswith(("redis://", "rediss://", "unix://"))


def _file(run_id: int) -> Path:
    return Path(settings.PEFTLAB_NOTIFY_DIR) / str(run_id)


def _size(run_id: int) -> int:
    try:
        return os.stat(_file(run_id)).st_size
    except OSError:
        return 0


# --- the worker's side -------------------------------------------------------------------------
_publisher = None


def changed(run_id: int) -> None:
    """Say that a run has new points or a new status (call after the commit). Never raises: a
    stream that misses the signal reads the change at its next poll."""
    global _publisher
    try:
        if _uses_redis():
            if _publisher is None:
                import redis

                _publisher = redis.Redis.from_url(
                    settings.PEFTLAB_NOTIFY_URL, socket_timeout=0.5, socket_connect_timeout=0.5
                )
            _publisher.publish(CHANNEL, run_id)
        else:
            path = _file(run_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as f:  # the size grows by one per change: no change is equal to the last
                f.write(b".")
    except Exception as exc:  # noqa: BLE001 - a signal is an optimisation, never a failure
        log.debug("could not signal run %s: %s", run_id, exc)


# --- the web server's side ---------------------------------------------------------------------
class Watch:
    """A stream's subscription to its runs' changes, for as long as the `async with` lasts."""

    def __init__(self, run_ids):
        self.run_ids = set(run_ids)
        self.event = asyncio.Event()

    async def __aenter__(self) -> "Watch":
        watcher = _watcher()
        watcher.add(self)
        try:  # a signal sent before Redis has our subscription would be lost (a poll's delay)
            await asyncio.wait_for(watcher.listening.wait(), SUBSCRIBE_SECONDS)
        except TimeoutError:
            pass
        return self

    async def __aexit__(self, *exc) -> None:
        _watcher().remove(self)

    async def wait(self, timeout: float) -> None:
        """Until one of the runs changes (possibly before this call, since the last wait), or
        `timeout` seconds."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            pass
        self.event.clear()


class _Watcher:
    """The watches of one event loop (a web process has one), and the task that wakes them."""

    def __init__(self):
        self.watches: dict[int, set[Watch]] = defaultdict(set)
        self.sizes: dict[int, int] = {}  # files: each watched run's file as last seen
        self.task: asyncio.Task | None = None
        self.listening = asyncio.Event()  # signals reach this process from now on
        if not _uses_redis():
            self.listening.set()

    def add(self, watch: Watch) -> None:
        for run_id in watch.run_ids:
            self.watches[run_id].add(watch)
            if not _uses_redis():
                self.sizes.setdefault(run_id, _size(run_id))  # a change from now on wakes it
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(
                self._subscribe() if _uses_redis() else self._watch_files()
            )

    def remove(self, watch: Watch) -> None:
        for run_id in watch.run_ids:
            self.watches[run_id].discard(watch)
            if not self.watches[run_id]:
                del self.watches[run_id]

    def wake(self, run_id: int) -> None:
        for watch in self.watches.get(run_id, ()):
            watch.event.set()

    async def _watch_files(self) -> None:
        while self.watches:
            await asyncio.sleep(FILE_POLL_SECONDS)
            for run_id in list(self.watches):
                size = _size(run_id)
                if size != self.sizes.get(run_id):
                    self.sizes[run_id] = size
                    self.wake(run_id)
            for run_id in set(self.sizes) - set(self.watches):
                del self.sizes[run_id]

    async def _subscribe(self) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        while self.watches:
            try:
                client = aioredis.Redis.from_url(settings.PEFTLAB_NOTIFY_URL, socket_connect_timeout=2)
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self.listening.set()
                    while self.watches:
                        message = await pubsub.get_message(timeout=1.0)
                        if message and message["type"] == "message":
                            self.wake(int(message["data"]))
                await client.aclose()
            except (OSError, RedisError) as exc:  # Redis restarting: streams fall back to polling
                log.debug("no run signals from Redis: %s", exc)
                await asyncio.sleep(1)
            finally:
                self.listening.clear()


_watchers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watcher]" = weakref.WeakKeyDictionary()


def _watcher() -> _Watcher:
    loop = asyncio.get_running_loop()
    if loop not in _watchers:
        _watchers[loop] = _Watcher()
    return _watchers[loop]
