"""The Celery task that trains a run: claim it (lifecycle.claim), train it with the engine while
reporting points, finish it. What each step means for the run's status lives in lifecycle.py;
this module holds what belongs to a worker process: its signals, its time limits and what to do
when it runs out of memory.

Torch is imported only inside the worker's child processes (the engine, on the first run), never
in the parent that forks them: a forked CUDA context is unusable.
"""

import functools
import logging
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from django.conf import settings

from peftlab.runs import lifecycle, notify, packs
from peftlab.runs.lifecycle import Claim, finish, steps_done, wake
from peftlab.runs.models import Run
from workers import base_model, datasets
from workers.methods import ANY_TASK, RunRequestError, RunSpec, validate_run

log = logging.getLogger(__name__)

# Set in a pool child told to stop (SIGUSR2 or SIGTERM, see _stop_on_signals): the training loop
# stops at its next report and the run goes back to the queue with its points kept.
_shutting_down = False
# Set for good in a pool child whose worker is shutting down (SIGUSR2, peftlab/celery_app.py): it
# starts no run and sends no message any more (a message it took is acknowledged and dropped; the
# next worker's recover_runs sends every queued run again).
_worker_stopping = False
# Set when a run ran out of memory: this process exits once the run is recorded.
_replace_process = False


def predicted_trainable(spec: RunSpec) -> int:
    """The formula's count of trainable parameters, stored beside the measured one."""
    from simulations import params as formulas

    labels = len(datasets.load_task(spec.task).labels)
    return formulas.trainable_params(spec.method, spec.params, base_model.dimensions(), labels)


@contextmanager
def _stop_on_signals():
    """While a run trains in a pool child, SIGUSR2 (sent by the parent at warm shutdown, see
    peftlab/celery_app.py) and SIGTERM (the whole process group stopped, or the parent lost the
    broker: Celery ends a task it can no longer acknowledge so) mean "stop at the next report":
    the run goes back to the queue with every point kept (lifecycle.put_back) and trains again
    under its next attempt. A child that does not stop is killed by its parent's hard time limit
    or cold shutdown. billiard's own handlers are back once the run is over."""
    global _shutting_down
    _shutting_down = False

    def stop(signum, _frame):
        global _shutting_down, _worker_stopping
        _shutting_down = True
        if signum == signal.SIGUSR2:
            _worker_stopping = True

    if threading.current_thread() is not threading.main_thread():  # tests call tasks in-thread
        yield
        return
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGUSR2, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class RunTask(Task):
    """A hard time limit kills the child that trains: the parent then fails that run here."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if isinstance(exc, TimeLimitExceeded):
            limit = settings.CELERY_TASK_TIME_LIMIT
            for run in Run.objects.filter(task_id=task_id, status=Run.RUNNING):
                finish(
                    Claim(run.pk, run.attempts),
                    Run.FAILED,
                    error=(
                        f"the run passed the hard time limit of {limit} s and its worker process was "
                        "stopped; its points so far are kept"
                    ),
                )
                wake(run.queue)


@shared_task(name=lifecycle.TRAIN_TASK, base=RunTask, bind=True, ignore_result=True)
def train_run(self, run_id: int) -> str:
    """Train what this message lets start (see lifecycle.claim_together): one run, or the lanes
    of a race together; return its status (the lanes' statuses in lane order, comma-separated)."""
    from workers import training

    if _worker_stopping:
        log.info("message for run %s: this worker is shutting down; the next one sends it again", run_id)
        return "skipped"
    device = training.pick_device()
    claims = lifecycle.claim_together(run_id, self.request.id or "", str(device))
    if not claims:
        log.info("message for run %s: nothing to start", run_id)
        return "skipped"
    for claim in claims:
        notify.changed(claim.run_id)  # it is running
    held, every = list(claims), list(claims)  # what trains now (the heartbeat's); every run taken
    try:
        with lifecycle.heartbeat(held), _stop_on_signals():
            if len(claims) > 1:
                statuses = _train_lanes(claims, device)
            elif settings.PEFTLAB_PACKS and lifecycle.pack_first(claims[0]):
                statuses = _train_pack(claims[0], device, self.request.id or "", held, every)
            else:
                statuses = [_train(claims[0], device)]
    finally:
        # A process that held several runs frees as many slots.
        for queue in Run.objects.filter(pk__in=[c.run_id for c in every]).values_list("queue", flat=True):
            _wake(queue)
    if _replace_process:
        # Memory that ran out leaves allocators (glibc, oneDNN, CUDA) in a state the next run
        # cannot rely on: the pool reports this task done, and this process exits; the pool
        # starts a fresh one for the next run.
        raise SystemExit("a fresh training process replaces one that ran out of memory")
    return ",".join(statuses)


def _wake(queue: str) -> None:
    """lifecycle.wake, unless this process's worker is shutting down: its own pool would take the
    message; the next worker's recover_runs sends every queued run."""
    if not _worker_stopping:
        wake(queue)


def _train(claim: Claim, device) -> str:
    from workers import training

    run = Run.objects.get(pk=claim.run_id)
    save_dir = Path(settings.PEFTLAB_ARTIFACTS_DIR) / str(run.pk)
    try:
        # Checked when it was submitted; an uploaded task needs no viewer here.
        spec = validate_run(run.method, run.task, run.steps, run.seed, run.params, may_use_task=ANY_TASK)
        reporter = lifecycle.Reporter(claim, stopping=lambda: _shutting_down)
        metrics = training.train(spec, reporter, save_dir=save_dir, device=device, should_stop=reporter.should_stop)
        metrics["trainable_params_predicted"] = predicted_trainable(spec)
    except Exception as exc:  # noqa: BLE001 - the worker must survive and take the next run
        outcome = exc
    else:
        outcome = metrics
    finally:
        _give_back_device_memory(device)
    return _settle(claim, outcome, save_dir, device)


def _train_lanes(claims: list[Claim], device) -> list[str]:
    """Train the claimed lanes of a race together in this process (training.train_together), each
    with its own Reporter, and finish each as it ends. A cancelled lane stops alone. The task's
    soft time limit strikes inside one lane's turn: that lane fails with it, and the others stop
    at their next check and fail with the same message; the worker stopping stops them all."""
    from workers import training

    runs = Run.objects.in_bulk([c.run_id for c in claims])
    statuses: dict[Claim, str] = {}
    time_up = threading.Event()  # the task passed its soft time limit: every lane stops
    lanes = []

    def ended(claim: Claim, spec: RunSpec, save_dir: Path, outcome) -> None:
        if isinstance(outcome, SoftTimeLimitExceeded):
            time_up.set()
        if isinstance(outcome, dict):
            try:
                outcome["trainable_params_predicted"] = predicted_trainable(spec)
            except Exception as exc:  # noqa: BLE001 - as in _train: the lane fails with it
                outcome = exc
        statuses[claim] = _settle(claim, outcome, save_dir, device, time_up=time_up.is_set())

    for claim in claims:
        run = runs[claim.run_id]
        save_dir = Path(settings.PEFTLAB_ARTIFACTS_DIR) / str(run.pk)
        try:
            spec = validate_run(run.method, run.task, run.steps, run.seed, run.params, may_use_task=ANY_TASK)
        except RunRequestError as exc:
            statuses[claim] = _settle(claim, exc, save_dir, device)
            continue
        reporter = lifecycle.Reporter(claim, stopping=lambda: _shutting_down or time_up.is_set())
        lanes.append(
            training.Lane(
                spec,
                reporter,
                save_dir=save_dir,
                should_stop=reporter.should_stop,
                ended=functools.partial(ended, claim, spec, save_dir),
            )
        )
    try:
        training.train_together(lanes, device)
    except Exception as exc:  # noqa: BLE001 - the time limit between lanes' turns, a database error
        # What ended the race ends every lane still training, as it would end a single run.
        if isinstance(exc, SoftTimeLimitExceeded):
            time_up.set()
        for claim in claims:
            if claim not in statuses:
                save_dir = Path(settings.PEFTLAB_ARTIFACTS_DIR) / str(claim.run_id)
                statuses[claim] = _settle(claim, exc, save_dir, device)
    finally:
        _give_back_device_memory(device)
    return [statuses[c] for c in claims]


def _train_pack(first: Claim, device, task_id: str, held: list[Claim], every: list[Claim]) -> list[str]:
    """Train the claimed run in a pack (workers/runpack.py) that takes the queue's waiting runs of
    methods that join packs at every step boundary, fairly (lifecycle.claim_for_pack) and while
    they fit (peftlab/runs/packs.py), until every run in it has ended. Each run finishes as it
    ends and the others go on; a run past PEFTLAB_RUN_TIME_LIMIT since it joined leaves failed
    with its points kept; the worker stopping stops them all. `held` (the heartbeat's) and
    `every` grow with the runs that join."""
    from workers import precision, runpack, training

    queue = Run.objects.filter(pk=first.run_id).values_list("queue", flat=True).get()
    room = packs.Room(precision=precision.name(precision.training_dtype(device)), memory=runpack.device_memory(device))
    room.add(first.run_id)
    statuses: dict[Claim, str] = {}
    limit = settings.PEFTLAB_RUN_TIME_LIMIT

    def ended(claim: Claim, spec: RunSpec | None, save_dir: Path, past_limit, outcome) -> None:
        if isinstance(outcome, dict):
            try:
                outcome["trainable_params_predicted"] = predicted_trainable(spec)
            except Exception as exc:  # noqa: BLE001 - as in _train: the run fails with it
                outcome = exc
        statuses[claim] = _settle(claim, outcome, save_dir, device, time_up=past_limit())
        held.remove(claim)
        room.give_back(claim.run_id)
        _wake(queue)  # its owner's next run may start now, here or in another process

    def lane_for(claim: Claim) -> training.Lane | None:
        run = Run.objects.get(pk=claim.run_id)
        save_dir = Path(settings.PEFTLAB_ARTIFACTS_DIR) / str(run.pk)
        joined = time.monotonic()

        def past_limit() -> bool:
            return bool(limit) and time.monotonic() - joined > limit

        try:
            spec = validate_run(run.method, run.task, run.steps, run.seed, run.params, may_use_task=ANY_TASK)
        except RunRequestError as exc:
            ended(claim, None, save_dir, past_limit, exc)
            return None
        reporter = lifecycle.Reporter(claim, stopping=lambda: _shutting_down or past_limit())
        return training.Lane(
            spec,
            reporter,
            save_dir=save_dir,
            should_stop=reporter.should_stop,
            ended=functools.partial(ended, claim, spec, save_dir, past_limit),
        )

    def more() -> list[training.Lane]:
        lanes = []
        while not _shutting_down and lifecycle.pack_candidates(queue):
            claim = lifecycle.claim_for_pack(queue, task_id, str(device), room.fits)
            if claim is None:
                break
            room.add(claim.run_id)
            held.append(claim)
            every.append(claim)
            notify.changed(claim.run_id)  # it is running
            if (lane := lane_for(claim)) is not None:
                lanes.append(lane)
        return lanes

    first_lane = lane_for(first)
    try:
        runpack.train_packed([first_lane] if first_lane is not None else [], device, more)
    except Exception as exc:  # noqa: BLE001 - the time limit between steps, a database error
        for claim in list(held):
            save_dir = Path(settings.PEFTLAB_ARTIFACTS_DIR) / str(claim.run_id)
            statuses[claim] = _settle(claim, exc, save_dir, device)
    finally:
        _give_back_device_memory(device)
    return [statuses.get(c, "superseded") for c in every]


def _give_back_device_memory(device) -> None:
    if device.type == "cuda":
        import gc

        import torch

        # The run's tensors that only a reference cycle holds go first, so that their blocks
        # go back to the device with the cache.
        gc.collect()
        torch.cuda.empty_cache()


def _settle(claim: Claim, outcome, save_dir: Path, device, time_up: bool = False) -> str:
    """Finish the claim's attempt as its training ended: `outcome` is the engine's metrics, or
    the exception that ended it. `time_up`: the task passed its soft time limit (a lane that
    stopped for it ends failed, as a run the limit strikes does)."""
    from workers import training

    if isinstance(outcome, (RunRequestError, training.TrainingError)):
        return finish(claim, Run.FAILED, error=str(outcome))
    if isinstance(outcome, SoftTimeLimitExceeded) or (
        isinstance(outcome, dict) and outcome["cancelled"] and time_up and not _shutting_down
    ):
        shutil.rmtree(save_dir, ignore_errors=True)
        return finish(
            claim,
            Run.FAILED,
            error=(
                f"the run passed its time limit of {settings.CELERY_TASK_SOFT_TIME_LIMIT} s at step "
                f"{steps_done(claim.run_id)}; its points so far are kept"
            ),
        )
    if isinstance(outcome, Exception):
        shutil.rmtree(save_dir, ignore_errors=True)
        if training.is_out_of_memory(outcome):
            log.warning("run %s ran out of memory: %s; this process will be replaced", claim.run_id, outcome)
            global _replace_process
            _replace_process = True
            done = steps_done(claim.run_id)
            where = f"at step {done + 1}" if done else "before its first step"
            return finish(
                claim,
                Run.FAILED,
                error=(
                    f"the run ran out of memory on {device} {where}: try a smaller batch size or a "
                    "lighter method (LoRA instead of full fine-tuning, say)"
                ),
            )
        log.error("run %s failed", claim.run_id, exc_info=outcome)
        return finish(claim, Run.FAILED, error=f"training failed: {type(outcome).__name__}: {outcome}")

    metrics = dict(outcome)
    cancelled = metrics.pop("cancelled")
    if cancelled and _shutting_down:
        # Its worker stopped it, not its owner: it trains again under its next attempt.
        status = lifecycle.put_back(claim, send=not _worker_stopping)
        if status != "superseded":
            return status
    return finish(claim, Run.CANCELLED if cancelled else Run.SUCCEEDED, metrics=metrics)
