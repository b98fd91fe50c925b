"""Server-Sent Events: a run's points as they are written, then its final status.

The stream tails the database, the source of truth, so a browser that reconnects with
Last-Event-ID (the last step it saw) gets every later point exactly once, whichever process wrote
them and whenever. Events: "point" {step, loss, elapsed} with id = step; "eval" {step, val_loss,
val_accuracy} just before the point of its step; "progress" when the status or step count changes
(with a queued run's "waiting": its place in its queue and estimated start, sent again when they
change; with a packed run's "pack": the runs training in its fused step now, read at each step);
a final "status" with the whole run.

A run whose worker died is trained again from step 1 as its next attempt (peftlab/runs/lifecycle.py).
The stream then sends "attempt" {attempt}: the browser drops what it drew and the new attempt's
points follow. Event ids of attempt a are (a - 1) * ATTEMPT_STRIDE + step, so that the id of a
first attempt is its step, and a browser resuming from an earlier attempt's id gets the reset.

A race (or any batch of runs) streams all its lanes in one connection: the same events, each
naming its "run" and "lane", a "status" per lane once it has finished, then a final "race". Its
event id is a cursor with the last step sent of every lane, "12:40.13:7.14:0" (run:step joined by
dots): lanes that write at the same time commit in any order, so no single number (the point's
primary key, say) could say what a browser has seen.
"""

import json
import time
from contextlib import aclosing

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import Http404, StreamingHttpResponse

from peftlab.classroom import access
from peftlab.runs import lifecycle, notify, waiting
from peftlab.runs.models import Batch, EvalPoint, Point, Run

KEEPALIVE_SECONDS = 15
ATTEMPT_STRIDE = 1_000_000  # above workers.methods.MAX_STEPS
PLACE_SECONDS = 2.0  # how often a queued run's stream reads its place in the queue again


def event_id(attempt: int, step: int) -> int:
    return (attempt - 1) * ATTEMPT_STRIDE + step


def attempt_and_step(event_id: int) -> tuple[int, int]:
    return event_id // ATTEMPT_STRIDE + 1, event_id % ATTEMPT_STRIDE


def _event(kind: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n"


def _last_seen(request) -> int:
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    try:
        return max(0, int(raw))
    except ValueError:
        return 0


async def _points_after(run_id: int, attempt: int, after: int) -> list[tuple[EvalPoint | None, Point]]:
    """The attempt's points after step `after`, each with the evaluation of its step if any.

    Only evaluations up to the last point read: they were committed with their point. A caller
    sends the evaluation first, then the point, which carries the event id: a client resuming
    from that id has had both.
    """
    points = [p async for p in Point.objects.filter(run_id=run_id, attempt=attempt, step__gt=after).order_by("step")]
    if not points:
        return []
    evals = {
        e.step: e
        async for e in EvalPoint.objects.filter(
            run_id=run_id, attempt=attempt, step__gt=after, step__lte=points[-1].step
        )
    }
    return [(evals.get(p.step), p) for p in points]


def _release_connection() -> None:
    """A stream lasts minutes and reads for milliseconds: its connection goes back to the pool
    while it waits. (Run through sync_to_async: `connection` is the calling thread's, and the
    stream's queries run in its request's thread.)"""
    connection.close()


class _Quiet:
    """Waits for the next change of the watched runs (or the poll interval), and says when to
    send a keepalive comment: a line every KEEPALIVE_SECONDS keeps proxies from closing an idle
    stream (a long queue wait)."""

    def __init__(self, watch: notify.Watch):
        self.watch, self.poll, self.since = watch, settings.PEFTLAB_SSE_POLL_MS / 1000, time.monotonic()

    def reset(self):
        self.since = time.monotonic()

    async def sleep(self) -> str | None:
        if settings.DATABASES["default"].get("OPTIONS", {}).get("pool"):
            await sync_to_async(_release_connection)()
        await self.watch.wait(self.poll)
        if time.monotonic() - self.since >= KEEPALIVE_SECONDS:
            self.reset()
            return ": keepalive\n\n"
        return None


async def _look_for_lost_runs() -> None:
    if lifecycle.due():
        await sync_to_async(lifecycle.fail_lost_runs)()


async def _stream(run_id: int, after: int):
    # Reconnect quickly after a dropped connection.
    yield "retry: 1000\n\n"
    attempt, step = attempt_and_step(after)
    async with notify.Watch([run_id]) as watch, aclosing(_run_events(run_id, attempt, step, _Quiet(watch))) as events:
        async for event in events:
            yield event


async def _run_events(run_id: int, attempt: int, step: int, idle: _Quiet):
    progress = None
    place, placed_at = None, -PLACE_SECONDS
    while True:
        await _look_for_lost_runs()
        run = await Run.objects.aget(pk=run_id)
        if run.attempt != attempt:
            attempt, step = run.attempt, 0
            yield _event("attempt", {"attempt": attempt}, event_id=event_id(attempt, 0))
        # Read points after the status: a run that finished before this read has all its points
        # in the database already, so the final event follows the last point.
        for evaluation, point in await _points_after(run_id, attempt, step):
            if evaluation is not None:
                yield _event("eval", evaluation.as_dict())
            step = point.step
            yield _event("point", point.as_dict(), event_id=event_id(attempt, step))
        if run.finished:
            yield _event("status", run.summary(), event_id=event_id(attempt, step))
            return
        # A queued run's place is read again every PLACE_SECONDS (the runs ahead of it end and
        # start without a signal for this run), a few queries each; the streams of one queue
        # share the queue's order, worked out once per PLACE_SECONDS.
        if run.status != Run.QUEUED:
            place = None
        elif time.monotonic() - placed_at >= PLACE_SECONDS:
            place, placed_at = await sync_to_async(waiting.place)(run, PLACE_SECONDS), time.monotonic()
        if (run.status, run.steps_done, place, run.cancel_requested, run.packed) != progress:
            progress = (run.status, run.steps_done, place, run.cancel_requested, run.packed)
            idle.reset()
            yield _event(
                "progress",
                {
                    "status": run.status,
                    "steps_done": run.steps_done,
                    "steps": run.steps,
                    "attempts": run.attempts,
                    "waiting": place,
                    "cancel_requested": run.cancel_requested,
                    # A pack's size is read with each step: runs join and leave it between steps.
                    "packed": run.packed,
                    "pack": await sync_to_async(run.pack)() if run.packed else None,
                },
            )
        if (keepalive := await idle.sleep()) is not None:
            yield keepalive


def _stream_response(events) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx in front must not buffer the stream
    return response


async def run_events(request, run_id: int):
    # Only runs this request may see (peftlab/classroom/access.py); any other is "missing".
    if await sync_to_async(access.visible_run)(request, run_id) is None:
        raise Http404(f"there is no run {run_id}")
    return _stream_response(_stream(run_id, _last_seen(request)))


# --- a race: every lane in one stream ----------------------------------------------------------
def format_cursor(cursor: dict[int, int]) -> str:
    """{12: 40, 13: 7} -> "12:40.13:7" (in run order)."""
    return ".".join(f"{run}:{step}" for run, step in sorted(cursor.items()))


def parse_cursor(raw: str | None, run_ids) -> dict[int, int]:
    """The last event id seen of each of these runs; a lane missing from `raw`, a run not in the
    batch or a malformed part counts as nothing seen (the stream starts that lane over)."""
    cursor = {run_id: 0 for run_id in run_ids}
    for part in (raw or "").split("."):
        run, _, step = part.partition(":")
        if run.isdigit() and step.isdigit() and int(run) in cursor:
            cursor[int(run)] = int(step)
    return cursor


def _lane_event(run: Run, data: dict) -> dict:
    return {"run": run.pk, "lane": run.lane, **data}


async def _race_stream(batch: Batch, cursor: dict[int, int], describe):
    yield "retry: 1000\n\n"
    async with (
        notify.Watch(cursor) as watch,
        aclosing(_race_lane_events(batch, cursor, describe, _Quiet(watch))) as events,
    ):
        async for event in events:
            yield event


async def _race_lane_events(batch: Batch, cursor: dict[int, int], describe, idle: _Quiet):
    progress: dict[int, tuple] = {}
    done: set[int] = set()
    while True:
        await _look_for_lost_runs()
        # Statuses first, then points: a lane finished at this read has all its points stored.
        runs = [r async for r in Run.objects.filter(batch=batch).order_by("lane", "id")]
        for run in runs:
            attempt, step = attempt_and_step(cursor[run.pk])
            if run.attempt != attempt:
                attempt, step = run.attempt, 0
                cursor[run.pk] = event_id(attempt, 0)
                yield _event("attempt", _lane_event(run, {"attempt": attempt}), event_id=format_cursor(cursor))
            for evaluation, point in await _points_after(run.pk, attempt, step):
                if evaluation is not None:
                    yield _event("eval", _lane_event(run, evaluation.as_dict()))
                cursor[run.pk] = event_id(attempt, point.step)
                yield _event("point", _lane_event(run, point.as_dict()), event_id=format_cursor(cursor))
            if run.finished and run.pk not in done:
                done.add(run.pk)
                yield _event("status", _lane_event(run, run.summary()), event_id=format_cursor(cursor))
            elif not run.finished and progress.get(run.pk) != (run.status, run.steps_done):
                progress[run.pk] = (run.status, run.steps_done)
                idle.reset()
                yield _event(
                    "progress",
                    _lane_event(run, {"status": run.status, "steps_done": run.steps_done, "steps": run.steps}),
                )
        if len(done) == len(runs):
            yield _event("race", await sync_to_async(describe)(batch), event_id=format_cursor(cursor))
            return
        if (keepalive := await idle.sleep()) is not None:
            yield keepalive


async def race_events(request, race_id: int):
    """GET /api/races/{id}/events: every lane's points, a status per lane, a final race event."""
    from peftlab.runs.races import describe_race

    races = access.visible_batches
    batch = await sync_to_async(lambda: races(request).filter(pk=race_id, kind=Batch.RACE).first())()
    if batch is None:
        raise Http404(f"there is no race {race_id}")
    run_ids = [pk async for pk in Run.objects.filter(batch=batch).values_list("pk", flat=True)]
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after")
    return _stream_response(_race_stream(batch, parse_cursor(raw, run_ids), describe_race))
