"""A class-sized load test of the class topology on loopback: students queue runs and poll them
while viewers follow the runs' SSE streams; API latency, delivery of every point, and what the
web server and the worker cost (CPU, memory) and how many PostgreSQL connections the lab holds.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python bench/class_load.py \
        [--levels 1,10,60,200] [--students 30] [--duration 75] [--steps 20] [--write]

The lab runs as docker-compose.yml hosts a class, natively (as tests/topology/test_class_topology.py
does): `manage.py lab web` (gunicorn, uvicorn worker class, WEB_CONCURRENCY processes) and one
`manage.py lab worker` on the gpu queue (one run at a time), a fresh PostgreSQL database on
127.0.0.1:5432 that the lab reaches as a role of its own (not a superuser, as in the compose file:
97 of the default 100 connections; --db-connection-limit lowers that for this database alone), and
Redis database 9 (emptied first) as broker and rate-limit cache. The lab's logs are left in
/tmp/peftlab-class-load-logs.

Everyone is in a class: a teacher's class (made with `manage.py shell`), each student joins it
through /join/ with a fresh browser session. A student sees only their own runs, so a viewer is
another tab of the student whose run it follows (the same session cookie).

Each level, with V viewers and S students (the same S at every level: only V changes):
- at t=0 every student POSTs one run (all at once: a class pressing "Train" together), GETs the
  run list, then GETs their run every second (and the list every --list-every polls) until it
  has finished or the level's --duration is over; then they cancel what has not finished;
- viewer i follows the run of student i % S from the moment the POST answers, as EventSource
  does (reconnecting with Last-Event-ID after a dropped stream), until the final status event.
The worker trains one run at a time, so the queue drains at its own pace; the level ends when
every run has finished or been cancelled: at most --duration plus the cancellations. Every
viewer must then hold exactly once every point its run's current attempt has in the database
(all steps for a run that finished, the steps written so far for one cancelled at the end).

Point delivery lag: this script reads the point table (one connection of its own) when the worker
signals a commit (peftlab/runs/notify.py's Redis channel) and at least every 50 ms, and notes when
each point became visible; a point's lag is when a viewer received it minus that (the true lag,
from the commit, is ~1 ms longer; up to 50 ms where a signal was lost).
"""

import argparse
import asyncio
import importlib.metadata
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import redis
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench.report import cpu_name, cpu_seconds, descendants, write_section  # noqa: E402
from tests.support.labstack import FINISHED, Lab

DOC = ROOT / "docs" / "performance.md"
LOGS = Path(tempfile.gettempdir()) / "peftlab-class-load-logs"  # the last run's web and worker logs
REDIS_URL = "redis://127.0.0.1:6379/9"
NOTIFY_CHANNEL = "peftlab:runs"  # peftlab/runs/notify.py: the worker publishes a run's id after each commit
TARGET_P95 = 0.100  # seconds
ATTEMPT_STRIDE = 1_000_000  # peftlab/api/events.py: event id = (attempt - 1) * stride + step
API_KINDS = ("POST /api/runs", "GET /api/runs/<id>", "GET /api/runs")


# --- processes: CPU and memory from /proc ---------------------------------------------------------
def rss_mb(pid: int) -> tuple[float, int]:
    """Summed resident memory of a process tree (MB; pages shared between the processes count
    once per process) and its number of processes."""
    total, count = 0, 0
    for p in descendants(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        resident = re.search(r"VmRSS:\s+(\d+)", status)
        if resident is None:  # a zombie (a worker process exiting) holds no memory
            continue
        total += int(resident.group(1))
        count += 1
    return total / 1024, count


# --- what one level measures ---------------------------------------------------------------------
@dataclass
class Viewer:
    run_id: int | None = None
    first_byte: list[float] = field(default_factory=list)  # one per connection (seconds)
    points: list[tuple[tuple[int, int, int], float]] = field(default_factory=list)  # ((run, attempt, step), when)
    ended: bool = False  # got the final status event
    refused: int = 0  # non-200 answers to the stream's GET (EventSource gives up)
    drops: int = 0  # streams that broke or ended without a status (EventSource reconnects)


@dataclass
class Stats:
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failed: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)  # a few failures, to show

    def fail(self, kind: str, what: str) -> None:
        self.failed[kind] += 1
        if len(self.samples) < 8:
            self.samples.append(f"{kind}: {what}")


async def request(
    stats: Stats, client: httpx.AsyncClient, kind: str, method: str, url: str, ok=(200,), **kwargs
) -> httpx.Response | None:
    """One timed API request; a transport error or an answer outside `ok` counts as failed."""
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        stats.fail(kind, f"{type(exc).__name__} {exc}")
        return None
    stats.latency[kind].append(time.perf_counter() - started)
    if response.status_code not in ok:
        stats.fail(kind, f"{response.status_code} {response.text[:200]}")
    return response


def csrf(client: httpx.AsyncClient) -> dict:
    return {"X-CSRFToken": client.cookies["csrftoken"]}


async def join(client: httpx.AsyncClient, code: str, nickname: str) -> None:
    """A student joins the class in this browser (its session now is the student's)."""
    await client.get("/join/")  # the form page sets the CSRF cookie
    answer = await client.post(
        "/join/", data={"csrfmiddlewaretoken": client.cookies["csrftoken"], "code": code, "nickname": nickname}
    )
    if answer.status_code != 302:
        raise RuntimeError(f"{nickname} could not join: {answer.status_code} {answer.text[:300]}")


async def student(client, stats: Stats, created: asyncio.Future, deadline: float, body: dict, list_every: int) -> None:
    """Queue one run, then poll it every second until it ends or the level is over (then cancel)."""
    answer = await request(
        stats, client, "POST /api/runs", "POST", "/api/runs", ok=(201,), json=body, headers=csrf(client)
    )
    if answer is None or answer.status_code != 201:
        created.set_result(None)
        return
    run_id = answer.json()["id"]
    created.set_result(run_id)
    await request(stats, client, "GET /api/runs", "GET", "/api/runs")
    tick = time.monotonic() + random.random()  # students do not poll in lockstep
    polls = 0
    while tick < deadline:
        await asyncio.sleep(max(0.0, tick - time.monotonic()))
        tick += 1.0  # a setInterval: every second, however long the answer took
        run = await request(stats, client, "GET /api/runs/<id>", "GET", f"/api/runs/{run_id}")
        if run is not None and run.status_code == 200 and run.json()["status"] in FINISHED:
            return
        polls += 1
        if polls % list_every == 0:
            await request(stats, client, "GET /api/runs", "GET", "/api/runs")
    await request(
        stats, client, "POST cancel", "POST", f"/api/runs/{run_id}/cancel", ok=(202, 409), json={}, headers=csrf(client)
    )


async def viewer(client, created: asyncio.Future, seen: Viewer) -> None:
    """Follow a run's events as a browser's EventSource does, until its final status."""
    seen.run_id = await created
    if seen.run_id is None:
        return
    last_id, retry = None, 1.0
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = str(last_id)
        started = time.perf_counter()
        try:
            async with client.stream(
                "GET", f"/api/runs/{seen.run_id}/events", headers=headers, timeout=httpx.Timeout(30, read=60)
            ) as response:
                if response.status_code != 200:
                    seen.refused += 1
                    return
                first, event, event_id = True, "message", None
                async for line in response.aiter_lines():
                    now = time.monotonic()
                    if first:
                        seen.first_byte.append(time.perf_counter() - started)
                        first = False
                    if line.startswith("retry:"):
                        retry = int(line[6:]) / 1000
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("id:"):
                        event_id = int(line[3:])
                    elif line == "":
                        if event == "point":
                            attempt, step = divmod(event_id, ATTEMPT_STRIDE)
                            seen.points.append(((seen.run_id, attempt + 1, step), now))
                        elif event == "status":
                            seen.ended = True
                            return
                        if event_id is not None:
                            last_id = event_id
                        event, event_id = "message", None
        except httpx.HTTPError:
            pass
        seen.drops += 1
        await asyncio.sleep(retry)


class Observer:
    """The bench's own view of the database (one connection, outside any limit): when each point
    became visible, and each second the web and worker memory and the database's connections.

    It reads the new points whenever the worker says a run changed (peftlab/runs/notify.py's Redis
    channel, published after each commit: ~1 ms after it) and at least every 50 ms."""

    def __init__(self, dsn: str, web_pid: int, worker_pid: int):
        self.dsn, self.web_pid, self.worker_pid = dsn, web_pid, worker_pid
        self.visible: dict[tuple[int, int, int], float] = {}
        self.peak = {"web": (0.0, 0), "worker": (0.0, 0), "connections": 0}
        self.loads: list[float] = []
        self.last_point = 0

    async def run(self, stop: asyncio.Event) -> None:
        signals = aioredis.Redis.from_url(REDIS_URL).pubsub(ignore_subscribe_messages=True)
        await signals.subscribe(NOTIFY_CHANNEL)
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            row = await (await conn.execute("SELECT coalesce(max(id), 0) FROM simulations_point")).fetchone()
            self.last_point = row[0]
            next_sample = 0.0
            while not stop.is_set():
                await signals.get_message(timeout=0.05)
                now = time.monotonic()  # what this read returns was committed by now
                rows = await (
                    await conn.execute(
                        "SELECT id, run_id, attempt, step FROM simulations_point WHERE id > %s ORDER BY id",
                        [self.last_point],
                    )
                ).fetchall()
                for pk, run_id, attempt, step in rows:
                    self.visible.setdefault((run_id, attempt, step), now)
                    self.last_point = pk
                if now >= next_sample:
                    next_sample = now + 1.0
                    await self.sample(conn)
        await signals.aclose()

    async def sample(self, conn) -> None:
        for name, pid in (("web", self.web_pid), ("worker", self.worker_pid)):
            self.peak[name] = max(self.peak[name], rss_mb(pid))
        row = await (
            await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).fetchone()
        self.peak["connections"] = max(self.peak["connections"], row[0])
        self.loads.append(os.getloadavg()[0])


async def sessions_opened(dsn: str) -> int:
    """Connections ever opened to the database (PostgreSQL 14+ counts them)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        row = await (
            await conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        ).fetchone()
        return row[0]


async def stored_points(dsn: str, run_ids) -> dict[int, tuple[str, set]]:
    """Each run's status and the steps of its current attempt in the database: what its viewers
    must have received."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        runs = await (
            await conn.execute(
                "SELECT id, status, greatest(attempts, 1) FROM simulations_run WHERE id = ANY(%s)", [list(run_ids)]
            )
        ).fetchall()
        out = {}
        for run_id, status, attempt in runs:
            steps = await (
                await conn.execute(
                    "SELECT step FROM simulations_point WHERE run_id = %s AND attempt = %s", [run_id, attempt]
                )
            ).fetchall()
            out[run_id] = (status, {(run_id, attempt, s) for (s,) in steps})
        return out


async def wait_until_idle(dsn: str, timeout=120) -> int:
    """Until no run is queued or running (the level's cancellations have landed); how many still
    are after `timeout` s (a lab that lost its worker or its database)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        deadline = time.monotonic() + timeout
        while True:
            row = await (
                await conn.execute("SELECT count(*) FROM simulations_run WHERE status IN ('queued', 'running')")
            ).fetchone()
            if row[0] == 0 or time.monotonic() > deadline:
                return row[0]
            await asyncio.sleep(0.5)


def percentiles(values: list[float]) -> tuple[float, float, float] | None:
    if not values:
        return None
    values = sorted(values)
    at = lambda q: values[min(len(values) - 1, max(0, int(q * len(values) + 0.999999) - 1))]  # noqa: E731
    return at(0.5), at(0.95), values[-1]


def log_errors(path: Path, offset: int) -> Counter:
    """Exception lines the lab's process logged since `offset` ("OperationalError: ...")."""
    if not path.exists():
        return Counter()
    with path.open("rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    return Counter(m.group(0)[:160] for m in re.finditer(r"^[\w.]+(Error|Exception): .*$", text, re.M))


async def level(lab: Lab, dsn: str, code: str, viewers: int, args) -> dict:
    """One level: `viewers` viewers and args.students students for at most args.duration s."""
    web_pid, worker_pid = lab.procs["web"].pid, lab.procs["worker"].pid
    # One connection pool for every simulated browser (each keeps its own cookies); an unlimited
    # pool, so that every stream has its own connection as in a browser.
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=None, max_keepalive_connections=None))

    def new(cookies=None):
        return httpx.AsyncClient(
            base_url=lab.base_url,
            transport=transport,
            timeout=30,
            cookies=cookies,
        )

    students = [new() for _ in range(args.students)]
    gate = asyncio.Semaphore(8)

    async def joined(i, client):
        async with gate:
            await join(client, code, f"v{viewers}-s{i}")

    await asyncio.gather(*(joined(i, c) for i, c in enumerate(students)))
    tabs = [new(students[i % args.students].cookies) for i in range(viewers)]

    stats, seen = Stats(), [Viewer() for _ in range(viewers)]
    observer, stop = Observer(dsn, web_pid, worker_pid), asyncio.Event()
    watching = asyncio.create_task(observer.run(stop))
    await asyncio.sleep(0.2)  # the observer has read where the point table stands
    logs = {name: (lab.var_dir / f"{name}.log").stat().st_size for name in ("web", "worker")}
    sessions_before = await sessions_opened(dsn)
    cpu_before = {"web": cpu_seconds(web_pid), "worker": cpu_seconds(worker_pid)}
    client_before = resource.getrusage(resource.RUSAGE_SELF)

    started = time.monotonic()
    deadline = started + args.duration
    created = [asyncio.get_running_loop().create_future() for _ in students]

    def body(i):
        return {
            "method": "lora",
            "task": args.task,
            "steps": args.steps,
            "seed": i,
            "params": {"rank": 4},
        }

    working = [
        asyncio.create_task(student(c, stats, created[i], deadline, body(i), args.list_every))
        for i, c in enumerate(students)
    ]
    following = [asyncio.create_task(viewer(t, created[i % args.students], seen[i])) for i, t in enumerate(tabs)]
    await asyncio.gather(*working)
    # The cancellations end every stream within a poll or a report; a stream still open long
    # after counts as incomplete.
    _, late = await asyncio.wait(following, timeout=30) if following else (None, set())
    for task in late:
        task.cancel()
    wall = time.monotonic() - started

    client_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in (("web", web_pid), ("worker", worker_pid))}
    stop.set()
    await watching
    # Less the bench's own two: the observer's and the one that read `sessions_before`.
    sessions = await sessions_opened(dsn) - sessions_before - 2
    await transport.aclose()

    run_ids = {f.result() for f in created if f.result() is not None}
    stored = await stored_points(dsn, run_ids)
    complete, duplicates, missing, lags = 0, 0, 0, []
    for v in seen:
        if v.run_id is None:
            continue
        got = Counter(key for key, _ in v.points)
        expected = stored[v.run_id][1]
        duplicates += sum(n - 1 for n in got.values())
        missing += len(expected - set(got))
        if v.ended and set(got) == expected and all(n == 1 for n in got.values()):
            complete += 1
        lags += [when - observer.visible[key] for key, when in v.points if key in observer.visible]
    statuses = Counter(status for status, _ in stored.values())
    errors = log_errors(lab.var_dir / "web.log", logs["web"]) + log_errors(lab.var_dir / "worker.log", logs["worker"])
    stuck = await wait_until_idle(dsn)
    if stuck:  # the students' cancellations failed: cancel in the database, for the next level
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute(
                "UPDATE simulations_run SET status = 'cancelled', cancel_requested = true WHERE status = 'queued'"
            )
            await conn.execute("UPDATE simulations_run SET cancel_requested = true WHERE status = 'running'")
        await wait_until_idle(dsn)
    return {
        "viewers": viewers,
        "students": args.students,
        "wall": wall,
        "stats": stats,
        "seen": seen,
        "statuses": statuses,
        "complete": complete,
        "duplicates": duplicates,
        "missing": missing,
        "points": sum(len(p) for _, p in stored.values()),
        "lags": lags,
        "cpu": cpu,
        "client_cpu": (client_after.ru_utime + client_after.ru_stime)
        - (client_before.ru_utime + client_before.ru_stime),
        "peak": observer.peak,
        "load": sum(observer.loads) / max(1, len(observer.loads)),
        "sessions": sessions,
        "errors": errors,
        "stuck": stuck,
    }


# --- the report ------------------------------------------------------------------------------------
def ms(triple) -> str:
    return " / ".join(f"{x * 1000:.0f}" for x in triple) if triple else "–"


def report(rows: list[dict], args, machine: str) -> str:
    lines = [
        "## Class load\n",
        f"`bench/class_load.py`: the class topology (docker-compose.yml's commands and settings, natively): "
        f"`manage.py lab web` = gunicorn with {args.web_workers} uvicorn workers, one `lab worker` on the gpu "
        f"queue (one run at a time, on the CPU), PostgreSQL, Redis; streams read the database when the worker signals a change and at least every {args.sse_poll_ms} ms. "
        f"{args.students} students of one class (joined through /join/) each queue one run at once "
        f"(LoRA rank 4, {args.steps} steps, task {args.task}) and poll it every second (the run list every "
        f"{args.list_every} polls) for at most {args.duration:.0f} s, then cancel what has not finished; "
        f"V viewers (students' tabs) follow the runs' SSE streams round-robin from their creation to the end. "
        f"Target: API p95 < {TARGET_P95 * 1000:.0f} ms, no failed request, every point to every viewer exactly once; "
        f"the p95 is taken over every API request the students made (polls, lists, submissions, cancellations), "
        f"and for each kind of request. "
        f"{machine}\n",
        f"`{args.command}`\n",
        "| viewers | students | requests | failed | every API request p50 / p95 / max (ms) | `POST /api/runs` "
        "(ms) | `GET /api/runs/<id>` (ms) | `GET /api/runs` (ms) | p95 < 100 ms: all requests / each kind |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        stats = r["stats"]
        requests = sum(len(v) for v in stats.latency.values()) + sum(stats.failed.values())
        failed = sum(stats.failed.values()) + sum(v.refused for v in r["seen"])
        every = percentiles([t for kind in stats.latency.values() for t in kind])
        p95s = [percentiles(stats.latency[k]) for k in API_KINDS]
        sound = failed == 0 and r["complete"] == r["viewers"]
        met_all = sound and every and every[1] < TARGET_P95
        met_each = sound and all(p and p[1] < TARGET_P95 for p in p95s)
        lines.append(
            f"| {r['viewers']} | {r['students']} | {requests} | {failed} | {ms(every)} | "
            + " | ".join(ms(p) for p in p95s)
            + f" | {'yes' if met_all else 'no'} / {'yes' if met_each else 'no'} |"
        )
    lines += [
        "",
        "| viewers | level (s) | runs trained / cancelled | points stored | viewers with every point once | "
        "SSE first byte p50 / p95 (ms) | point lag p50 / p95 / max (ms) | stream drops | web CPU (% of a core) | "
        "web RSS (MB, processes) | worker CPU (%) | worker RSS (MB) | peak DB connections | DB connections opened | "
        "mean load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        first = percentiles([t for v in r["seen"] for t in v.first_byte])
        web_rss, web_procs = r["peak"]["web"]
        lines.append(
            f"| {r['viewers']} | {r['wall']:.0f} | {r['statuses']['succeeded']} / {r['statuses']['cancelled']} | "
            f"{r['points']} | {r['complete']} / {r['viewers']} | {ms(first[:2]) if first else '–'} | "
            f"{ms(percentiles(r['lags']))} | {sum(v.drops for v in r['seen'])} | "
            f"{100 * r['cpu']['web'] / r['wall']:.0f} | {web_rss:.0f} ({web_procs}) | "
            f"{100 * r['cpu']['worker'] / r['wall']:.0f} | {r['peak']['worker'][0]:.0f} | "
            f"{r['peak']['connections']} | {r['sessions']} | {r['load']:.1f} |"
        )
    lines.append("")
    return "\n".join(lines)


def notes(rows: list[dict]) -> str:
    """What went wrong, level by level (printed, not written to the document)."""
    out = []
    for r in rows:
        seen = r["seen"]
        out.append(
            f"V={r['viewers']}: missing points {r['missing']}, duplicates {r['duplicates']}, streams refused "
            f"{sum(v.refused for v in seen)}, dropped {sum(v.drops for v in seen)}, load client CPU "
            f"{100 * r['client_cpu'] / r['wall']:.0f}% of a core, runs still queued or running 2 min "
            f"after the level {r['stuck']}"
        )
        out += [f"  failed {s}" for s in r["stats"].samples]
        out += [f"  logged {n}x {line}" for line, n in r["errors"].most_common(5)]
    return "\n".join(out)


# --- the lab ---------------------------------------------------------------------------------------
def lab_database(limit: int) -> tuple[str, int, callable]:
    """A fresh database that the lab reaches as a role of its own, not a superuser, as in
    docker-compose.yml: such a role gets at most max_connections - superuser_reserved_connections
    connections (97 of PostgreSQL's default 100), or `limit` (a database limit, which binds the
    lab alone: the same failure at a smaller scale). Returns its URL, the limit and a function
    that drops both."""
    name = f"peftlab_load_{uuid.uuid4().hex[:10]}"
    admin = "postgresql://postgres@127.0.0.1:5432/test"
    with psycopg.connect(admin, autocommit=True) as conn:
        server = int(conn.execute("SHOW max_connections").fetchone()[0]) - int(
            conn.execute("SHOW superuser_reserved_connections").fetchone()[0]
        )
        conn.execute(f'CREATE ROLE "{name}" LOGIN')
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{name}" CONNECTION LIMIT {limit or -1}')

    def drop():
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{name}"')

    return f"postgres://{name}@127.0.0.1:5432/{name}", min(limit or server, server), drop


def start_lab(var_dir: Path, database: str, args) -> tuple[Lab, str]:
    """The class topology with docker-compose.yml's settings for web and gpu worker; returns the
    lab and the join code of a class made for the test."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    lab = Lab(
        var_dir,
        DATABASE_URL=database,
        CELERY_BROKER_URL=REDIS_URL,
        PEFTLAB_CACHE_URL=REDIS_URL,
        PEFTLAB_PRODUCTION="true",
        DJANGO_DEBUG="false",
        PEFTLAB_HTTPS="false",
        DJANGO_SECRET_KEY="class-load-bench-" + "k" * 50,
        PEFTLAB_RUN_QUEUE="gpu",
        PEFTLAB_WORKER_QUEUES="gpu",
        PEFTLAB_WORKER_NAME="gpu",
        PEFTLAB_WORKER_CONCURRENCY="1",
        PEFTLAB_RUNS_PER_CHILD="10",
        WEB_CONCURRENCY=str(args.web_workers),
        PEFTLAB_ARTIFACTS_DIR=str(var_dir / "artifacts"),
        # Lab's test value is 100 ms; a class runs the default.
        PEFTLAB_SSE_POLL_MS=str(args.sse_poll_ms),
        # Every student queues one run; no per-minute limit gets in the way of a burst.
        PEFTLAB_SUBMISSIONS_PER_MINUTE="0",
    )
    lab.manage("migrate", "--noinput")
    made = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model; from peftlab.classroom.models import Classroom; "
            "u = get_user_model().objects.create_user('teacher', password='a long load-test passphrase 9'); "
            "print(Classroom.objects.create(teacher=u, name='Load test').code)",
        ],
        cwd=ROOT,
        env=lab.env,
        check=True,
        capture_output=True,
        text=True,
    )
    code = made.stdout.strip().splitlines()[-1]
    lab.start("web")
    lab.start("worker")
    return lab, code


async def warm_up(lab: Lab, code: str, args) -> float:
    """One run through the idle lab (the worker child loads torch and the base model): its time
    from POST to finished."""
    async with httpx.AsyncClient(base_url=lab.base_url, timeout=60) as client:
        await join(client, code, "warm-up")
        started = time.monotonic()
        answer = await client.post(
            "/api/runs",
            json={"method": "lora", "task": args.task, "steps": args.steps, "params": {"rank": 4}},
            headers=csrf(client),
        )
        answer.raise_for_status()
        run_id = answer.json()["id"]
        while (run := (await client.get(f"/api/runs/{run_id}")).json())["status"] not in FINISHED:
            if time.monotonic() - started > 300:
                raise TimeoutError(f"the warm-up run is still {run['status']}:\n{lab.logs()}")
            await asyncio.sleep(0.2)
        if run["status"] != "succeeded":
            raise RuntimeError(f"the warm-up run {run['status']}: {run['error']}\n{lab.logs()}")
        return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,10,60,200", help="viewer counts, one level each")
    parser.add_argument("--students", type=int, default=30, help="students queuing a run (every level)")
    parser.add_argument("--duration", type=float, default=75, help="longest a level lasts (s)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--task", default="sentiment")
    parser.add_argument("--list-every", type=int, default=5, help="GET the run list every N polls")
    parser.add_argument("--web-workers", type=int, default=4, help="WEB_CONCURRENCY (docker-compose.yml: 4)")
    parser.add_argument("--sse-poll-ms", type=int, default=1000, help="PEFTLAB_SSE_POLL_MS (settings' default)")
    parser.add_argument(
        "--db-connection-limit",
        type=int,
        default=0,
        help="at most this many connections from the lab to its database (0: only the "
        "server's limit): PostgreSQL's max_connections exhausted at a small scale",
    )
    parser.add_argument("--write", action="store_true", help=f"replace the section in {DOC.relative_to(ROOT)}")
    parser.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.command = "HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python bench/class_load.py " + " ".join(
        a for a in sys.argv[1:] if a != "--write"
    )

    database, connections, drop = lab_database(args.db_connection_limit)
    # The bench's own connections (superuser: outside a database's connection limit).
    dsn = "postgresql://postgres@127.0.0.1:5432/" + database.rsplit("/", 1)[1]
    with tempfile.TemporaryDirectory(prefix="peftlab-load-") as folder:
        lab = None
        try:
            lab, code = start_lab(Path(folder), database, args)
            warm = asyncio.run(warm_up(lab, code, args))
            machine = (
                f"Machine: {cpu_name()}, {os.cpu_count()} threads, torch "
                f"{importlib.metadata.version('torch')}; the lab may open {connections} PostgreSQL connections "
                f"(a role of its own, not a superuser{', and a database limit' if args.db_connection_limit else ''}); "
                f"the load client runs on the same machine. One {args.steps}-step run through the idle "
                f"lab: {warm:.1f} s from POST to finished."
            )
            rows = []
            for viewers in (int(v) for v in args.levels.split(",")):
                rows.append(asyncio.run(level(lab, dsn, code, viewers, args)))
                print(f"level V={viewers} done in {rows[-1]['wall']:.0f} s", file=sys.stderr)
        finally:
            if lab is not None:
                lab.stop_all()
                shutil.rmtree(LOGS, ignore_errors=True)
                shutil.copytree(folder, LOGS, ignore=lambda _, names: [n for n in names if not n.endswith(".log")])
                print(f"the lab's logs: {LOGS}", file=sys.stderr)
            drop()
    section = report(rows, args, machine)
    print(section)
    print(notes(rows))
    if args.write:
        write_section(section, "## Class load", args.doc)


if __name__ == "__main__":
    main()
