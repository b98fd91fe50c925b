"""Loaded before Django's settings (pytest.ini: `-p tests.support.parallel`). In a parallel run
(`make test` uses pytest-xdist's `-n`), each test process gets its own var/ folder (file cache,
playground cache) and an equal share of the cores for torch, here and in the labs it starts."""

import atexit
import os
import shutil
import tempfile

# Playwright's sync API runs an event loop in the thread that later tests use for the ORM; the
# loop is idle between its calls, so Django's "async context" guard is a false alarm here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if WORKER:
    _var = tempfile.mkdtemp(prefix=f"peftlab-{WORKER}-")
    atexit.register(shutil.rmtree, _var, ignore_errors=True)
    os.environ["PEFTLAB_VAR_DIR"] = _var
    _processes = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("PEFTLAB_TORCH_THREADS", str(max(1, (os.cpu_count() or 1) // _processes)))


def worker_index() -> int:
    """0 for a serial run or the first process of a parallel one (gw0), 1 for gw1, ..."""
    return int(WORKER[2:]) if WORKER else 0
