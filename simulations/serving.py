"""P13 Merge and swap and P20 Freeze, attach, merge: serving many tasks from one base model.

Pure arithmetic, no Django: the API (peftlab/playgrounds/serving.py) adds the lab's measured runs.
Every count comes from simulations/params.py and every byte figure from simulations/memory.py,
the places where those formulas live; this module picks the cases the two pages show.

The serving story (the LoRA course, chapter 0 and 5, the prompting-and-LoRA lecture, the LoRA paper walk-through): N tasks fine-tuned in full are N
complete copies of the model; with LoRA they are one frozen base plus N files of B·A. After
training, W' = W + (α/r)·B·A has W's shape, so a merged adapter costs nothing at inference.
"""

from dataclasses import replace

from simulations import lora, memory, sources
from simulations.adapter_block import BERT_LARGE, bert_total
from simulations.params import Dims, adapter_weight_params, classifier_head_params, lora_model_params

GB = memory.GB
FP16_BYTES = 2  # the sources' convention for stored weights ("a 7B model in 16-bit is 14 GB")
FP32_BYTES = 4  # what the lab's engine trains and saves
TASKS_MAX = memory.TASKS_MAX
STORAGE_RANKS = (1, 4, 8, 16, 64)
STORAGE_TARGETS = ("query", "value")  # Hu et al.'s choice, and the lab's default
# What the storage chart opens on: the LoRA course's chapter 0 ten tasks on a 7B model, LoRA at rank 8.
STORAGE_DEFAULT = {"model": "llama-7b", "rank": 8, "tasks": 10}

# The sources speak of models by their nominal sizes; the storage story uses those counts (the
# config still shapes the LoRA matrices). source_notes() shows the count each config gives.
NOMINAL = {"llama-7b": 7e9, "llama-65b": 65e9, "gpt3-175b": 175e9}

# A merge that changes no logit by more than this is exact up to float32 rounding (a
# re-quantizing merge, QLoRA's, moves them by far more).
ROUNDING_TOLERANCE = 1e-4

# P20 sliders: the hidden sizes of lora.py's counter, and ranks in powers of two.
FREEZE_HIDDEN = lora.HIDDEN_SIZES
FREEZE_RANKS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
FREEZE_DEFAULT = {"d": 4096, "r": 8}  # the LoRA course's chapter 3 worked example
GPT3_NOMINAL = NOMINAL["gpt3-175b"]

# Figures the sources quote from papers: data, not the lab's measurements.
REPORTED = (
    {
        "key": "trainable_reduction",
        "what": "fewer trainable parameters than full fine-tuning",
        "value": 10_000,
        "unit": "×",
        "qualifier": "up to",
        "model": "GPT-3 175B",
        "paper": "Hu et al. 2021 (LoRA)",
        "source": sources.PAPER_TOUR,
        "also": "the LoRA efficiency article quotes the same figure from Widdows & Cohen; the prompting-and-LoRA lecture lists 10,000x",
    },
    {
        "key": "memory_reduction",
        "what": "less GPU memory during fine-tuning",
        "value": 3,
        "unit": "×",
        "qualifier": "about",
        "model": "GPT-3 175B",
        "paper": "Hu et al. 2021 (LoRA)",
        "source": sources.PAPER_TOUR,
        "also": "the frozen weights need no gradients and no optimizer state",
    },
    {
        "key": "added_latency",
        "what": "inference latency added once B·A is merged into W",
        "value": 0,
        "unit": "ms",
        "qualifier": "",
        "model": "GPT-3 175B",
        "paper": "Hu et al. 2021 (LoRA)",
        "source": sources.PAPER_TOUR,
        "also": "the LoRA course, chapter 5 and the PEFT derivations post say the same; P13 measures it on the lab's runs",
    },
)


# --- P13: storage of N tasks ---------------------------------------------------------------------


def storage_models(lab: memory.Model) -> dict[str, memory.Model]:
    """The models the storage slider offers: the lab's own and three the sources talk about."""
    models = {"lab": lab, "bert-base": memory.PRESETS["bert-base"]}
    for key, count in NOMINAL.items():
        models[key] = memory.with_params(memory.PRESETS[key], count)
    return models


def storage_story(models: dict[str, memory.Model], ranks=STORAGE_RANKS, tasks_max: int = TASKS_MAX) -> dict:
    """For each model and rank, disk for n = 1 … tasks_max tasks, 16-bit: n full copies against
    one base + n LoRA adapters on Q and V (memory.storage), and how many times less the second
    takes."""
    out = {}
    for key, model in models.items():
        settings = memory.Settings(rank=ranks[0], targets=STORAGE_TARGETS)
        out[key] = {"name": model.name, "params": model.total_params(), "ranks": {}}
        for r in ranks:
            story = memory.storage(model, replace(settings, rank=r), tasks_max)
            story["adapter_params"] = memory.lora_params(model, r, STORAGE_TARGETS)
            story["saving"] = [full / shared for full, shared in zip(story["full_copies"], story["base_plus_adapters"])]
            out[key]["ranks"][str(r)] = story
    return out


# --- P13: the lab's own files --------------------------------------------------------------------


def lab_full_bytes(dims: Dims, num_labels: int, width: int = FP32_BYTES) -> int:
    """A full fine-tune of the lab's encoder saves every weight and the head: a whole copy."""
    return width * (bert_total(dims) + classifier_head_params(dims.hidden, num_labels))


def lab_adapter_bytes(dims: Dims, rank: int, targets, num_labels: int, width: int = FP32_BYTES) -> int:
    """The tensors a LoRA run of the lab saves: A and B of every adapted matrix, and the trained
    classifier head (peft keeps it beside the adapter), in fp32. The file adds a small header."""
    shapes = [s for t in targets for s in dims.target_shapes(t)]
    head = classifier_head_params(dims.hidden, num_labels)
    return width * lora_model_params(shapes, dims.layers, rank, head)


def illustration(dims: Dims, tasks: dict[str, int], ranks=(4, 8)) -> list[dict]:
    """What LoRA adapters of the lab would weigh before any has been trained (by formula):
    one per task and rank, against a full copy for the same task."""
    rows = []
    for task, num_labels in tasks.items():
        for r in ranks:
            rows.append(
                {
                    "task": task,
                    "rank": r,
                    "targets": list(STORAGE_TARGETS),
                    "adapter_bytes": lab_adapter_bytes(dims, r, STORAGE_TARGETS, num_labels),
                    "full_bytes": lab_full_bytes(dims, num_labels),
                }
            )
    return rows


# --- P20: one matrix, frozen, with a side-car, merged ---------------------------------------------


def freeze_attach_table(hidden_sizes=FREEZE_HIDDEN, ranks=FREEZE_RANKS) -> dict:
    """For every d and r: the full update d², LoRA's 2·d·r (None where r > d), the r·d entries
    of each of A and B, their share 2r/d, and bytes in 16-bit. The merged W' = W + (α/r)·B·A has d² entries, like W."""
    table = lora.per_matrix_table(hidden_sizes, list(ranks))
    valid = table["ranks"][None, :] <= table["hidden"][:, None]

    def masked(a, cast):
        return [[cast(v) if ok else None for v, ok in zip(row, oks)] for row, oks in zip(a, valid)]

    return {
        "hidden": [int(d) for d in table["hidden"]],
        "ranks": [int(r) for r in table["ranks"]],
        "full": [int(v) for v in table["full"]],
        "full_bytes": [int(v) * FP16_BYTES for v in table["full"]],
        "lora": masked(table["lora"], int),
        "factor": masked(table["lora"] // 2, int),
        "lora_bytes": masked(table["lora"] * FP16_BYTES, int),
        "share": masked(table["share"], float),
        "fewer": masked(table["full"][:, None] / table["lora"], float),
        "break_even": [int(v) for v in table["break_even"]],
        "bytes_per_param": FP16_BYTES,
    }


def gpt3_reduction(ranks=(1, 2, 4, 8), targets=STORAGE_TARGETS, total: float = NOMINAL["gpt3-175b"]) -> list[dict]:
    """Whole-model reduction for GPT-3 175B: 175B trainable under full fine-tuning against LoRA
    on Q and V in all 96 layers (2·d·r per matrix, d = 12,288)."""
    rows = []
    for r in ranks:
        count = lora.GPT3_175B.lora_params(tuple(targets), r)
        rows.append({"rank": r, "lora_params": count, "reduction": total / count})
    return rows


# --- where the sources disagree with the arithmetic --------------------------------------------------


def bert_large_adapter_bytes(bottleneck: int = 64, width: int = FP32_BYTES) -> int:
    """Two bottleneck adapters in each of BERT-large's 24 layers, weights only (2·d·m each)."""
    return width * 2 * BERT_LARGE.layers * adapter_weight_params(BERT_LARGE.hidden, bottleneck)


def gpt3_adapter_bytes(bottleneck: int = 64, width: int = FP16_BYTES) -> int:
    """Two bottleneck adapters in each of GPT-3's 96 layers at d = 12,288, weights only."""
    g = lora.GPT3_175B
    return width * 2 * g.layers * adapter_weight_params(g.hidden, bottleneck)


def source_notes() -> list[dict]:
    """The sources' storage figures, recomputed; each note names its source."""
    seven = memory.PRESETS["llama-7b"]
    gpt3_copy = NOMINAL["gpt3-175b"] * FP16_BYTES
    tasks = 26
    quoted_adapter = 25e6  # the prompting-and-LoRA lecture: "Adapter per task (m=64) ~25 MB"
    gpt3_adapter = gpt3_adapter_bytes()
    bert_adapter = bert_large_adapter_bytes()
    return [
        {
            "source": "the LoRA course, chapter 0 (storage of ten 7B copies)",
            "text": f"A nominal 7B model in 16-bit is {memory.fmt_bytes(7e9 * FP16_BYTES)}, ten copies "
            f"{memory.fmt_bytes(10 * 7e9 * FP16_BYTES)}, as the source says. The LLaMA-7B shape "
            f"counts {memory.fmt_count(seven.total_params())} parameters, "
            f"{memory.fmt_bytes(seven.total_params() * FP16_BYTES)} a copy.",
        },
        {
            "source": "the prompting-and-LoRA lecture (adapter table for GPT-3, 26 tasks)",
            "text": f"26 copies of {memory.fmt_bytes(gpt3_copy)} are "
            f"{memory.fmt_bytes(tasks * gpt3_copy)} against "
            f"{memory.fmt_bytes(gpt3_copy + tasks * quoted_adapter)} with one base and 26 "
            f"adapters of 25 MB: {tasks * gpt3_copy / (gpt3_copy + tasks * quoted_adapter):.0f}× "
            f"less, as quoted. But 25 MB is not a GPT-3 adapter: two m = 64 adapters per layer "
            f"at d = 12,288 over 96 layers weigh {memory.fmt_bytes(gpt3_adapter)} in 16-bit. "
            f"25 MB is BERT-large's adapters ({memory.fmt_count(bert_adapter // FP32_BYTES)} "
            f"weights) in fp32: {memory.fmt_bytes(bert_adapter)}. With GPT-3-sized adapters "
            f"the saving is {tasks * gpt3_copy / (gpt3_copy + tasks * gpt3_adapter):.0f}×.",
        },
        {
            "source": 'the prompting-and-LoRA lecture ("37,000x") and the LoRA paper walk-through ("up to 10,000×")',
            "text": "Both are whole-model ratios for GPT-3 175B, and the rank decides which: LoRA on Q "
            "and V in 96 layers gives "
            + ", ".join(f"{row['reduction']:,.0f}× at r = {row['rank']}" for row in gpt3_reduction())
            + ". The source's 4.7M trainable parameters are Q and V at r = 1.",
        },
    ]
