"""One run's life, from the message that may start it to its end: every change of a run's status
happens here.

    queued --claim--> running --finish--> succeeded | failed | cancelled
      ^                  |  \
      |                  |   `--fail_lost_runs (no heartbeat for PEFTLAB_STALE_RUN_SECONDS)--> failed
      `--recover_runs----'      (its process died on this machine: back to the queue, next attempt)
      `--put_back--------'      (its worker stopped it: shut down, or lost the broker)

The database is the source of truth. A message only says "a run on this queue may start": the
worker picks the run fairly (scheduler.py) and claims it atomically, so a message delivered
twice trains nothing more, and a run whose worker died is tried again under its next attempt
number (at most Run.MAX_ATTEMPTS times). Each step below works on one attempt of one run (a
Claim), never on "the process's run": one process may hold several claims at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import reduce
from operator import or_

from celery import current_app as celery_app
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from peftlab.errors import Unavailable
from peftlab.runs import notify, scheduler
from peftlab.runs.models import Batch, EvalPoint, Point, Run
from simulations.methods import names_where

# The methods whose runs train in a pack (the records' `joins_pack`, workers/runpack.py).
JOINS_PACK = names_where(joins_pack=True)

log = logging.getLogger(__name__)

# The Celery task that trains a run (tasks.py), by the name it has had since its first home in
# workers/, so that messages queued before an upgrade still reach it.
TRAIN_TASK = "workers.train_run"


# --- sending: a message per queued run, once its row is committed -------------------------------
class BrokerUnavailable(Unavailable):
    """The broker did not take the message (Redis down, say). The API answers 503 with the message;
    where a run may stay queued instead, dispatch_or_keep catches it."""


def pack_time_limits() -> tuple[float, float] | None:
    """(soft, hard) time limits of a message that may start a pack (tasks.py `_train_pack`), None
    without a run time limit. A pack takes runs during the first PEFTLAB_RUN_TIME_LIMIT of its
    life (peftlab/runs/packs.py) and stops each run at its own limit, so every run in it has
    ended within twice that: the task's own limits, which end every run of the pack at once, lie
    beyond it, and strike only a pack that hangs."""
    limit = settings.PEFTLAB_RUN_TIME_LIMIT
    if not limit:
        return None
    extra = (settings.CELERY_TASK_TIME_LIMIT or limit) - limit
    return 2 * limit + 30, 2 * limit + 30 + max(extra, 30)


def send_message(run: Run) -> None:
    """The message itself, to the Celery task by its name (tasks.py registers it). The broker is
    tried briefly: a learner waits seconds for an answer, not minutes. A message that may start a
    pack carries the pack's time limits."""
    limits = pack_time_limits() if settings.PEFTLAB_PACKS and run.method in JOINS_PACK and not _races(run) else None
    celery_app.send_task(
        TRAIN_TASK,
        args=[run.pk],
        queue=run.queue,
        retry=True,
        retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        **({"soft_time_limit": limits[0], "time_limit": limits[1]} if limits else {}),
    )


def _races(run: Run) -> bool:
    return run.batch_id is not None and Batch.objects.filter(pk=run.batch_id, kind=Batch.RACE).exists()


def dispatch(run: Run) -> None:
    """Send a message for a queued run to its queue; BrokerUnavailable when the broker is down."""
    try:
        send_message(run)
    except Exception as exc:  # noqa: BLE001 - any broker failure
        raise BrokerUnavailable(
            f"the job queue is not reachable ({type(exc).__name__}): nothing was queued; try again in a minute"
        ) from exc


def prepare_dispatch() -> None:
    """Build what `dispatch` needs before the first request does (a web process at start):
    kombu's transport, Celery's producer pool and result backend are made on first use, tens of
    ms of CPU and imports that a class's first burst of submissions would wait for. Touches no
    network: the broker may be down now and up later."""
    celery_app.producer_pool  # noqa: B018 - made on first access
    celery_app.backend  # noqa: B018


def dispatch_or_keep(run: Run) -> bool:
    """Send a message where losing it is harmless (the run stays queued in the database and is
    sent again at the next worker start or reconnect). False when the broker is down."""
    try:
        dispatch(run)
        return True
    except BrokerUnavailable:
        log.warning("could not send run %s to the broker; it stays queued", run.pk)
        return False


def wake(queue: str) -> None:
    """A slot freed on `queue`: send a message for its oldest waiting run, if any, so that a run
    the scheduler passed over (its owner was at their limit) is picked up."""
    waiting = scheduler.next_waiting(queue)
    if waiting is not None:
        dispatch_or_keep(waiting)


def send_on_commit(runs: list[Run], batch: Batch | None = None) -> None:
    """Call inside the transaction that creates `runs`; raises BrokerUnavailable when the
    transaction ends if the broker did not take them."""
    transaction.on_commit(lambda: _send_or_take_back(runs, batch))


def _send_or_take_back(runs: list[Run], batch: Batch | None) -> None:
    try:
        for run in runs:  # in order: lane 0 first
            dispatch(run)
    except BrokerUnavailable:
        Run.objects.filter(pk__in=[r.pk for r in runs], status=Run.QUEUED).delete()
        if batch is not None and not batch.runs.exists():
            batch.delete()
        raise


# --- claiming: the fairest waiting run, started under its next attempt ---------------------------
@dataclass(frozen=True)
class Claim:
    run_id: int
    attempt: int


def start(run_id: int, task_id: str, device: str, packed: bool = False) -> Claim | None:
    """Start the run's next attempt (queued, or running on a dead process); a run past
    MAX_ATTEMPTS ends failed instead. None when someone else got it first. `packed`: the attempt
    trains in a pack (claim_for_pack)."""
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        return None
    attempt = run.attempts + 1
    if attempt > Run.MAX_ATTEMPTS:
        Run.objects.filter(pk=run_id, status=run.status, attempts=run.attempts).update(
            status=Run.FAILED,
            finished_at=timezone.now(),
            error=f"the run's worker stopped or died during it {run.attempts} times and it is not "
            "tried again; its points so far are kept",
        )
        return None
    now = timezone.now()
    started = Run.objects.filter(pk=run_id, status=run.status, attempts=run.attempts).update(
        status=Run.RUNNING,
        attempts=attempt,
        started_at=run.started_at or now,
        heartbeat_at=now,
        steps_done=0,
        device=device,
        worker=socket.gethostname(),
        worker_pid=os.getpid(),
        task_id=task_id,
        packed=packed,
    )
    return Claim(run_id, attempt) if started else None


def claim(hint: int, task_id: str, device: str) -> Claim | None:
    """What this message trains, claimed: the run it names again if that run's last attempt died
    (a redelivery after its worker was lost), else the fairest queued run of its queue (None if
    there is none)."""
    with transaction.atomic():
        scheduler.lock_for_pick()
        named = Run.objects.filter(pk=hint).first()
        if named is None:
            return None
        if named.status == Run.RUNNING and attempt_is_dead(named):
            return start(hint, task_id, device)
        # Otherwise the message is a slot on its queue, whoever's run it named: that run may be
        # training already (picked through another message, or this is a duplicate delivery),
        # finished or cancelled; a waiting run takes the slot.
        chosen = scheduler.pick(*scheduler.queue_state(named.queue))
        return start(chosen, task_id, device) if chosen is not None else None


def claim_together(hint: int, task_id: str, device: str) -> list[Claim]:
    """What this message trains, claimed in one transaction: claim()'s run and, where that run is
    a lane of a race, every other lane of the race that may start with it (queued, or running
    on a process that is gone), each under its own next attempt, in lane order; [] when nothing
    may start. A race's lanes train together in one process (training.train_together), one unit
    of their owner's runs at once (scheduler.py); a sweep's lanes are claimed one by one."""
    with transaction.atomic():
        first = claim(hint, task_id, device)
        if first is None:
            return []
        run = Run.objects.select_related("batch").get(pk=first.run_id)
        if run.batch is None or run.batch.kind != Batch.RACE:
            return [first]
        claims = [(run.lane, run.pk, first)]
        for lane in Run.objects.filter(batch=run.batch_id, queue=run.queue).exclude(pk=run.pk):
            if lane.status == Run.QUEUED or (lane.status == Run.RUNNING and attempt_is_dead(lane)):
                if (got := start(lane.pk, task_id, device)) is not None:
                    claims.append((lane.lane, lane.pk, got))
        return [c for *_, c in sorted(claims)]


def joins_pack(run: scheduler.Waiting) -> bool:
    """Whether the waiting run trains in a pack (workers/runpack.py): its method joins packs (the
    records' `joins_pack`) and it is not a lane of a race (a race's lanes train together, turn by
    turn)."""
    return run.method in JOINS_PACK and not run.together


def pack_candidates(queue: str) -> bool:
    """Whether any run of a method that joins packs waits on the queue (one indexed read, asked at
    every step of a pack before claim_for_pack takes the scheduler's lock)."""
    return Run.objects.filter(status=Run.QUEUED, queue=queue, method__in=JOINS_PACK).exists()


def pack_first(claim: Claim) -> bool:
    """Whether the claimed run starts a pack; if so it is marked as packed."""
    run = Run.objects.select_related("batch").get(pk=claim.run_id)
    if run.method not in JOINS_PACK or (run.batch is not None and run.batch.kind == Batch.RACE):
        return False
    Run.objects.filter(pk=claim.run_id, attempts=claim.attempt).update(packed=True)
    return True


def claim_for_pack(queue: str, task_id: str, device: str, fits: Callable[[int], bool]) -> Claim | None:
    """A waiting run that joins the pack this process trains, claimed as claim() claims: the fairest
    of the queue's waiting runs that join packs (scheduler.pick among them), if `fits(run_id)`
    (the pack's room for it); None when there is none or it does not fit."""
    with transaction.atomic():
        scheduler.lock_for_pick()
        waiting, running, last_start, training = scheduler.queue_state(queue)
        chosen = scheduler.pick([w for w in waiting if joins_pack(w)], running, last_start, training)
        if chosen is None or not fits(chosen):
            return None
        return start(chosen, task_id, device, packed=True)


def attempt_is_dead(run: Run) -> bool:
    """Whether the process training `run` is gone: on this machine, its pid is not alive; on
    another, it has not reported for PEFTLAB_STALE_RUN_SECONDS."""
    if run.worker == socket.gethostname() and run.worker_pid:
        return not process_alive(run.worker_pid)
    stale = timezone.now() - timezone.timedelta(seconds=settings.PEFTLAB_STALE_RUN_SECONDS)
    return run.heartbeat_at is None or run.heartbeat_at < stale


def process_alive(pid: int) -> bool:
    """Whether `pid` runs: a zombie (killed, not yet reaped because its parent died too) is dead."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


# --- while it trains: heartbeats, points, the cancel flag ---------------------------------------
class Reporter:
    """Writes each batch of points and evaluations in one transaction and answers whether to go
    on. One transaction: a reader never sees an evaluation without the point of its step.

    `should_stop` is the same answer for long work between reports (an evaluation's batches, the
    end-of-run measurements): it reads the cancel flag from the database at most every
    CHECK_SECONDS, so the engine may ask it as often as it likes."""

    CHECK_SECONDS = 0.5

    def __init__(self, claim: Claim, stopping=lambda: False):
        self.run_id, self.attempt = claim.run_id, claim.attempt
        self.stopping = stopping  # the process is shutting down: stop at this report
        self._checked_at = time.monotonic()  # a report or a check just read the flag
        self._stop = False

    def __call__(self, points, evals) -> bool:
        with transaction.atomic():
            Point.objects.bulk_create(
                [
                    Point(run_id=self.run_id, attempt=self.attempt, step=p.step, loss=p.loss, elapsed=p.elapsed)
                    for p in points
                ],
                ignore_conflicts=True,
            )
            EvalPoint.objects.bulk_create(
                [
                    EvalPoint(
                        run_id=self.run_id,
                        attempt=self.attempt,
                        step=e.step,
                        val_loss=e.val_loss,
                        val_accuracy=e.val_accuracy,
                    )
                    for e in evals
                ],
                ignore_conflicts=True,
            )
            # One UPDATE is the heartbeat and the cancel check; an attempt that is not the run's
            # current one any more (the run was failed as lost, then retried) stops too.
            alive = Run.objects.filter(
                pk=self.run_id, status=Run.RUNNING, attempts=self.attempt, cancel_requested=False
            ).update(steps_done=points[-1].step, heartbeat_at=timezone.now())
        notify.changed(self.run_id)  # committed: the streams read it now
        self._checked_at, self._stop = time.monotonic(), not alive
        return bool(alive) and not self.stopping()

    def should_stop(self) -> bool:
        """Whether the run was cancelled (or this attempt superseded, or the process is
        stopping): one indexed read at most every CHECK_SECONDS, the last answer in between."""
        if self._stop or self.stopping():
            return True
        now = time.monotonic()
        if now - self._checked_at >= self.CHECK_SECONDS:
            self._checked_at = now
            self._stop = not Run.objects.filter(
                pk=self.run_id, status=Run.RUNNING, attempts=self.attempt, cancel_requested=False
            ).exists()
        return self._stop


def steps_done(run_id: int) -> int:
    return Run.objects.filter(pk=run_id).values_list("steps_done", flat=True).first() or 0


@contextmanager
def heartbeat(claims: list[Claim]):
    """While the attempts train, a thread says every PEFTLAB_HEARTBEAT_SECONDS that their process
    is alive, also while the loop loads the model or evaluates: a run goes stale only when its
    process is gone (a process that hangs is stopped by the hard time limit). One thread and one
    UPDATE serve every claim the process holds; `claims` is read at every beat, so that a pack
    adds the runs that join it and removes those that leave."""
    done = threading.Event()
    names = ", ".join(str(c.run_id) for c in claims)

    def beat():
        try:
            while not done.wait(settings.PEFTLAB_HEARTBEAT_SECONDS):
                held = list(claims)
                if not held:
                    continue
                current = reduce(or_, (Q(pk=c.run_id, attempts=c.attempt) for c in held))
                try:
                    Run.objects.filter(current, status=Run.RUNNING).update(heartbeat_at=timezone.now())
                except DatabaseError as exc:  # the database restarting, or out of connections:
                    log.warning("heartbeat of run %s not written: %s", ", ".join(str(c.run_id) for c in held), exc)
                    connection.close()  # the next beat tries on a fresh connection
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{names}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


# --- ending: finished, cancelled, lost, recovered -----------------------------------------------
def finish(claim: Claim, status: str, metrics: dict | None = None, error: str = "") -> str:
    """End the run's current attempt. An attempt that is not current any more (the run was
    meanwhile failed as lost) changes nothing."""
    ended = Run.objects.filter(pk=claim.run_id, status=Run.RUNNING, attempts=claim.attempt).update(
        status=status, metrics=metrics or {}, error=error, finished_at=timezone.now()
    )
    notify.changed(claim.run_id)
    return status if ended else "superseded"


def put_back(claim: Claim, send: bool = True) -> str:
    """The worker stopped this attempt before it ended (it was shut down, or lost the broker,
    whose restart may have lost the run's message): the run goes back to the queue for its next
    attempt, its points kept. `send`: a message is sent for it if the broker takes one now;
    recover_runs sends one anyway when a worker starts or reconnects (a worker shutting down
    sends none: its own pool would take it). "superseded" when the attempt is not current any
    more or its cancel was asked for (the caller then finishes it cancelled)."""
    queued = Run.objects.filter(
        pk=claim.run_id, status=Run.RUNNING, attempts=claim.attempt, cancel_requested=False
    ).update(status=Run.QUEUED, heartbeat_at=None)
    if not queued:
        return "superseded"
    notify.changed(claim.run_id)
    run = Run.objects.filter(pk=claim.run_id, status=Run.QUEUED).first() if send else None
    if run is not None:
        dispatch_or_keep(run)
    return Run.QUEUED


def request_cancel(run_id: int) -> bool:
    """Cancel a queued run here; flag a running one, whose worker stops at its next report (so
    that every point it wrote stays and the final status comes after them). False when the run
    has already finished."""
    if Run.objects.filter(pk=run_id, status=Run.QUEUED).update(status=Run.CANCELLED, cancel_requested=True):
        notify.changed(run_id)
        return True
    return bool(Run.objects.filter(pk=run_id, status=Run.RUNNING).update(cancel_requested=True))


_CHECK_EVERY_SECONDS = 5.0
_last_check = 0.0


def fail_lost_runs() -> int:
    """Fail every running run whose heartbeat is stale; send a message for the next waiting run
    of each queue that got a slot back. Returns how many runs were failed."""
    stale = timezone.now() - timezone.timedelta(seconds=settings.PEFTLAB_STALE_RUN_SECONDS)
    lost = list(Run.objects.filter(status=Run.RUNNING, heartbeat_at__lt=stale).values_list("pk", "queue"))
    failed = 0
    for pk, _queue in lost:
        failed += Run.objects.filter(pk=pk, status=Run.RUNNING, heartbeat_at__lt=stale).update(
            status=Run.FAILED,
            finished_at=timezone.now(),
            error=f"the worker running this stopped reporting for over {settings.PEFTLAB_STALE_RUN_SECONDS} s "
            "and is presumed lost; its points so far are kept",
        )
    for queue in {q for _, q in lost}:
        wake(queue)
    return failed


def due() -> bool:
    """Whether this process should look again (it looks at most every few seconds); a True
    answer counts as looking."""
    global _last_check
    now = time.monotonic()
    if now - _last_check < _CHECK_EVERY_SECONDS:
        return False
    _last_check = now
    return True


def check_now_and_then() -> None:
    """fail_lost_runs, unless this process did it less than a few seconds ago."""
    if due():
        fail_lost_runs()


def recover_runs() -> None:
    """When a worker starts or reconnects to the broker: settle runs whose worker vanished, and
    send every queued run again (a broker restarted without its data lost their messages).

    A run whose worker stopped reporting for PEFTLAB_STALE_RUN_SECONDS has failed (the web
    server says so too: fail_lost_runs); one whose process is gone on this machine
    but that is not yet stale goes back to the queue for its next attempt. Sending a run twice is
    harmless: only one claim wins.
    """

    fail_lost_runs()
    for run in Run.objects.filter(status=Run.RUNNING):
        if attempt_is_dead(run):
            Run.objects.filter(pk=run.pk, status=Run.RUNNING, attempts=run.attempts).update(status=Run.QUEUED)
    for run in Run.objects.filter(status=Run.QUEUED).order_by("id"):
        if not dispatch_or_keep(run):
            break
