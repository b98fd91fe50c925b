"""A class trains at once: runs in packs against the same runs one after another.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/packs.py [--runs 30] [--steps 100] [--sweep] [--write]

1. A class (through the embedded lab, as `make run` serves it: web server, SQLite, one real Celery
   worker): `--runs` LoRA runs (defaults, seeds 0, 1, …) posted at once to POST /api/runs, once
   with packs (PEFTLAB_PACKS=1, the default) and once without (PEFTLAB_PACKS=0: each run trains
   alone, in turn). Timed from the first POST: when each run's first point is stored (the lab's
   run list read every 0.25 s) and when the last run finished.
2. `--sweep`: P23's default rank sweep (simulations/experiments.py: every default rank on every
   default training-set size, 60 steps) in the engine alone (no web server or worker): one pack
   of every lane against the lanes trained one after another.

Both cases run in one invocation, one after the other, on the same machine; the ratio is taken
between them. The section "## Packs: a class trains at once" of docs/performance.md is written
with --write.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.report import cpu_name, write_section  # noqa: E402
from tests.support.labstack import Lab

HEADING = "## Packs: a class trains at once"


def class_run(packs: bool, runs: int, steps: int) -> dict:
    """Post `runs` LoRA runs at once to a fresh embedded lab; when each got its first point and
    when the last finished (seconds from the first POST)."""
    with tempfile.TemporaryDirectory() as folder:
        lab = Lab(
            Path(folder),
            PEFTLAB_PACKS="1" if packs else "0",
            PEFTLAB_PUBLIC_MAX_CONCURRENT="0",
            PEFTLAB_PUBLIC_DAILY_RUNS="0",
            PEFTLAB_PUBLIC_MAX_RUN_MINUTES="0",
        )
        try:
            lab.manage("migrate", "--noinput")
            lab.start("all")
            # A warm-up run: the worker reads the base model and imports peft once, as a lab
            # that has served one run has done.
            lab.wait_for(lab.create_run(steps=2)["id"], timeout=300)
            loads = [os.getloadavg()[0]]
            started = time.monotonic()
            ids = []
            for seed in range(runs):
                body = {"method": "lora", "task": "sentiment", "steps": steps, "seed": seed, "params": {}}
                response = lab.post("/api/runs", body)
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
            posted = time.monotonic() - started
            first: dict[int, float] = {}
            while True:
                listed = {r["id"]: r for r in lab.client.get("/api/runs?limit=500").json() if r["id"] in ids}
                now = time.monotonic() - started
                loads.append(os.getloadavg()[0])
                for run_id, run in listed.items():
                    if run["steps_done"] >= 1 and run_id not in first:
                        first[run_id] = now
                if all(r["status"] not in ("queued", "running") for r in listed.values()):
                    break
                time.sleep(0.25)
            finals = [lab.run(run_id) for run_id in ids]
        finally:
            lab.stop_all()
    assert all(r["status"] == "succeeded" for r in finals), [(r["id"], r["status"], r["error"]) for r in finals]
    return {
        "posted": posted,
        "first_points": sorted(first.values()),
        "finished": now,
        "accuracy": [r["metrics"]["val_accuracy"] for r in finals],
        "largest_pack": max((r["metrics"].get("pack") or {}).get("largest", 1) for r in finals),
        "load": sum(loads) / len(loads),
    }


def sweep() -> dict:
    """P23's default rank sweep in the engine: one pack of every lane, then each lane alone."""
    from simulations import experiments
    from workers import datasets, methods, runpack, training

    sizes = experiments.default_train_sizes(datasets.load_task("sentiment").train_size)
    lanes = experiments.rank_sweep(list(experiments.DEFAULT_RANKS), sizes)
    specs = [
        methods.validate_run("lora", "sentiment", experiments.DEFAULT_STEPS, 0, {**lane.params, "eval_every": 0})
        for lane in lanes
    ]
    training.train(specs[0], lambda points, evals: True)  # the process's one-time warm-up
    started = time.monotonic()
    runpack.train_packed([training.Lane(spec, lambda points, evals: True) for spec in specs])
    packed = time.monotonic() - started
    started = time.monotonic()
    for spec in specs:
        training.train(spec, lambda points, evals: True)
    alone = time.monotonic() - started
    # One run: alone, and as the only run of a pack (does the fused step lift a single run?).
    one = methods.validate_run("lora", "sentiment", experiments.DEFAULT_STEPS, 0, {"eval_every": 0})
    single = {}
    for name in ("alone", "pack of one", "alone again", "pack of one again"):
        started = time.monotonic()
        if name.startswith("alone"):
            training.train(one, lambda points, evals: True)
        else:
            runpack.train_packed([training.Lane(one, lambda points, evals: True)])
        single[name] = time.monotonic() - started
    return {
        "lanes": len(specs),
        "steps": experiments.DEFAULT_STEPS,
        "packed": packed,
        "alone": alone,
        "single_alone": min(single["alone"], single["alone again"]),
        "single_pack": min(single["pack of one"], single["pack of one again"]),
    }


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def section(runs: int, steps: int, with_packs: dict, alone: dict, swept: dict | None) -> str:
    lines = [
        HEADING,
        "",
        f"`bench/packs.py`: {runs} LoRA runs (the defaults: rank 8 on query and value, batch 16, "
        f"{steps} steps, an evaluation every 25) posted at once to the embedded lab (one real "
        f"Celery worker, SQLite), with packs and without (PEFTLAB_PACKS=0: each run alone, in "
        f"turn), one after the other in one invocation. CPU: {cpu_name()}, {os.cpu_count()} "
        "cores. Seconds from the first POST; a first point is seen within the 0.25 s the run "
        "list is read at.",
        "",
        "| | posting took | first point: first run | median run | last run | all finished | "
        "largest pack | mean val acc | mean load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in (("packs", with_packs), ("one after another", alone)):
        firsts = r["first_points"]
        lines.append(
            f"| {name} | {r['posted']:.1f} | {firsts[0]:.1f} | {quantile(firsts, 0.5):.1f} | "
            f"{firsts[-1]:.1f} | {r['finished']:.1f} | {r['largest_pack']} | "
            f"{100 * sum(r['accuracy']) / len(r['accuracy']):.1f} % | {r['load']:.1f} |"
        )
    lines += [
        "",
        f"All finished {alone['finished'] / with_packs['finished']:.2f}× sooner with packs; the last "
        f"student's first point came after {with_packs['first_points'][-1]:.1f} s instead of "
        f"{alone['first_points'][-1]:.1f} s.",
    ]
    if swept:
        lines += [
            "",
            f"P23's default rank sweep ({swept['lanes']} LoRA lanes, {swept['steps']} steps, "
            "evaluated at the end), in the engine alone: one pack "
            f"{swept['packed']:.1f} s, one lane after another {swept['alone']:.1f} s "
            f"({swept['alone'] / swept['packed']:.2f}×). One such run alone "
            f"{swept['single_alone']:.1f} s, as the only run of a pack {swept['single_pack']:.1f} s "
            f"({swept['single_alone'] / swept['single_pack']:.2f}×; the better of two tries each).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with_packs = class_run(True, args.runs, args.steps)
    print("packs", with_packs, flush=True)
    alone = class_run(False, args.runs, args.steps)
    print("alone", alone, flush=True)
    swept = sweep() if args.sweep else None
    text = section(args.runs, args.steps, with_packs, alone, swept)
    print(text)
    if args.write:
        write_section(text, HEADING)


if __name__ == "__main__":
    main()
