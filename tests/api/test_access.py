"""Who sees what (peftlab/classroom/access.py), through every endpoint that reads or acts on a run or a
batch: an anonymous visitor sees the public runs; a student only their own; a teacher every run
of their classes and the public ones. Anything else is a 404 that reads like a missing run."""

import pytest
from asgiref.sync import async_to_sync

from peftlab.runs.models import Batch, Run
from tests.support.classrooms import (
    browser,
    classroom,
    race_of,
    run_of,
    student_browser,
    teacher,
    teacher_browser,
)

pytestmark = pytest.mark.django_db

VIEWERS = (
    "anonymous",
    "student A",
    "student B (same class)",
    "student C (other class)",
    "teacher of A's class",
    "other teacher",
)
# Who may see what: A's runs, and the public runs (nobody's class).
SEES = {"A": {"student A", "teacher of A's class"}, "public": {"anonymous", "teacher of A's class", "other teacher"}}


@pytest.fixture
def world(settings, tmp_path):
    settings.PEFTLAB_ARTIFACTS_DIR = tmp_path / "artifacts"
    ada, bob = teacher("ada"), teacher("bob")
    first, second = classroom(ada, "First"), classroom(bob, "Second")
    a_client, a = student_browser(first, "Ana")
    b_client, _ = student_browser(first, "Ben")
    c_client, _ = student_browser(second, "Cy")
    clients = {
        "anonymous": browser(),
        "student A": a_client,
        "student B (same class)": b_client,
        "student C (other class)": c_client,
        "teacher of A's class": teacher_browser(ada),
        "other teacher": teacher_browser(bob),
    }
    things = {}
    for owner, student in (("A", a), ("public", None)):
        done = run_of(student, metrics={"val_accuracy": 0.8, "train_seconds": 3.0})
        folder = settings.PEFTLAB_ARTIFACTS_DIR / str(done.pk)
        folder.mkdir(parents=True)
        (folder / "peftlab.json").write_text("{}")
        sweep = Batch.objects.create(kind=Batch.TARGET_SWEEP, task="sentiment", steps=10, seed=0)
        run_of(student, batch=sweep)
        things[owner] = {
            "done": done.pk,
            "queued": run_of(student, status=Run.QUEUED).pk,
            "race": race_of(student).pk,
            "live race": race_of(student, (Run.SUCCEEDED, Run.QUEUED)).pk,
            "experiment": sweep.pk,
        }
    return clients, things


async def _read_all(chunks) -> bytes:
    return b"".join([chunk async for chunk in chunks])


# (what, url, status when visible): every endpoint that reads a run or a batch. Acting (cancel,
# delete) needs more than seeing: tests/api/test_acting.py.
ENDPOINTS = [
    ("get", "/api/runs/{done}", 200),
    ("events", "/api/runs/{done}/events", 200),
    ("adapter", "/api/runs/{done}/adapter", 200),
    ("script", "/api/runs/{done}/script.py", 200),
    ("notebook", "/api/runs/{done}/notebook.ipynb", 200),
    ("compare", "/api/compare?runs={done}", 200),
    ("race", "/api/races/{race}", 200),
    ("race events", "/api/races/{race}/events", 200),
    ("experiment", "/api/experiments/{experiment}", 200),
]


@pytest.mark.parametrize("owner", ["A", "public"])
@pytest.mark.parametrize("what, url, ok", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
@pytest.mark.parametrize("viewer", VIEWERS)
def test_each_endpoint_answers_only_those_who_may_see(world, viewer, what, url, ok, owner):
    clients, things = world
    path = url.format(**things[owner])
    client = clients[viewer]
    response = client.get(path)
    if response.streaming:  # a finished run's or race's stream ends; a download is a file
        chunks = response.streaming_content
        body = async_to_sync(_read_all)(chunks) if response.is_async else b"".join(chunks)
        response.close()
        assert body.startswith(b"PK") if what == "adapter" else b"event: status" in body
    if viewer in SEES[owner]:
        assert response.status_code == ok, (response.status_code, getattr(response, "content", b"")[:300])
    else:
        assert response.status_code == 404, response.status_code
        if not response.streaming and response["Content-Type"].startswith("application/json"):
            # The same words as for a run that does not exist: nothing about whose it is.
            assert response.json()["error"].startswith("there is no ")
            assert "class" not in response.json()["error"]


@pytest.mark.parametrize("viewer", VIEWERS)
def test_lists_hold_exactly_what_the_viewer_may_see(world, viewer):
    clients, things = world
    client = clients[viewer]
    runs = {r["id"] for r in client.get("/api/runs?limit=500").json()}
    experiments = {e["id"] for e in client.get("/api/experiments").json()}
    pareto = {r["id"] for r in client.get("/api/pareto?task=sentiment").json()["runs"]}
    for owner in ("A", "public"):
        visible = viewer in SEES[owner]
        assert (things[owner]["done"] in runs) is visible
        assert (things[owner]["queued"] in runs) is visible
        assert (things[owner]["experiment"] in experiments) is visible
        assert (things[owner]["done"] in pareto) is visible


def test_a_student_sees_nothing_of_the_public_instance_and_a_teacher_nothing_of_another_class(world):
    clients, things = world
    own = {r["id"] for r in clients["student A"].get("/api/runs?limit=500").json()}
    assert own == set(Run.objects.filter(student__nickname="Ana").values_list("pk", flat=True))
    other = {r["id"] for r in clients["other teacher"].get("/api/runs?limit=500").json()}
    assert other == set(Run.objects.filter(classroom__isnull=True).values_list("pk", flat=True))


MERGE_METRICS = {
    "merge_max_abs_diff": 1e-6,
    "latency_ms": 2.0,
    "latency_merged_ms": 1.5,
    "adapter_bytes": 60_000,
    "val_accuracy": 0.8,
    "demo": {"labels": ["negative", "positive"], "max_abs_logit_diff": 1e-7},
}


def test_the_merge_and_swap_page_lists_only_visible_adapters(world):
    clients, _ = world
    from peftlab.classroom.models import Student

    ana = Student.objects.get(nickname="Ana")
    mine, public = run_of(ana, metrics=MERGE_METRICS).pk, run_of(None, metrics=MERGE_METRICS).pk
    listed = {
        viewer: {r["id"] for r in clients[viewer].get("/api/playgrounds/merge-and-swap").json()["runs"]}
        for viewer in VIEWERS
    }
    assert listed["student A"] == {mine}
    assert listed["teacher of A's class"] == {mine, public}
    assert listed["anonymous"] == listed["other teacher"] == {public}
    assert listed["student B (same class)"] == listed["student C (other class)"] == set()


def test_an_invisible_run_reads_exactly_like_a_missing_one(world):
    clients, things = world
    hidden = clients["student B (same class)"].get(f"/api/runs/{things['A']['done']}")
    missing = clients["student B (same class)"].get("/api/runs/999999")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"].replace(str(things["A"]["done"]), "N") == missing.json()["error"].replace(
        "999999", "N"
    )
    # and cancelling it did nothing
    assert (
        clients["student B (same class)"]
        .post(f"/api/runs/{things['A']['queued']}/cancel", "{}", content_type="application/json")
        .status_code
        == 404
    )
    assert Run.objects.get(pk=things["A"]["queued"]).status == Run.QUEUED
