"""The training engine's loop: a run's model built (workers/classifier.py), trained on its
batches (workers/encoding.py), measured (workers/measure.py) and saved (workers/artifacts.py).

It knows nothing of HTTP or the database. The caller hands it a `report` callback that receives
each batch of new training points and evaluations and answers whether to go on (False cancels),
and may hand it a cheap `should_stop` callable that long work (an evaluation, the end-of-run
measurements) asks between its batches, so that a cancel need not wait for the next report.
"""

import math
import shutil
import time
from collections.abc import Callable
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


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_optimizer(spec: RunSpec, params: list, device: torch.device) -> torch.optim.Optimizer:
    """AdamW at the run's learning rate: torch's fused kernel, one pass over every tensor instead
    of a Python loop over them; QLoRA on CUDA keeps bitsandbytes' paged AdamW (workers/quantize.py)."""
    if spec.method == "qlora" and device.type == "cuda":
        from workers.quantize import make_optimizer as paged

        return paged(params, spec.params["lr"], device)
    return torch.optim.AdamW(params, lr=spec.params["lr"], fused=True)


@dataclass
class _Run:
    """What a run's loop works with, built before its first step."""

    device: torch.device
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
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
    run = _prepare(spec, device or pick_device())
    _stop_inside_passes(run.model, should_stop)
    with run.memory:
        done = _loop(spec, run, report, should_stop)
    breakdown = measure.memory_breakdown(run.model, run.optimizer)
    if not done.cancelled and (done.last_eval is None or done.last_eval.step != done.step):
        done.last_eval = EvalPoint(done.step, *measure.evaluate(run.model, run.val_data, run.device))
    metrics = _metrics(run, done, breakdown)
    if done.cancelled:
        return metrics
    try:
        if save_dir is not None:
            metrics["adapter_bytes"] = artifacts.save(run.model, spec, run.labels, save_dir)
        metrics.update(measure.inference_metrics(run.model, spec, run.val_data, run.device, should_stop))
    except measure.Stopped:
        # Cancelled after its last step: what was saved goes, as for any cancelled run.
        if save_dir is not None:
            shutil.rmtree(save_dir, ignore_errors=True)
        metrics["adapter_bytes"] = None
        metrics["cancelled"] = True
    return metrics


def _prepare(spec: RunSpec, device: torch.device) -> _Run:
    """The run's data, model and optimizer; the memory meter is made before the model is built
    (measure.PeakMemory says why)."""
    task = datasets.load_task(spec.task)
    train_data, val_data = encoding.encode_task(spec.task)
    train_data = encoding.train_subset(train_data, spec.params.get("train_examples"), spec.seed)
    memory = measure.PeakMemory(device)
    torch.manual_seed(spec.seed)
    model = classifier.build_model(spec, len(task.labels), device)
    trainable, total = measure.count_params(model)
    optimizer = make_optimizer(spec, [p for p in model.parameters() if p.requires_grad], device)
    compute = precision.training_dtype(device)  # bf16 autocast or fp32, see workers/precision.py
    precision.cast_frozen_weights_once(model, compute)
    activations = measure.ActivationMeter(model)
    model.train()
    # Packed batches (no padding computed) where the method allows; prompt and prefix tuning add
    # tokens of their own to every row and keep padded ones.
    return _Run(
        device=device,
        model=model,
        optimizer=optimizer,
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


def _loop(spec: RunSpec, run: _Run, report, should_stop) -> _Done:
    """The training steps, evaluating every `eval_every` steps and at the last, reporting points
    as train() says; it stops early when the report cancels, or `should_stop` mid-evaluation."""
    eval_every = spec.params["eval_every"]
    size = min(spec.params["batch_size"], len(run.train_data.labels))
    stream = encoding.batches(run.train_data, size, spec.seed)
    done = _Done()
    points: list[StepPoint] = []
    evals: list[EvalPoint] = []
    started = last_flush = time.perf_counter()
    try:
        for step in range(1, spec.steps + 1):
            if step == spec.steps and points:
                # Before the last step, the points so far: a reader then knows that what follows
                # is the last step, the final evaluation and the end-of-run measurements.
                go_on = report(points, evals)
                points, evals, last_flush = [], [], time.perf_counter()
                if not go_on:
                    done.cancelled = True
                    break
            ids, labels = next(stream)
            try:
                value = _step(run, ids, labels, step)
            except measure.Stopped:  # mid-step: the step is not taken
                if points:
                    report(points, evals)
                    points = []
                done.cancelled = True
                break
            done.step = step
            done.tokens += sum(len(x) for x in ids)  # real tokens, however the batch is laid out
            now = time.perf_counter()
            points.append(StepPoint(step, value, now - started))
            evaluated = step == spec.steps or (eval_every and step % eval_every == 0)
            if evaluated:
                try:
                    scores = measure.evaluate(run.model, run.val_data, run.device, should_stop)
                except measure.Stopped:
                    report(points, evals)  # the steps so far are kept; this one has no evaluation
                    points = []
                    done.cancelled = True
                    break
                done.last_eval = EvalPoint(step, *scores)
                evals.append(done.last_eval)
            if evaluated or step == 1 or now - last_flush >= FLUSH_SECONDS:
                go_on = report(points, evals)
                points, evals, last_flush = [], [], time.perf_counter()
                if not go_on:
                    done.cancelled = True
                    break
    except BaseException:
        # Out of memory, a time limit, a bad loss: the steps measured since the last report
        # are stored all the same.
        if points:
            report(points, evals)
        raise
    done.seconds = time.perf_counter() - started
    return done


def _step(run: _Run, ids: list[list[int]], labels: list[int], step: int) -> float:
    """One optimizer step on the batch; its loss."""
    loss = _loss(run, ids, labels)
    value = loss.item()  # read once: on a GPU each read waits for the device
    if not math.isfinite(value):
        raise TrainingError(f"the loss became {value} at step {step}; try a smaller learning rate")
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
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
        "steps_per_second": round(done.step / done.seconds, 3),
        "tokens_per_second": round(done.tokens / done.seconds, 1),
        "train_examples": len(run.train_data.labels),
        "val_accuracy": done.last_eval.val_accuracy if done.last_eval else None,
        "val_loss": done.last_eval.val_loss if done.last_eval else None,
        "adapter_bytes": None,
        "cancelled": done.cancelled,
    }
