"""The compare page (finished runs side by side) and the Pareto view (accuracy against cost)."""

from django.shortcuts import render

from peftlab.api.compare import COSTS, MAX_COMPARED
from peftlab.classroom import access


def compare(request):
    # The selection lives in the URL (?runs=3,7,9); the page reads it and fetches the runs.
    return render(request, "simulations/compare.html", {"max_runs": MAX_COMPARED})


def pareto(request):
    tasks = access.usable_tasks(request)  # the shipped tasks and the visitor's uploads
    return render(
        request, "simulations/pareto.html", {"tasks": tasks, "costs": [{"key": k, **v} for k, v in COSTS.items()]}
    )
