"""Every method trained the same way in one process: speed, memory, size, accuracy, latency.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/methods.py [--steps 60] [--task sentiment] [--threads N]

Prints a Markdown table; speeds are also given as a ratio to LoRA, the baseline of the run, so
that the table holds on any machine. The device is named in the heading (CUDA when torch sees
one). Figures go to docs/measurements.md.
"""

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from workers import classifier, training  # noqa: E402
from workers.methods import METHODS, validate_run  # noqa: E402

BASELINE = "lora"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--task", default="sentiment")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--methods", default=",".join([BASELINE] + [m for m in METHODS if m != BASELINE]))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = training.pick_device()
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    )
    classifier.load_base()  # read once, before any timing
    rows = []
    for method in args.methods.split(","):
        spec = validate_run(method, args.task, args.steps, 0, {"eval_every": 0})
        with tempfile.TemporaryDirectory() as folder:
            m = training.train(spec, lambda points, evals: True, save_dir=Path(folder) / "run", device=device)
        rows.append((method, m))
        print(f"{method}: {m['steps_per_second']} steps/s", file=sys.stderr)
    base = dict(rows)[BASELINE]["steps_per_second"] if BASELINE in dict(rows) else None
    print(f"### {args.steps} steps on `{args.task}`, batch 16, each method's default settings — {name}\n")
    print(
        "| method | trainable | steps/s | × LoRA | tokens/s | peak memory (MB) | params / grads / optimizer (MB) | saved (KB) | val acc | latency (ms, batch 32) | merged (ms) | merge max diff |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    mb = 1024 * 1024
    for method, m in rows:
        b = m["memory_breakdown"]
        print(
            f"| {method} | {m['trainable_params']:,} ({m['trainable_percent']:.2f} %) | {m['steps_per_second']:.2f} | "
            f"{m['steps_per_second'] / base:.2f} | {m['tokens_per_second']:,.0f} | {m['peak_memory_bytes'] / mb:.0f} | "
            f"{b['params'] / mb:.0f} / {b['grads'] / mb:.1f} / {b['optimizer_state'] / mb:.1f} | "
            f"{m['adapter_bytes'] / 1024:,.0f} | {100 * m['val_accuracy']:.1f} % | {m['latency_ms']:.1f} | "
            f"{m.get('latency_merged_ms', float('nan')):.1f} | {m.get('merge_max_abs_diff', float('nan')):.1e} |"
        )
    print(f"\npeak memory: {rows[0][1]['peak_memory_source']}")


if __name__ == "__main__":
    main()
