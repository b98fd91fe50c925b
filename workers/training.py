"""The training engine: base model cached per process, method applied, trained, measured.

It knows nothing of HTTP or the database. The caller hands it a `report` callback that receives
each batch of new training points and evaluations and answers whether to go on (False cancels).
"""
import contextlib
import copy
import gc
import math
import os
import random
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from workers import base_model, datasets, packing, precision
from workers.constants import EVAL_BATCH, MAX_TOKENS
from workers.methods import RunSpec

# Points reach the caller (one database transaction) at least this often, the first at once and
# the last at the end: a learner sees the curve start within a step, and a GPU's hundred steps a
# second cost five writes, not a hundred.
FLUSH_SECONDS = 0.2
LATENCY_BATCH = 32


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


@dataclass
class BaseModel:
    tokenizer: object
    encoder: nn.Module  # the pretrained BertModel, never trained: each run works on a copy
    config: object


# How many times this process read the base weights from disk (a test checks it stays at 1).
disk_loads = 0
_loading = threading.Lock()


def load_base() -> BaseModel:
    """The tokenizer and the pretrained encoder, read from disk once per process; a thread that
    asks while another reads them (warm_up's) waits for that read."""
    with _loading:
        return _read_base()


def warm_up() -> None:
    """What a fresh training process needs before its first run, read while it waits for one (a
    thread of each pool process, peftlab/celery_app.py): the base model, and peft, whose import
    (bitsandbytes' with it) takes seconds. A run that arrives meanwhile waits in load_base() until
    both are done (two threads importing one package at once can see it half-initialised)."""
    with _loading:
        _read_base()
        import peft  # noqa: F401


@cache
def _read_base() -> BaseModel:
    global disk_loads
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    path = base_model.model_path()
    disk_loads += 1
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path, add_pooling_layer=True)
    encoder.eval().requires_grad_(False)
    return BaseModel(tokenizer=tokenizer, encoder=encoder, config=AutoConfig.from_pretrained(path))


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_classifier(num_labels: int, seed: int) -> nn.Module:
    """A fresh BertForSequenceClassification around a copy of the cached encoder.

    The head is initialised from the seed, so the same seed gives the same run.
    """
    from transformers import BertForSequenceClassification

    base = load_base()
    config = copy.deepcopy(base.config)
    config.num_labels = num_labels
    # Build the skeleton on the meta device (no 22M random numbers drawn), then put the cached
    # weights and a seeded head in.
    with torch.device("meta"):
        model = BertForSequenceClassification(config)
    model.bert = copy.deepcopy(base.encoder).requires_grad_(True)
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(config.hidden_size, num_labels)
    with torch.no_grad():
        head.weight.normal_(0.0, config.initializer_range, generator=generator)
        head.bias.zero_()
    model.classifier = head
    model.dropout = nn.Dropout(config.hidden_dropout_prob)
    return model


def apply_method(model: nn.Module, spec: RunSpec, device: torch.device | None = None) -> nn.Module:
    """Wrap the model for the method; afterwards only the method's parameters require grad."""
    from workers.builders import BUILDERS

    return BUILDERS[spec.method](model, spec, device or torch.device("cpu"))


def build_model(spec: RunSpec, num_labels: int, device: torch.device) -> nn.Module:
    """The base classifier with the method applied, on the device."""
    return apply_method(build_classifier(num_labels, spec.seed), spec, device).to(device)


@dataclass
class Encoded:
    ids: list[list[int]]
    labels: list[int]


def encode_task(task_name: str) -> tuple[Encoded, Encoded]:
    """Token ids of a task's train and validation texts, unpadded (padding is per batch).
    A shipped task is encoded once per process; an uploaded one (a few thousand rows at most,
    read from the database) each time, so a process never trains on a stale copy."""
    if datasets.is_shipped(task_name):
        return _encode_shipped(task_name)
    return _encode(datasets.load_task(task_name))


@cache
def _encode_shipped(task_name: str) -> tuple[Encoded, Encoded]:
    return _encode(datasets.load_task(task_name))


def _encode(task: datasets.Task) -> tuple[Encoded, Encoded]:
    tokenizer = load_base().tokenizer

    def encode(examples):
        ids = tokenizer([e.text for e in examples], truncation=True, max_length=MAX_TOKENS)["input_ids"]
        return Encoded(ids=ids, labels=[e.label for e in examples])

    return encode(task.train), encode(task.val)


def train_subset(data: Encoded, size: int | None, seed: int) -> Encoded:
    """The run's training examples: the whole split, or a seeded class-balanced subset."""
    if size is None or size >= len(data.labels):
        return data
    from workers.subsets import balanced_subset

    idx = balanced_subset(data.labels, size, seed)
    return Encoded(ids=[data.ids[i] for i in idx], labels=[data.labels[i] for i in idx])


def collate(ids: list[list[int]], labels: list[int], device) -> dict:
    """Pad to the longest sequence in this batch only (dynamic padding)."""
    width = max(len(x) for x in ids)
    pad = load_base().tokenizer.pad_token_id
    input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": mask.to(device),
        "labels": torch.tensor(labels, dtype=torch.long, device=device),
    }


def batches(data: Encoded, batch_size: int, seed: int):
    """An endless stream of full, shuffled batches, reshuffled every epoch from the run's seed.

    batch_size must not exceed the data (train() caps it); an epoch's last partial batch is
    dropped so that every step sees the same number of examples. (Batches grouped by length pad
    less, but learn worse here: bench/throughput.py's "length groups" lever measures both. train()
    removes the padding instead, keeping the batches: workers/packing.py.)
    """
    rng = random.Random(seed)
    order = list(range(len(data.labels)))
    while True:
        rng.shuffle(order)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            yield [data.ids[i] for i in idx], [data.labels[i] for i in idx]


@torch.no_grad()
def evaluate(model: nn.Module, data: Encoded, device) -> tuple[float, float]:
    """Validation (loss, accuracy) over the whole split, shortest texts first: each batch pads
    only to the longest of similar lengths (a third fewer tokens than in file order here)."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    order = sorted(range(len(data.labels)), key=lambda i: len(data.ids[i]))
    for start in range(0, len(order), EVAL_BATCH):
        idx = order[start:start + EVAL_BATCH]
        batch = collate([data.ids[i] for i in idx], [data.labels[i] for i in idx], device)
        out = model(**batch)
        total_loss += out.loss.item() * len(batch["labels"])
        correct += (out.logits.argmax(-1) == batch["labels"]).sum().item()
    model.train(was_training)
    n = len(data.labels)
    return total_loss / n, correct / n


def make_optimizer(spec: RunSpec, params: list, device: torch.device) -> torch.optim.Optimizer:
    """AdamW at the run's learning rate: torch's fused kernel, one pass over every tensor instead
    of a Python loop over them; QLoRA on CUDA keeps bitsandbytes' paged AdamW (workers/quantize.py)."""
    if spec.method == "qlora" and device.type == "cuda":
        from workers.quantize import make_optimizer as paged

        return paged(params, spec.params["lr"], device)
    return torch.optim.AdamW(params, lr=spec.params["lr"], fused=True)


def count_params(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters of the model as built, counted from its tensors.

    A 4-bit weight packs two numbers per byte of its uint8 storage; it counts as what it holds.
    """
    trainable = total = 0
    for p in model.parameters():
        n = p.numel() * 2 if type(p).__name__ == "Params4bit" else p.numel()
        total += n
        trainable += n if p.requires_grad else 0
    return trainable, total


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def memory_breakdown(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Bytes of parameters (as stored: 4-bit weights packed), gradients and optimizer state."""
    params = list(model.parameters())
    state = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    return {"params": tensor_bytes(params) + tensor_bytes(model.buffers()),
            "grads": tensor_bytes(p.grad for p in params),
            "optimizer_state": tensor_bytes(state)}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class ActivationMeter:
    """The bytes autograd keeps for the backward pass of one step (the activations), measured
    from the tensors themselves with saved-tensor hooks; the largest step is the peak of the
    batches as train() computes them (packed: real tokens only, see workers/packing.py).

    Parameters that autograd saves (weights for a matmul's backward) are not activations and are
    left out; a tensor saved twice counts once.
    """

    def __init__(self, model: nn.Module):
        self.params = {p.data_ptr() for p in model.parameters()}
        self.peak = 0
        self.measured: list[tuple[int, int]] = []  # (rows, width) of the batches measured
        self._step: dict[int, int] | None = None

    def _pack(self, tensor):
        ptr = tensor.data_ptr()
        if ptr not in self.params:
            self._step[ptr] = max(self._step.get(ptr, 0), tensor.numel() * tensor.element_size())
        return tensor

    def step(self, rows: int, width: int):
        """A context for one forward pass of a batch of `rows` rows `width` tokens wide. What
        autograd saves grows with both (the linear layers' inputs with rows x width, attention with
        rows x width²): a batch with no more rows and no wider than one measured cannot raise the
        peak and is not measured (the hooks cost a Python call per saved tensor). A padded batch
        has a fixed number of rows; a packed one as many as its sequences fill."""
        if any(rows <= r and width <= w for r, w in self.measured):
            self._step = None
            return contextlib.nullcontext()
        self.measured.append((rows, width))
        self._step = {}
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor)

    def end_step(self) -> None:
        if self._step is not None:
            self.peak = max(self.peak, sum(self._step.values()))


class PeakMemory:
    """Peak memory of a run.

    On CUDA, the allocator's own peak (torch.cuda.max_memory_allocated). The CPU build of torch
    keeps no allocator statistics, so there the peak is added up from the tensors: parameters,
    gradients and optimizer state as allocated, plus the largest step's activations
    (ActivationMeter). The growth of the process's resident memory during the loop is reported
    beside it; it is the honest process-level figure but not a repeatable one (a worker's
    allocator reuses the pages of earlier runs, so later runs grow less).
    """

    def __init__(self, device: torch.device):
        """Made before the run's model is built: on CUDA it notes what the process holds on the
        device already, which is not the run's (tensors of an earlier run that only a reference
        cycle still holds, cuBLAS's workspaces)."""
        self.device = device
        self.source = ("cuda: torch.cuda.max_memory_allocated, less what the process held before "
                       "the run" if device.type == "cuda" else
                       "cpu: parameters + gradients + optimizer state + largest step's activations, "
                       "counted from the tensors")
        self._stop = threading.Event()
        self._rss_peak = 0
        if device.type == "cuda":
            gc.collect()
            _allocate_cublas_workspaces(device)
            self._held_before = torch.cuda.memory_allocated(device)

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._rss_start = self._rss_peak = _rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self._rss_peak = max(self._rss_peak, _rss_bytes())

    def __exit__(self, *exc):
        if self.device.type != "cuda":
            self._stop.set()
            self._thread.join()
            self._rss_peak = max(self._rss_peak, _rss_bytes())

    def result(self, breakdown: dict, activations: int) -> dict:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device) - self._held_before
            return {"peak_memory_bytes": peak, "peak_memory_source": self.source}
        counted = breakdown["params"] + breakdown["grads"] + breakdown["optimizer_state"] + activations
        return {"peak_memory_bytes": counted, "peak_memory_source": self.source,
                "rss_growth_bytes": self._rss_peak - self._rss_start}


def _allocate_cublas_workspaces(device: torch.device) -> None:
    """Have cuBLAS allocate its workspaces now. It takes them from torch's allocator at the first
    matrix product in each precision (65 MiB on an NVIDIA H100) and keeps them for the life of
    the process, so a process's first run would otherwise count them as its own."""
    dtypes = [torch.float32]
    if torch.cuda.is_bf16_supported(including_emulation=False):
        dtypes.append(torch.bfloat16)
    for dtype in dtypes:
        x = torch.ones(8, 8, device=device, dtype=dtype, requires_grad=True)
        (x @ x).sum().backward()
    torch.cuda.synchronize(device)


def measure_latency(model: nn.Module, batch: dict, repeats: int = 3) -> tuple[float, torch.Tensor]:
    """Median seconds of one forward pass over `batch` (after one warm-up pass), and the logits
    of the warm-up pass (fp32)."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            if batch["input_ids"].is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = model(**inputs)
            if batch["input_ids"].is_cuda:
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - start)
            else:
                logits = out.logits.float()
    return sorted(times)[len(times) // 2], logits


def inference_metrics(model: nn.Module, spec: RunSpec, val: Encoded, device) -> dict:
    """Latency of the trained model; for mergeable methods merged against unmerged, with the
    largest logit difference between the two; for adapters, against the base without them.
    Also the predictions on the task's demo sentences (workers/demo.py), merged and unmerged."""
    from workers import demo
    from workers.builders import MERGEABLE

    batch = collate(val.ids[:LATENCY_BATCH], val.labels[:LATENCY_BATCH], device)
    seconds, before = measure_latency(model, batch)
    out = {"latency_batch": len(batch["labels"]), "latency_ms": 1000 * seconds}
    demo_unmerged, demo_merged = demo.logits(model, spec.task, device), None
    if spec.method in MERGEABLE:
        with torch.no_grad():
            merged = model.merge_and_unload()
        seconds, after = measure_latency(merged, batch)
        out["latency_merged_ms"] = 1000 * seconds
        out["merge_max_abs_diff"] = (before - after).abs().max().item()
        demo_merged = demo.logits(merged, spec.task, device)
    elif spec.method == "adapter":
        from workers.adapters import adapters_disabled

        with adapters_disabled(model):
            out["latency_base_ms"] = 1000 * measure_latency(model, batch)[0]
    # Predictions on a few demo sentences, before and after merging (P13 swaps them).
    out["demo"] = demo.record(spec.task, demo_unmerged, demo_merged)
    return out


def train(spec: RunSpec, report: Callable[[list[StepPoint], list[EvalPoint]], bool],
          save_dir: Path | None = None, device: torch.device | None = None) -> dict:
    """Fine-tune the base model as `spec` says; return the run's metrics.

    `report(points, evals)` gets new points at least every FLUSH_SECONDS, and each evaluation in
    the same call as the training point of its step; it returns False to cancel. A cancelled run
    returns its metrics so far with "cancelled": True and saves nothing.
    """
    from workers import artifacts

    device = device or pick_device()
    task = datasets.load_task(spec.task)
    train_data, val_data = encode_task(spec.task)
    params = spec.params
    train_data = train_subset(train_data, params.get("train_examples"), spec.seed)
    eval_every = params["eval_every"]

    memory = PeakMemory(device)
    torch.manual_seed(spec.seed)
    model = build_model(spec, len(task.labels), device)
    trainable, total = count_params(model)
    optimizer = make_optimizer(spec, [p for p in model.parameters() if p.requires_grad], device)
    stream = batches(train_data, min(params["batch_size"], len(train_data.labels)), spec.seed)
    # Packed batches (no padding computed) where the method allows; prompt and prefix tuning add
    # tokens of their own to every row and keep padded ones.
    packed = spec.method in packing.PACKABLE
    compute = precision.training_dtype(device)  # bf16 autocast or fp32, see workers/precision.py
    precision.cast_frozen_weights_once(model, compute)
    pad_id = load_base().tokenizer.pad_token_id
    points: list[StepPoint] = []
    evals: list[EvalPoint] = []
    last_eval = None
    tokens = 0
    cancelled = False
    activations = ActivationMeter(model)
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
                    batch = collate(ids, labels, device)
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
                    last_eval = EvalPoint(step, *evaluate(model, val_data, device))
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
    breakdown = memory_breakdown(model, optimizer)
    if last_eval is None or last_eval.step != step:
        last_eval = EvalPoint(step, *evaluate(model, val_data, device))

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
        metrics.update(inference_metrics(model, spec, val_data, device))
    return metrics
