"""The class topology for fault tests (tests/faults/test_faults_*.py): PostgreSQL, a redis-server of
the test's own (RedisServer, which a test may stop and restart), `lab web` and `lab worker`; and
what the tests read back from it."""

import psycopg
import pytest

from tests.support.labstack import Lab
from tests.support.services import RedisServer, postgres_database, redis_url

QUICK = {"PEFTLAB_HEARTBEAT_SECONDS": "0.5"}


@pytest.fixture
def stack(tmp_path):
    """Starts the class topology (PostgreSQL, a private Redis, `lab web`, one `lab worker`) with
    extra settings; stops everything afterwards."""
    redis = RedisServer(tmp_path / "redis").start()
    made = []

    def make(**env):
        url, drop = postgres_database()
        folder = tmp_path / f"lab{len(made)}"
        folder.mkdir()
        lab = Lab(
            folder, DATABASE_URL=url, CELERY_BROKER_URL=redis.url, PEFTLAB_CACHE_URL=redis_url(), **{**QUICK, **env}
        )
        made.append((lab, drop))
        lab.redis = redis
        lab.manage("migrate", "--noinput")
        lab.start("web")
        lab.start("worker")
        return lab

    yield make
    for lab, drop in made:
        lab.stop_all()
        drop()
    redis.stop()


def stored_points(lab, run_id) -> list[tuple[int, int]]:
    """(attempt, step) of every point the database holds for a run."""
    with psycopg.connect(lab.env["DATABASE_URL"]) as conn:
        return conn.execute(
            "SELECT attempt, step FROM simulations_point WHERE run_id = %s ORDER BY attempt, step", [run_id]
        ).fetchall()


def steps_of(run) -> list[int]:
    return [p["step"] for p in run["points"]]
