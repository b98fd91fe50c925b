"""What makes the four-method race show learning: the learning rate and a warm-up, measured in
steps rather than guessed, on the engine's own classifier (the mean of the token states, then a
linear head: workers/head.py).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/race_levers.py [--steps 60] [--methods full,adapter,lora,prompt]
        [--lrs full=1e-4,2e-4 ...] [--warmups 0,6] [--seeds 0,1] [--write]

Each configuration trains for real through the engine's loop (workers/training.py) on the race's
task and batch size, evaluating on the whole validation split every EVAL_EVERY steps. A warm-up of
w steps raises the learning rate linearly from lr/w at step 1 to lr at step w, then holds it.

It reports, per method, learning rate, warm-up and seed: the first evaluated step at which
validation accuracy reaches 80 %, the accuracy at the race's steps and at the last step, and how
far the smoothed training loss fell by the race's last step (the mean of steps 1-5 minus the mean
of the five steps ending there). Steps, not seconds: what a lever buys per step does not depend on
how busy the machine is. The table goes to docs/measurements.md ("Race levers").

The first version of this script (commit 4f107c5) compared heads: today's mean pooling against
the [CLS] state through BertModel's pretrained pooler, frozen or trained; its table is kept in
docs/measurements.md.
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.report import cpu_name, write_section  # noqa: E402
from workers import measure, training  # noqa: E402
from workers.methods import METHODS, validate_run  # noqa: E402

MEASUREMENTS = Path(__file__).resolve().parent.parent / "docs" / "measurements.md"
HEADING = "## Race levers: learning rate and warm-up"
TASK = "sentiment"
BATCH = 16
EVAL_EVERY = 5


def with_schedule(warmup: int, decay: bool):
    """A training.make_schedule whose learning rate rises linearly over the first `warmup` steps
    (from lr/warmup at step 1) and then holds (decay False) or, with `decay`, falls linearly to
    lr/n at the last of the run's n steps (the engine's schedule when warmup is 0)."""

    def make_schedule(optimizer, steps):
        def factor(taken):  # `taken` steps done: the factor of step taken + 1
            if warmup > 1 and taken < warmup:
                return (taken + 1) / warmup
            if not decay:
                return 1.0
            start = warmup if warmup > 1 else 0
            return (steps - taken) / (steps - start)

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    return make_schedule


def run(method: str, lr: float, warmup: int, decay: bool, seed: int, steps: int, race_steps: int) -> dict:
    spec = validate_run(method, TASK, steps, seed, {"lr": lr, "batch_size": BATCH, "eval_every": EVAL_EVERY})
    points, evals = [], []

    def report(new_points, new_evals):
        points.extend(new_points)
        evals.extend(new_evals)
        return True

    original = training.make_schedule
    training.make_schedule = with_schedule(warmup, decay)
    try:
        training.train(spec, report, save_dir=None, device=torch.device("cpu"))
    finally:
        training.make_schedule = original
    losses = [p.loss for p in sorted(points, key=lambda p: p.step)]
    reached = next((e.step for e in evals if e.val_accuracy >= 0.8), None)
    at = {e.step: e.val_accuracy for e in evals}
    window = min(race_steps, len(losses))
    return {
        "steps_to_80": reached,
        "acc_race": at.get(min(race_steps, steps)),
        "acc_last": evals[-1].val_accuracy,
        "loss_drop_race": sum(losses[:5]) / 5 - sum(losses[window - 5 : window]) / 5,
    }


def parse_lrs(text: str) -> dict[str, list[float]]:
    out = {}
    for part in filter(None, text.split(";")):
        method, values = part.split("=")
        out[method] = [float(v) for v in values.split(",")]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--race-steps", type=int, default=30, help="the race's length, for its columns")
    parser.add_argument("--methods", default="full,adapter,lora,prompt")
    parser.add_argument("--lrs", default="", help='per method, e.g. "full=1e-4,2e-4;lora=5e-3" (default: the defaults)')
    parser.add_argument("--warmups", default="0")
    parser.add_argument("--decays", default="0", help="0: a constant rate; 1: linear decay after the warm-up")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--write", action="store_true", help="write the table into docs/measurements.md")
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    measure.inference_metrics = lambda *a, **k: {}  # latency and merging: not what this measures
    lrs = parse_lrs(args.lrs)
    rows = []
    for method in args.methods.split(","):
        for lr in lrs.get(method, [METHODS[method].param("lr").default]):
            for warmup in map(int, args.warmups.split(",")):
                for decay in (d == "1" for d in args.decays.split(",")):
                    for seed in map(int, args.seeds.split(",")):
                        got = run(method, lr, warmup, decay, seed, args.steps, args.race_steps)
                        rows.append((method, lr, warmup, decay, seed, got))
                        print(method, f"{lr:g}", warmup, decay, seed, got, flush=True)
    table = [
        f"| method | lr | warm-up steps | decay | seed | steps to 80 % | val. acc. at step {args.race_steps} | "
        f"at step {args.steps} | loss drop by step {args.race_steps} |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for method, lr, warmup, decay, seed, got in rows:
        reached = got["steps_to_80"] if got["steps_to_80"] is not None else f"> {args.steps}"
        table.append(
            f"| {method} | {lr:g} | {warmup} | {'linear' if decay else 'none'} | {seed} | {reached} | {got['acc_race']:.1%} | {got['acc_last']:.1%} | "
            f"{got['loss_drop_race']:+.3f} |"
        )
    text = (
        f"{HEADING}\n\n`bench/race_levers.py --steps {args.steps} --race-steps {args.race_steps}`: task {TASK}, batch {BATCH}, "
        f"validation every {EVAL_EVERY} steps on the whole split, the engine's head (mean of the token states) "
        f"and batches (packed where the method allows), fp32 or the machine's autocast as the engine chooses; "
        f"CPU {cpu_name()}.\n\n" + "\n".join(table)
    )
    print(text)
    if args.write:
        write_section(text, HEADING, MEASUREMENTS)


if __name__ == "__main__":
    main()
