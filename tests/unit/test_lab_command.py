"""`manage.py lab`: the environment each of its processes gets."""

from peftlab.runs.management.commands.lab import lab_environment


def test_the_web_server_runs_numpy_on_one_blas_thread_unless_told_otherwise(monkeypatch):
    # The playgrounds' math is small matrices: more BLAS threads only spin against the worker.
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    assert lab_environment("web")["OPENBLAS_NUM_THREADS"] == "1"
    assert "OPENBLAS_NUM_THREADS" not in lab_environment("worker")  # torch's own threads there
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert lab_environment("web")["OPENBLAS_NUM_THREADS"] == "2"
