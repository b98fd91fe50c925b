"""What a run costs the worker, per method: the measurements behind the run budgets.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/run_cost.py [--steps 16] [--task sentiment] [--write]

Trains every method for real at three batch sizes (4, 16 and 64; evaluation only at the end;
the faster of two runs each) and times one evaluation on its own, then fits, per method, by least squares over the batch sizes,

    seconds = fixed + steps * (per_step + per_example * batch) + evaluations * per_val_example * val_size

(workers/run_cost.py). `fixed` is what a run pays once: building the model, the final evaluation
and the end-of-run measurements. Prints the table; `--write` stores it in
workers/data/run_cost.json with the CPU named, for the quotas to read. Run it on an idle machine.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from workers import classifier, datasets, encoding, precision, run_cost, training  # noqa: E402
from workers.measure import evaluate  # noqa: E402 (by name: measure() below takes the module's)
from workers.methods import METHODS, validate_run  # noqa: E402

BATCHES = (4, 16, 64)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def one_run(method: str, task: str, steps: int, batch: int, device) -> tuple[float, float]:
    """(wall seconds of the whole run, the median seconds of one step once warm): each point
    carries its time since the loop began, so a step's time is the gap to the one before, with
    no evaluation in it (the first steps' one-off costs and the final evaluation stay out)."""
    spec = validate_run(method, task, steps, 0, {"eval_every": 0, "batch_size": batch})
    elapsed = []

    def report(points, evals):
        elapsed.extend(p.elapsed for p in points)
        return True

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        training.train(spec, report, save_dir=Path(folder) / "run", device=device)
        wall = time.perf_counter() - start
    gaps = [b - a for a, b in zip(elapsed[2:-2], elapsed[3:-1])]  # steps 4 .. steps-1
    return wall, statistics.median(gaps)


def one_evaluation(method: str, task: str, device) -> tuple[float, int]:
    """The median of three evaluations of the method's model on the validation split, and its size."""
    spec = validate_run(method, task, 1, 0, {})
    labels = datasets.load_task(task).labels
    model = classifier.build_model(spec, len(labels), device)
    _, val = encoding.encode_task(task)
    compute = precision.training_dtype(device)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        with precision.autocast(device, compute):
            evaluate(model, val, device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(val.labels)


def measure(method: str, task: str, steps: int, device) -> dict:
    evaluation, val_size = one_evaluation(method, task, device)
    # The faster of two runs at each batch size: a busy moment only ever slows a run down.
    runs = {b: min((one_run(method, task, steps, b, device) for _ in range(2)), key=lambda r: r[1]) for b in BATCHES}
    step = {b: seconds for b, (_, seconds) in runs.items()}
    per_example, per_step = statistics.linear_regression(list(step), list(step.values()))
    if per_step < 0:  # grows faster than linearly (prompt tuning's longer rows): a line through 0
        per_step = 0.0
        per_example = sum(b * t for b, t in step.items()) / sum(b * b for b in step)
    if per_example <= 0:
        raise SystemExit(f"{method}: step times {step} do not grow with the batch; rerun on an idle machine")
    # What a run pays once: everything but its warm steps (model, first steps, final evaluation,
    # end-of-run measurements).
    fixed = statistics.median(wall - steps * step[b] for b, (wall, _) in runs.items())
    return {
        "fixed_seconds": round(fixed, 3),
        "per_step_seconds": round(per_step, 5),
        "per_example_seconds": round(per_example, 6),
        "per_val_example_seconds": round(evaluation / val_size, 6),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--task", default="sentiment")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--check", default="lora,full", help="methods whose estimate is checked on a real run")
    parser.add_argument("--write", action="store_true", help="store the fits in workers/data/run_cost.json")
    args = parser.parse_args()
    device = training.pick_device()
    classifier.load_base()  # read once, before any timing
    one_run("lora", args.task, 8, 8, device)  # warm-up: first-call costs of every kernel
    costs = {}
    for method in args.methods.split(","):
        costs[method] = measure(method, args.task, args.steps, device)
        print(method, costs[method], file=sys.stderr)
    machine = f"{cpu_name()}, {torch.get_num_threads()} threads, {precision.name(precision.training_dtype(device))}"
    print(f"### Run cost on `{args.task}` ({args.steps} steps at batch {', '.join(map(str, BATCHES))}) — {machine}\n")
    print(
        "| method | fixed (s) | per step (ms) | per example (ms) | per val example (ms) | default run (s) | 2000 steps, batch 256 (min) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    val_size = len(datasets.load_task(args.task).val)
    for method, c in costs.items():
        model = run_cost.Cost(**c)
        default = validate_run(method, args.task, 100, 0, {}).params
        print(
            f"| {method} | {c['fixed_seconds']:.1f} | {1000 * c['per_step_seconds']:.1f} "
            f"| {1000 * c['per_example_seconds']:.2f} | {1000 * c['per_val_example_seconds']:.2f} "
            f"| {model.seconds(100, default['batch_size'], default['eval_every'], val_size):.0f} "
            f"| {model.seconds(2000, 256, 25, val_size) / 60:.0f} |"
        )
    # The estimate against a run it was not fitted on: more steps, another batch, evaluations.
    print("\n| check: 80 steps, batch 32, evaluated every 20 | estimated (s) | measured (s) | measured / estimated |")
    print("|---|---:|---:|---:|")
    for method in [m for m in args.check.split(",") if m in costs]:
        spec = validate_run(method, args.task, 80, 0, {"batch_size": 32, "eval_every": 20})
        estimated = run_cost.Cost(**costs[method]).seconds(80, 32, 20, val_size)
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            training.train(spec, lambda points, evals: True, save_dir=Path(folder) / "run", device=device)
            measured = time.perf_counter() - start
        print(f"| {method} | {estimated:.1f} | {measured:.1f} | {measured / estimated:.2f} |")
    if args.write:
        run_cost.COST_FILE.write_text(
            json.dumps(
                {"machine": machine, "measured": date.today().isoformat(), "task": args.task, "methods": costs},
                indent=1,
            )
            + "\n"
        )
        print(f"\nwritten to {run_cost.COST_FILE}", file=sys.stderr)


if __name__ == "__main__":
    main()
