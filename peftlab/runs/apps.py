from django.apps import AppConfig


class RunsConfig(AppConfig):
    """Runs, races, sweeps and uploaded datasets. The label stays "simulations", the app's first
    name, so that the tables (simulations_run, ...) and the migration history need no change."""

    name = "peftlab.runs"
    label = "simulations"
    verbose_name = "Runs"

    def ready(self):
        from peftlab.runs import checks  # noqa: F401 - registers the system checks
        from peftlab.runs.task_source import UPLOADED
        from workers import datasets

        # Uploaded CSVs become tasks ("upload-<id>") for workers/datasets.py, in every process.
        datasets.register_source(UPLOADED)
