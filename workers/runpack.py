"""A pack: many runs trained in one fused step over one frozen base (issue 23).

A run alone computes the whole frozen encoder for its 16 sequences a step: on a 2-core CPU a LoRA
step of this small model is bound by per-operation overhead, not arithmetic, and on a GPU by
kernel launches. A pack lays the step's batches of every run it holds end to end and runs the
frozen layers once for all their tokens; each run adds its own LoRA update to its own tokens,
attends only within its own sequences and reads its own head. Its loss, gradients, optimizer,
learning-rate schedule, data order and random numbers stay its own, so a run trained in a pack
computes the steps it computes alone, up to float rounding (tests/engine/test_runpack.py
measures how closely).

How the fused step keeps each run's numbers:

- layout: each run's batch is packed as alone (workers/packing.py: rows of at most ROW_TOKENS,
  positions restarting per sequence) and flattened to rows x width tokens; the pack concatenates
  the runs' tokens into one (tokens, hidden) matrix. The frozen linear maps, the layer norms and
  the activation act on each token alone, so they run once on the whole matrix;
- attention: each run over its own rows with its own block-diagonal mask; the runs whose rows
  are equally wide in one batched product (scaled_dot_product_attention's arithmetic);
- LoRA: on each frozen linear map a run targets, its B·A(dropout(x)) · scaling added to its own
  tokens' outputs, as peft's layer adds it;
- randomness: each run keeps its own copy of torch's random state (as a race's lanes do,
  workers/training.py), swapped in to draw each of its dropout masks in the shape it has alone,
  so that its masks are the ones it draws alone; one product then applies every run's mask;
- the loss: the sum of the runs' losses, so that each run's gradients are its own loss's.

A run joins at a step boundary (`Pack.join`) and leaves when it ends (finished, cancelled,
failed); the others go on. If a fused step runs out of memory, the pack splits it in halves and
tries again (each run's random state put back first), down to single runs: only a run that
cannot take its step alone fails. A run alone in its pack takes the step it takes outside any pack
(training._step), to the bit. Which methods join a pack: the records' `joins_pack`
(simulations/methods.py says why each does or does not).

A packed run's clock is the wall time since it joined: its points' `elapsed` and its
`train_seconds` include the other runs' share of each fused step, as a learner waiting for it
sees them. Its activation memory is its tokens' share of the pack's step.
"""

import copy
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import torch

from simulations.methods import names_where
from workers import classifier, measure, packing, precision
from workers.training import (
    Lane,
    Training,
    TrainingError,
    _random_state,
    _set_random_state,
    _step,
    is_out_of_memory,
    pick_device,
)

# The methods whose runs join a pack (the records' `joins_pack`).
JOINS_PACK = names_where(joins_pack=True)


class Member(Training):
    """One run in a pack: a Training (its data, model, optimizer and bookkeeping as alone) whose
    frozen weights are the pack's and whose steps the pack takes."""

    def __init__(self, lane: Lane, device: torch.device, encoder: torch.nn.Module):
        if lane.spec.method not in JOINS_PACK:
            raise TrainingError(f"a {lane.spec.method} run does not join a pack")
        super().__init__(
            lane.spec, lane.report, lane.save_dir, device, lane.should_stop, memory=measure.LaneMemory, base=encoder
        )
        self.lane = lane
        self.random = _random_state(
            device.type == "cuda", device
        )  # as the run stands after its build, before its first step
        self.classifier = packing.classifier_of(self.run.model)  # its encoder's wrapping, its head
        self.loras = _lora_layers(self.classifier.bert)
        self.joined = time.perf_counter()
        self.companions = 0  # the other runs it shared its steps with, summed over its steps
        self.largest = 1  # the most runs in one of its steps

    def swap_in(self) -> None:
        _set_random_state(self.run.device.type == "cuda", self.run.device, self.random)

    def swap_out(self) -> None:
        self.random = _random_state(self.run.device.type == "cuda", self.run.device)

    def took(self, ids, value: float, size: int) -> None:
        """Its step in a pack of `size` runs was taken (see Training.took_step); its clock is the
        wall time since it joined."""
        self.companions += size - 1
        self.largest = max(self.largest, size)
        self.took_step(ids, value, self.joined + self.done.seconds)
        self.done.seconds = time.perf_counter() - self.joined

    def finish(self) -> dict:
        if not self.done.step:  # cancelled before its first step: its clock is its wait to leave
            self.done.seconds = time.perf_counter() - self.joined
        if not self.done.cancelled:
            # Merging the update into the frozen weights (measure.inference_metrics) must not
            # touch the weights the other runs share.
            classifier.own_frozen_weights(self.run.model)
        metrics = super().finish()
        steps = max(1, self.done.step)
        metrics["pack"] = {"largest": self.largest, "mean_size": round(1 + self.companions / steps, 2)}
        return metrics


@dataclass
class _Segment:
    """A run's batch in the fused step: rows x width tokens, after the runs before it."""

    member: Member
    ids: list[list[int]]
    labels: list[int]
    batch: packing.PackedBatch

    @property
    def rows(self) -> int:
        return self.batch.input_ids.shape[0]

    @property
    def width(self) -> int:
        return self.batch.input_ids.shape[1]

    @property
    def tokens(self) -> int:
        return self.batch.input_ids.numel()


class Pack:
    """The runs training together in one process. `join` adds a run (at a step boundary), `step`
    takes one fused step of every run it holds and ends those that are over, calling each one's
    `ended` with its metrics or the exception that ended it (train_together's contract)."""

    def __init__(self, device: torch.device | None = None):
        self.device = device or pick_device()
        base = classifier.load_base()
        # One frozen copy for every run of the pack, cast once for the steps' autocast; the
        # process's cached base stays as it is read (each run's build copies it).
        self.encoder = copy.deepcopy(base.encoder).to(self.device).train()
        self.compute = precision.training_dtype(self.device)
        precision.cast_frozen_weights_once(self.encoder, self.compute)
        self.pad_id = base.tokenizer.pad_token_id
        self.members: list[Member] = []
        self.activations = measure.ActivationMeter(self.encoder)

    def __len__(self) -> int:
        return len(self.members)

    def join(self, lane: Lane) -> Member | None:
        """Build the lane's run into the pack; None (its `ended` called) when it cannot."""
        try:
            member = Member(lane, self.device, self.encoder)
        except Exception as exc:  # noqa: BLE001 - the run's own failure; the others go on
            _end(lane, exc)
            return None
        self.members.append(member)
        return member

    def step(self) -> None:
        """One step of every run: each takes its next batch (a run cancelled at the report before
        its last step leaves), the fused forward and backward, each its optimizer step and then
        its point, evaluation and report when due. A run whose loss is not finite fails alone."""
        segments = []
        for member in list(self.members):
            try:
                if member.should_stop():
                    member.stop_here()
                    batch = None
                else:
                    batch = member.next_batch()
            except Exception as exc:  # noqa: BLE001 - its report failed: it ends with that
                self._leave(member, exc)
                continue
            if batch is None:
                self._leave(member)
                continue
            ids, labels = batch
            segments.append(_Segment(member, ids, labels, packing.pack(ids, labels, self.device, self.pad_id)))
        if not segments:
            return
        values = self._take(segments)
        for segment in segments:
            member = segment.member
            value = values.get(id(member))
            try:
                if value is None:
                    continue
                if isinstance(value, measure.Stopped):  # cancelled inside its step alone
                    member.stop_here()
                    self._leave(member)
                    continue
                if isinstance(value, Exception):
                    raise value
                member.took(segment.ids, value, len(segments))
            except Exception as exc:  # noqa: BLE001 - the run's own failure; the others go on
                member.over = True
                try:
                    member.report_pending()
                except Exception:  # noqa: BLE001 - it fails with its first error
                    pass
                self._leave(member, exc)
                continue
            if member.over:
                self._leave(member)

    def _take(self, segments: list[_Segment]) -> dict[int, float | Exception]:
        """The fused forward, backward and optimizer steps of `segments`: each member's loss, or
        the exception its step ended with. Out of memory: the step is taken again in halves."""
        saved = [s.member.random for s in segments]
        try:
            return self._fused(segments)
        except Exception as exc:
            for s, state in zip(segments, saved, strict=True):
                s.member.random = state
                s.member.run.optimizer.zero_grad(set_to_none=True)
            if not is_out_of_memory(exc) or len(segments) == 1:
                if len(segments) == 1:
                    return {id(segments[0].member): exc}
                raise
        half = len(segments) // 2
        out = {}
        for part in (segments[:half], segments[half:]):
            out.update(self._take(part))
        return out

    def _fused(self, segments: list[_Segment]) -> dict[int, float | Exception]:
        if len(segments) == 1:
            return self._alone(segments[0])
        losses = self._forward(segments)
        values = torch.stack([loss.detach().float() for loss in losses]).tolist()  # one read
        out: dict[int, float | Exception] = {}
        kept = []
        for segment, loss, value in zip(segments, losses, values, strict=True):
            if math.isfinite(value):
                out[id(segment.member)] = value
                kept.append((segment.member, loss))
            else:
                out[id(segment.member)] = TrainingError(
                    f"the loss became {value} at step {segment.member.done.step + 1}; try a smaller learning rate"
                )
        if kept:
            for member, _ in kept:
                member.run.optimizer.zero_grad(set_to_none=True)
            torch.stack([loss for _, loss in kept]).sum().backward()
            for member, _ in kept:
                member.run.optimizer.step()
                member.run.schedule.step()
        return out

    def _alone(self, segment: _Segment) -> dict[int, float | Exception]:
        """A step of a run alone in its pack: the step it takes outside any pack
        (training._step, on its own model, whose frozen weights are the pack's), so that a run
        that never shares a step computes exactly what it computes alone, and its reproduce
        script gives its losses as for any run."""
        member = segment.member
        member.swap_in()
        try:
            return {id(member): _step(member.run, segment.ids, segment.labels, member.done.step + 1)}
        except (TrainingError, measure.Stopped) as exc:
            return {id(member): exc}
        finally:
            member.swap_out()

    def _forward(self, segments: list[_Segment]) -> list[torch.Tensor]:
        """Each run's loss on its batch, the frozen layers computed once for all their tokens."""
        input_ids = torch.cat([s.batch.input_ids.reshape(-1) for s in segments])
        position_ids = torch.cat([s.batch.position_ids.reshape(-1) for s in segments])
        tokens = len(input_ids)
        with self.activations.step(tokens, 1), precision.autocast(self.device, self.compute):
            fused = _Fused(self, segments)
            losses = []
            for s, hidden in fused.parts(fused.run(input_ids, position_ids)):
                s.member.swap_in()
                try:
                    losses.append(packing.classify(s.member.classifier, hidden, s.batch)[0])
                finally:
                    s.member.swap_out()
        self.activations.end_step()
        for s in segments:
            share = self.activations.peak * s.tokens // tokens
            s.member.run.activations.peak = max(s.member.run.activations.peak, share)
        return losses

    def _leave(self, member: Member, exc: Exception | None = None) -> None:
        """The run ends: finished (or cancelled) and its metrics handed on, or failed with `exc`."""
        self.members.remove(member)
        if exc is None:
            try:
                outcome = member.finish()
            except Exception as error:  # noqa: BLE001 - as in train_together
                outcome = error
        else:
            outcome = exc
        lane = member.lane
        del member  # the run's model and optimizer go before the next run's `ended`
        _end(lane, outcome)


class _Fused:
    """The frozen encoder's forward pass over the segments' tokens (the calls BertModel makes, on
    the flat token matrix), each run's LoRA updates, dropout and attention its own.

    A run's part of a token matrix is taken with one `split` per matrix, not a slice per run: the
    backward pass of a slice writes into a zero matrix as large as the whole (quadratic in the
    runs), a split's joins the parts once."""

    def __init__(self, pack: Pack, segments: list[_Segment]):
        self.encoder, self.segments = pack.encoder, segments
        self.sizes = [s.tokens for s in segments]
        # Which token may attend to which, per run (True: attend), as packing.forward gives it.
        self.masks = {id(s): packing.attention_mask(s.batch, None, torch.float32) for s in segments}

    def parts(self, x: torch.Tensor):
        return zip(self.segments, x.split(self.sizes), strict=True)

    def run(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        emb = self.encoder.embeddings
        x = emb.word_embeddings(input_ids) + emb.token_type_embeddings(torch.zeros_like(input_ids))
        x = x + emb.position_embeddings(position_ids)
        x = self._dropout(emb.LayerNorm(x), emb.dropout)
        for i, layer in enumerate(self.encoder.encoder.layer):
            x = self._layer(f"encoder.layer.{i}.", layer, x)
        return x

    def _layer(self, path: str, layer, x: torch.Tensor) -> torch.Tensor:
        attention = layer.attention
        own = attention.self
        q = self._linear(path + "attention.self.query", own.query, x)
        k = self._linear(path + "attention.self.key", own.key, x)
        v = self._linear(path + "attention.self.value", own.value, x)
        context = self._attention(own, q, k, v)
        h = self._linear(path + "attention.output.dense", attention.output.dense, context)
        x = attention.output.LayerNorm(self._dropout(h, attention.output.dropout) + x)
        inner = layer.intermediate.intermediate_act_fn(
            self._linear(path + "intermediate.dense", layer.intermediate.dense, x)
        )
        h = self._linear(path + "output.dense", layer.output.dense, inner)
        return layer.output.LayerNorm(self._dropout(h, layer.output.dropout) + x)

    def _attention(self, own, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Self-attention, each run over its own rows: the runs whose rows are equally wide in one
        batched product, as scaled_dot_product_attention computes it when it drops out attention
        weights (softmax of the scaled, masked scores, dropout, times the values; the same up to
        float rounding), each run's dropout mask drawn from its own random state in the shape
        its weights have alone, so that it drops what it drops alone."""
        heads, size = own.num_attention_heads, own.attention_head_size
        p = own.dropout.p
        by_width: dict[int, list] = {}
        for part in zip(self.segments, q.split(self.sizes), k.split(self.sizes), v.split(self.sizes), strict=True):
            by_width.setdefault(part[0].width, []).append(part)
        out: dict[int, torch.Tensor] = {}
        for width, group in by_width.items():

            def stacked(i: int, group=group, width=width) -> torch.Tensor:
                return torch.cat([part[i].view(part[0].rows, width, heads, size).transpose(1, 2) for part in group])

            keep = []  # each run's dropout mask: what F.dropout draws for its weights alone
            for s, *_ in group:
                s.member.swap_in()
                try:
                    keep.append(torch.empty((s.rows, heads, width, width), device=q.device).bernoulli_(1 - p))
                finally:
                    s.member.swap_out()
            allowed = torch.cat([self.masks[id(s)] for s, *_ in group])
            scores = torch.matmul(stacked(1), stacked(2).transpose(-1, -2)) * own.scaling
            weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
            weights = weights * (torch.cat(keep).to(weights.dtype) / (1 - p))
            context = torch.matmul(weights, stacked(3))
            for (s, *_), rows in zip(group, context.split([s.rows for s, *_ in group]), strict=True):
                out[id(s)] = rows.transpose(1, 2).reshape(s.tokens, -1)
        return torch.cat([out[id(s)] for s in self.segments])

    def _dropout(self, x: torch.Tensor, dropout) -> torch.Tensor:
        """Dropout on each run's tokens, its mask drawn from its own random state in its own shape:
        F.dropout's arithmetic (a Bernoulli draw, divided by the keep rate, times the input) with
        the runs' masks laid end to end, so one product serves them all."""
        p = dropout.p
        if not p:
            return x
        noise = []
        for s in self.segments:
            s.member.swap_in()
            try:
                mask = torch.empty((s.rows, s.width, x.shape[-1]), dtype=x.dtype, device=x.device)
                noise.append(mask.bernoulli_(1 - p).view(s.tokens, -1))
            finally:
                s.member.swap_out()
        return x * torch.cat(noise).div_(1 - p)

    def _linear(self, path: str, layer, x: torch.Tensor) -> torch.Tensor:
        """The frozen layer on every token, then each run's LoRA update on its own tokens (what
        peft's lora.Linear adds: B(A(dropout(x))) · scaling, in the layer's output dtype); a run
        without one on this layer adds zeros."""
        out = layer(x)
        if not any(path in s.member.loras for s in self.segments):
            return out
        updates = []
        for s, given in self.parts(x):
            lora = s.member.loras.get(path)
            if lora is None:
                updates.append(out.new_zeros((s.tokens, out.shape[-1])))
                continue
            a, b = lora.lora_A["default"], lora.lora_B["default"]
            given = lora._cast_input_dtype(given, a.weight.dtype).view(s.rows, s.width, -1)
            s.member.swap_in()
            try:
                dropped = lora.lora_dropout["default"](given)
            finally:
                s.member.swap_out()
            updates.append((b(a(dropped)) * lora.scaling["default"]).view(s.tokens, -1))
        return (out + torch.cat(updates)).to(out.dtype)


def device_memory(device: torch.device) -> int | None:
    """Bytes a pack's runs may add on the device: on CUDA 80 % of what is free now (the base, the
    allocator's cache and other processes already counted out); None on the CPU, where the
    worker's own setting bounds it (peftlab/runs/packs.py)."""
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(0.8 * free)


def _lora_layers(bert: torch.nn.Module) -> dict:
    """The run's peft LoRA layers by their path in the encoder (as the pack's encoder names its
    frozen layers)."""
    from peft.tuners.lora import LoraLayer

    return {
        name.replace(".base_layer", ""): module
        for name, module in bert.named_modules()
        if isinstance(module, LoraLayer)
    }


def _end(lane: Lane, outcome) -> None:
    if lane.ended is not None:
        lane.ended(outcome)
    if isinstance(outcome, Exception):
        # Its traceback keeps the run's frames, and so its model, alive: their locals go.
        traceback.clear_frames(outcome.__traceback__)


def train_packed(
    lanes: list[Lane], device: torch.device | None = None, more: Callable[[], list[Lane]] | None = None
) -> None:
    """Train the lanes in one pack until every one has ended; `more()` (asked at every step
    boundary) hands runs that join now. Each lane's `ended` gets its outcome."""
    pack = Pack(device)
    for lane in lanes:
        pack.join(lane)
    while True:
        for lane in more() if more is not None else ():
            pack.join(lane)
        if not pack.members:
            break
        pack.step()
