"""Wall time of a default four-method race, from POST /api/races to the last lane's finish.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/race.py [--steps N] [--races 2] [--no-write]

Starts the embedded lab (`manage.py lab all`: SQLite, filesystem broker, one real Celery worker)
in a temporary folder, runs the race twice (the first in a fresh worker that still has to read
the base model), and writes a "Race" section into docs/measurements.md.
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

from bench.report import cpu_name, cpu_seconds, write_section  # noqa: E402
from tests.support.labstack import Lab

MEASUREMENTS = ROOT / "docs" / "measurements.md"


def run_race(lab: Lab, body: dict) -> tuple[float, dict]:
    started = time.monotonic()
    response = lab.post("/api/races", body)
    assert response.status_code == 201, response.text
    race_id = response.json()["id"]
    loads = []
    while True:
        race = lab.client.get(f"/api/races/{race_id}").json()
        loads.append(os.getloadavg()[0])
        if race["status"] != "running":
            race["load"] = sum(loads) / len(loads)  # how busy the machine was during the race
            for run in race["runs"]:
                points = lab.client.get(f"/api/runs/{run['id']}").json()["points"]
                run["loss_drop"] = loss_drop([p["loss"] for p in sorted(points, key=lambda p: p["step"])])
            return time.monotonic() - started, race
        time.sleep(0.1)


def loss_drop(losses: list[float], window: int = 5) -> float:
    """How far the smoothed training loss fell: the mean of the first `window` steps' losses minus
    the mean of the last `window` (issue 21's target: at least 0.2 for full fine-tuning, the
    adapter and LoRA in a default race)."""
    return sum(losses[:window]) / window - sum(losses[-window:]) / window


def section(rows, body, cores) -> str:
    mb = 1024 * 1024
    lines = [
        "## Race\n",
        f"`bench/race.py`: the race's defaults (task `{body['task'] or 'default'}`, "
        f"{rows[0][1]['steps']} steps, batch 16, each method at its defaults, validation "
        f"{'every ' + str(rows[0][1]['runs'][0]['params']['eval_every']) + ' steps'}), through "
        f"the embedded lab's real worker, timed from POST /api/races to the last lane's "
        f"finish. CPU: {cpu_name()}, {cores} cores. The CPU seconds are those of the lab's "
        f"processes (web server and worker) during the race: what the race costs, whatever "
        f"else runs on the machine; the load average says how busy the machine was.\n",
        "| race | wall time (s) | CPU seconds | mean load average | lanes |",
        "|---|---:|---:|---:|---|",
    ]
    for i, (wall, race) in enumerate(rows):
        what = "fresh worker (reads the base model)" if i == 0 else "warm worker"
        lines.append(
            f"| {i + 1}, {what} | {wall:.1f} | {race['cpu_seconds']:.0f} | {race['load']:.1f} | "
            f"{', '.join(r['method'] for r in race['runs'])} |"
        )
    lines += [
        "",
        "The last race, lane by lane:",
        "",
        "| lane | precision | training (s) | val acc | loss drop (first 5 − last 5 steps) | "
        "peak memory measured (MB) | predicted (MB) | trainable |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in rows[-1][1]["runs"]:
        m = run["metrics"]
        # The prediction in the precision the lane trained in (a run without one trained in fp32).
        trained_in = m.get("precision", "fp32")
        predicted = run["predictions"][trained_in]["peak_memory_bytes"]
        lines.append(
            f"| {run['method']} | {trained_in} | {m['train_seconds']:.1f} | "
            f"{100 * m['val_accuracy']:.1f} % | {run['loss_drop']:+.3f} | {m['peak_memory_bytes'] / mb:.0f} | "
            f"{predicted / mb:.0f} | {m['trainable_params']:,} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=None, help="the race's default when left out")
    parser.add_argument("--task", default=None)
    parser.add_argument("--races", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    body = {k: v for k, v in (("steps", args.steps), ("task", args.task)) if v is not None}
    with tempfile.TemporaryDirectory() as folder:
        lab = Lab(Path(folder))
        lab.manage("migrate", "--noinput")
        lab.start("all")
        try:
            rows = []
            lab_pid = lab.procs["all"].pid
            for _ in range(args.races):
                cpu = cpu_seconds(lab_pid)
                wall, race = run_race(lab, body)
                race["cpu_seconds"] = cpu_seconds(lab_pid) - cpu
                print(
                    f"race {race['id']}: {race['status']} in {wall:.1f} s, {race['cpu_seconds']:.0f} CPU s, "
                    + ", ".join(f"{r['method']} {r['metrics'].get('train_seconds')} s" for r in race["runs"]),
                    file=sys.stderr,
                )
                rows.append((wall, race))
        finally:
            lab.stop_all()
    body.setdefault("task", rows[0][1]["task"])
    text = section(rows, body, os.cpu_count())
    print(text)
    if not args.no_write:
        write_section(text, "## Race", MEASUREMENTS)


if __name__ == "__main__":
    main()
