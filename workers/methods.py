"""Run requests checked against the method registry (simulations/methods.py).

The records (names, labels, parameters, bounds and every other fact about each method) live in
simulations/methods.py and are re-exported here; this module adds what needs the base model and
the datasets: validate_run and the RunSpec it returns. It imports no torch: the web layer
validates requests with it. How each method is built lives in builders.py.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulations.methods import (  # noqa: F401 - re-exported: the registry as the engine and the web read it
    ALPHA,
    BATCH_SIZE,
    BOTTLENECK,
    COMMON,
    DROPOUT,
    EVAL_EVERY,
    IA3_TARGETS,
    MAX_RANK,
    MAX_STEPS,
    MAX_TRAIN_EXAMPLES,
    METHODS,
    MIN_TRAIN_EXAMPLES,
    RANK,
    TARGET_MODULES,
    TARGETS,
    TRAIN_EXAMPLES,
    VIRTUAL_TOKENS,
    Method,
    Param,
    lr,
)
from workers import base_model, datasets


class RunRequestError(ValueError):
    """A run request that cannot be accepted; the message is shown to the person who sent it."""


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
        return {"method": self.method, "task": self.task, "steps": self.steps, "seed": self.seed, "params": self.params}


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
    known = list(TARGET_MODULES)
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
    return may_use_task is not None and datasets.is_sourced(task) and may_use_task(task) and datasets.task_exists(task)


def validate_run(
    method: str, task: str, steps: Any, seed: Any, params: Any, *, may_use_task: Callable[[str], bool] | None = None
) -> RunSpec:
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
        raise RunRequestError('params must be an object such as {"rank": 8}')
    extra = sorted(set(params) - set(spec.param_names))
    if extra:
        raise RunRequestError(f"{extra[0]!r} does not apply to {method}; its parameters are {list(spec.param_names)}")

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
