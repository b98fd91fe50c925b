"""Celery tasks: run a training job from the database and write everything back to it.

The database is the source of truth. A message only says "a run on this queue may start": the
worker picks the run fairly (peftlab/runs/scheduler.py) and claims it atomically, so a message
delivered twice trains nothing more, and a run whose worker died is tried again under its next
attempt number (at most Run.MAX_ATTEMPTS times).

Torch is imported only inside the worker's child processes (the engine, on the first run), never
in the parent that forks them: a forked CUDA context is unusable.
"""
import logging
import shutil
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from peftlab.runs import notify
from peftlab.runs.models import EvalPoint, Point, Run

from workers import base_model, datasets
from peftlab.runs import scheduler
from workers.methods import ANY_TASK, RunRequestError, RunSpec, validate_run

log = logging.getLogger(__name__)

# Set in a pool child when its worker is shutting down (peftlab/celery_app.py): the training loop
# stops at its next report and the run ends failed with its points kept.
_shutting_down = False
# Set when a run ran out of memory: this process exits once the run is recorded.
_replace_process = False


class BrokerUnavailable(Exception):
    """The broker did not take the message (Redis down, say)."""


def dispatch(run: Run) -> None:
    """Send a message for a queued run to its queue; BrokerUnavailable when the broker is down.
    The broker is tried briefly: a learner waits seconds for an answer, not minutes."""
    try:
        train_run.apply_async(args=[run.pk], queue=run.queue, retry=True, retry_policy={
            "max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1})
    except Exception as exc:  # noqa: BLE001 - any broker failure
        raise BrokerUnavailable(f"the job queue is not reachable ({type(exc).__name__})") from exc


def prepare_dispatch() -> None:
    """Build what `dispatch` needs before the first request does (a web process at start):
    kombu's transport, Celery's producer pool and result backend are made on first use, tens of
    ms of CPU and imports that a class's first burst of submissions would wait for. Touches no
    network: the broker may be down now and up later."""
    train_run.app.producer_pool  # noqa: B018 - made on first access
    train_run.app.backend  # noqa: B018


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


def predicted_trainable(spec: RunSpec) -> int:
    """The formula's count of trainable parameters, stored beside the measured one."""
    from simulations import params as formulas

    labels = len(datasets.load_task(spec.task).labels)
    return formulas.trainable_params(spec.method, spec.params, base_model.dimensions(), labels)


class _Reporter:
    """Writes each batch of points and evaluations in one transaction and answers whether to go
    on. One transaction: a reader never sees an evaluation without the point of its step."""

    def __init__(self, claim: scheduler.Claim):
        self.run_id, self.attempt = claim.run_id, claim.attempt

    def __call__(self, points, evals) -> bool:
        with transaction.atomic():
            Point.objects.bulk_create(
                [Point(run_id=self.run_id, attempt=self.attempt, step=p.step, loss=p.loss, elapsed=p.elapsed)
                 for p in points],
                ignore_conflicts=True,
            )
            EvalPoint.objects.bulk_create(
                [EvalPoint(run_id=self.run_id, attempt=self.attempt, step=e.step, val_loss=e.val_loss,
                           val_accuracy=e.val_accuracy) for e in evals],
                ignore_conflicts=True,
            )
            # One UPDATE is the heartbeat and the cancel check; an attempt that is not the run's
            # current one any more (the run was failed as lost, then retried) stops too.
            alive = Run.objects.filter(
                pk=self.run_id, status=Run.RUNNING, attempts=self.attempt, cancel_requested=False
            ).update(steps_done=points[-1].step, heartbeat_at=timezone.now())
        notify.changed(self.run_id)  # committed: the streams read it now
        return bool(alive) and not _shutting_down


def _steps_done(run_id: int) -> int:
    return Run.objects.filter(pk=run_id).values_list("steps_done", flat=True).first() or 0


@contextmanager
def _heartbeat(claim: scheduler.Claim):
    """While the attempt trains, a thread says every PEFTLAB_HEARTBEAT_SECONDS that its process is
    alive, also while the loop loads the model or evaluates: a run goes stale only when its
    process is gone (a process that hangs is stopped by the hard time limit)."""
    done = threading.Event()

    def beat():
        try:
            while not done.wait(settings.PEFTLAB_HEARTBEAT_SECONDS):
                try:
                    Run.objects.filter(pk=claim.run_id, status=Run.RUNNING, attempts=claim.attempt).update(
                        heartbeat_at=timezone.now())
                except DatabaseError as exc:  # the database restarting, or out of connections:
                    log.warning("heartbeat of run %s not written: %s", claim.run_id, exc)
                    connection.close()  # the next beat tries on a fresh connection
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{claim.run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextmanager
def _stop_on_signals():
    """While a run trains in a pool child, SIGUSR2 (sent by the parent at warm shutdown, see
    peftlab/celery_app.py) and SIGTERM (the whole process group stopped) mean "stop at the next
    report": the run ends failed with every point kept. A child that does not stop is killed by
    its parent's hard time limit or cold shutdown. billiard's own handlers are back once the run
    is over."""
    global _shutting_down
    _shutting_down = False

    def stop(*_):
        global _shutting_down
        _shutting_down = True

    if threading.current_thread() is not threading.main_thread():  # tests call tasks in-thread
        yield
        return
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGUSR2, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc)
    return type(exc).__name__ == "OutOfMemoryError" or "can't allocate memory" in text or "out of memory" in text


class RunTask(Task):
    """A hard time limit kills the child that trains: the parent then fails that run here."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if isinstance(exc, TimeLimitExceeded):
            limit = settings.CELERY_TASK_TIME_LIMIT
            for run in Run.objects.filter(task_id=task_id, status=Run.RUNNING):
                _finish(scheduler.Claim(run.pk, run.attempts), Run.FAILED, error=(
                    f"the run passed the hard time limit of {limit} s and its worker process was "
                    "stopped; its points so far are kept"))
                wake(run.queue)


@shared_task(name="workers.train_run", base=RunTask, bind=True, ignore_result=True)
def train_run(self, run_id: int) -> str:
    """Train the run this message lets start (see peftlab/runs/scheduler.py); return its status."""
    from workers import training

    device = training.pick_device()
    claim = scheduler.claim(run_id, self.request.id or "", str(device))
    if claim is None:
        log.info("message for run %s: nothing to start", run_id)
        return "skipped"
    notify.changed(claim.run_id)  # it is running
    try:
        with _heartbeat(claim), _stop_on_signals():
            status = _train(claim, device)
    finally:
        wake(Run.objects.values_list("queue", flat=True).get(pk=claim.run_id))
    if _replace_process:
        # Memory that ran out leaves allocators (glibc, oneDNN, CUDA) in a state the next run
        # cannot rely on: the pool reports this task done, and this process exits; the pool
        # starts a fresh one for the next run.
        raise SystemExit("a fresh training process replaces one that ran out of memory")
    return status


def _train(claim: scheduler.Claim, device) -> str:
    from workers import training

    run = Run.objects.get(pk=claim.run_id)
    save_dir = Path(settings.PEFTLAB_ARTIFACTS_DIR) / str(run.pk)
    try:
        # Checked when it was submitted; an uploaded task needs no viewer here.
        spec = validate_run(run.method, run.task, run.steps, run.seed, run.params, may_use_task=ANY_TASK)
        metrics = training.train(spec, _Reporter(claim), save_dir=save_dir, device=device)
        metrics["trainable_params_predicted"] = predicted_trainable(spec)
    except (RunRequestError, training.TrainingError) as exc:
        return _finish(claim, Run.FAILED, error=str(exc))
    except SoftTimeLimitExceeded:
        shutil.rmtree(save_dir, ignore_errors=True)
        return _finish(claim, Run.FAILED, error=(
            f"the run passed its time limit of {settings.CELERY_TASK_SOFT_TIME_LIMIT} s at step "
            f"{_steps_done(claim.run_id)}; its points so far are kept"))
    except Exception as exc:  # noqa: BLE001 - the worker must survive and take the next run
        shutil.rmtree(save_dir, ignore_errors=True)
        if _is_out_of_memory(exc):
            log.warning("run %s ran out of memory: %s; this process will be replaced", claim.run_id, exc)
            global _replace_process
            _replace_process = True
            done = _steps_done(claim.run_id)
            where = f"at step {done + 1}" if done else "before its first step"
            return _finish(claim, Run.FAILED, error=(
                f"the run ran out of memory on {device} {where}: try a smaller batch size or a "
                "lighter method (LoRA instead of full fine-tuning, say)"))
        log.exception("run %s failed", claim.run_id)
        return _finish(claim, Run.FAILED, error=f"training failed: {type(exc).__name__}: {exc}")
    finally:
        if device.type == "cuda":
            import gc

            import torch

            # The run's tensors that only a reference cycle holds go first, so that their blocks
            # go back to the device with the cache.
            gc.collect()
            torch.cuda.empty_cache()

    cancelled = metrics.pop("cancelled")
    if cancelled and _shutting_down:
        return _finish(claim, Run.FAILED, metrics=metrics, error=(
            "the worker was stopped during this run (shut down, or it lost the job queue); its "
            "points so far are kept"))
    return _finish(claim, Run.CANCELLED if cancelled else Run.SUCCEEDED, metrics=metrics)


def _finish(claim: scheduler.Claim, status: str, metrics: dict | None = None, error: str = "") -> str:
    """End the run's current attempt. An attempt that is not current any more (the run was
    meanwhile failed as lost) changes nothing."""
    ended = Run.objects.filter(pk=claim.run_id, status=Run.RUNNING, attempts=claim.attempt).update(
        status=status, metrics=metrics or {}, error=error, finished_at=timezone.now())
    notify.changed(claim.run_id)
    return status if ended else "superseded"


def recover_runs() -> None:
    """When a worker starts or reconnects to the broker: settle runs whose worker vanished, and
    send every queued run again (a broker restarted without its data lost their messages).

    A run whose worker stopped reporting for PEFTLAB_STALE_RUN_SECONDS has failed (the web
    server says so too, see peftlab/runs/liveness.py); one whose process is gone on this machine
    but that is not yet stale goes back to the queue for its next attempt. Sending a run twice is
    harmless: only one claim wins.
    """
    from peftlab.runs.liveness import fail_lost_runs

    fail_lost_runs()
    for run in Run.objects.filter(status=Run.RUNNING):
        if scheduler.attempt_is_dead(run):
            Run.objects.filter(pk=run.pk, status=Run.RUNNING, attempts=run.attempts).update(status=Run.QUEUED)
    for run in Run.objects.filter(status=Run.QUEUED).order_by("id"):
        if not dispatch_or_keep(run):
            break
