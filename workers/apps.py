from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Training workers"

    def ready(self):
        from . import checks  # noqa: F401 - registers the checks
