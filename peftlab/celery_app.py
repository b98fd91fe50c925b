"""The Celery app, configured from Django settings (CELERY_ namespace)."""
import logging
import os
from pathlib import Path

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peftlab.settings")

app = Celery("peftlab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])


class RecoverRuns(bootsteps.StartStopStep):
    """Each time the worker's consumer (re)connects to the broker (at start, and after Redis
    came back), settle runs whose worker vanished and send every queued run again."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, consumer):
        from workers.tasks import recover_runs

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
