"""Redis and PostgreSQL of the tests' own: each test process (each pytest-xdist worker) starts a
redis-server and a PostgreSQL cluster on free ports, in temporary folders, the first time a test
asks for one, and stops them when it exits. No test needs, or touches, a Redis or PostgreSQL of
the machine's.

    redis_url()          a fresh (emptied) database of this process's Redis
    postgres_database()  a fresh database of this process's PostgreSQL, and a function that drops it
    RedisServer(folder)  a redis-server of a test's own, which the test may stop and start again

A test that needs them fails (never skips) when redis-server or PostgreSQL's initdb is missing,
with a message that says what to install (`make system-deps` installs both).
"""

import atexit
import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

INSTALL = "run `make system-deps`, or install it yourself (Debian/Ubuntu: apt-get install redis-server postgresql)"
START_TIMEOUT = 60  # seconds: a bound for a hang; servers here start in well under a second
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_options(sig: signal.Signals) -> dict:
    """For a server's Popen: the kernel sends it `sig` should this test process die without its
    atexit handlers (SIGKILL, a crash), so that no server outlives the tests that started it. The
    signal goes when the thread that started the child ends: only the main thread lives as long as
    the process."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def die_with_this_process():
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig))

    return {"preexec_fn": die_with_this_process}


def _wait_until(ready, proc: subprocess.Popen, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise _Exited(f"{what} exited with status {proc.returncode}\n{tail}")
        if ready():
            return
        time.sleep(0.02)
    proc.kill()
    raise TimeoutError(f"{what} was not ready within {START_TIMEOUT}s")


class _Exited(RuntimeError):
    """The server exited while starting: most often its port was taken meanwhile; tried again."""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# --- Redis ----------------------------------------------------------------------------------------
def redis_server() -> str:
    path = shutil.which("redis-server")
    if not path:
        raise RuntimeError(f"the tests start a Redis of their own, and redis-server is not installed: {INSTALL}")
    return path


class RedisServer:
    """A redis-server on a free port of 127.0.0.1, without persistence (no RDB, no AOF), its
    working folder `folder`. stop() and start() again keep the port and lose the data, as a Redis
    restarted without its data does."""

    DATABASES = 1000

    def __init__(self, folder: Path):
        self.folder, self.proc, self.started = Path(folder), None, False
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        binary = redis_server()
        self.folder.mkdir(parents=True, exist_ok=True)
        log = self.folder / "redis.log"
        for attempt in range(3):
            with open(log, "ab") as out:
                self.proc = subprocess.Popen(
                    [
                        binary,
                        "--port",
                        str(self.port),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(self.folder),
                        "--databases",
                        str(self.DATABASES),
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    **_child_options(signal.SIGTERM),
                )
            try:
                _wait_until(lambda: _accepts(self.port), self.proc, "redis-server", log)
                self.started = True
                return self
            except _Exited:
                # A restart keeps its port (the lab's URLs name it); a first start may move.
                if attempt == 2 or self.started:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --- PostgreSQL -----------------------------------------------------------------------------------
def postgres_bindir() -> Path:
    """The folder of initdb and postgres: on PATH, else Debian's /usr/lib/postgresql/<version>/bin
    (the newest version there)."""
    if initdb := shutil.which("initdb"):
        return Path(os.path.realpath(initdb)).parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if versions:
        return Path(versions[-1]).parent
    raise RuntimeError(
        f"the tests start a PostgreSQL of their own, and PostgreSQL's initdb is not installed: {INSTALL}"
    )


class PostgresCluster:
    """A PostgreSQL cluster in a folder of its own: initdb (trust authentication, superuser
    `postgres`), then `postgres` on a free port of 127.0.0.1, its unix socket in that folder.
    PostgreSQL refuses to run as root: a test process running as root runs both as the `postgres`
    user, the folder given to it."""

    def __init__(self):
        self.bindir = postgres_bindir()
        self.folder = Path(tempfile.mkdtemp(prefix="peftlab-postgres-"))
        self.data = self.folder / "data"
        self.proc = None
        self.port = None
        self.as_user = {}
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "the tests run as root, and PostgreSQL refuses to: a `postgres` user must exist "
                    f"to run it ({INSTALL})"
                ) from None
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self.as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}

    def run(self, *args) -> None:
        done = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]], cwd=self.folder, capture_output=True, text=True, **self.as_user
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")

    def start(self) -> "PostgresCluster":
        self.run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        log = self.folder / "postgres.log"
        for attempt in range(3):
            self.port = free_port()
            with open(log, "ab") as out:
                self.proc = subprocess.Popen(
                    [
                        str(self.bindir / "postgres"),
                        "-D",
                        str(self.data),
                        "-p",
                        str(self.port),
                        "-k",
                        str(self.folder),
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                        "-c",
                        "max_connections=200",
                    ],
                    cwd=self.folder,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    **self.as_user,
                    **_child_options(signal.SIGQUIT),
                )
            try:
                _wait_until(self.ready, self.proc, "postgres", log)
                return self
            except _Exited:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def ready(self) -> bool:
        return (
            subprocess.run(
                [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ).returncode
            == 0
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # immediate shutdown: nothing here is kept
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


# --- this process's instances ---------------------------------------------------------------------
_lock = threading.RLock()
_redis: RedisServer | None = None
_postgres: PostgresCluster | None = None
_next_redis_db = 0
timings: dict[str, float] = {}  # seconds each took to start, in this process


def _stop_all() -> None:
    if _postgres is not None:
        _postgres.stop()
    if _redis is not None:
        _redis.stop()
        shutil.rmtree(_redis.folder, ignore_errors=True)


atexit.register(_stop_all)


def redis() -> RedisServer:
    global _redis
    with _lock:
        if _redis is None:
            started = time.monotonic()
            redis_server()  # fails before any folder is made when it is not installed
            server = RedisServer(Path(tempfile.mkdtemp(prefix="peftlab-redis-")))
            try:
                _redis = server.start()
            except BaseException:
                server.stop()
                shutil.rmtree(server.folder, ignore_errors=True)
                raise
            timings["redis"] = time.monotonic() - started
        return _redis


def postgres() -> PostgresCluster:
    global _postgres
    with _lock:
        if _postgres is None:
            started = time.monotonic()
            cluster = PostgresCluster()
            try:
                _postgres = cluster.start()
            except BaseException:
                cluster.stop()
                raise
            timings["postgres"] = time.monotonic() - started
        return _postgres


def redis_url() -> str:
    """A database of this process's Redis that no earlier call handed out, emptied first."""
    global _next_redis_db
    import redis as redis_client

    server = redis()
    with _lock:
        db = _next_redis_db % RedisServer.DATABASES
        _next_redis_db += 1
    url = f"redis://127.0.0.1:{server.port}/{db}"
    with contextlib.closing(redis_client.Redis.from_url(url)) as client:
        client.flushdb()
    return url


def postgres_admin_url() -> str:
    """The maintenance database of this process's PostgreSQL (to create databases, to read
    pg_stat_activity)."""
    return postgres().url("postgres")


def postgres_database() -> tuple[str, callable]:
    """A fresh database on this process's PostgreSQL; returns its URL and a function that drops it."""
    import psycopg

    cluster = postgres()
    name = f"peftlab_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return cluster.url(name), drop
