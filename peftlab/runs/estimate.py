"""A run's estimated worker time on its task: the run-cost model (workers/run_cost.py, measured
on one CPU) with the task's validation size, an uploaded dataset's included. The run budgets
(peftlab/classroom/quotas.py), GET /api/runs/estimate and a queued run's estimated start
(waiting.py) all read it here."""

from peftlab.runs.models import Dataset
from peftlab.runs.task_source import dataset_id
from workers import datasets, methods, run_cost


def val_size(task: str) -> int:
    """The validation split's size, which each evaluation's cost grows with."""
    if (pk := dataset_id(task)) is not None:
        return Dataset.objects.filter(pk=pk).values_list("val_size", flat=True).first() or 0
    return len(datasets.load_task(task).val)


def estimated_seconds(spec: methods.RunSpec) -> float:
    """The run's estimated worker time (workers/run_cost.py) on its task."""
    return run_cost.cost_of(spec.method).seconds(
        spec.steps, spec.params["batch_size"], spec.params.get("eval_every", 0), val_size(spec.task)
    )
