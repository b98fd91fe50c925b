"""Train every method for real on every task and fit the simulated race to what they did.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/race_fit.py [--steps 60] [--eval-every 10]

Writes simulations/data/race_fit.json (simulations/race_sim.py reads it): per task and method the
fitted loss and accuracy curves, seconds per step and the measured figures of the run. The file
is rewritten after every run, the race's default lanes first, so an interrupted fit still ships
what it measured (the simulated race offers only the methods it has).

The seconds per step are this machine's and depend on what else it runs: fit on an idle machine.
The script records the CPU by name and the load average over the fit, and refuses to start when
the one-minute load average is above --max-load (the page shows times relative to one lane, which
carry across machines far better than seconds).
"""

import argparse
import os
import sys
import tempfile
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.report import cpu_name  # noqa: E402
from simulations import race_sim  # noqa: E402
from workers import classifier, datasets, training  # noqa: E402
from workers.methods import METHODS, validate_run  # noqa: E402

KEPT_METRICS = (
    "trainable_params",
    "trainable_percent",
    "total_params",
    "peak_memory_bytes",
    "adapter_bytes",
    "latency_ms",
    "latency_merged_ms",
    "val_accuracy",
    "train_seconds",
)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--note", default="", help="what the page should say about these runs (e.g. a busy machine)")
    parser.add_argument("--tasks", default=",".join(datasets.task_names()))
    first = ["full", "adapter", "lora", "prompt"]  # the race's default lanes
    parser.add_argument("--methods", default=",".join(first + [m for m in METHODS if m not in first]))
    parser.add_argument("--max-load", type=float, default=0.5, help="refuse to fit on a busier machine")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if load > args.max_load:
        raise SystemExit(f"the machine is busy (load average {load:.2f} > {args.max_load}): fit on an idle one")
    device = training.pick_device()
    classifier.load_base()
    about = {
        "steps": args.steps,
        "eval_every": args.eval_every,
        "seed": 0,
        "date": date.today().isoformat(),
        "note": args.note,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{cpu_name()}, {torch.get_num_threads()} threads",
        "load_average_at_start": round(load, 2),
    }
    fits = {task: {} for task in args.tasks.split(",")}
    for method in args.methods.split(","):
        for task in fits:
            spec = validate_run(method, task, args.steps, 0, {"eval_every": args.eval_every})
            points, evals = [], []

            def report(new_points, new_evals, points=points, evals=evals):
                points.extend(vars(p) for p in new_points)
                evals.extend(vars(e) for e in new_evals)
                return True

            with tempfile.TemporaryDirectory() as folder:
                metrics = training.train(spec, report, save_dir=Path(folder) / "run", device=device)
            kept = {k: metrics[k] for k in KEPT_METRICS if k in metrics}
            fits[task][method] = race_sim.fit_lane(method, points, evals, kept)
            print(
                f"{task}/{method}: loss rmse {fits[task][method].loss.rmse:.3f}, acc {metrics['val_accuracy']:.3f}",
                file=sys.stderr,
            )
            race_sim.FIT_FILE.parent.mkdir(exist_ok=True)
            race_sim.FIT_FILE.write_text(race_sim.to_json(fits, about))


if __name__ == "__main__":
    main()
