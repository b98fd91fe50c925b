"""What a run measures: validation loss and accuracy, parameters, memory and latency."""

import contextlib
import gc
import os
import threading
import time

import torch
from torch import nn

from workers import builders, demo, encoding
from workers.constants import EVAL_BATCH
from workers.methods import RunSpec

LATENCY_BATCH = 32


class Stopped(Exception):  # noqa: N818 - a request, not a fault
    """Long work (an evaluation, the end-of-run measurements) broke off because its run's
    `should_stop` said so (the run was cancelled, or its worker is stopping)."""


def _never() -> bool:
    return False


@torch.no_grad()
def evaluate(model: nn.Module, data: encoding.Encoded, device, should_stop=_never) -> tuple[float, float]:
    """Validation (loss, accuracy) over the whole split, shortest texts first: each batch pads
    only to the longest of similar lengths (a third fewer tokens than in file order here).

    `should_stop()` is asked before each batch (it must be cheap: lifecycle.Reporter's reads the
    database at most every half second); True raises Stopped, the model back in its mode."""
    was_training = model.training
    model.eval()
    try:
        return _evaluate(model, data, device, should_stop)
    finally:
        model.train(was_training)


def _evaluate(model: nn.Module, data: encoding.Encoded, device, should_stop) -> tuple[float, float]:
    total_loss, correct = 0.0, 0
    order = sorted(range(len(data.labels)), key=lambda i: len(data.ids[i]))
    for start in range(0, len(order), EVAL_BATCH):
        if should_stop():
            raise Stopped(f"stopped after {start} of {len(order)} validation examples")
        idx = order[start : start + EVAL_BATCH]
        batch = encoding.collate([data.ids[i] for i in idx], [data.labels[i] for i in idx], device)
        out = model(**batch)
        total_loss += out.loss.item() * len(batch["labels"])
        correct += (out.logits.argmax(-1) == batch["labels"]).sum().item()
    n = len(data.labels)
    return total_loss / n, correct / n


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
    return {
        "params": tensor_bytes(params) + tensor_bytes(model.buffers()),
        "grads": tensor_bytes(p.grad for p in params),
        "optimizer_state": tensor_bytes(state),
    }


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
        self.source = (
            "cuda: torch.cuda.max_memory_allocated, less what the process held before the run"
            if device.type == "cuda"
            else "cpu: parameters + gradients + optimizer state + largest step's activations, counted from the tensors"
        )
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

    def built(self) -> None:
        """Nothing to note: a run measured alone is measured over its whole loop (`with`)."""

    def turn(self):
        """Nothing to measure per turn (see LaneMemory for runs that take turns)."""
        return contextlib.nullcontext()

    def result(self, breakdown: dict, activations: int) -> dict:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device) - self._held_before
            return {"peak_memory_bytes": peak, "peak_memory_source": self.source}
        counted = breakdown["params"] + breakdown["grads"] + breakdown["optimizer_state"] + activations
        return {
            "peak_memory_bytes": counted,
            "peak_memory_source": self.source,
            "rss_growth_bytes": self._rss_peak - self._rss_start,
        }


class LaneMemory:
    """Peak memory of one of several runs that take turns in one process (the lanes of a race,
    workers/training.py `train_together`).

    The process's own figures (the CUDA allocator's peak, the resident memory) count every lane's
    tensors at once, so each lane is measured around its own turns instead: the highest the
    figure rose during one of its turns above where the turn began, plus what the lane held as the
    turn began (what its build added, and what its earlier turns added and did not give back:
    the figure's change across each). Other lanes' tensors do not change during its turns, so
    they cancel out. On CUDA that is the lane's peak; on the CPU the peak is counted from the
    lane's own tensors, as PeakMemory counts it, and the resident memory's growth is measured
    this way (as noisy as a single run's: the allocator reuses pages other lanes gave back).
    """

    def __init__(self, device: torch.device):
        """Made before the lane's model is built, as PeakMemory is."""
        self.device = device
        self.cuda = device.type == "cuda"
        self.source = (
            "cuda: torch.cuda.max_memory_allocated during this lane's own turns, less what the "
            "process held beside the lane"
            if self.cuda
            else "cpu: parameters + gradients + optimizer state + largest step's activations, counted from the tensors"
        )
        if self.cuda:
            gc.collect()
            _allocate_cublas_workspaces(device)
        self._before = self._now()
        self._held = 0  # what the lane holds between its turns
        self._peak = 0

    def _now(self) -> int:
        return torch.cuda.memory_allocated(self.device) if self.cuda else _rss_bytes()

    def built(self) -> None:
        """The lane's model is built: on CUDA what it holds from now on counts (as in PeakMemory,
        which notes the process's figure before the build); on the CPU only the loop's growth
        counts, as for a single run."""
        if self.cuda:
            self._held = self._peak = self._now() - self._before

    @contextlib.contextmanager
    def turn(self):
        """A context for one of the lane's turns (its step, evaluation and report)."""
        start = self._now()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            sampler = _RssSampler(start)
        try:
            yield
        finally:
            top = torch.cuda.max_memory_allocated(self.device) if self.cuda else sampler.stop()
            end = self._now()
            self._peak = max(self._peak, self._held + top - start)
            self._held += end - start

    def result(self, breakdown: dict, activations: int) -> dict:
        if self.cuda:
            return {"peak_memory_bytes": self._peak, "peak_memory_source": self.source}
        counted = breakdown["params"] + breakdown["grads"] + breakdown["optimizer_state"] + activations
        return {"peak_memory_bytes": counted, "peak_memory_source": self.source, "rss_growth_bytes": self._peak}


class _RssSampler:
    """The highest resident memory of the process from now until stop(), sampled every 20 ms."""

    def __init__(self, start: int):
        self.peak = start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_bytes())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, _rss_bytes())


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


def measure_latency(model: nn.Module, batch: dict, repeats: int = 3, check=None) -> tuple[float, torch.Tensor]:
    """Median seconds of one forward pass over `batch` (after one warm-up pass), and the logits
    of the warm-up pass (fp32). `check()` runs before each pass (it may raise Stopped)."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            if check is not None:
                check()
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


def inference_metrics(model: nn.Module, spec: RunSpec, val: encoding.Encoded, device, should_stop=_never) -> dict:
    """Latency of the trained model; for mergeable methods merged against unmerged, with the
    largest logit difference between the two; for adapters, against the base without them.
    Also the predictions on the task's demo sentences (workers/demo.py), merged and unmerged.
    `should_stop()` is asked between the measurements; True raises Stopped."""

    def check():
        if should_stop():
            raise Stopped("stopped during the end-of-run measurements")

    batch = encoding.collate(val.ids[:LATENCY_BATCH], val.labels[:LATENCY_BATCH], device)
    seconds, before = measure_latency(model, batch, check=check)
    out = {"latency_batch": len(batch["labels"]), "latency_ms": 1000 * seconds}
    check()
    demo_unmerged, demo_merged = demo.logits(model, spec.task, device), None
    check()
    if spec.method in builders.MERGEABLE:
        with torch.no_grad():
            merged = model.merge_and_unload()
        seconds, after = measure_latency(merged, batch, check=check)
        out["latency_merged_ms"] = 1000 * seconds
        out["merge_max_abs_diff"] = (before - after).abs().max().item()
        check()
        demo_merged = demo.logits(merged, spec.task, device)
    elif spec.method == "adapter":
        from workers.adapters import adapters_disabled

        with adapters_disabled(model):
            out["latency_base_ms"] = 1000 * measure_latency(model, batch, check=check)[0]
    # Predictions on a few demo sentences, before and after merging (P13 swaps them).
    out["demo"] = demo.record(spec.task, demo_unmerged, demo_merged)
    return out
