"""Celery tasks: run a training job from the database and write everything back to it.

The database is the source of truth. A message only says "run N may start": the task claims the
run atomically (queued -> running), so a message delivered twice, or re-sent after a broker lost
it, trains the run once.
"""
import logging
import shutil
import socket
from pathlib import Path

from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from simulations.models import EvalPoint, Point, Run

from . import base_model, datasets
from .methods import RunRequestError, RunSpec, validate_run

log = logging.getLogger(__name__)

_shutting_down = False


def dispatch(run: Run) -> None:
    """Send a queued run to its queue. A broker that is down loses nothing: the run stays
    queued in the database and is sent again when a worker starts."""
    try:
        train_run.apply_async(args=[run.pk], queue=run.queue)
    except Exception:  # noqa: BLE001 - any broker failure; the run is safe in the database
        log.exception("could not send run %s to the broker; it stays queued", run.pk)


def predicted_trainable(spec: RunSpec) -> int:
    """The formula's count of trainable parameters, stored beside the measured one."""
    from simulations import params as formulas

    labels = len(datasets.load_task(spec.task).labels)
    return formulas.trainable_params(spec.method, spec.params, base_model.dimensions(), labels)


class _Reporter:
    """Writes each batch of points and evaluations in one transaction and answers whether to go
    on. One transaction: a reader never sees an evaluation without the point of its step."""

    def __init__(self, run_id: int):
        self.run_id = run_id

    def __call__(self, points, evals) -> bool:
        with transaction.atomic():
            Point.objects.bulk_create(
                [Point(run_id=self.run_id, step=p.step, loss=p.loss, elapsed=p.elapsed) for p in points],
                ignore_conflicts=True,
            )
            EvalPoint.objects.bulk_create(
                [EvalPoint(run_id=self.run_id, step=e.step, val_loss=e.val_loss, val_accuracy=e.val_accuracy)
                 for e in evals],
                ignore_conflicts=True,
            )
            # One UPDATE is both the heartbeat and the cancel check.
            alive = Run.objects.filter(
                pk=self.run_id, status=Run.RUNNING, cancel_requested=False
            ).update(steps_done=points[-1].step, heartbeat_at=timezone.now())
        return bool(alive) and not _shutting_down


@shared_task(name="workers.train_run", ignore_result=True)
def train_run(run_id: int) -> str:
    """Train run `run_id` if it is still queued; return its final status."""
    from . import engine

    device = engine.pick_device()
    claimed = Run.objects.filter(pk=run_id, status=Run.QUEUED).update(
        status=Run.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now(),
        device=str(device), worker=socket.gethostname(),
    )
    if not claimed:
        log.info("run %s is not queued any more; nothing to do", run_id)
        return "skipped"
    run = Run.objects.get(pk=run_id)
    save_dir = Path(settings.PEFTLAB_ARTIFACTS_DIR) / str(run_id)
    try:
        spec = validate_run(run.method, run.task, run.steps, run.seed, run.params)
        metrics = engine.train(spec, _Reporter(run_id), save_dir=save_dir, device=device)
        metrics["trainable_params_predicted"] = predicted_trainable(spec)
    except (RunRequestError, engine.TrainingError) as exc:
        return _finish(run_id, Run.FAILED, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - the worker must survive and take the next run
        log.exception("run %s failed", run_id)
        shutil.rmtree(save_dir, ignore_errors=True)
        return _finish(run_id, Run.FAILED, error=f"training failed: {type(exc).__name__}: {exc}")

    cancelled = metrics.pop("cancelled")
    if cancelled and _shutting_down:
        return _finish(run_id, Run.FAILED, metrics=metrics,
                       error="the worker was stopped during this run; its points so far are kept")
    return _finish(run_id, Run.CANCELLED if cancelled else Run.SUCCEEDED, metrics=metrics)


def _finish(run_id: int, status: str, metrics: dict | None = None, error: str = "") -> str:
    Run.objects.filter(pk=run_id).update(
        status=status, metrics=metrics or {}, error=error, finished_at=timezone.now()
    )
    return status


def recover_runs() -> None:
    """At worker start: fail runs whose worker vanished, and re-send every queued run.

    Re-sending a run whose message is still in the broker is harmless: only one claim wins.
    """
    stale = timezone.now() - timezone.timedelta(seconds=settings.PEFTLAB_STALE_RUN_SECONDS)
    lost = Run.objects.filter(status=Run.RUNNING, heartbeat_at__lt=stale).update(
        status=Run.FAILED, finished_at=timezone.now(),
        error="the worker running this stopped unexpectedly; its points so far are kept",
    )
    if lost:
        log.warning("marked %d run(s) with a lost worker as failed", lost)
    for run in Run.objects.filter(status=Run.QUEUED).order_by("id"):
        dispatch(run)


@worker_ready.connect
def _on_worker_ready(**_):
    if settings.PEFTLAB_TORCH_THREADS:
        import torch

        torch.set_num_threads(settings.PEFTLAB_TORCH_THREADS)
    recover_runs()


@worker_shutting_down.connect
def _on_worker_shutting_down(**_):
    # The training loop sees this at its next report and stops, keeping its points.
    global _shutting_down
    _shutting_down = True
