"""The training engine's loop: a run's model built (workers/classifier.py), trained on its
batches (workers/encoding.py), measured (workers/measure.py) and saved (workers/artifacts.py).

It knows nothing of HTTP or the database. The caller hands it a `report` callback that receives
each batch of new training points and evaluations and answers whether to go on (False cancels).
"""
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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


def train(spec: RunSpec, report: Callable[[list[StepPoint], list[EvalPoint]], bool],
          save_dir: Path | None = None, device: torch.device | None = None) -> dict:
    """Fine-tune the base model as `spec` says; return the run's metrics.

    `report(points, evals)` gets new points at least every FLUSH_SECONDS, and each evaluation in
    the same call as the training point of its step; it returns False to cancel. A cancelled run
    returns its metrics so far with "cancelled": True and saves nothing.
    """
    device = device or pick_device()
    task = datasets.load_task(spec.task)
    train_data, val_data = encoding.encode_task(spec.task)
    params = spec.params
    train_data = encoding.train_subset(train_data, params.get("train_examples"), spec.seed)
    eval_every = params["eval_every"]

    memory = measure.PeakMemory(device)
    torch.manual_seed(spec.seed)
    model = classifier.build_model(spec, len(task.labels), device)
    trainable, total = measure.count_params(model)
    optimizer = make_optimizer(spec, [p for p in model.parameters() if p.requires_grad], device)
    stream = encoding.batches(train_data, min(params["batch_size"], len(train_data.labels)), spec.seed)
    # Packed batches (no padding computed) where the method allows; prompt and prefix tuning add
    # tokens of their own to every row and keep padded ones.
    packed = spec.method in packing.PACKABLE
    compute = precision.training_dtype(device)  # bf16 autocast or fp32, see workers/precision.py
    precision.cast_frozen_weights_once(model, compute)
    pad_id = classifier.load_base().tokenizer.pad_token_id
    points: list[StepPoint] = []
    evals: list[EvalPoint] = []
    last_eval = None
    tokens = 0
    cancelled = False
    activations = measure.ActivationMeter(model)
    model.train()
    with memory:
        started = last_flush = time.perf_counter()
        try:
            for step in range(1, spec.steps + 1):
                ids, labels = next(stream)
                tokens += sum(len(x) for x in ids)  # real tokens, however the batch is laid out
                if packed:
                    batch = packing.pack(ids, labels, device, pad_id)
                    with activations.step(*batch.input_ids.shape), precision.autocast(device, compute):
                        loss = packing.forward(model, batch)[0]
                else:
                    batch = encoding.collate(ids, labels, device)
                    with activations.step(*batch["input_ids"].shape), precision.autocast(device, compute):
                        loss = model(**batch).loss
                activations.end_step()
                value = loss.item()  # read once: on a GPU each read waits for the device
                if not math.isfinite(value):
                    raise TrainingError(f"the loss became {value} at step {step}; "
                                        "try a smaller learning rate")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                now = time.perf_counter()
                points.append(StepPoint(step, value, now - started))
                evaluated = step == spec.steps or (eval_every and step % eval_every == 0)
                if evaluated:
                    last_eval = EvalPoint(step, *measure.evaluate(model, val_data, device))
                    evals.append(last_eval)
                if evaluated or step == 1 or now - last_flush >= FLUSH_SECONDS:
                    go_on = report(points, evals)
                    points, evals, last_flush = [], [], time.perf_counter()
                    if not go_on:
                        cancelled = True
                        break
        except BaseException:
            # Out of memory, a time limit, a bad loss: the steps measured since the last report
            # are stored all the same.
            if points:
                report(points, evals)
            raise
        train_seconds = time.perf_counter() - started
    breakdown = measure.memory_breakdown(model, optimizer)
    if last_eval is None or last_eval.step != step:
        last_eval = EvalPoint(step, *measure.evaluate(model, val_data, device))

    metrics = {
        "trainable_params": trainable,
        "total_params": total,
        "trainable_percent": 100.0 * trainable / total,
        **memory.result(breakdown, activations.peak),
        "memory_breakdown": {**breakdown, "activations": activations.peak},
        "train_seconds": round(train_seconds, 3),
        "precision": precision.name(compute),
        "steps_per_second": round(step / train_seconds, 3),
        "tokens_per_second": round(tokens / train_seconds, 1),
        "train_examples": len(train_data.labels),
        "val_accuracy": last_eval.val_accuracy,
        "val_loss": last_eval.val_loss,
        "adapter_bytes": None,
        "cancelled": cancelled,
    }
    if not cancelled:
        if save_dir is not None:
            metrics["adapter_bytes"] = artifacts.save(model, spec, list(task.labels), save_dir)
        metrics.update(measure.inference_metrics(model, spec, val_data, device))
    return metrics
