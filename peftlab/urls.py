"""Every URL of the lab: the pages, the event streams, the JSON API with its routers, the class
pages. The one place that knows every part of the web layer."""

from django.urls import include, path

from peftlab.api import classes, compare, datasets, events, experiments, races, runs
from peftlab.api.lab import PLAYGROUNDS, lab_api
from peftlab.health import healthz
from peftlab.pages import compare as compare_pages
from peftlab.pages import views
from peftlab.playgrounds import (
    decide,
    family,
    lora,
    lowrank,
    memory,
    prompting,
    quant,
    race_sim,
    review,
    serving,
    sparsity,
)

api = lab_api(
    [
        ("", runs.router),  # methods, tasks, runs
        *(
            (PLAYGROUNDS, module.router)
            for module in (decide, lowrank, quant, memory, sparsity, review, lora, family, prompting, serving, race_sim)
        ),
        ("/races", races.router),
        ("", compare.router),  # compare, Pareto, a run's code
        ("/experiments", experiments.router),
        ("/classes", classes.router),
        ("/datasets", datasets.router),
    ]
)

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("chapters/<int:number>/", views.chapter, name="chapter"),
    path("playgrounds/<slug:slug>/", views.playground, name="playground"),
    path("train/", views.train, name="train"),
    path("compare/", compare_pages.compare, name="compare"),
    path("pareto/", compare_pages.pareto, name="pareto"),
    # The event streams are plain async Django views, not ninja operations: they stream.
    path("api/runs/<int:run_id>/events", events.run_events, name="run-events"),
    path("api/races/<int:race_id>/events", events.race_events, name="race-events"),
    path("api/", api.urls),
    # Teachers, classes, joining (peftlab/classroom/urls.py).
    path("", include("peftlab.classroom.urls")),
]
