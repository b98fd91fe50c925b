"""The whole pipeline with real processes: web server, Celery worker, broker, database."""

import os
import signal
import threading
import time

import psycopg
import pytest

from tests.support.labstack import Lab, lab_processes
from tests.support.services import postgres_admin_url

pytestmark = pytest.mark.slow

METRICS = ("trainable_params", "total_params", "peak_memory_bytes", "train_seconds", "val_accuracy", "adapter_bytes")


def assert_trained(run, steps):
    assert run["status"] == "succeeded", run
    assert [p["step"] for p in run["points"]] == list(range(1, steps + 1))
    for key in METRICS:
        assert run["metrics"][key] is not None and run["metrics"][key] >= 0, key
    assert run["metrics"]["trainable_params"] == run["metrics"]["trainable_params_predicted"]
    assert run["device"] == "cpu"


def test_it_trains_a_run_submitted_over_http_through_the_embedded_broker(embedded_lab):
    created = embedded_lab.create_run(steps=12)
    assert created["status"] == "queued" and created["queue"] == "cpu"
    embedded_lab.wait_for(created["id"])
    assert_trained(embedded_lab.run(created["id"]), 12)


def test_the_web_server_parses_http_and_runs_its_event_loop_in_c(embedded_lab):
    # uvicorn takes httptools and uvloop when they are installed (requirements.txt).
    web = [int(line.split(":")[0]) for line in lab_processes(embedded_lab.var_dir) if "gunicorn" in line]
    maps = [open(f"/proc/{pid}/maps").read() for pid in web]
    assert any("uvloop" in m and "httptools" in m for m in maps), web


def test_it_streams_every_point_once_after_reconnect(embedded_lab):
    run_id = embedded_lab.create_run(steps=30)["id"]
    first = [e for e in embedded_lab.events(run_id, max_events=12) if e[0] == "point"]
    assert first, "no point arrived before the disconnect"
    last_seen = first[-1][1]
    embedded_lab.wait_for(run_id, statuses=("running", "succeeded"), min_steps=last_seen + 5)
    rest = list(embedded_lab.events(run_id, last_event_id=last_seen))
    steps = [e[1] for e in first + rest if e[0] == "point"]
    assert steps == list(range(1, 31)), steps
    assert rest[-1][0] == "status" and rest[-1][2]["status"] == "succeeded"
    assert all(e[0] != "point" for e in rest[rest.index(rest[-1]) :])


def test_it_cancels_a_running_run_and_keeps_its_points(embedded_lab):
    run_id = embedded_lab.create_run(steps=2000)["id"]
    embedded_lab.wait_for(run_id, statuses=("running",), min_steps=3)
    response = embedded_lab.post(f"/api/runs/{run_id}/cancel", {})
    assert response.status_code == 202
    run = embedded_lab.wait_for(run_id, timeout=30)
    assert run["status"] == "cancelled"
    assert 3 <= len(run["points"]) < 2000
    assert [p["step"] for p in run["points"]] == list(range(1, len(run["points"]) + 1))


@pytest.mark.services
def test_it_trains_through_redis_and_postgres_on_the_gpu_queue(class_lab):
    created = class_lab.create_run(steps=10)
    assert created["queue"] == "gpu"
    class_lab.wait_for(created["id"])
    assert_trained(class_lab.run(created["id"]), 10)


@pytest.mark.services
def test_it_streams_from_postgres_after_reconnect(class_lab):
    run_id = class_lab.create_run(steps=30)["id"]
    first = [e for e in class_lab.events(run_id, max_events=12) if e[0] == "point"]
    rest = list(class_lab.events(run_id, last_event_id=first[-1][1]))
    assert [e[1] for e in first + rest if e[0] == "point"] == list(range(1, 31))


def connections(url: str) -> int:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_admin_url()) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name]).fetchone()[0]


@pytest.mark.services
def test_many_streams_share_the_web_process_pool_of_connections(class_lab):
    # A stream holds a connection only while it reads (peftlab/api/events.py): twelve streams on a
    # web process with a pool of three (conftest's class_lab) never hold twelve.
    streams, steps = 12, 30
    pool = int(class_lab.env["PEFTLAB_DB_POOL_SIZE"])
    url = class_lab.env["DATABASE_URL"]
    class_lab.client.get("/api/runs")  # the web process's pool is open from its first request on
    before = connections(url)
    run_id = class_lab.create_run(steps=steps)["id"]
    seen = [[] for _ in range(streams)]

    def follow(events):
        events.extend(e[1] for e in class_lab.sse(f"/api/runs/{run_id}/events", parse_id=int) if e[0] == "point")

    threads = [threading.Thread(target=follow, args=(s,)) for s in seen]
    for t in threads:
        t.start()
    peak = before
    while any(t.is_alive() for t in threads):
        peak = max(peak, connections(url))
        time.sleep(0.1)
    assert seen == [list(range(1, steps + 1))] * streams  # every point to every stream, once
    # The worker's connections for the run (its training process, its heartbeat), and the pool
    # should it not have opened in full: never one connection per stream.
    assert peak - before <= pool + 1 < streams, (before, peak)


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path, PEFTLAB_STALE_RUN_SECONDS="2", PEFTLAB_HEARTBEAT_SECONDS="0.5")
    lab.manage("migrate", "--noinput")
    yield lab
    lab.stop_all()


def test_it_dispatches_again_a_queued_run_that_the_broker_lost(lab):
    lab.start("web")
    run_id = lab.create_run(steps=5)["id"]
    queue = lab.var_dir / "broker" / "queue"
    lost = list(queue.iterdir())
    assert lost, "the run was never sent to the broker"
    for message in lost:
        message.unlink()
    lab.start("worker")
    assert lab.wait_for(run_id)["status"] == "succeeded"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_it_stops_web_server_and_worker_together(lab, sig):
    proc = lab.start("all")
    run_id = lab.create_run(steps=2000)["id"]
    lab.wait_for(run_id, statuses=("running",), min_steps=2)
    assert len(lab_processes(lab.var_dir)) >= 3  # lab all, gunicorn (master + worker), celery
    lab.stop("all", sig=sig, group=True)
    assert proc.returncode is not None
    assert lab_processes(lab.var_dir) == []
    # Stopping lost nothing: the run is back in the queue with its first attempt's points, and
    # the next worker trains it again under its second attempt.
    lab.start("web")
    run = lab.run(run_id)
    assert (run["status"], run["attempts"], run["error"]) == ("queued", 1, ""), lab.logs()
    assert len(run["points"]) >= 2
    lab.start("worker")
    run = lab.wait_for(run_id, statuses=("running",), min_steps=1)
    assert run["attempts"] == 2


def test_it_stops_the_whole_lab_when_one_of_its_processes_dies(lab):
    proc = lab.start("all")
    worker = next(line for line in lab_processes(lab.var_dir) if "celery" in line)
    os.kill(int(worker.split(":")[0]), signal.SIGKILL)
    assert proc.wait(timeout=30) == 1
    assert lab_processes(lab.var_dir) == []
    assert "exited unexpectedly" in lab.logs()
