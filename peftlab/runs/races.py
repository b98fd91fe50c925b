"""The four-method race (P17): lanes of real runs on the same task, seed and budget.

start_race validates and queues a race through peftlab.runs.batches; describe_race is what
GET /api/races/{id} and the race stream's final event return: every lane's run (as GET
/api/runs/{id} gives it, without points) with the memory calculator's prediction for that exact
configuration beside it.
"""

import math
from functools import cache

from django.urls import reverse

from peftlab.runs.batches import batch_status, create_batch, lanes_of
from peftlab.runs.models import Batch
from simulations import family, memory
from workers import base_model, datasets, methods, token_lengths

DEFAULT_METHODS = ("full", "adapter", "lora", "prompt")
DEFAULT_TASK = "sentiment"
# A race on a 2-core CPU finishes in under a minute at these (bench/race.py measures it; README):
# enough steps for full fine-tuning, the adapter and LoRA to pass 80 % validation accuracy at their
# default learning rates (bench/race_levers.py, docs/measurements.md "Race levers").
DEFAULT_STEPS = 60
MAX_LANES = 6
EVALS_PER_LANE = 3  # validation points per lane: every steps/3 steps (the last at the end)


def eval_every(steps: int) -> int:
    return max(1, math.ceil(steps / EVALS_PER_LANE))


def start_race(task: str, steps: int, seed: int, lane_methods, submitter=None) -> Batch:
    """Queue one run per method, each at its registry defaults; raises BatchRequestError, or
    the quotas' LabError when the submitter may not queue it (see create_batch)."""
    lane_methods = list(lane_methods)
    lanes = [(m, {"eval_every": eval_every(steps)}) for m in lane_methods]
    return create_batch(
        Batch.RACE, task, steps, seed, lanes, max_lanes=MAX_LANES, config={"methods": lane_methods}, submitter=submitter
    )


@cache
def task_shape(task: str) -> tuple[int, int]:
    """(tokens of the task's longest training example, number of labels): read once per race, as
    an uploaded task is read from the database each time."""
    return token_lengths.longest_train_example(task), len(datasets.load_task(task).labels)


def prediction(
    method: str, params: dict, task: str, shape: tuple[int, int] | None = None, precision: str = "fp32"
) -> dict:
    """The calculator's figures for a lab run of this configuration with its steps in
    `precision`: trainable parameters and peak memory (parameters + gradients + AdamW state +
    activations), the activations at the padded length of the task's longest training example
    (the widest batch a run can see)."""
    seq, labels = shape or task_shape(task)
    p = memory.lab_run_prediction(base_model.memory_model(), method, params, labels, seq=seq, precision=precision)
    return {
        "peak_memory_bytes": p["total"],
        "trainable_params": p["trainable"],
        "seq": seq,
        "breakdown": {k: p[k] for k in ("params", "grads", "optimizer_state", "activations")},
        "activation_formula": p["activation_formula"],
    }


def predictions(method: str, params: dict, task: str, shape: tuple[int, int]) -> dict:
    """prediction() in each precision a worker may train in, by the name a run records (the web
    server does not know which its workers use until a run reports it)."""
    return {precision: prediction(method, params, task, shape, precision) for precision in memory.LAB_PRECISIONS}


# The family map's parts (simulations/family.py, P15), bottom to top, each added part beside the
# part it works on.
LAYOUT = (
    "embeddings",
    "prompt",
    "q",
    "lora_q",
    "k",
    "lora_k",
    "ia3_k",
    "v",
    "lora_v",
    "ia3_v",
    "prefix",
    "attention",
    "o",
    "lora_o",
    "adapter1",
    "ln1",
    "ia3_ffn",
    "ffn_up",
    "lora_ffn_up",
    "ffn_down",
    "lora_ffn_down",
    "adapter2",
    "ln2",
    "biases",
    "head",
)


def diagram(method: str, params: dict) -> list[dict]:
    """Which parts of a transformer block this run trains and which stay frozen, bottom to top,
    for the run's exact configuration. Parts that only another method adds are left out. QLoRA
    trains what LoRA does; its frozen matrices are stored in 4 bits."""
    family_method = "lora" if method == "qlora" else method
    if family_method in ("lora", "dora"):
        every = family.highlights(family_method, "QKVO+FFN")
        trains = {
            f"lora_{part}": every[f"lora_{part}"]
            for t in params.get("target_modules", ())
            for part in family.TARGET_PARTS[t]
        }
    else:
        trains = family.highlights(family_method)
    quantized = ("q", "k", "v", "o", "ffn_up", "ffn_down") if method == "qlora" else ()
    parts = []
    for key in LAYOUT:
        label, kind, short = family.PARTS[key]
        if kind == "added" and key not in trains:
            continue
        if key in family.PARAMETER_FREE:
            state = "none"
        else:
            state = "trains" if key in trains or kind == "head" else "frozen"
        text = trains.get(key) or family.frozen_text(key)
        if key in quantized:
            text += " Stored in 4-bit NF4 (QLoRA)."
        parts.append({"key": key, "label": label, "short": short, "state": state, "text": text})
    return parts


def describe_race(batch: Batch) -> dict:
    runs = lanes_of(batch)
    shapes = {task: task_shape(task) for task in {r.task for r in runs}}
    return {
        "id": batch.pk,
        "status": batch_status(r.status for r in runs),
        "task": batch.task,
        "steps": batch.steps,
        "seed": batch.seed,
        "methods": [r.method for r in runs],
        "created_at": batch.created_at.isoformat(),
        "events_url": reverse("race-events", args=[batch.pk]),
        "runs": [
            {
                **r.summary(),
                "label": methods.METHODS[r.method].label,
                "predictions": predictions(r.method, r.params, r.task, shapes[r.task]),
                "diagram": diagram(r.method, r.params),
            }
            for r in runs
        ],
    }
