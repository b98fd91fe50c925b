"""Server-Sent Events: a run's points as they are written, then its final status.

The stream tails the database, the source of truth, so a browser that reconnects with
Last-Event-ID (the last step it saw) gets every later point exactly once, whichever process wrote
them and whenever. Events: "point" {step, loss, elapsed} with id = step; "eval" {step, val_loss,
val_accuracy} just before the point of its step; "progress" when the status or step count changes;
a final "status" with the whole run.
"""
import asyncio
import json

from django.conf import settings
from django.http import Http404, StreamingHttpResponse

from .models import EvalPoint, Point, Run

KEEPALIVE_SECONDS = 15


def _event(kind: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n"


def _last_seen(request) -> int:
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    try:
        return max(0, int(raw))
    except ValueError:
        return 0


async def _stream(run_id: int, after: int):
    poll = settings.PEFTLAB_SSE_POLL_MS / 1000
    # Reconnect quickly after a dropped connection.
    yield "retry: 1000\n\n"
    progress, quiet = None, 0.0
    while True:
        run = await Run.objects.aget(pk=run_id)
        # Read points after the status: a run that finished before this read has all its points
        # in the database already, so the final event follows the last point.
        points = [p async for p in Point.objects.filter(run_id=run_id, step__gt=after).order_by("step")]
        evals = {}
        if points:
            # Only evaluations up to the last point read: they were committed with their point.
            evals = {e.step: e async for e in EvalPoint.objects.filter(
                run_id=run_id, step__gt=after, step__lte=points[-1].step)}
        for point in points:
            # An evaluation goes out before the point of its step, which carries the event id:
            # a client resuming from Last-Event-ID = step has had both.
            if point.step in evals:
                yield _event("eval", evals[point.step].as_dict())
            after = point.step
            yield _event("point", point.as_dict(), event_id=point.step)
        if run.finished:
            yield _event("status", run.summary(), event_id=after)
            return
        if (run.status, run.steps_done) != progress:
            progress, quiet = (run.status, run.steps_done), 0.0
            yield _event("progress", {"status": run.status, "steps_done": run.steps_done, "steps": run.steps})
        elif quiet >= KEEPALIVE_SECONDS:
            # A comment line keeps proxies from closing an idle stream (a long queue wait).
            quiet = 0.0
            yield ": keepalive\n\n"
        await asyncio.sleep(poll)
        quiet += poll


async def run_events(request, run_id: int):
    if not await Run.objects.filter(pk=run_id).aexists():
        raise Http404(f"there is no run {run_id}")
    response = StreamingHttpResponse(_stream(run_id, _last_seen(request)), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx in front must not buffer the stream
    return response
