"""The registry of fine-tuning methods: names, the parameters a user may set, their bounds.

The API, the training page, the docs and the tests all read this one registry. It imports no
torch: the web layer validates requests with it. How each method is built lives in builders.py.
"""
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workers import base_model, datasets

MAX_STEPS = 2000
MAX_RANK = 256
MIN_TRAIN_EXAMPLES = 16
MAX_TRAIN_EXAMPLES = 100_000  # the public bound; a task's own size is the real one


class RunRequestError(ValueError):
    """A run request that cannot be accepted; the message is shown to the person who sent it."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "int", "float" or "targets"
    default: Any  # None: optional, left out of the run's params unless given
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    help: str = ""

    def describe(self) -> dict:
        out = {"name": self.name, "type": self.kind, "default": self.default, "help": self.help}
        if self.kind == "targets":
            out["choices"] = list(base_model.TARGET_MODULES)
        else:
            out["minimum"], out["maximum"] = self.minimum, self.maximum
            out["exclusive_minimum"] = self.exclusive_minimum
        return out


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    summary: str
    trains: str
    params: tuple[Param, ...]
    param_names: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "param_names", tuple(p.name for p in self.params))

    def describe(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "summary": self.summary,
            "trains": self.trains,
            "params": [p.describe() for p in self.params],
        }


def lr(default: float) -> Param:
    """The learning rate: same bounds for every method, a default that suits each."""
    return Param("lr", "float", default, 0.0, 1.0, exclusive_minimum=True, help="learning rate of AdamW")


BATCH_SIZE = Param("batch_size", "int", 16, 1, 256, help="examples per step")
EVAL_EVERY = Param("eval_every", "int", 25, 0, MAX_STEPS,
                   help="evaluate on the validation split every N steps (0: only at the end)")
RANK = Param("rank", "int", 8, 1, MAX_RANK,
             help="rank r of B·A; never above the smaller side of an adapted matrix")
ALPHA = Param("alpha", "float", 16.0, 0.0, 1024.0, exclusive_minimum=True,
              help="LoRA scale: the update is (alpha/r)·B·A")
DROPOUT = Param("dropout", "float", 0.0, 0.0, 0.9, help="dropout on the LoRA input")
TARGETS = Param("target_modules", "targets", ["query", "value"],
                help="which linear layers of every transformer layer are adapted")
IA3_TARGETS = Param("target_modules", "targets", ["key", "value", "ffn"],
                    help="which linear layers of every transformer layer get learned scales")
BOTTLENECK = Param("bottleneck", "int", 32, 1, MAX_RANK,
                   help="adapter bottleneck width m; never above the hidden size")
VIRTUAL_TOKENS = Param("virtual_tokens", "int", 20, 1, 128, help="number of trained virtual tokens")
TRAIN_EXAMPLES = Param("train_examples", "int", None, MIN_TRAIN_EXAMPLES, MAX_TRAIN_EXAMPLES,
                        help="train on a seeded, class-balanced subset of this many training "
                             "examples (default: the whole training split)")
COMMON = (BATCH_SIZE, EVAL_EVERY, TRAIN_EXAMPLES)


def _lora_params(default_lr: float) -> tuple[Param, ...]:
    return (RANK, ALPHA, DROPOUT, TARGETS, lr(default_lr), *COMMON)


METHODS = {m.name: m for m in (
    Method("full", "Full fine-tuning", "Every weight of the model trains.",
           "every weight of the encoder, and the classifier head", (lr(5e-5), *COMMON)),
    Method("lora", "LoRA", "A low-rank update B·A beside each frozen weight; B starts at zero.",
           "B·A on the target modules, and the classifier head", _lora_params(2e-3)),
    Method("dora", "DoRA", "LoRA on the direction of each weight, plus a trained magnitude per column.",
           "B·A and the magnitudes on the target modules, and the head", _lora_params(2e-3)),
    Method("adapter", "Bottleneck adapter", "A small down/up projection after attention and after "
           "the FFN of every layer (Houlsby); the up-projection starts at zero.",
           "two adapters per layer, and the head", (BOTTLENECK, lr(1e-3), *COMMON)),
    Method("prompt", "Prompt tuning", "Trained virtual token embeddings in front of the input.",
           "the soft prompt vectors, and the head", (VIRTUAL_TOKENS, lr(3e-2), *COMMON)),
    Method("prefix", "Prefix tuning", "Trained key/value prefixes in every attention layer.",
           "the key/value prefixes, and the head", (VIRTUAL_TOKENS, lr(1e-2), *COMMON)),
    Method("ia3", "IA3", "Learned scales on the keys, values and FFN activations.",
           "the scaling vectors, and the head", (IA3_TARGETS, lr(1e-2), *COMMON)),
    Method("bitfit", "BitFit", "Only the bias terms of the encoder train.",
           "every bias, and the head", (lr(5e-3), *COMMON)),
    Method("qlora", "QLoRA", "LoRA on a base quantised to 4-bit NF4 with double quantisation.",
           "B·A on the target modules, and the head; the base is stored in 4 bits", _lora_params(2e-3)),
)}


def _dynamic_maximum(name: str, clean: dict, task: str) -> int | None:
    """Bounds that depend on the base model, the task and the other parameters."""
    if name == "rank":
        return min(MAX_RANK, base_model.max_rank(clean["target_modules"]))
    if name == "bottleneck":
        return min(MAX_RANK, base_model.dimensions().hidden)
    if name == "train_examples":
        try:
            return min(MAX_TRAIN_EXAMPLES, datasets.load_task(task).train_size)
        except datasets.UnknownTask:  # an upload deleted a moment ago
            raise RunRequestError(f"unknown task {task!r}; choose from {datasets.task_names()}") from None
    return None


@dataclass(frozen=True)
class RunSpec:
    """A validated run request: everything the engine needs, nothing it must re-check."""
    method: str
    task: str
    steps: int
    seed: int
    params: dict

    def as_dict(self) -> dict:
        return {"method": self.method, "task": self.task, "steps": self.steps,
                "seed": self.seed, "params": self.params}


def _number(name: str, value: Any, kind: str) -> float | int:
    # bool is an int to Python; a JSON true is never a valid number here.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RunRequestError(f"{name} must be a number (got {value!r})")
    if isinstance(value, float) and not math.isfinite(value):
        raise RunRequestError(f"{name} must be a finite number (got {value!r})")
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise RunRequestError(f"{name} must be a whole number (got {value!r})")
        return int(value)
    return float(value)


def _in_bounds(param: Param, value: float, maximum: float | None = None) -> None:
    low, high = param.minimum, param.maximum if maximum is None else maximum
    too_low = value <= low if param.exclusive_minimum else value < low
    if too_low or value > high:
        low_text = f"above {low:g}" if param.exclusive_minimum else f"between {low:g}"
        sep = " and at most " if param.exclusive_minimum else " and "
        raise RunRequestError(f"{param.name} must be {low_text}{sep}{high:g} (got {value:g})")


def _targets(value: Any) -> list[str]:
    known = list(base_model.TARGET_MODULES)
    if not isinstance(value, list) or not value:
        raise RunRequestError(f"target_modules must be a non-empty list drawn from {known}")
    unknown = [v for v in value if v not in known]
    if unknown:
        raise RunRequestError(f"unknown target module {unknown[0]!r}; choose from {known}")
    # Order and duplicates carry no meaning; store them canonically.
    return [t for t in known if t in value]


def ANY_TASK(name: str) -> bool:  # noqa: N802 - a constant-like predicate
    """For runs already stored (the worker, a run's code): an uploaded task needs no viewer."""
    return True


def _task_usable(task: Any, may_use_task: Callable[[str], bool] | None) -> bool:
    if not isinstance(task, str):
        return False
    if datasets.is_shipped(task):
        return True
    # An uploaded task (datasets.register_source) only for whom the caller says may use it; the
    # same answer as for a name that does not exist, so that nobody learns which uploads exist.
    return (may_use_task is not None and datasets.is_sourced(task) and may_use_task(task)
            and datasets.task_exists(task))


def validate_run(method: str, task: str, steps: Any, seed: Any, params: Any, *,
                 may_use_task: Callable[[str], bool] | None = None) -> RunSpec:
    """Check a run request against the registry and return it with defaults filled in.

    `task` is a shipped task, or an uploaded one (``upload-<id>``) where `may_use_task(task)`
    says the person asking may use it (the web layer's rule, peftlab/classroom/access.py); without
    `may_use_task` only the shipped tasks are known. ANY_TASK accepts every existing upload (for
    a run that was checked when it was submitted)."""
    if method not in METHODS:
        raise RunRequestError(f"unknown method {method!r}; choose from {sorted(METHODS)}")
    spec = METHODS[method]
    if not _task_usable(task, may_use_task):
        raise RunRequestError(f"unknown task {task!r}; choose from {datasets.task_names()}")
    steps = _number("steps", steps, "int")
    if not 1 <= steps <= MAX_STEPS:
        raise RunRequestError(f"steps must be between 1 and {MAX_STEPS} (got {steps})")
    seed = _number("seed", seed, "int")
    if not 0 <= seed < 2**31:
        raise RunRequestError(f"seed must be between 0 and {2**31 - 1} (got {seed})")
    if not isinstance(params, dict):
        raise RunRequestError("params must be an object such as {\"rank\": 8}")
    extra = sorted(set(params) - set(spec.param_names))
    if extra:
        raise RunRequestError(f"{extra[0]!r} does not apply to {method}; its parameters are "
                              f"{list(spec.param_names)}")

    clean: dict[str, Any] = {}
    # Targets first: the rank's bound depends on them.
    for p in sorted(spec.params, key=lambda p: p.kind != "targets"):
        value = params.get(p.name, p.default)
        if value is None and p.default is None:
            continue  # an optional parameter left unset
        if p.kind == "targets":
            clean[p.name] = _targets(value)
        else:
            clean[p.name] = _number(p.name, value, p.kind)
            _in_bounds(p, clean[p.name], _dynamic_maximum(p.name, clean, task))
    clean = {p.name: clean[p.name] for p in spec.params if p.name in clean}
    return RunSpec(method=method, task=task, steps=steps, seed=seed, params=clean)
