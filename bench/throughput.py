"""Training throughput: the lab's engine against Hugging Face `Trainer`, side by side, in one process.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/throughput.py [--steps 60] [--methods full,lora,adapter,prompt,qlora]
        [--threads N] [--warmup 5] [--levers] [--only-levers] [--lever-methods lora,full]
        [--lever-names packed,...] [--write]

For each method, three trainers train the same model (all-MiniLM-L6-v2 + a 2-label head) on the same
data (the `sentiment` task's train split; accuracy on its validation split), batch 16, the same
number of steps, the method's default learning rate from the registry, seed 0:

- lab:  `workers.training.train` exactly as a worker calls it (eval_every 0: one evaluation, at the end),
        in the precision PEFTLAB_AUTOCAST gives it (workers/precision.py; set it to compare).
- hf-a: `transformers.Trainer` as most scripts use it: `AutoModelForSequenceClassification`, peft's
        `get_peft_model` (LoRA / prompt tuning / NF4 + LoRA), fp32, `DataCollatorWithPadding`, random
        sampling. peft has no bottleneck adapter: for `adapter` the lab's own `attach_adapters`
        (workers/adapters.py) is applied to the Hugging Face model.
- hf-b: the same with Trainer's best flags: `bf16=True`, `train_sampling_strategy="group_by_length"`.

Timing: the training loop only, from the end of step `--warmup` to the end of the last step (the
first steps, which warm the allocator and the kernels, are left out; the model is built before).
The lab's step times come from the points `train()` reports; Trainer's from a callback at each
`on_step_end`. Both include loading the batch, forward, backward and the optimizer step.

FLOPs: `torch.utils.flop_counter.FlopCounterMode` over forward + backward of one training step.
The count depends only on the batch's padded shape (linear in the batch size, quadratic in the
width), so it is counted at three widths, fitted, checked at a fourth, and summed over the real
batches of the timed steps: achieved GFLOP/s = FLOPs of the timed steps / their seconds. CPU
attention (`_scaled_dot_product_flash_attention_for_cpu`), which FlopCounterMode does not know,
is counted with its own formula for SDPA. The optimizer's element-wise work is not counted (it is
not matmul work). The machine's matmul peak is one 2048² @ 2048² `torch.mm`, best of 5, fp32 and bf16.

--levers measures changes to the lab's engine one at a time (the engine's modules are not edited: each
lever is patched in for one run and restored).
"""

import argparse
import contextlib
import datetime
import gc
import os
import platform
import random
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils import flop_counter  # noqa: E402

from bench.report import write_section  # noqa: E402
from workers import (  # noqa: E402
    adapters,
    base_model,
    classifier,
    constants,
    datasets,
    encoding,
    measure,
    packing,
    precision,
    quantize,
    training,
)
from workers.methods import validate_run  # noqa: E402

TASK = "sentiment"
BATCH = 16
SEED = 0
METHODS = "full,lora,adapter,prompt,qlora"
DOC = ROOT / "docs" / "performance.md"
SECTION = "## Training throughput"


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


# --- FLOPs and the matmul peak -----------------------------------------------------------------


def _sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _gemm_4bit(a_shape, b_shape, shape, *args, out_shape=None, **kwargs):
    rows = 1
    for size in a_shape[:-1]:
        rows *= size
    out_features, in_features = shape
    return 2 * rows * out_features * in_features


def flop_formulas() -> dict:
    """Ops that torch's flop registry does not know, with their matmul FLOPs: the CPU kernel of
    scaled_dot_product_attention (when it is taken rather than the bmm path), and bitsandbytes'
    4-bit forward product (the backward dequantizes and uses aten.mm, which is counted)."""
    quantize._bnb()  # registers torch.ops.bitsandbytes
    return {
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa,
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_backward,
        torch.ops.bitsandbytes.gemm_4bit: _gemm_4bit,
    }


def step_flops(model, width: int, device) -> int:
    """FLOPs of forward + backward of one training step on a batch of BATCH rows, `width` wide."""
    ids = torch.randint(1000, 2000, (BATCH, width), device=device)  # the count depends on shapes only
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.zeros(BATCH, dtype=torch.long, device=device),
    }
    model.train()
    with flop_counter.FlopCounterMode(display=False, custom_mapping=flop_formulas()) as counter:
        model(**batch).loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def flops_of_steps(model, shapes: list[tuple[int, int]], device) -> tuple[float, float]:
    """(total FLOPs over the batches `shapes` [(rows, width)], relative error of the fit's check).

    A step's FLOPs are rows/BATCH × (a + b·w + c·w²): linear layers grow with the width w,
    attention with w². Counted at three widths and fitted; a fourth width checks the fit.
    """
    widths = sorted({w for _, w in shapes})
    picks = sorted({widths[0], widths[len(widths) // 2], widths[-1]})
    while len(picks) < 3:  # fewer than three widths were used: fit through neighbours
        picks.append(picks[-1] + 1)
    counted = {w: step_flops(model, w, device) for w in picks}
    a = torch.tensor([[1.0, w, w * w] for w in picks], dtype=torch.float64)
    coef = torch.linalg.solve(a, torch.tensor([counted[w] for w in picks], dtype=torch.float64))

    def fit(w):
        return float(coef[0] + coef[1] * w + coef[2] * w * w)

    check = next(w for w in ((picks[0] + picks[1]) // 2, picks[-1] + 1) if w not in picks)
    actual = step_flops(model, check, device)
    error = abs(fit(check) - actual) / actual
    return sum(rows / BATCH * fit(w) for rows, w in shapes), error


def matmul_peak(dtype, device, n: int = 2048, repeats: int = 5, budget_s: float = 20.0) -> tuple[float, int, int]:
    """(GFLOP/s, n, runs): the best of up to `repeats` n×n @ n×n torch.mm in `dtype` (2·n³ FLOPs
    each), after a warm-up run, stopping early once the runs pass `budget_s`.

    A CPU without native bf16 (no AVX512-BF16 or AMX) multiplies bf16 at well under 1 GFLOP/s: one
    2048² product would take minutes. A 512² product first predicts the time at n (×(n/512)³);
    n is halved until the runs fit the budget, and the size used is reported.
    """

    def one(a, b):
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        return time.perf_counter() - start

    probe = torch.randn(512, 512, device=device).to(dtype)
    one(probe, probe)
    per_512 = one(probe, probe)
    while n > 512 and per_512 * (n / 512) ** 3 * (repeats + 1) > budget_s:
        n //= 2
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    times = [one(a, b)]  # warm-up
    began = time.perf_counter()
    while len(times) < repeats + 1 and time.perf_counter() - began < budget_s:
        times.append(one(a, b))
    timed = times[1:] or times
    return 2 * n**3 / min(timed) / 1e9, n, len(timed)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- the lab -----------------------------------------------------------------------------------


def lab_batches(spec) -> list[tuple[int, int, int]]:
    """(rows, padded width, real tokens) of the batches train() computes, from the same stream:
    packed (workers/packing.py) for the methods the engine packs, else padded."""
    data, _ = encoding.encode_task(spec.task)
    data = encoding.train_subset(data, spec.params.get("train_examples"), spec.seed)
    stream = encoding.batches(data, min(spec.params["batch_size"], len(data.labels)), spec.seed)
    pad_id = classifier.load_base().tokenizer.pad_token_id
    out = []
    for _ in range(spec.steps):
        ids, labels = next(stream)
        if spec.method in packing.PACKABLE:
            rows, width = packing.pack(ids, labels, "cpu", pad_id).input_ids.shape
        else:
            rows, width = len(ids), max(len(x) for x in ids)
        out.append((rows, width, sum(len(x) for x in ids)))
    return out


def run_lab(method: str, steps: int, warmup: int, device, count_flops: bool = True) -> dict:
    spec = validate_run(method, TASK, steps, SEED, {"eval_every": 0})
    times: list[float] = []

    def report(points, evals):
        times.extend(p.elapsed for p in points)
        return True

    with tempfile.TemporaryDirectory() as folder:
        metrics = training.train(spec, report, save_dir=Path(folder) / "run", device=device)
    result = _timing(times, lab_batches(spec), warmup)
    result.update(trainer="lab", trainable=metrics["trainable_params"], val_accuracy=metrics["val_accuracy"])
    if count_flops:
        model = classifier.build_model(spec, len(datasets.load_task(TASK).labels), device)
        result["flops"], result["fit_error"] = flops_of_steps(model, result["shapes"], device)
        del model
    return result


def _timing(times: list[float], batches: list[tuple[int, int, int]], warmup: int) -> dict:
    """Steps/s and tokens over steps warmup+1 .. len(times); `times[i]` ends step i+1."""
    seconds = times[-1] - times[warmup - 1]
    timed = batches[warmup : len(times)]
    return {
        "seconds": seconds,
        "steps": len(timed),
        "steps_per_s": len(timed) / seconds,
        "real_tokens": sum(b[2] for b in timed),
        "padded_tokens": sum(b[0] * b[1] for b in timed),
        "shapes": [(b[0], b[1]) for b in timed],
    }


# --- Hugging Face Trainer ----------------------------------------------------------------------


class RecordingCollator:
    """DataCollatorWithPadding, noting (rows, padded width, real tokens) of each batch it makes."""

    def __init__(self, tokenizer):
        from transformers import DataCollatorWithPadding

        self.collate = DataCollatorWithPadding(tokenizer)
        self.batches: list[tuple[int, int, int]] = []

    def __call__(self, features):
        batch = self.collate(features)
        mask = batch["attention_mask"]
        self.batches.append((mask.shape[0], mask.shape[1], int(mask.sum())))
        return batch


def hf_dataset(tokenizer) -> list[dict]:
    """The train split tokenized once, up front, as a plain list (the `datasets` library is not installed)."""
    task = datasets.load_task(TASK)
    encoded = tokenizer([e.text for e in task.train], truncation=True, max_length=constants.MAX_TOKENS)
    return [{**{k: encoded[k][i] for k in encoded}, "label": e.label} for i, e in enumerate(task.train)]


def hf_model(method: str, spec, device):
    """The model most scripts build for the method (see the module docstring)."""
    from peft import LoraConfig, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification, BitsAndBytesConfig, set_seed

    path = base_model.model_path()
    p = spec.params
    set_seed(SEED)
    kwargs = {}
    if method == "qlora":
        compute = torch.bfloat16 if device.type == "cuda" else torch.float32  # as the lab
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
            llm_int8_skip_modules=["classifier", "pooler"],
        )
        kwargs["device_map"] = {"": device.index or 0} if device.type == "cuda" else {"": "cpu"}
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, **kwargs)
    if method in ("lora", "qlora"):
        model = get_peft_model(
            model,
            LoraConfig(
                task_type=TaskType.SEQ_CLS,
                r=p["rank"],
                lora_alpha=p["alpha"],
                lora_dropout=p["dropout"],
                target_modules=p["target_modules"],
            ),
        )
    elif method == "prompt":
        model = get_peft_model(
            model,
            PromptTuningConfig(
                task_type=TaskType.SEQ_CLS,
                num_virtual_tokens=p["virtual_tokens"],
                prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB,
            ),
        )
    elif method == "adapter":
        adapters.attach_adapters(model, p["bottleneck"], SEED)  # the lab's own: peft has none
    elif method != "full":
        raise ValueError(f"no Hugging Face recipe for {method}")
    return model


def run_hf(method: str, steps: int, warmup: int, device, best_flags: bool) -> dict:
    from transformers import AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    spec = validate_run(method, TASK, steps, SEED, {"eval_every": 0})
    tokenizer = AutoTokenizer.from_pretrained(base_model.model_path())
    model = hf_model(method, spec, device)
    collator = RecordingCollator(tokenizer)
    times: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            _sync(device)
            times.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as folder:
        args = TrainingArguments(
            output_dir=folder,
            max_steps=steps,
            per_device_train_batch_size=BATCH,
            learning_rate=spec.params["lr"],
            report_to=[],
            save_strategy="no",
            eval_strategy="no",
            logging_steps=10**9,
            dataloader_num_workers=0,
            use_cpu=device.type != "cuda",
            seed=SEED,
            disable_tqdm=True,  # no progress bar on stderr (it refreshes a few times a second at most)
            **({"bf16": True, "train_sampling_strategy": "group_by_length"} if best_flags else {}),
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=hf_dataset(tokenizer),
            data_collator=collator,
            processing_class=tokenizer,
            callbacks=[StepClock()],
        )
        with contextlib.redirect_stdout(sys.stderr):  # Trainer prints its summary dict; the table owns stdout
            trainer.train()
    result = _timing(times, collator.batches, warmup)
    result.update(trainer="hf-b" if best_flags else "hf-a", trainable=measure.count_params(model)[0])
    # FLOPs before the evaluation: a bitsandbytes 4-bit layer may repack its weight for inference
    # the first time it runs in eval mode without grad (see workers/quantize.py).
    result["flops"], result["fit_error"] = flops_of_steps(model, result["shapes"], device)
    _, val = encoding.encode_task(TASK)
    result["val_accuracy"] = measure.evaluate(model, val, device)[1]  # as the lab evaluates
    del trainer, model
    return result


# --- levers: one change to the lab's engine at a time ------------------------------------------


def grouped_batches(data, batch_size, seed, group=8):
    """encoding.batches, but every `group` batches' worth of an epoch's shuffled examples are sorted
    by length, cut into batches, and those batches shuffled: far less padding (8 % of the tokens
    instead of 32 % on sentiment at batch 16), but batches of similar lengths."""
    rng = random.Random(seed)
    order = list(range(len(data.labels)))
    while True:
        rng.shuffle(order)
        full = order[: len(order) - len(order) % batch_size]
        for start in range(0, len(full), group * batch_size):
            by_length = sorted(full[start : start + group * batch_size], key=lambda i: len(data.ids[i]))
            cut = [by_length[i : i + batch_size] for i in range(0, len(by_length), batch_size)]
            rng.shuffle(cut)
            for idx in cut:
                yield [data.ids[i] for i in idx], [data.labels[i] for i in idx]


@contextlib.contextmanager
def patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def adamw(**flags):
    def make_optimizer(spec, params, device):
        return torch.optim.AdamW(list(params), lr=spec.params["lr"], **flags)

    return make_optimizer


class NoActivationMeter:
    """measure.ActivationMeter without the saved-tensor hooks (the CPU peak loses its activations)."""

    def __init__(self, model):
        self.peak = 0

    def step(self, rows, width):
        return contextlib.nullcontext()

    def end_step(self):
        pass


def unfrozen_base():
    """Counterfactual: the base keeps requires_grad=True (autograd computes its gradients), while
    the optimizer still gets only the method's parameters, as if the builders did not freeze it."""
    built = {}
    build, make = classifier.build_model, training.make_optimizer

    def build_model(spec, num_labels, device):
        built["model"] = build(spec, num_labels, device)
        return built["model"]

    def make_optimizer(spec, params, device):
        optimizer = make(spec, params, device)
        for p in built["model"].parameters():
            if p.is_floating_point():  # 4-bit packed weights cannot require grad
                p.requires_grad_(True)
        return optimizer

    return [(classifier, "build_model", build_model), (training, "make_optimizer", make_optimizer)]


def rows_of(row_tokens: int):
    """packing.pack with rows of at most `row_tokens` tokens instead of packing.ROW_TOKENS (0: as
    wide as the batch's longest sequence; 10**6: the whole batch in one row)."""
    pack = packing.pack  # the engine's, before the lever patches this one in its place

    def packed(ids, labels, device, pad_id):
        return pack(ids, labels, device, pad_id, row_tokens=row_tokens)

    return packed


def lever_patches() -> dict[str, list]:
    """The engine as it is, then one lever at a time: each of its own taken away (packed batches,
    the fused AdamW, the activation meter's skipping, the frozen weights' bf16 copies made once a
    run under autocast), two it does not use (length groups, dropout masks from torch.rand) added,
    its precision set either way (its default, PEFTLAB_AUTOCAST=auto, is bf16 autocast where the
    device multiplies bf16 natively and fp32 elsewhere), or its packed rows' width changed."""
    return {
        "baseline (engine as is)": [],
        "length groups of 8 batches": [(encoding, "batches", grouped_batches)],
        "AdamW for-loop (not fused)": [(training, "make_optimizer", adamw(foreach=False))],
        "AdamW foreach (not fused)": [(training, "make_optimizer", adamw(foreach=True))],
        "activation meter on every step": [(measure.ActivationMeter, "step", every_step_meter)],
        "no activation meter": [(measure, "ActivationMeter", NoActivationMeter)],
        "base not frozen (counterfactual)": unfrozen_base(),
        "bf16 autocast (PEFTLAB_AUTOCAST=bf16)": [(precision, "choice", lambda: "bf16")],
        "fp32 (PEFTLAB_AUTOCAST=off)": [(precision, "choice", lambda: "off")],
        "frozen weights cast at every step (autocast's own)": [
            (precision, "cast_frozen_weights_once", lambda model, dtype: None)
        ],
        "packing removed (padded batches)": [(packing, "PACKABLE", frozenset())],
        "packed rows as wide as the longest sequence": [(packing, "pack", rows_of(0))],
        "packed into one row per batch": [(packing, "pack", rows_of(10**6))],
        "dropout masks drawn with torch.rand (not bernoulli_)": [(nn.Dropout, "forward", rand_dropout)],
    }


def rand_dropout(self, x):
    """nn.Dropout's forward with its mask drawn as uniform numbers ≥ p: the same distribution,
    other random numbers (torch's CPU bernoulli_ draws about 2× slower than rand)."""
    if not self.training or self.p == 0:
        return x
    return x * (torch.rand(x.shape, device=x.device) >= self.p) * (1.0 / (1.0 - self.p))


def every_step_meter(self, rows, width):
    """ActivationMeter.step measuring every step, not only a batch larger than any before."""
    self._step = {}
    return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor)


def run_levers(methods: list[str], steps: int, warmup: int, device, only: str = "") -> list[dict]:
    """Each lever (those whose name contains one of the comma-separated `only`, and the baseline)
    on each method, one run each."""
    rows = []
    wanted = [w for w in only.split(",") if w]
    for method in methods:
        for lever, patches in lever_patches().items():
            if wanted and not lever.startswith("baseline") and not any(w in lever for w in wanted):
                continue
            if lever.startswith("base not frozen") and method == "full":
                continue  # nothing is frozen in full fine-tuning
            with contextlib.ExitStack() as stack:
                for obj, name, value in patches:
                    stack.enter_context(patched(obj, name, value))
                r = run_lab(method, steps, warmup, device, count_flops=False)
            r.update(method=method, lever=lever)
            rows.append(r)
            log(f"lever {method} / {lever}: {r['steps_per_s']:.2f} steps/s, acc {r['val_accuracy']:.3f}")
            gc.collect()
    return rows


def tokenize_cost() -> float:
    """Seconds to tokenize the task once (what encoding.encode_task caches per process)."""
    start = time.perf_counter()
    encoding._encode(datasets.load_task(TASK))
    return time.perf_counter() - start


# --- output ------------------------------------------------------------------------------------


def machine(device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = names[0] if names else cpu
    return f"CPU: {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def comparison_table(rows: list[dict], peaks: dict) -> str:
    lines = [
        "| method | trainer | trainable | steps/s | real tokens/s | padded tokens/s | padding waste "
        "| GFLOP/step | GFLOP/s | % fp32 peak | % bf16 peak | val acc |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        gflops = r["flops"] / r["seconds"] / 1e9
        lines.append(
            f"| {r['method']} | {r['trainer']} | {r['trainable']:,} | {r['steps_per_s']:.2f} | "
            f"{r['real_tokens'] / r['seconds']:,.0f} | {r['padded_tokens'] / r['seconds']:,.0f} | "
            f"{100 * (1 - r['real_tokens'] / r['padded_tokens']):.1f} % | {r['flops'] / r['steps'] / 1e9:.2f} | "
            f"{gflops:.1f} | {100 * gflops / peaks['fp32']:.0f} % | {100 * gflops / peaks['bf16']:.0f} % | "
            f"{100 * r['val_accuracy']:.1f} % |"
        )
    return "\n".join(lines)


def ratio_table(rows: list[dict]) -> str:
    lines = [
        "| method | lab / hf-a (target ≥ 2) | lab / hf-b (target ≥ 1.2) | val acc lab / hf-a / hf-b | trainable equal |",
        "|---|---:|---:|---|---|",
    ]
    for method in dict.fromkeys(r["method"] for r in rows):
        by = {r["trainer"]: r for r in rows if r["method"] == method}
        if set(by) != {"lab", "hf-a", "hf-b"}:
            continue
        lab = by["lab"]["steps_per_s"]
        counts = {r["trainable"] for r in by.values()}
        same = "yes" if len(counts) == 1 else "NO: " + ", ".join(f"{t} {r['trainable']:,}" for t, r in by.items())
        lines.append(
            f"| {method} | {lab / by['hf-a']['steps_per_s']:.2f} | {lab / by['hf-b']['steps_per_s']:.2f} | "
            + " / ".join(f"{100 * by[t]['val_accuracy']:.1f} %" for t in ("lab", "hf-a", "hf-b"))
            + f" | {same} |"
        )
    return "\n".join(lines)


def lever_table(rows: list[dict]) -> str:
    lines = ["| method | lever | steps/s | × baseline | padding waste | val acc |", "|---|---|---:|---:|---:|---:|"]
    base = {r["method"]: r["steps_per_s"] for r in rows if r["lever"].startswith("baseline")}
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['lever']} | {r['steps_per_s']:.2f} | {r['steps_per_s'] / base[r['method']]:.2f} | "
            f"{100 * (1 - r['real_tokens'] / r['padded_tokens']):.1f} % | {100 * r['val_accuracy']:.1f} % |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of the timing")
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--levers", action="store_true", help="also measure the engine's levers")
    parser.add_argument("--only-levers", action="store_true", help="measure the levers only")
    parser.add_argument("--lever-methods", default="lora,full")
    parser.add_argument(
        "--lever-names",
        default="",
        help="only the levers whose name contains one of these comma-separated words (and the baseline)",
    )
    parser.add_argument(
        "--write", action="store_true", help=f"write the section '{SECTION}' of {DOC.relative_to(ROOT)}"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warmup = max(1, min(args.warmup, args.steps - 1))
    if args.steps < 2:
        parser.error("--steps must be at least 2 (one warm-up step, one timed)")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    device = training.pick_device()
    classifier.load_base()  # read once, before any timing
    encoding.encode_task(TASK)
    started = time.perf_counter()
    peaks, sizes, runs = {}, {}, {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        peaks[name], sizes[name], runs[name] = matmul_peak(dtype, device)
    log(f"matmul peak: fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s")

    out = [
        SECTION,
        "",
        f"`bench/throughput.py`, {datetime.date.today().isoformat()}: {machine(device)}. "
        f"Command: `HF_HUB_OFFLINE=1 .venv/bin/python bench/throughput.py {' '.join(sys.argv[1:])}`.",
        "",
        f"Task `{TASK}`, batch {BATCH}, {args.steps} steps, seed {SEED}, each method's default learning rate; "
        f"the lab's steps in {precision.name(precision.training_dtype(device))} "
        f"(PEFTLAB_AUTOCAST={precision.choice()}, workers/precision.py); "
        f"the first {warmup} steps are not timed. Matmul peak (n×n @ n×n `torch.mm` after a warm-up run, "
        f"n = 2048 unless one product would take too long): "
        + ", ".join(f"{k} {peaks[k]:.1f} GFLOP/s (n = {sizes[k]}, best of {runs[k]})" for k in peaks)
        + ".",
        "",
    ]
    if not args.only_levers:
        rows = []
        for method in args.methods.split(","):
            for trainer in ("lab", "hf-a", "hf-b"):
                r = (
                    run_lab(method, args.steps, warmup, device)
                    if trainer == "lab"
                    else run_hf(method, args.steps, warmup, device, best_flags=trainer == "hf-b")
                )
                r["method"] = method
                rows.append(r)
                log(
                    f"{method} / {trainer}: {r['trainable']:,} trainable, {r['steps_per_s']:.2f} steps/s, "
                    f"acc {r['val_accuracy']:.3f}, FLOP fit error {r['fit_error']:.1e}"
                )
                gc.collect()
        out += [comparison_table(rows, peaks), "", ratio_table(rows), ""]
    if args.levers or args.only_levers:
        lever_rows = run_levers(args.lever_methods.split(","), args.steps, warmup, device, args.lever_names)
        out += [
            "### Levers inside the lab's engine",
            "",
            f"Each row is `training.train` with one change patched in (the engine's modules themselves unchanged). "
            f"Tokenizing: `encoding.encode_task` already tokenizes a shipped task once per process "
            f"({1000 * tokenize_cost():.0f} ms for `{TASK}`, never inside the loop).",
            "",
            lever_table(lever_rows),
            "",
        ]
    out.append(f"Whole benchmark: {time.perf_counter() - started:.0f} s.")
    text = "\n".join(out)
    print(text)
    if args.write:
        write_section(text, SECTION, DOC)
        log(f"wrote the section '{SECTION}' of {DOC}")


if __name__ == "__main__":
    main()
