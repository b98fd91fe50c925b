"""docker-compose.yml's topology started natively, with the compose file's own commands and
environment (only the service addresses point at this machine), and a class run through it: a
teacher creates a class, three students join and submit runs at once, the dashboard shows them,
the teacher cancels one."""

import os
import re
import subprocess
import sys
import threading
import time

import httpx
import pytest
import yaml

from tests.support.labstack import FINISHED, ROOT, Lab
from tests.support.services import postgres_database, redis_url

pytestmark = [pytest.mark.slow, pytest.mark.services]


def compose_services() -> dict:
    out = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"DJANGO_SECRET_KEY": "s" * 60, "PATH": "/usr/bin:/bin"},
    ).stdout
    return yaml.safe_load(out)["services"]


def test_the_compose_file_describes_the_class_topology():
    services = compose_services()
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker-gpu", "worker-cpu"}
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    for name in ("web", "worker-gpu", "worker-cpu"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in services[name]
        env = services[name]["environment"]
        assert env["PEFTLAB_PRODUCTION"] == "true" and env["DJANGO_DEBUG"] == "false"
        assert env["CELERY_BROKER_URL"].startswith("redis://") and env["DATABASE_URL"].startswith("postgres://")
        assert env["PEFTLAB_CACHE_URL"].startswith("redis://")
    assert services["web"]["command"] == ["python", "manage.py", "lab", "web"]
    gpu = services["worker-gpu"]
    assert gpu["command"] == ["python", "manage.py", "lab", "worker"]
    assert gpu["environment"]["PEFTLAB_WORKER_QUEUES"] == "gpu"
    assert gpu["environment"]["PEFTLAB_WORKER_CONCURRENCY"] == "1"
    assert int(gpu["environment"]["PEFTLAB_RUNS_PER_CHILD"]) >= 1
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert services["worker-cpu"]["environment"]["PEFTLAB_WORKER_QUEUES"] == "cpu"
    assert any("/var/lib/postgresql/data" in str(v) for v in services["postgres"]["volumes"])


def test_production_settings_refuse_to_start_without_a_secret_key_and_pass_check_deploy():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PEFTLAB_"))}
    env.update(PEFTLAB_PRODUCTION="true", PEFTLAB_VAR_DIR="/tmp/peftlab-check-deploy")
    refused = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "DJANGO_SECRET_KEY is not" in refused.stderr
    env.update(
        DJANGO_SECRET_KEY="k" * 10 + "a-long-and-random-enough-secret-for-the-deploy-check-0123",
        DJANGO_ALLOWED_HOSTS="lab.example.org",
    )
    deploy = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert "no issues" in deploy.stdout


def class_env(services: dict, service: str, overrides: dict) -> dict:
    """A service's environment from the compose file, with this machine's addresses."""
    return {**{k: str(v) for k, v in services[service]["environment"].items()}, **overrides}


class Browser:
    """One person's browser: cookies, and Django's CSRF token sent back as a form field or header."""

    def __init__(self, base_url):
        self.http = httpx.Client(base_url=base_url, timeout=60)

    def token(self, page="/"):
        if "csrftoken" not in self.http.cookies:
            self.http.get(page)
        return self.http.cookies["csrftoken"]

    def form(self, path, **fields):
        return self.http.post(
            path,
            data={"csrfmiddlewaretoken": self.token(path), **fields},
            headers={"Referer": str(self.http.base_url) + path},
        )

    def api(self, path, body):
        return self.http.post(path, json=body, headers={"X-CSRFToken": self.token()})


def test_a_class_runs_through_the_compose_topology_started_natively(tmp_path):
    services = compose_services()
    database, drop = postgres_database()
    here = {
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": redis_url(),
        "PEFTLAB_CACHE_URL": redis_url(),
        "PEFTLAB_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        # No TLS proxy in front here: the classroom-LAN variant of the production settings.
        "PEFTLAB_HTTPS": "false",
        "PEFTLAB_HEARTBEAT_SECONDS": "0.5",
        "DJANGO_SUPERUSER_PASSWORD": "a teacher's long password 7",
    }
    lab = Lab(tmp_path, **class_env(services, "web", here))
    try:
        lab.manage(*services["migrate"]["command"][2:])
        lab.manage("createsuperuser", "--noinput", "--username", "teacher", "--email", "t@example.org")
        lab.start("web")
        for worker in ("worker-gpu", "worker-cpu"):
            lab.start(services[worker]["command"][-1], name=worker, **class_env(services, worker, here))

        teacher = Browser(lab.base_url)
        assert (
            teacher.form("/teachers/login/", username="teacher", password=here["DJANGO_SUPERUSER_PASSWORD"]).status_code
            == 302
        )
        created = teacher.form("/classes/", name="Tuesday seminar")
        code = re.fullmatch(r"/classes/([A-Z0-9]+)/", created.headers["location"]).group(1)

        students = {name: Browser(lab.base_url) for name in ("ada", "grace", "alan")}
        for name, student in students.items():
            assert student.form("/join/", code=code, nickname=name).status_code == 302
        steps = {"ada": 3, "grace": 3, "alan": 2000}
        runs = {}

        def submit(name):
            answer = students[name].api("/api/runs", {"method": "lora", "task": "sentiment", "steps": steps[name]})
            runs[name] = (answer.status_code, answer.json())

        threads = [threading.Thread(target=submit, args=(name,)) for name in students]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert {name: code for name, (code, _) in runs.items()} == {"ada": 201, "grace": 201, "alan": 201}
        ids = {name: body["id"] for name, (_, body) in runs.items()}
        assert all(body["queue"] == "gpu" for _, body in runs.values())
        # A student sees their own run only.
        assert students["ada"].http.get(f"/api/runs/{ids['grace']}").status_code == 404

        board = teacher.http.get(f"/api/classes/{code}/dashboard").json()
        shown = {s["nickname"]: [r["id"] for r in s["runs"]] for s in board["students"]}
        assert shown == {name: [ids[name]] for name in students}

        lab_wait(lab, teacher, ids["alan"], statuses=("running",))
        assert teacher.api(f"/api/runs/{ids['alan']}/cancel", {}).status_code == 202
        finished = {name: lab_wait(lab, teacher, ids[name]) for name in students}
        assert finished == {"ada": "succeeded", "grace": "succeeded", "alan": "cancelled"}
        board = teacher.http.get(f"/api/classes/{code}/dashboard").json()
        assert board["counts"]["succeeded"] == 2 and board["counts"]["cancelled"] == 1
        devices = {teacher.http.get(f"/api/runs/{ids[n]}").json()["device"] for n in ("ada", "grace")}
        assert devices == {"cpu"}  # the gpu queue's worker, on a machine without a GPU
    finally:
        lab.stop_all()
        drop()


def lab_wait(lab, teacher, run_id, statuses=FINISHED, timeout=180) -> str:
    """Until the run (read as its teacher) has one of these statuses."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = teacher.http.get(f"/api/runs/{run_id}").json()["status"]
        if status in statuses:
            return status
        time.sleep(0.3)
    raise TimeoutError(f"run {run_id} did not finish:\n{lab.logs()}")
