"""Time to the first loss point, and streaming latency, on the training page in a real browser.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/stream_latency.py [--repeats 10] [--stream-steps 300] [--write]

Starts the embedded lab as `make run` does (`collectstatic`, then `manage.py lab all`: the ASGI
web server and one real Celery worker) in a temporary folder, at the lab's default SSE poll
interval (PEFTLAB_SSE_POLL_MS unset, unless --sse-poll-ms), and drives Debian's Chromium on /train/:

(a) time to first point: press Train, wait until the first loss point is drawn in the chart, then
    Cancel; `--repeats` times, after one throwaway run so that the worker has read the base model.
(b) streaming latency: one run of `--stream-steps` steps; for every point, the time from the
    worker writing it to the browser drawing it.

How the times are taken, all on this machine's wall clock (epoch ms):
- in the page, an init script wraps EventSource (a "point" event's arrival) and, once the page is
  ready, Plotly.extendTraces (a step drawn = the promise of the extendTraces call that added it
  to the loss trace resolved; the pixels follow at the next frame, also recorded). Page times are
  performance.timeOrigin + performance.now(); their offset from Python's time.time() is measured
  each time (a round trip bounds it) and removed.
- the write time of a point is not stored (Point has only `elapsed`, seconds since the training
  loop began, and that loop starts after run.started_at by the time to build the model). But the
  worker writes each batch of points in one transaction that also sets run.steps_done and
  run.heartbeat_at = now(): a thread of this script reads those two from the lab's SQLite file
  every 20 ms, and each new steps_done gives the write time (heartbeat_at) of the steps since
  the last one. (The worker's heartbeat thread also sets heartbeat_at every 5 s; if it lands
  between a write and our read, that batch's write time is late by less than 20 ms.)
"""

import argparse
import os
import re
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench.report import PERFORMANCE, browser_machine, p95, write_section  # noqa: E402
from tests.support.browsing import CHROMIUM_ARGS
from tests.support.labstack import FINISHED, Lab

HEADING = "## Time to first point and streaming latency"

# Runs in the page before its own scripts: the arrival time of every SSE "point" event.
PAGE_HOOKS = """
window.__bench = { sse: [], drawn: [], frame: [], submit: null, post: null };
const wall = () => performance.timeOrigin + performance.now();
// When the POST that creates the run is answered (its response's headers in). The page also GETs
// /api/runs (its list of runs) around it: resource timings cannot tell the two apart.
const nativeFetch = window.fetch;
window.fetch = function (input, init) {
  const answer = nativeFetch.apply(this, arguments);
  const method = (init && init.method) || (input instanceof Request ? input.method : "GET");
  const url = new URL(input instanceof Request ? input.url : input, location.href);
  if (method.toUpperCase() === "POST" && url.pathname === "/api/runs") {
    answer.then(() => { window.__bench.post = wall(); }, () => {});
  }
  return answer;
};
const NativeEventSource = window.EventSource;
window.EventSource = class extends NativeEventSource {
  constructor(...args) {
    super(...args);
    // Added before train.js adds its own listener, so it runs first: the arrival, not the draw.
    this.addEventListener("point", (e) => {
      const p = JSON.parse(e.data);
      window.__bench.sse.push([p.step, wall(), p.elapsed]);
    });
  }
};
document.addEventListener("submit", () => { window.__bench.submit = wall(); }, true);
"""

# Once Plotly is loaded: a loss point is drawn when the extendTraces call that added it is done.
DRAW_HOOK = """() => {
  const wall = () => performance.timeOrigin + performance.now();
  const extend = Plotly.extendTraces;
  Plotly.extendTraces = function (gd, update, indices, ...rest) {
    const result = extend.call(this, gd, update, indices, ...rest);
    const i = indices.indexOf(0);
    if (gd && gd.id === "loss-chart" && i >= 0) {
      const steps = Array.from(update.x[i]);
      Promise.resolve(result).then(() => {
        const t = wall();
        for (const s of steps) window.__bench.drawn.push([s, t]);
        requestAnimationFrame(() => { const f = wall(); for (const s of steps) window.__bench.frame.push([s, f]); });
      });
    }
    return result;
  };
}"""


# --- the machine and the numbers --------------------------------------------------------------
def stats(values) -> str:
    """'median / p95' in ms, or a dash."""
    values = [v for v in values if v is not None]
    return f"{statistics.median(values):.0f} / {p95(values):.0f}" if values else "—"


def epoch(text: str | None) -> float | None:
    """A DateTimeField as SQLite holds it (UTC, no offset) -> epoch ms."""
    if not text:
        return None
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000


# --- the lab's side ---------------------------------------------------------------------------
class WriteWatcher(threading.Thread):
    """Reads the lab's runs table every `interval` seconds (read-only; WAL lets it read while the
    worker writes). For each run: when it was seen running, its claim time, its worker process,
    and every batch written as (last step, heartbeat_at = write time, time we saw it)."""

    def __init__(self, database: Path, interval: float = 0.02):
        super().__init__(daemon=True)
        self.database, self.interval = database, interval
        self.runs: dict[int, dict] = {}
        self.stopping = threading.Event()

    def run(self):
        conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5)
        while not self.stopping.wait(self.interval):
            seen = time.time() * 1000
            rows = conn.execute(
                "SELECT id, status, steps_done, heartbeat_at, started_at, worker_pid "
                "FROM simulations_run WHERE status != 'queued'"
            ).fetchall()
            for run_id, status, steps_done, heartbeat, started, pid in rows:
                run = self.runs.setdefault(run_id, {"batches": [], "seen_running": None})
                run.update(status=status, started_at=epoch(started), worker_pid=pid)
                if status == "running" and run["seen_running"] is None:
                    run["seen_running"] = seen
                last = run["batches"][-1][0] if run["batches"] else 0
                if steps_done > last:
                    run["batches"].append((steps_done, epoch(heartbeat), seen))
        conn.close()

    def write_times(self, run_id: int) -> dict[int, float]:
        """step -> the time the worker wrote it (epoch ms)."""
        out, first = {}, 1
        for last, written, _seen in self.runs[run_id]["batches"]:
            for step in range(first, last + 1):
                out[step] = written
            first = last + 1
        return out


def start_lab(folder: Path, sse_poll_ms: int | None) -> Lab:
    lab = Lab(folder)
    # The test labs poll every 100 ms; measure the lab's own default unless asked otherwise.
    lab.env.pop("PEFTLAB_SSE_POLL_MS", None)
    if sse_poll_ms is not None:
        lab.env["PEFTLAB_SSE_POLL_MS"] = str(sse_poll_ms)
    lab.manage("migrate", "--noinput")
    lab.manage("collectstatic", "--noinput", "--verbosity", "0")  # as `make run` does
    lab.start("all")
    return lab


# --- the page's side --------------------------------------------------------------------------
def open_train_page(context, steps: int | None = None):
    page = context.new_page()
    page.add_init_script(PAGE_HOOKS)
    page.goto("/train/")
    page.wait_for_selector('#train-root[data-ready="1"]', state="attached", timeout=60_000)
    page.evaluate(DRAW_HOOK)
    if steps is not None:
        page.fill("#f-steps", str(steps))
    return page


def clock_offset(page) -> float:
    """Page clock minus time.time(), in ms (the round trip bounds the error)."""
    best = None
    for _ in range(5):
        before = time.time() * 1000
        page_now = page.evaluate("() => performance.timeOrigin + performance.now()")
        after = time.time() * 1000
        if best is None or after - before < best[0]:
            best = (after - before, page_now - (before + after) / 2)
    return best[1]


def run_id_of(page) -> int:
    page.wait_for_url(re.compile(r"[?&]run=\d+"), timeout=30_000)
    return int(re.search(r"[?&]run=(\d+)", page.url).group(1))


def wait_finished(page, timeout_ms: int) -> str:
    page.wait_for_function(
        f"() => {list(FINISHED)}.includes(document.getElementById('train-root').dataset.runStatus)",
        timeout=timeout_ms,
        polling=200,
    )
    return page.evaluate("() => document.getElementById('train-root').dataset.runStatus")


def first_point(context, watcher: WriteWatcher) -> dict:
    """Press Train; time each stage until the first point is drawn; cancel the run."""
    page = open_train_page(context)
    offset = clock_offset(page)
    page.click("#train-button")
    page.wait_for_function("() => window.__bench.drawn.length > 0", timeout=300_000, polling="raf")
    run_id = run_id_of(page)
    bench = page.evaluate("() => window.__bench")
    # Cancel (a run that already ended has its button disabled).
    page.evaluate("() => { const b = document.getElementById('cancel-button'); if (!b.disabled) b.click(); }")
    status = wait_finished(page, 120_000)
    page.close()
    time.sleep(0.1)  # the watcher's last look at the run
    run = watcher.runs[run_id]
    t0 = bench["submit"] - offset  # all on time.time()'s clock from here
    first_batch, written, _seen = run["batches"][0]
    # Point.elapsed counts from the start of the training loop: back from the first write.
    elapsed = {step: e for step, _t, e in bench["sse"]}
    loop_started = written - 1000 * elapsed[first_batch]
    return {
        "run": run_id,
        "status": status,
        "worker_pid": run["worker_pid"],
        "post": bench["post"] - offset - t0 if bench["post"] else None,
        "claimed": run["started_at"] - t0,
        "loop": loop_started - t0,
        "step1": loop_started + 1000 * elapsed[1] - t0,
        "written": written - t0,
        "first_batch": first_batch,
        "sse": bench["sse"][0][1] - offset - t0,
        "drawn": bench["drawn"][0][1] - offset - t0,
        "frame": bench["frame"][0][1] - offset - t0 if bench["frame"] else None,
        "offset": offset,
    }


def stream(context, watcher: WriteWatcher, steps: int) -> dict:
    """One run of `steps` steps: per point, write -> SSE arrival -> drawn -> next frame."""
    page = open_train_page(context, steps)
    offset = clock_offset(page)
    page.click("#train-button")
    run_id = run_id_of(page)
    status = wait_finished(page, 3_600_000)
    page.wait_for_timeout(300)  # the last extendTraces and its frame
    bench = page.evaluate("() => window.__bench")
    page.close()
    time.sleep(0.1)
    written = watcher.write_times(run_id)
    sse = {s: t - offset for s, t, _e in bench["sse"]}
    drawn = {s: t - offset for s, t in bench["drawn"]}
    frame = {s: t - offset for s, t in bench["frame"]}
    steps_seen = sorted(set(written) & set(drawn))
    late = [s for s in steps_seen if written[s] > sse.get(s, float("inf"))]  # a batch we missed
    batches = watcher.runs[run_id]["batches"]
    for s in late:
        print(
            f"step {s}: written {written[s]:.0f} after its arrival {sse[s]:.0f}; batches "
            f"{[b for b in batches if abs(b[0] - s) <= 2]}",
            file=sys.stderr,
        )
    return {
        "run": run_id,
        "status": status,
        "steps": len(steps_seen),
        "batches": len(batches),
        "write_to_sse": [sse[s] - written[s] for s in steps_seen if s in sse],
        "write_to_drawn": [drawn[s] - written[s] for s in steps_seen],
        "write_to_frame": [frame[s] - written[s] for s in steps_seen if s in frame],
        "sse_to_drawn": [drawn[s] - sse[s] for s in steps_seen if s in sse],
        "points_per_batch": statistics.mean(b[0] - a[0] for a, b in zip([(0,)] + batches, batches)),
        "seen_after_write": [seen - w for _last, w, seen in batches],
        "inconsistent": len(late),
        # How long a step takes in this run (from Point.elapsed), to compare with a run's first step.
        "step_ms": [1000 * (b[2] - a[2]) for a, b in zip(bench["sse"], bench["sse"][1:]) if b[0] == a[0] + 1],
    }


# --- the report -------------------------------------------------------------------------------
def streaming_settings(args) -> tuple[str, str]:
    """How the lab measured streams its points, in words, read from its source: the event
    stream's database poll (and the worker's wake-up signal, where the lab has one) and the
    worker's batching of points."""
    settings = (ROOT / "peftlab" / "settings.py").read_text()
    default = re.search(r'"PEFTLAB_SSE_POLL_MS", (\d+)', settings)
    poll = (
        f"SSE poll interval PEFTLAB_SSE_POLL_MS = {args.sse_poll_ms} ms (set with --sse-poll-ms)"
        if args.sse_poll_ms
        else f"SSE poll interval PEFTLAB_SSE_POLL_MS = {default.group(1) if default else '?'} ms (the lab's default)"
    )
    notify = ROOT / "simulations" / "notify.py"
    if notify.exists():
        every = re.search(r"^FILE_POLL_SECONDS = ([\d.]+)", notify.read_text(), re.M)
        poll += (
            "; the worker's signal after each commit (peftlab/runs/notify.py; in the embedded lab a "
            f"file per run whose size the web process checks every {every.group(1) if every else '?'} s) "
            "wakes a stream before its poll"
        )
    engine = (ROOT / "workers" / "training.py").read_text()
    seconds = re.search(r"^FLUSH_SECONDS = ([\d.]+)", engine, re.M)
    flush = (
        f"workers/training.py writes points at least every FLUSH_SECONDS = "
        f"{seconds.group(1) if seconds else '?'} s and at each evaluation"
        + (", the first step's at once" if "step == 1" in engine else "")
    )
    return poll, flush


def section(args, desc: str, load: tuple[float, float], firsts: list[dict], streamed: dict | None) -> str:
    poll, flush = streaming_settings(args)
    pids = [f["worker_pid"] for f in firsts]
    cold = [i for i, f in enumerate(firsts) if f["fresh_process"]]
    warm = [f for f in firsts if not f["fresh_process"]] or firsts
    lines = [
        HEADING,
        "",
        f"`bench/stream_latency.py`: the training page /train/ in Chromium against the embedded lab served "
        f"as `make run` serves it (collectstatic, `manage.py lab all`, DEBUG off), LoRA with the page's "
        f"defaults, {poll}. {desc}. Load average {load[0]:.1f} before, {load[1]:.1f} after.",
        "",
        "Clocks: page times are `performance.timeOrigin + performance.now()`, corrected by their measured "
        "offset from the script's `time.time()`; a point's write time is `run.heartbeat_at`, which the "
        "worker sets in the same transaction as each batch of points (the script reads it from the "
        "database every 20 ms); `Point.elapsed` cannot serve: it counts from the start of the training "
        "loop, which begins after `started_at` by the time to build the model.",
        "",
        f"Time to first point: pressing Train to the first loss point drawn, warm worker (one throwaway run "
        f"before), {len(firsts)} runs, each cancelled once its first point is drawn. Milliseconds from the "
        f"Train button's submit event, median / p95 over the {len(warm)} runs in an already warm worker "
        f"process:",
        "",
        "| stage | median / p95 (ms) |",
        "|---|---:|",
        f"| POST /api/runs answered | {stats(f['post'] for f in warm)} |",
        f"| run claimed by the worker (`started_at`, status running) | {stats(f['claimed'] for f in warm)} |",
        f"| training loop started (model built; `heartbeat_at` − `elapsed`) | {stats(f['loop'] for f in warm)} |",
        f"| first step done (loop start + `elapsed` of step 1) | {stats(f['step1'] for f in warm)} |",
        f"| first batch of points written (`heartbeat_at`) | {stats(f['written'] for f in warm)} |",
        f"| first point arrived over SSE | {stats(f['sse'] for f in warm)} |",
        f"| **first point drawn** (extendTraces done; target < 1000) | **{stats(f['drawn'] for f in warm)}** |",
        f"| … next animation frame | {stats(f['frame'] for f in warm)} |",
        "",
        f"Points in the first batch (median): {statistics.median(f['first_batch'] for f in firsts):.0f}; "
        f"the first step took {stats(f['step1'] - f['loop'] for f in warm)} ms (median / p95)"
        + (f", a step of the streamed run below {stats(streamed['step_ms'])} ms. " if streamed else ". ")
        + f"Worker processes: {len(set(pids))} for {len(firsts)} runs."
        + (
            f" Runs {', '.join(str(i + 1) for i in cold)} landed in a fresh pool process (the worker replaces "
            f"its child every PEFTLAB_RUNS_PER_CHILD tasks), which reads the base model again: first point "
            f"drawn after {', '.join(str(round(firsts[i]['drawn'])) for i in cold)} ms; left out of the "
            f"table above."
            if cold
            else ""
        ),
    ]
    if streamed:
        s = streamed
        lines += [
            "",
            f"Streaming latency: one run of {args.stream_steps} steps ({s['steps']} points drawn, "
            f"{s['batches']} batches written, {s['points_per_batch']:.1f} points per batch). Per point, "
            f"milliseconds, median / p95:",
            "",
            "| from → to | median / p95 (ms) |",
            "|---|---:|",
            f"| written → arrived over SSE | {stats(s['write_to_sse'])} |",
            f"| arrived → drawn | {stats(s['sse_to_drawn'])} |",
            f"| **written → drawn** (target p95 < 100) | **{stats(s['write_to_drawn'])}** |",
            f"| written → next animation frame | {stats(s['write_to_frame'])} |",
            "",
            f"The watcher saw each write {stats(s['seen_after_write'])} ms (median / p95) after its "
            f"`heartbeat_at`; points whose write time came after their arrival (a missed batch): "
            f"{s['inconsistent']}. Before it is written, a point also waits in the worker for its batch "
            f"({flush}).",
        ]
    return "\n".join(lines) + "\n"


def main():
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="runs timed to their first point")
    parser.add_argument("--stream-steps", type=int, default=300, help="steps of the streamed run (0: skip it)")
    parser.add_argument("--sse-poll-ms", type=int, default=None, help="PEFTLAB_SSE_POLL_MS (default: the lab's)")
    parser.add_argument("--write", action="store_true", help=f"put the section into {PERFORMANCE.relative_to(ROOT)}")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        lab = start_lab(Path(folder), args.sse_poll_ms)
        watcher = WriteWatcher(Path(folder) / "peftlab.sqlite3")
        watcher.start()
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=lab.base_url, viewport={"width": 1280, "height": 900})
            load = [os.getloadavg()[0]]
            warmup = first_point(context, watcher)
            print(
                f"throwaway run {warmup['run']}: first point drawn after {warmup['drawn']:.0f} ms "
                "(the worker read the base model)",
                file=sys.stderr,
            )
            firsts = []
            for _ in range(args.repeats):
                f = first_point(context, watcher)
                print(
                    f"run {f['run']} (pid {f['worker_pid']}): POST {f['post']:.0f}, claimed {f['claimed']:.0f}, "
                    f"loop {f['loop']:.0f}, step 1 {f['step1']:.0f}, written {f['written']:.0f}, "
                    f"SSE {f['sse']:.0f}, drawn {f['drawn']:.0f} ms (clock offset {f['offset']:.1f} ms)",
                    file=sys.stderr,
                )
                firsts.append(f)
            # A run in another pool process than the one before it paid for reading the model.
            previous = [warmup["worker_pid"]] + [f["worker_pid"] for f in firsts]
            for f, pid in zip(firsts, previous):
                f["fresh_process"] = f["worker_pid"] != pid
            streamed = stream(context, watcher, args.stream_steps) if args.stream_steps else None
            if streamed:
                print(
                    f"stream run {streamed['run']}: {streamed['status']}, written→drawn "
                    f"{stats(streamed['write_to_drawn'])} ms",
                    file=sys.stderr,
                )
            load.append(os.getloadavg()[0])
            desc = browser_machine(browser)
        finally:
            browser.close()
            watcher.stopping.set()
            lab.stop_all()
    text = section(args, desc, tuple(load), firsts, streamed)
    print(text)
    if args.write:
        write_section(text, HEADING)


if __name__ == "__main__":
    main()
