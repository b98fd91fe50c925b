"""The Celery app, configured from Django settings (CELERY_ namespace)."""
import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peftlab.settings")

app = Celery("peftlab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])


@app.on_configure.connect
def _prepare_filesystem_broker(sender, **_):
    """The filesystem broker (embedded mode) needs its folders, and has no remote control."""
    from django.conf import settings

    folders = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        for key in ("data_folder_in", "data_folder_out", "control_folder"):
            Path(folders[key]).mkdir(parents=True, exist_ok=True)
        sender.conf.worker_enable_remote_control = False
