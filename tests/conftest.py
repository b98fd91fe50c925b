import pytest

from .labstack import Lab, postgres_database, redis_url


@pytest.fixture(scope="module")
def embedded_lab(tmp_path_factory):
    """The laptop mode, as `make run` starts it: SQLite, filesystem broker, `lab all`."""
    lab = Lab(tmp_path_factory.mktemp("embedded"))
    lab.manage("migrate", "--noinput")
    lab.start("all")
    yield lab
    lab.stop_all()


@pytest.fixture(scope="module")
def class_lab(tmp_path_factory):
    """The class topology natively: PostgreSQL + Redis, `lab web` and `lab worker` apart,
    runs sent to the gpu queue (this machine has no GPU: the worker records the CPU)."""
    url, drop = postgres_database()
    lab = Lab(tmp_path_factory.mktemp("class"), DATABASE_URL=url, CELERY_BROKER_URL=redis_url(),
              PEFTLAB_RUN_QUEUE="gpu", PEFTLAB_WORKER_QUEUES="gpu,cpu", PEFTLAB_WORKER_NAME="gpu")
    lab.manage("migrate", "--noinput")
    lab.start("web")
    lab.start("worker")
    yield lab
    lab.stop_all()
    drop()
