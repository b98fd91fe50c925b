"""The race's instant "simulated" mode: curves from a model fitted to real runs of the lab.

Each method's training loss and validation accuracy are fitted, over the steps of a real run, by
    y(t) = c + a·exp(−t/τ)
(least squares: a grid over τ, then (c, a) in closed form for each τ). The fit is only used inside
the range of steps it was fitted on, so it never invents a curve beyond what was measured. The
shipped fits (simulations/data/race_fit.json) come from bench/race_fit.py, which trains every
lane for real; the page labels every simulated curve as such.

Pure numpy; no Django.
"""

import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np

FIT_FILE = Path(__file__).resolve().parent / "data" / "race_fit.json"
TAUS = np.geomspace(1.0, 5000.0, 400)  # candidate time constants, in steps


@dataclass(frozen=True)
class Curve:
    """y(t) = c + a·exp(−t/τ), fitted on steps min_step..max_step; `rmse` is the fit's residual.
    Outside those steps the curve is not drawn: an accuracy fitted from its first evaluation on
    would fall towards 0 % before it, which no run measured."""

    c: float
    a: float
    tau: float
    rmse: float
    max_step: int
    min_step: int = 1

    def at(self, steps) -> np.ndarray:
        t = np.asarray(steps, dtype=float)
        return self.c + self.a * np.exp(-t / self.tau)


def fit_curve(steps, values) -> Curve:
    """The least-squares c + a·exp(−t/τ) through (steps, values): at least three points."""
    t = np.asarray(steps, dtype=float)
    y = np.asarray(values, dtype=float)
    if t.shape != y.shape or t.ndim != 1:
        raise ValueError("steps and values must be two lists of the same length")
    if len(t) < 3:
        raise ValueError(f"a curve needs at least 3 points (got {len(t)})")
    if not np.all(np.isfinite(y)):
        raise ValueError("values must be finite numbers")
    best = None
    for tau in TAUS:
        design = np.stack([np.ones_like(t), np.exp(-t / tau)], axis=1)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        sse = float(np.sum((design @ coef - y) ** 2))
        if best is None or sse < best[0]:
            best = (sse, coef, tau)
    sse, (c, a), tau = best
    return Curve(float(c), float(a), float(tau), float(np.sqrt(sse / len(t))), int(t.max()), int(t.min()))


@dataclass(frozen=True)
class LaneFit:
    """What one real run gives the simulation: its fitted curves and its measured figures."""

    method: str
    loss: Curve
    accuracy: Curve
    seconds_per_step: float
    metrics: dict  # trainable params, peak memory, adapter size, latency: as measured


def fit_lane(method: str, points: list[dict], evals: list[dict], metrics: dict) -> LaneFit:
    """Fit a finished run's points ({step, loss, elapsed}) and evals ({step, val_accuracy})."""
    steps = [p["step"] for p in points]
    loss = fit_curve(steps, [p["loss"] for p in points])
    # The accuracy before any training is the untrained head's: step 0 is not measured, so the
    # curve starts from the first evaluation.
    accuracy = fit_curve([e["step"] for e in evals], [e["val_accuracy"] for e in evals])
    seconds = points[-1]["elapsed"] / points[-1]["step"]
    return LaneFit(method, loss, accuracy, seconds, metrics)


def simulate(fit: LaneFit, steps: int, every: int = 1) -> dict:
    """The simulated lane over 1..steps (never past the fitted range)."""
    if not 1 <= steps <= fit.loss.max_step:
        raise ValueError(f"the simulation of {fit.method} covers 1 to {fit.loss.max_step} steps (got {steps})")
    t = np.arange(1, steps + 1, every)
    if t[-1] != steps:
        t = np.append(t, steps)
    return {
        "method": fit.method,
        "steps": t.tolist(),
        "loss": np.round(fit.loss.at(t), 5).tolist(),
        # None before the first evaluation the fit saw: nothing was measured there.
        "val_accuracy": [
            None if step < fit.accuracy.min_step else value
            for step, value in zip(t.tolist(), np.round(np.clip(fit.accuracy.at(t), 0.0, 1.0), 5).tolist(), strict=True)
        ],
        "seconds": round(fit.seconds_per_step * steps, 2),
        "loss_rmse": round(fit.loss.rmse, 5),
        "metrics": fit.metrics,
    }


def relative_times(lanes: list[dict], reference: str = "lora") -> tuple[str, list[float]]:
    """Each simulated lane's training time as a multiple of one lane's (LoRA's when it races, else
    the first lane's): the fitted seconds are one machine's, at the load it had while fitting, but
    the ratio between lanes measured in one fit carries to another machine far better."""
    chosen = next((lane for lane in lanes if lane["method"] == reference), lanes[0])
    return chosen["method"], [round(lane["seconds"] / chosen["seconds"], 2) for lane in lanes]


def to_json(fits: dict[str, dict[str, LaneFit]], about: dict) -> str:
    return json.dumps(
        {"about": about, "tasks": {task: {m: asdict(f) for m, f in lanes.items()} for task, lanes in fits.items()}},
        indent=1,
    )


@cache
def shipped() -> dict:
    """The shipped fits: {"about": {...}, "tasks": {task: {method: LaneFit}}}."""
    raw = json.loads(FIT_FILE.read_text())
    tasks = {
        task: {
            m: LaneFit(f["method"], Curve(**f["loss"]), Curve(**f["accuracy"]), f["seconds_per_step"], f["metrics"])
            for m, f in lanes.items()
        }
        for task, lanes in raw["tasks"].items()
    }
    return {"about": raw["about"], "tasks": tasks}
