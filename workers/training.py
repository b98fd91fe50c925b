"""The training engine's loop: a run's model built (workers/classifier.py), trained on its
batches (workers/encoding.py), measured (workers/measure.py) and saved (workers/artifacts.py).

It knows nothing of HTTP or the database. The caller hands it a `report` callback that receives
each batch of new training points and evaluations and answers whether to go on (False cancels),
and may hand it a cheap `should_stop` callable that long work (an evaluation, the end-of-run
measurements) asks between its batches, so that a cancel need not wait for the next report.

A run is a `Training`: built once, then trained one step at a time (`step()`, which evaluates
and reports when due), then finished (`finish()`: the final measurements, the saved adapter, the
metrics). `train` drives one run to its end. `train_together` drives several (the lanes of a
race) in one process, round-robin: one step of each lane in turn, so that their curves grow
together. A lane that ends (finished, cancelled, failed) leaves; the others go on. What each
lane reports is its own:

- time: a lane's clock runs only during its own turns (its step, its evaluation when due and
  its report), so its points' `elapsed`, its `train_seconds` and `steps_per_second` are the
  seconds this machine spent on that lane, not the wall time that includes the other lanes'
  steps. A run trained alone by `train` is one lane whose turns follow each other: its clock is
  the wall time, as it always was.
- memory: the activation meter is per model and stays exact; a process-wide peak would mix the
  lanes, so each lane's peak is measured around its own turns (measure.LaneMemory: on CUDA the
  allocator's peak during the lane's turns above what the others hold; on the CPU the peak is
  counted from the lane's tensors, as for any run, and the resident memory's growth is measured
  around its turns).
- randomness: each lane draws from its own copy of torch's random state (dropout's masks), so
  a lane trains exactly the curve it would train alone with the same seed.

What the lanes do share: the process, its CPU threads or GPU, and the base model read once per
process (workers/classifier.py). A warm-up the process pays once (the first kernels a step runs)
falls in the turn of the lane that first needs it.
"""

import math
import shutil
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from workers import artifacts, classifier, datasets, encoding, measure, packing, precision
from workers.methods import RunSpec

# Points reach the caller (one database transaction) at least this often, the first at once and
# the last at the end: a learner sees the curve start within a step, and a GPU's hundred steps a
# second cost five writes, not a hundred.
FLUSH_SECONDS = 0.2


class TrainingError(RuntimeError):
    """A run that cannot go on; the message is shown to the person who started it."""


@dataclass
class StepPoint:
    step: int
    loss: float
    elapsed: float


@dataclass
class EvalPoint:
    step: int
    val_loss: float
    val_accuracy: float


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` says the device ran out of memory (CPU allocator, CUDA or a MemoryError)."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc)
    return type(exc).__name__ == "OutOfMemoryError" or "can't allocate memory" in text or "out of memory" in text


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_optimizer(spec: RunSpec, params: list, device: torch.device) -> torch.optim.Optimizer:
    """AdamW at the run's learning rate: torch's fused kernel, one pass over every tensor instead
    of a Python loop over them; QLoRA on CUDA keeps bitsandbytes' paged AdamW (workers/quantize.py)."""
    if spec.method == "qlora" and device.type == "cuda":
        from workers.quantize import make_optimizer as paged

        return paged(params, spec.params["lr"], device)
    return torch.optim.AdamW(params, lr=spec.params["lr"], fused=True)


def make_schedule(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning rate falls linearly over the run: step k of n takes lr * (n - k + 1) / n, the
    full rate at the first step and lr / n at the last. Measured against a constant rate in
    bench/race_levers.py (docs/measurements.md, "Race levers"): at 60 steps the adapter and LoRA
    end 3-10 points of validation accuracy higher on three seeds, as the steps settle instead of
    jumping about the minimum at the full rate."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda taken: (steps - taken) / steps)


@dataclass
class _Run:
    """What a run's loop works with, built before its first step."""

    device: torch.device
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    memory: measure.PeakMemory
    activations: measure.ActivationMeter
    compute: torch.dtype | None  # the training steps' autocast dtype; None: fp32
    packed: bool
    pad_id: int
    labels: list[str]
    train_data: encoding.Encoded
    val_data: encoding.Encoded
    trainable: int
    total: int


@dataclass
class _Done:
    """Where the loop stopped: its last step, the real tokens it trained on, its last evaluation."""

    step: int = 0
    tokens: int = 0
    last_eval: EvalPoint | None = None
    cancelled: bool = False
    seconds: float = 0.0


def _never() -> bool:
    return False


def train(
    spec: RunSpec,
    report: Callable[[list[StepPoint], list[EvalPoint]], bool],
    save_dir: Path | None = None,
    device: torch.device | None = None,
    should_stop: Callable[[], bool] = _never,
) -> dict:
    """Fine-tune the base model as `spec` says; return the run's metrics.

    `report(points, evals)` gets new points at least every FLUSH_SECONDS, the points before the
    last step just before it, and each evaluation in the same call as the training point of its
    step; it returns False to cancel. `should_stop()` (True also cancels) is asked between the
    batches of each evaluation and between the end-of-run measurements; it must be cheap. A
    cancelled run returns its metrics so far with "cancelled": True (its validation figures those
    of its last evaluation, if any: it is not evaluated again) and saves nothing.
    """
    trainer = Training(spec, report, save_dir, device, should_stop)
    with trainer.run.memory:
        while trainer.step():
            pass
    return trainer.finish()


class Training:
    """One run, built once (its data, model and optimizer: `_prepare`), then trained a step at a
    time. `step()` takes the next step, evaluates when due and reports as train() says; it answers
    whether another step follows (False once the last is taken or the run was cancelled). An
    exception from a step (a non-finite loss, out of memory, a time limit) is raised after the
    points measured since the last report are reported. `finish()` then measures, saves and
    returns the metrics, as train() does.

    `seconds` is the run's own clock: the time spent inside its `step()` calls (see the module's
    docstring). `memory` makes the run's memory meter (measure.PeakMemory for a run alone, whose
    caller measures the whole loop with it; measure.LaneMemory for a lane, measured per step).
    """

    def __init__(
        self,
        spec: RunSpec,
        report: Callable[[list[StepPoint], list[EvalPoint]], bool],
        save_dir: Path | None = None,
        device: torch.device | None = None,
        should_stop: Callable[[], bool] = _never,
        memory=measure.PeakMemory,
        base: torch.nn.Module | None = None,
    ):
        self.spec, self.report, self.save_dir, self.should_stop = spec, report, save_dir, should_stop
        self.run = _prepare(spec, device or pick_device(), memory, base)
        self.run.memory.built()
        _stop_inside_passes(self.run.model, should_stop)
        self.done = _Done()
        self.over = False  # no step follows: the last was taken, or the run was cancelled
        size = min(spec.params["batch_size"], len(self.run.train_data.labels))
        self._stream = encoding.batches(self.run.train_data, size, spec.seed)
        self._points: list[StepPoint] = []
        self._evals: list[EvalPoint] = []
        self._last_flush = time.perf_counter()

    @property
    def seconds(self) -> float:
        return self.done.seconds

    def step(self) -> bool:
        """The next step, its evaluation when due and its report when due; whether another follows."""
        if self.over:
            return False
        started = time.perf_counter()
        try:
            with self.run.memory.turn():
                self._advance(started)
        except BaseException:
            # Out of memory, a time limit, a bad loss: the steps measured since the last report
            # are stored all the same.
            self.over = True
            self.report_pending()
            raise
        finally:
            self.done.seconds += time.perf_counter() - started
        return not self.over

    def _cancel(self) -> None:
        self.done.cancelled = self.over = True

    def report_pending(self) -> None:
        """Report the points not reported yet (before the run stops)."""
        if self._points:
            self.report(self._points, self._evals)
            self._points, self._evals = [], []

    def stop_here(self) -> None:
        """Cancelled between steps: the points so far are reported and no step follows."""
        self.report_pending()
        self._cancel()

    def _flush(self) -> bool:
        go_on = self.report(self._points, self._evals)
        self._points, self._evals, self._last_flush = [], [], time.perf_counter()
        return go_on

    def _advance(self, started: float) -> None:
        batch = self.next_batch()
        if batch is None:
            return
        try:
            value = _step(self.run, *batch, self.done.step + 1)
        except measure.Stopped:  # mid-step: the step is not taken
            return self.stop_here()
        self.took_step(batch[0], value, started)

    def next_batch(self) -> tuple[list[list[int]], list[int]] | None:
        """The next step's batch (token ids, labels); None if the run was cancelled at the report
        that comes before its last step."""
        if self.done.step + 1 == self.spec.steps and self._points:
            # Before the last step, the points so far: a reader then knows that what follows
            # is the last step, the final evaluation and the end-of-run measurements.
            if not self._flush():
                self._cancel()
                return None
        return next(self._stream)

    def took_step(self, ids: list[list[int]], value: float, started: float) -> None:
        """The step on `ids` was taken with loss `value` (its clock started at `started`): its
        point, its evaluation when due and its report when due."""
        spec, run, done = self.spec, self.run, self.done
        step = done.step = done.step + 1
        done.tokens += sum(len(x) for x in ids)  # real tokens, however the batch is laid out
        now = time.perf_counter()
        self._points.append(StepPoint(step, value, done.seconds + now - started))
        eval_every = spec.params["eval_every"]
        evaluated = step == spec.steps or (eval_every and step % eval_every == 0)
        if evaluated:
            try:
                scores = measure.evaluate(run.model, run.val_data, run.device, self.should_stop)
            except measure.Stopped:  # the steps so far are kept; this one has no evaluation
                return self.stop_here()
            done.last_eval = EvalPoint(step, *scores)
            self._evals.append(done.last_eval)
        if evaluated or step == 1 or now - self._last_flush >= FLUSH_SECONDS:
            if not self._flush():
                return self._cancel()
        if step == spec.steps:
            self.over = True

    def finish(self) -> dict:
        """The run's metrics once its steps are over: evaluated (unless cancelled), saved to
        `save_dir` and its inference measured (see train())."""
        spec, run, done = self.spec, self.run, self.done
        breakdown = measure.memory_breakdown(run.model, run.optimizer)
        if not done.cancelled and (done.last_eval is None or done.last_eval.step != done.step):
            with run.memory.turn():
                done.last_eval = EvalPoint(done.step, *measure.evaluate(run.model, run.val_data, run.device))
        metrics = _metrics(run, done, breakdown)
        if done.cancelled:
            return metrics
        try:
            if self.save_dir is not None:
                metrics["adapter_bytes"] = artifacts.save(run.model, spec, run.labels, self.save_dir)
            metrics.update(measure.inference_metrics(run.model, spec, run.val_data, run.device, self.should_stop))
        except measure.Stopped:
            # Cancelled after its last step: what was saved goes, as for any cancelled run.
            if self.save_dir is not None:
                shutil.rmtree(self.save_dir, ignore_errors=True)
            metrics["adapter_bytes"] = None
            metrics["cancelled"] = True
        return metrics


@dataclass
class Lane:
    """One run of train_together: what train() takes for it, and `ended(outcome)`, called as the
    lane ends (before the next lane's turn) with its metrics or the exception that ended it."""

    spec: RunSpec
    report: Callable[[list[StepPoint], list[EvalPoint]], bool]
    save_dir: Path | None = None
    should_stop: Callable[[], bool] = _never
    ended: Callable[[dict | Exception], None] | None = None


def train_together(lanes: Sequence[Lane], device: torch.device | None = None) -> list[dict | Exception]:
    """Train the lanes in one process, round-robin: every lane is built, in order, then each
    takes one step (and its evaluation and report when due) in turn until every lane has ended.
    Returns each lane's outcome, in order: its metrics as train() returns them (a cancelled lane's
    with "cancelled": True), or the exception that ended it (a TrainingError, a non-finite loss,
    out of memory, any Exception, raised while it was built, trained or finished). A lane that
    ends leaves and the others go on. An exception that is not an Exception (KeyboardInterrupt,
    SystemExit), or one raised by an `ended` callback, ends them all: it propagates.

    Each lane's clock, memory figures and random state are its own (see the module docstring)."""
    device = device or pick_device()
    outcomes: list[dict | Exception | None] = [None] * len(lanes)

    def end(i: int, outcome: dict | Exception) -> None:
        outcomes[i] = outcome
        if lanes[i].ended is not None:
            lanes[i].ended(outcome)
        if isinstance(outcome, Exception):
            # Its traceback keeps the lane's frames, and so its model, alive: their locals go.
            traceback.clear_frames(outcome.__traceback__)

    cuda = device.type == "cuda"
    turns: deque[tuple[int, Training, tuple]] = deque()  # (index, run, its random state), next first
    for i, lane in enumerate(lanes):
        try:
            run = Training(lane.spec, lane.report, lane.save_dir, device, lane.should_stop, memory=measure.LaneMemory)
        except Exception as exc:  # noqa: BLE001 - the lane's own failure; the others go on
            end(i, exc)
            continue
        turns.append((i, run, _random_state(cuda, device)))
        del run
    while turns:
        i, run, state = turns.popleft()
        try:
            _set_random_state(cuda, device, state)
            if run.step():
                turns.append((i, run, _random_state(cuda, device)))
                continue
            outcome = run.finish()
        except Exception as exc:  # noqa: BLE001 - the lane's own failure; the others go on
            outcome = exc
        del run  # the lane's model and optimizer go before the next lane's turn
        end(i, outcome)
    return outcomes


def _random_state(cuda: bool, device: torch.device) -> tuple:
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if cuda else None


def _set_random_state(cuda: bool, device: torch.device, state: tuple) -> None:
    torch.set_rng_state(state[0])
    if cuda:
        torch.cuda.set_rng_state(state[1], device)


def _prepare(
    spec: RunSpec, device: torch.device, memory=measure.PeakMemory, base: torch.nn.Module | None = None
) -> _Run:
    """The run's data, model and optimizer; the memory meter is made before the model is built
    (measure.PeakMemory says why). `base`: a pack's frozen encoder (workers/runpack.py), whose
    weights the run's frozen weights become once built (the pack casts them once for all its runs)."""
    task = datasets.load_task(spec.task)
    train_data, val_data = encoding.encode_task(spec.task)
    train_data = encoding.train_subset(train_data, spec.params.get("train_examples"), spec.seed)
    memory = memory(device)
    torch.manual_seed(spec.seed)
    model = classifier.build_model(spec, len(task.labels), device)
    trainable, total = measure.count_params(model)
    optimizer = make_optimizer(spec, [p for p in model.parameters() if p.requires_grad], device)
    compute = precision.training_dtype(device)  # bf16 autocast or fp32, see workers/precision.py
    if base is None:
        precision.cast_frozen_weights_once(model, compute)
    else:
        classifier.share_frozen_weights(model, base)
    activations = measure.ActivationMeter(model)
    model.train()
    # Packed batches (no padding computed) where the method allows; prompt and prefix tuning add
    # tokens of their own to every row and keep padded ones.
    return _Run(
        device=device,
        model=model,
        optimizer=optimizer,
        schedule=make_schedule(optimizer, spec.steps),
        memory=memory,
        activations=activations,
        compute=compute,
        packed=spec.method in packing.PACKABLE,
        pad_id=classifier.load_base().tokenizer.pad_token_id,
        labels=list(task.labels),
        train_data=train_data,
        val_data=val_data,
        trainable=trainable,
        total=total,
    )


def _stop_inside_passes(model: torch.nn.Module, should_stop: Callable[[], bool]) -> None:
    """A long step (a large batch on a busy CPU takes seconds) asks `should_stop` too: before each
    encoder layer's forward pass and, through a hook on the layer's output, before its part of the
    backward pass; True raises measure.Stopped out of the forward or backward pass."""
    if should_stop is _never:
        return

    def check(*_):
        if should_stop():
            raise measure.Stopped("stopped inside a forward or backward pass")

    def on_output(_module, _args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        if torch.is_tensor(hidden) and hidden.requires_grad:
            hidden.register_hook(check)

    for module in model.modules():
        if type(module).__name__ == "BertLayer":
            module.register_forward_pre_hook(check)
            module.register_forward_hook(on_output)


def _step(run: _Run, ids: list[list[int]], labels: list[int], step: int) -> float:
    """One optimizer step on the batch; its loss."""
    loss = _loss(run, ids, labels)
    value = loss.item()  # read once: on a GPU each read waits for the device
    if not math.isfinite(value):
        raise TrainingError(f"the loss became {value} at step {step}; try a smaller learning rate")
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    run.schedule.step()
    return value


def _loss(run: _Run, ids: list[list[int]], labels: list[int]) -> torch.Tensor:
    """The batch's forward pass, packed or padded, its saved activations measured."""
    autocast = precision.autocast(run.device, run.compute)
    if run.packed:
        batch = packing.pack(ids, labels, run.device, run.pad_id)
        with run.activations.step(*batch.input_ids.shape), autocast:
            loss = packing.forward(run.model, batch)[0]
    else:
        batch = encoding.collate(ids, labels, run.device)
        with run.activations.step(*batch["input_ids"].shape), autocast:
            loss = run.model(**batch).loss
    run.activations.end_step()
    return loss


def _metrics(run: _Run, done: _Done, breakdown: dict) -> dict:
    """The run's metrics, before its artifacts are saved and its inference is measured."""
    return {
        "trainable_params": run.trainable,
        "total_params": run.total,
        "trainable_percent": 100.0 * run.trainable / run.total,
        **run.memory.result(breakdown, run.activations.peak),
        "memory_breakdown": {**breakdown, "activations": run.activations.peak},
        "train_seconds": round(done.seconds, 3),
        "precision": precision.name(run.compute),
        "device": run.device.type,
        "steps_per_second": round(done.step / done.seconds, 3),
        "tokens_per_second": round(done.tokens / done.seconds, 1),
        "train_examples": len(run.train_data.labels),
        "val_accuracy": done.last_eval.val_accuracy if done.last_eval else None,
        "val_loss": done.last_eval.val_loss if done.last_eval else None,
        "adapter_bytes": None,
        "cancelled": done.cancelled,
    }
