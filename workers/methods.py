"""The registry of fine-tuning methods: names, the parameters a user may set, their bounds.

The API, the training page, the docs and the tests all read this one registry. It imports no
torch: the web layer validates requests with it. How each method is built lives in engine.py.
"""
import math
from dataclasses import dataclass, field
from typing import Any

from . import base_model, datasets

MAX_STEPS = 2000
MAX_RANK = 256


class RunRequestError(ValueError):
    """A run request that cannot be accepted; the message is shown to the person who sent it."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "int", "float" or "targets"
    default: Any
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
    available: bool = True
    param_names: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "param_names", tuple(p.name for p in self.params))

    def describe(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "summary": self.summary,
            "trains": self.trains,
            "available": self.available,
            "params": [p.describe() for p in self.params],
        }


LR = Param("lr", "float", 2e-3, 0.0, 1.0, exclusive_minimum=True,
           help="learning rate of AdamW")
BATCH_SIZE = Param("batch_size", "int", 16, 1, 256, help="examples per step")
RANK = Param("rank", "int", 8, 1, MAX_RANK,
             help="rank r of B·A; never above the smaller side of an adapted matrix")
ALPHA = Param("alpha", "float", 16.0, 0.0, 1024.0, exclusive_minimum=True,
              help="LoRA scale: the update is (alpha/r)·B·A")
DROPOUT = Param("dropout", "float", 0.0, 0.0, 0.9, help="dropout on the LoRA input")
TARGETS = Param("target_modules", "targets", ["query", "value"],
                help="which linear layers of every transformer layer get an adapter")
BOTTLENECK = Param("bottleneck", "int", 32, 1, 384, help="adapter bottleneck width m")
VIRTUAL_TOKENS = Param("virtual_tokens", "int", 20, 1, 128, help="number of trained virtual tokens")

LORA_PARAMS = (RANK, ALPHA, DROPOUT, TARGETS, LR, BATCH_SIZE)

METHODS = {m.name: m for m in (
    Method("lora", "LoRA", "Low-rank update B·A beside frozen weights; B starts at zero.",
           "B·A on the target modules, and the classifier head", LORA_PARAMS),
    Method("full", "Full fine-tuning", "Every weight of the model trains.",
           "every weight", (LR, BATCH_SIZE), available=False),
    Method("dora", "DoRA", "LoRA on the direction, plus a trained magnitude per column.",
           "B·A and magnitudes on the target modules, and the head", LORA_PARAMS, available=False),
    Method("adapter", "Bottleneck adapter", "A small down/up projection after attention and FFN.",
           "adapters in every layer, and the head", (BOTTLENECK, LR, BATCH_SIZE), available=False),
    Method("prompt", "Prompt tuning", "Trained virtual token embeddings at the input.",
           "soft prompt vectors, and the head", (VIRTUAL_TOKENS, LR, BATCH_SIZE), available=False),
    Method("prefix", "Prefix tuning", "Trained key/value prefixes in every layer.",
           "key/value prefixes, and the head", (VIRTUAL_TOKENS, LR, BATCH_SIZE), available=False),
    Method("ia3", "IA3", "Learned scaling vectors on activations.",
           "scaling vectors, and the head", (TARGETS, LR, BATCH_SIZE), available=False),
    Method("bitfit", "BitFit", "Only the bias terms train.",
           "bias terms, and the head", (LR, BATCH_SIZE), available=False),
    Method("qlora", "QLoRA", "LoRA on a 4-bit NF4 base with double quantisation.",
           "B·A on the target modules, and the head", LORA_PARAMS, available=False),
)}


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


def validate_run(method: str, task: str, steps: Any, seed: Any, params: Any) -> RunSpec:
    """Check a run request against the registry and return it with defaults filled in."""
    if method not in METHODS:
        raise RunRequestError(f"unknown method {method!r}; choose from {sorted(METHODS)}")
    spec = METHODS[method]
    if not spec.available:
        raise RunRequestError(f"method {method!r} is not available yet; available: "
                              f"{sorted(n for n, m in METHODS.items() if m.available)}")
    if task not in datasets.task_names():
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
    for p in spec.params:
        value = params.get(p.name, p.default)
        if p.kind == "targets":
            clean[p.name] = _targets(value)
        else:
            clean[p.name] = _number(p.name, value, p.kind)
            if p.name != "rank":
                _in_bounds(p, clean[p.name])
    if "rank" in clean:
        dims = base_model.dimensions()
        cap = min(MAX_RANK, dims.max_rank(clean["target_modules"]))
        _in_bounds(RANK, clean["rank"], maximum=cap)
    return RunSpec(method=method, task=task, steps=steps, seed=seed, params=clean)
