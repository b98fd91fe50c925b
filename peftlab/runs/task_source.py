"""Uploaded datasets as tasks: ``upload-<id>`` read from the database for workers/datasets.py.

The runs app registers `UPLOADED` when Django starts (RunsConfig.ready), in the web
processes and in every worker alike, so `datasets.load_task("upload-7")` works wherever a run is
validated or trained, while workers/datasets.py itself imports no Django. Who may *use* an
upload is decided by the web layer (peftlab/classroom/access.py), never here.
"""

import re

from peftlab.runs.models import Dataset, DatasetExample
from workers import datasets

_NAME = re.compile(rf"{re.escape(Dataset.TASK_PREFIX)}([1-9][0-9]{{0,17}})")


def dataset_id(name: str) -> int | None:
    """The id in an ``upload-<id>`` task name, or None for any other name."""
    match = _NAME.fullmatch(name) if isinstance(name, str) else None
    return int(match.group(1)) if match else None


def _missing(name: str) -> datasets.UnknownTask:
    return datasets.UnknownTask(f"unknown task {name!r}; known tasks: {', '.join(datasets.task_names())}")


class UploadedTasks:
    def owns(self, name: str) -> bool:
        return dataset_id(name) is not None

    def exists(self, name: str) -> bool:
        pk = dataset_id(name)
        return pk is not None and Dataset.objects.filter(pk=pk).exists()

    def load(self, name: str) -> datasets.Task:
        pk = dataset_id(name)
        dataset = Dataset.objects.filter(pk=pk).first() if pk is not None else None
        if dataset is None:
            raise _missing(name)
        rows = DatasetExample.objects.filter(dataset=dataset).order_by("position").values_list("split", "text", "label")
        train, val = [], []
        for split, text, label in rows:
            (val if split == DatasetExample.VAL else train).append(datasets.Example(text, label))
        return datasets.Task(
            name=name,
            title=dataset.name,
            description=f"Uploaded CSV \u201c{dataset.file_name or dataset.name}\u201d.",
            labels=tuple(dataset.labels),
            train=tuple(train),
            val=tuple(val),
        )


UPLOADED = UploadedTasks()
