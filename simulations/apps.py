from django.apps import AppConfig


class SimulationsConfig(AppConfig):
    name = "simulations"
    verbose_name = "Chapters, playgrounds and runs"

    def ready(self):
        # Uploaded CSVs become tasks ("upload-<id>") for workers/datasets.py, in every process.
        from workers import datasets

        from .task_source import UPLOADED

        datasets.register_source(UPLOADED)
