"""The Celery app, configured from Django settings (CELERY_ namespace)."""

import logging
import os
import resource
import signal
from pathlib import Path

from celery import Celery, bootsteps, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peftlab.settings")

app = Celery("peftlab")
# The default app of every thread: peftlab/runs/lifecycle.py sends through celery.current_app.
app.set_default()
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["peftlab.runs"])


class RecoverRuns(bootsteps.StartStopStep):
    """Each time the worker's consumer (re)connects to the broker (at start, and after Redis
    came back), settle runs whose worker vanished and send every queued run again."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, consumer):
        from peftlab.runs.lifecycle import recover_runs

        try:
            recover_runs()
        except Exception:  # noqa: BLE001 - a database hiccup must not stop the worker
            logging.getLogger(__name__).exception("could not recover runs")


app.steps["consumer"].add(RecoverRuns)


@app.on_configure.connect
def _prepare_filesystem_broker(sender, **_):
    """The filesystem broker (embedded mode) needs its folders, and has no remote control."""
    from django.conf import settings

    folders = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        for key in ("data_folder_in", "data_folder_out", "control_folder"):
            Path(folders[key]).mkdir(parents=True, exist_ok=True)
        sender.conf.worker_enable_remote_control = False


# --- the pool's children ------------------------------------------------------------------------
@signals.worker_process_init.connect
def _in_each_child(**_):
    """A pool child: its memory cap, priority and torch threads, and the base model read in the
    background while it waits for its first run (how a run reacts to signals: peftlab/runs/tasks.py)."""
    from django.conf import settings

    if settings.PEFTLAB_WORKER_MEMORY_MB:
        cap = settings.PEFTLAB_WORKER_MEMORY_MB * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    if settings.PEFTLAB_WORKER_NICE:
        # Training takes every core it gets; on a machine it shares with the web server, the
        # requests and streams of a class go first and the run waits the few milliseconds.
        os.nice(settings.PEFTLAB_WORKER_NICE)
    if settings.PEFTLAB_TORCH_THREADS:
        import torch

        torch.set_num_threads(settings.PEFTLAB_TORCH_THREADS)
    import threading

    from workers import classifier

    threading.Thread(target=classifier.warm_up, name="warm-up", daemon=True).start()


@signals.worker_shutting_down.connect
def _tell_the_children(**_):
    """Warm shutdown waits for running tasks: each child training a run is told (SIGUSR2) to stop
    at its next report, keeping its points, rather than train on for minutes. Idle children are
    left to the pool (a signal there would end them early and have the pool start new ones)."""
    import socket

    from billiard.process import active_children

    from peftlab.runs.models import Run

    children = {child.pid for child in active_children()}
    training = Run.objects.filter(status=Run.RUNNING, worker=socket.gethostname(), worker_pid__in=children)
    for pid in training.values_list("worker_pid", flat=True):
        try:
            os.kill(pid, signal.SIGUSR2)
        except ProcessLookupError:
            pass
