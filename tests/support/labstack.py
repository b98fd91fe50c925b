"""Real processes for integration tests: the lab as `manage.py lab ...` starts it.

A Lab gets its own var/ folder (SQLite database, filesystem broker, adapters) or, for the class
topology, its own PostgreSQL database and Redis database (tests/support/services.py).
"""

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]
FINISHED = ("succeeded", "failed", "cancelled")

# Settings of the developer's shell must not leak into a test's lab.
_LAB_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "PEFTLAB_RUN_QUEUE",
    "PEFTLAB_WORKER_QUEUES",
    "PEFTLAB_VAR_DIR",
    "PEFTLAB_ARTIFACTS_DIR",
    "PORT",
    "DJANGO_SETTINGS_MODULE",
)


class Lab:
    def __init__(self, var_dir: Path, **env):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in _LAB_VARIABLES}
        self.env.update(
            {
                "PEFTLAB_VAR_DIR": str(var_dir),
                "HF_HUB_OFFLINE": "1",
                "PYTHONUNBUFFERED": "1",
                "PEFTLAB_LOG_LEVEL": "WARNING",
                "PEFTLAB_SSE_POLL_MS": "100",
                # Tests submit many runs a minute from one client and address; rate
                # limits and per-address quotas have tests of their own.
                "PEFTLAB_SUBMISSIONS_PER_MINUTE": "0",
                "PEFTLAB_ADDRESS_SUBMISSIONS_PER_MINUTE": "0",
                "PEFTLAB_ADDRESS_MAX_CONCURRENT": "0",
                "PEFTLAB_ADDRESS_DAILY_RUNS": "0",
                **env,
            }
        )
        self.var_dir = var_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.client = httpx.Client(base_url=self.base_url, timeout=30)

    # --- processes ---------------------------------------------------------------------------
    def manage(self, *args) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True, stdout=subprocess.DEVNULL
        )

    def create_teacher(self, username: str, password: str) -> str:
        """A teacher account, as a host makes one (`manage.py createsuperuser`); returns the name."""
        self.env["DJANGO_SUPERUSER_PASSWORD"] = password
        try:
            self.manage("createsuperuser", "--noinput", "--username", username, "--email", f"{username}@example.org")
        finally:
            del self.env["DJANGO_SUPERUSER_PASSWORD"]
        return username

    def start(self, process: str = "all", name: str | None = None, **env) -> subprocess.Popen:
        """Start `manage.py lab <process>`, known as `name` (several workers), with extra env."""
        name = name or process
        log = open(self.var_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "lab", process, "--port", str(self.port)],
            cwd=ROOT,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        if process in ("all", "web"):
            self.wait_until_serving(proc)
        return proc

    def children(self, name: str) -> list[int]:
        """Pids of a process's children (a Celery worker's pool processes)."""
        pid = self.procs[name].pid
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def wait_until_serving(self, proc, timeout=60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the lab exited early:\n{self.logs()}")
            try:
                if self.client.get("/").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the lab did not serve within {timeout}s:\n{self.logs()}")

    def stop(self, process: str = "all", sig=signal.SIGTERM, timeout=30, group=False) -> int:
        """Signal the process as a service manager does (docker stop, systemd): the process
        itself, or with group=True its whole process group, as Ctrl-C in a terminal does."""
        proc = self.procs.pop(process)
        if proc.poll() is None:
            (os.killpg if group else os.kill)(proc.pid, sig)
        try:
            return proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in list(self.procs):
            try:
                self.stop(name)
            except ProcessLookupError:
                pass
        self.client.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in self.var_dir.glob("*.log"))

    # --- the API, as a browser would use it ----------------------------------------------------
    def csrf_headers(self) -> dict:
        if "csrftoken" not in self.client.cookies:
            self.client.get("/")
        return {"X-CSRFToken": self.client.cookies["csrftoken"]}

    def post(self, path: str, body) -> httpx.Response:
        return self.client.post(
            path, content=json.dumps(body), headers={**self.csrf_headers(), "Content-Type": "application/json"}
        )

    def create_run(self, steps=20, method="lora", **params) -> dict:
        small = {"rank": 4} if method == "lora" else {}
        body = {"method": method, "task": "sentiment", "steps": steps, "seed": 0, "params": {**small, **params}}
        response = self.post("/api/runs", body)
        assert response.status_code == 201, response.text
        return response.json()

    def run(self, run_id: int) -> dict:
        response = self.client.get(f"/api/runs/{run_id}")
        # A body that is not JSON (an empty one was seen once under load): say what came instead.
        assert response.headers.get("content-type", "").startswith("application/json"), (
            f"GET /api/runs/{run_id}: {response.status_code} {response.headers.get('content-type')} "
            f"{response.text[:300]!r}\n{self.logs()}"
        )
        return response.json()

    def wait_for(self, run_id: int, statuses=FINISHED, timeout=180, min_steps=0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run["status"] in statuses and run["steps_done"] >= min_steps:
                return run
            time.sleep(0.2)
        raise TimeoutError(f"run {run_id} is still {run['status']} after {timeout}s:\n{self.logs()}")

    def cancel_unfinished(self, timeout=120) -> None:
        """Cancel every queued or training run the lab lists, whoever started it (a page's own
        browser session, which alone may cancel it through the API), and wait until each has
        ended: the flags POST /api/runs/<id>/cancel sets, written into the embedded lab's SQLite
        database (peftlab/runs/lifecycle.py)."""
        runs = self.client.get("/api/runs", params={"limit": 500}).json()
        busy = [run["id"] for run in runs if run["status"] not in FINISHED]
        if busy:
            marks = ",".join("?" * len(busy))
            with contextlib.closing(sqlite3.connect(self.var_dir / "peftlab.sqlite3", timeout=30)) as db, db:
                db.execute(
                    f"UPDATE simulations_run SET status = 'cancelled', cancel_requested = 1 "
                    f"WHERE status = 'queued' AND id IN ({marks})",
                    busy,
                )
                db.execute(f"UPDATE simulations_run SET cancel_requested = 1 WHERE id IN ({marks})", busy)
        for run_id in busy:
            self.wait_for(run_id, timeout=timeout)

    def events(self, run_id: int, last_event_id: int | None = None, max_events=None):
        """Parse a run's SSE stream into (event, id, data) tuples until it ends or max_events."""
        yield from self.sse(f"/api/runs/{run_id}/events", last_event_id, max_events, parse_id=int)

    def sse(self, path: str, last_event_id=None, max_events=None, parse_id=str):
        """Parse an SSE stream into (event, id, data) tuples until it ends or max_events (id is
        None for an event that has no id line)."""
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        with self.client.stream("GET", path, headers=headers, timeout=120) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            event, event_id, data = "message", None, None
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("id:"):
                    event_id = parse_id(line[3:].strip())
                elif line.startswith("data:"):
                    data = json.loads(line[5:].strip())
                elif line == "" and data is not None:
                    yield event, event_id, data
                    if max_events is not None:
                        max_events -= 1
                        if max_events == 0:
                            return
                    event, event_id, data = "message", None, None


def lab_processes(var_dir: Path) -> list[str]:
    """Command lines of processes still alive that belong to a lab using this var dir."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"PEFTLAB_VAR_DIR={var_dir}".encode() in environ:
            out.append(f"{pid}: {cmdline}")
    return out
