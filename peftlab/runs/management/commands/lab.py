"""`manage.py lab [all|web|worker]`: the lab's processes, written in one place.

`lab all` (what `make run` execs, the embedded mode) starts the web server and a real Celery
worker and stops both together. The class topology runs `lab web` and `lab worker` as separate
services (docker-compose.yml) with the same command lines.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from peftlab import lan

PR_SET_PDEATHSIG = 1


def lab_commands(port: int) -> dict[str, list[str]]:
    """The web and worker command lines, with their settings from the environment."""
    bin_dir = os.path.dirname(sys.executable)
    web = [
        os.path.join(bin_dir, "gunicorn"),
        "peftlab.asgi:application",
        "--worker-class",
        "uvicorn_worker.UvicornWorker",
        "--bind",
        f"{settings.PEFTLAB_BIND}:{port}",
        "--workers",
        os.environ.get("WEB_CONCURRENCY", "1"),
        # SSE streams are long requests: do not wait long for them on shutdown.
        "--graceful-timeout",
        "3",
        # gunicorn's control socket has one default path per user: two labs on one machine (a
        # test suite's dozens) would take it from each other. Nothing here uses it.
        "--no-control-socket",
    ]
    worker = [
        os.path.join(bin_dir, "celery"),
        "-A",
        "peftlab",
        "worker",
        "--queues",
        os.environ.get("PEFTLAB_WORKER_QUEUES", "cpu,gpu"),
        # A prefork pool: time limits are enforced by the parent, which kills a child that runs
        # past the hard limit; torch and the cached base model live in the child. One training
        # job per child (PEFTLAB_WORKER_CONCURRENCY children; 1 on a GPU worker).
        "--pool",
        "prefork",
        "--concurrency",
        os.environ.get("PEFTLAB_WORKER_CONCURRENCY", "1"),
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        "--hostname",
        f"{os.environ.get('PEFTLAB_WORKER_NAME', 'cpu')}@%h",
        "--loglevel",
        os.environ.get("PEFTLAB_LOG_LEVEL", "INFO"),
    ]
    return {"web": web, "worker": worker}


def lab_environment(process: str) -> dict[str, str]:
    """A lab process's environment: each web server process pools its database connections (see
    PEFTLAB_DB_POOL_SIZE in settings.py); a worker does not. The web server's numpy works on
    small matrices (the playgrounds' math): one BLAS thread, as more only spin against the
    worker for the cores (P16's fits: 10-15 ms with one, 60-1,400 ms with two, busy 2 cores)."""
    env = dict(os.environ)
    if process == "web":
        env.setdefault("PEFTLAB_DB_POOL_SIZE", "10")
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
    else:
        env["PEFTLAB_DB_POOL_SIZE"] = "0"
    return env


def reach_line(bind: str, port: int, address: str | None) -> str:
    """What `lab all` says about who can open the lab: this machine alone, or the network too."""
    if lan.is_loopback(bind):
        return (
            f"Only this computer can open it (it listens on {bind}); for a class on the same network, "
            f"stop it and start it with: {lan.open_to_network_command(port)}"
        )
    if address is None:
        return f"It listens on {bind}, but this computer has no network address: connect it to the class's network"
    return f"Students on the same network open http://{address}:{port}/join/"


def _die_with_parent():
    # If `lab all` itself is killed with SIGKILL, the kernel still stops its children.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Command(BaseCommand):
    help = "Start the web server, a Celery worker, or both (stopped together on Ctrl-C or SIGTERM)."

    def add_arguments(self, parser):
        parser.add_argument("process", nargs="?", choices=["all", "web", "worker"], default="all")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args, process, port, **options):
        if process != "all":
            # One service: become that process, so that signals reach it directly.
            cmd = lab_commands(port)[process]
            os.execve(cmd[0], cmd, lab_environment(process))
        children = {
            name: subprocess.Popen(cmd, env=lab_environment(name), preexec_fn=_die_with_parent)
            for name, cmd in lab_commands(port).items()
        }
        self.stdout.write(f"PEFT Lab on http://127.0.0.1:{port}/ (Ctrl-C stops the web server and the worker)")
        self.stdout.write(reach_line(settings.PEFTLAB_BIND, port, lan.lan_address()))
        stopping = False

        def stop(signum, _frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping and all(p.poll() is None for p in children.values()):
            time.sleep(0.2)
        for _name, proc in children.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        failed = [n for n, p in children.items() if p.returncode not in (0, -signal.SIGTERM) and not stopping]
        if failed:
            self.stderr.write(f"{', '.join(failed)} exited unexpectedly; the lab stopped")
            sys.exit(1)
