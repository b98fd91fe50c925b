"""Event streams share a web process's pool of PostgreSQL connections: a stream holds one only
while it reads (simulations/sse.py), so a class following its runs does not run PostgreSQL out of
connections (100 by default). Real processes: `lab web` with a pool of 3, a worker, 12 streams."""
import threading
import time

import httpx
import psycopg
import pytest

from .labstack import Lab, postgres_database, redis_url

pytestmark = [pytest.mark.slow, pytest.mark.services]

POOL, STREAMS, STEPS = 3, 12, 40


def connections(url: str) -> int:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test") as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name]).fetchone()[0]


def follow(base_url: str, run_id: int, steps: list) -> None:
    with httpx.Client(base_url=base_url, timeout=120) as client:
        with client.stream("GET", f"/api/runs/{run_id}/events") as response:
            for line in response.iter_lines():
                if line.startswith("id:") and steps is not None:
                    steps.append(int(line[3:]))
                if line.startswith("event: status"):
                    return


def test_twelve_streams_use_at_most_the_pool_of_their_web_process(tmp_path):
    url, drop = postgres_database()
    lab = Lab(tmp_path, DATABASE_URL=url, CELERY_BROKER_URL=redis_url(), WEB_CONCURRENCY="1",
              PEFTLAB_DB_POOL_SIZE=str(POOL))
    try:
        lab.manage("migrate", "--noinput")
        lab.start("web")
        lab.start("worker")
        warm = lab.create_run(steps=2)["id"]  # the worker has read the model: the next run trains at once
        assert lab.wait_for(warm)["status"] == "succeeded"
        before = connections(url)

        run_id = lab.create_run(steps=STEPS)["id"]
        seen = [[] for _ in range(STREAMS)]
        threads = [threading.Thread(target=follow, args=(lab.base_url, run_id, s)) for s in seen]
        for t in threads:
            t.start()
        peak = before
        while any(t.is_alive() for t in threads):
            peak = max(peak, connections(url))
            time.sleep(0.1)
        # Every stream had every point once, streamed as the run trained ...
        for steps in seen:
            assert steps[:STEPS] == list(range(1, STEPS + 1)), steps
        # ... through the pool: not one connection per stream.
        assert peak - before <= POOL < STREAMS, (before, peak)
    finally:
        lab.stop_all()
        drop()
