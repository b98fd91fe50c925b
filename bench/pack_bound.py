"""What bounds a pack on the CPU: where a run's time goes, alone and inside a pack of 30.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/pack_bound.py [--runs 30] [--write]

bench/packs.py measures what a class sees (30 LoRA runs of 100 steps, packed against one after
another). This script takes that time apart, in the engine alone (no web server or worker), to
say how much faster a pack could be on this machine while each run keeps its own numbers:

1. One training step, per run: a step of each of `--runs` runs alone, one after another
   (`Training.step`), and a run's share of a fused step of the same runs (`Pack.step`; the
   defaults, seeds 0, 1, …, no evaluation between steps), the same batches both ways, in
   alternate rounds. Each timed without the profiler; torch's profiler then says how much of it the matrix products
   (the frozen layers' and the LoRA products) and the dropout masks (Bernoulli draws from each
   run's own random state) take; the rest is every other operator (layer norms, activations,
   softmax, the optimizer, copies) and the Python around them.
2. What each run does besides its steps, alone and packed alike: its evaluations (every 25 steps
   and at the end) and its end-of-run measurements (latency merged and unmerged, the demo
   predictions), from one run of 100 steps alone.

The bound: a pack whose fused step cost only its matrix products and masks (nothing else at
all), against the runs one after another; both with the same
evaluations and measurements. The section "## Packs: what bounds them on a CPU" of
docs/performance.md is written with --write.
"""

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from bench.report import cpu_name, write_section  # noqa: E402
from workers import measure, methods, runpack, training  # noqa: E402

HEADING = "## Packs: what bounds them on a CPU"
STEPS = 100  # a class's run (bench/packs.py)
PRODUCTS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}
MASKS = {"aten::bernoulli_"}
PARTS = ("matrix products", "dropout masks", "the rest")


def spec(seed: int, steps: int, **params):
    return methods.validate_run("lora", "sentiment", steps, seed, params)


def profiled(step, repeats: int) -> Counter:
    """Milliseconds of the matrix products and the masks in one call of `step` (a mean)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            step()
    spent = Counter()
    for event in prof.key_averages():
        if event.key in PRODUCTS:
            spent["matrix products"] += event.self_cpu_time_total / 1000 / repeats
        elif event.key in MASKS:
            spent["dropout masks"] += event.self_cpu_time_total / 1000 / repeats
    return spent


def steps_side_by_side(runs: int, rounds: int) -> tuple[dict, dict]:
    """Per run and step, split as PARTS: `runs` runs alone, a step of each in turn, and the same
    runs in one pack (the same batches); their rounds alternate, so that the machine's load hits
    both alike, and the medians are taken."""
    alone = [training.Training(spec(seed, 2000, eval_every=0), lambda points, evals: True) for seed in range(runs)]
    pack = runpack.Pack()
    for seed in range(runs):
        pack.join(training.Lane(spec(seed, 2000, eval_every=0), lambda points, evals: True))

    def each_alone():
        for run in alone:
            run.step()

    ways = {"alone": each_alone, "packed": pack.step}
    times = {name: [] for name in ways}
    for i in range(2 + rounds):  # two rounds to warm (the allocator, oneDNN's kernels)
        for name, step in ways.items():
            started = time.perf_counter()
            step()
            if i >= 2:
                times[name].append(time.perf_counter() - started)
    assert len(pack) == runs
    out = []
    for name, step in ways.items():
        wall = 1000 * statistics.median(times[name])
        spent = profiled(step, repeats=2)
        row = {part: spent[part] for part in PARTS[:2]}
        row["the rest"] = max(0.0, wall - sum(row.values()))
        row["total"] = wall
        out.append({part: ms / runs for part, ms in row.items()})
    return out[0], out[1]


def besides_steps() -> dict:
    """Seconds a run of STEPS steps spends evaluating and measuring at its end (alone)."""
    spent = Counter()
    real = {name: getattr(measure, name) for name in ("evaluate", "inference_metrics")}

    def timed(name):
        def call(*args, **kwargs):
            started = time.perf_counter()
            try:
                return real[name](*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started
                spent[name + " calls"] += 1

        return call

    for name in real:
        setattr(measure, name, timed(name))
    try:
        started = time.perf_counter()
        training.train(spec(0, STEPS), lambda points, evals: True)
        whole = time.perf_counter() - started
    finally:
        for name, fn in real.items():
            setattr(measure, name, fn)
    return {
        "evaluations": spent["evaluate"],
        "evaluation count": int(spent["evaluate calls"]),
        "end-of-run measurements": spent["inference_metrics"],
        "whole run": whole,
    }


def section(runs: int, alone: dict, packed: dict, fixed: dict) -> str:
    extra = fixed["evaluations"] + fixed["end-of-run measurements"]
    floor = packed["matrix products"] + packed["dropout masks"]

    def per_run(step_ms: float) -> float:  # seconds of one run: its steps and the rest
        return STEPS * step_ms / 1000 + extra

    lines = [
        HEADING,
        "",
        f"`bench/pack_bound.py`, in the engine alone (no web server or worker): LoRA runs with the "
        f"defaults (rank 8 on query and value, batch 16, `sentiment`), a step of each of {runs} runs "
        f"alone, one after another, against one fused step of the same {runs} runs in a pack (the "
        f"same batches), per run, each split by torch's profiler; then what a run of {STEPS} steps does besides its steps. CPU: {cpu_name()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads. Milliseconds per run and step: the median of five "
        "rounds timed without the profiler, alone and packed in turn (after two), and the "
        "profiler's times of the matrix products and the masks over two more; the rest is every other operator and the Python "
        "around them.",
        "",
        "| per run and step | " + " | ".join(PARTS) + " | total |",
        "|---|" + "---:|" * (len(PARTS) + 1),
    ]
    for name, row in (("alone", alone), (f"in a pack of {runs}", packed)):
        lines.append(f"| {name} | " + " | ".join(f"{row[p]:.1f}" for p in PARTS) + f" | {row['total']:.1f} |")
    lines += [
        "",
        f"Besides its steps, a run of {STEPS} steps spends {fixed['evaluations']:.2f} s on its "
        f"{fixed['evaluation count']} evaluations (fp32, the whole validation split) and "
        f"{fixed['end-of-run measurements']:.2f} s on its end-of-run measurements, alone or packed "
        f"alike (the whole run alone: {fixed['whole run']:.1f} s).",
        "",
        f"- The pack's step: {alone['total'] / packed['total']:.2f}× a step alone per run.",
        f"- {runs} runs of {STEPS} steps, steps and the rest: one after another "
        f"{runs * per_run(alone['total']):.0f} s; packed {runs * per_run(packed['total']):.0f} s "
        f"({per_run(alone['total']) / per_run(packed['total']):.2f}×).",
        f"- The bound: a fused step that cost only its matrix products and its masks "
        f"({floor:.1f} ms per run) would take {runs * per_run(floor):.0f} s: "
        f"{per_run(alone['total']) / per_run(floor):.2f}× sooner than one after another, its "
        f"steps alone {alone['total'] / floor:.2f}×.",
    ]
    bound = per_run(alone["total"]) / per_run(floor)
    if bound < 2:
        lines.append(
            f"- So the target of issue 23 on a CPU (all finished 2× sooner) lies beyond what a pack can "
            f"give here. What holds it is the work each run keeps so that its numbers are its own: "
            f"its dropout masks, drawn from its own random state in its own shapes as alone "
            f"({100 * alone['dropout masks'] / alone['total']:.0f} % of a step alone), its share of "
            f"the matrix products, and its evaluations and measurements "
            f"({100 * extra / per_run(alone['total']):.0f} % of a run alone)."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    training.train(spec(0, 2), lambda points, evals: True)  # the process's one-time warm-up
    alone, packed = steps_side_by_side(args.runs, rounds=5)
    print("alone", alone, "packed", packed, flush=True)
    fixed = besides_steps()
    print("besides", fixed, flush=True)
    text = section(args.runs, alone, packed, fixed)
    print(text)
    if args.write:
        write_section(text, HEADING)


if __name__ == "__main__":
    main()
