from django.urls import include, path

from peftlab.api import events as sse
from peftlab.pages import views, compare as views_compare
from peftlab.api.lab import api

from peftlab.health import healthz

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("chapters/<int:number>/", views.chapter, name="chapter"),
    path("playgrounds/<slug:slug>/", views.playground, name="playground"),
    path("train/", views.train, name="train"),
    path("compare/", views_compare.compare, name="compare"),
    path("pareto/", views_compare.pareto, name="pareto"),
    # The SSE stream is a plain async Django view, not a ninja operation: it streams.
    path("api/runs/<int:run_id>/events", sse.run_events, name="run-events"),
    path("api/races/<int:race_id>/events", sse.race_events, name="race-events"),
    path("api/", api.urls),
    # Teachers, classes, joining (peftlab/classroom/urls.py).
    path("", include("peftlab.classroom.urls")),
]
