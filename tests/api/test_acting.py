"""Who may act (peftlab/classroom/access.py): every state-changing endpoint, taken from the OpenAPI
document and the URL configuration so that a new one cannot be left out, against every kind of
caller. Seeing is not enough: the owner (a student, a teacher, a visitor's browser session) and
the teacher of the owner's class act; anyone else gets the 404 a missing thing gets, and nothing
changes."""

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from peftlab.classroom.forms import SettingsForm
from peftlab.classroom.models import Classroom
from peftlab.runs.models import Batch, Dataset, Run
from peftlab.urls import api
from tests.support.classrooms import browser, classroom, student_browser, teacher, teacher_browser
from workers import methods

pytestmark = pytest.mark.django_db

MISSING_ID, MISSING_CODE = 999999, "ZZZZZZ"

# Callers: two visitors (browser sessions), three students (Ana and Ben in ada's class, Cy in
# bob's), two teachers, and a client that keeps no session cookie at all.
ACTORS = (
    "visitor",
    "other visitor",
    "Ana",
    "Ben (Ana's class)",
    "Cy (other class)",
    "ada (Ana's teacher)",
    "bob (other teacher)",
    "no session",
)
# Owners of things, and who may act on what each owns.
MAY_ACT = {
    "visitor": {"visitor"},
    "Ana": {"Ana", "ada (Ana's teacher)"},
    "ada (Ana's teacher)": {"ada (Ana's teacher)"},
}


class NoSession(Client):
    """A client that sends the CSRF token but never keeps a session cookie."""

    def request(self, **request):
        self.cookies.pop("sessionid", None)
        return super().request(**request)


@pytest.fixture
def world():
    ada, bob = teacher("ada"), teacher("bob")
    first, second = classroom(ada, "First"), classroom(bob, "Second")
    clients = {"visitor": browser(), "other visitor": browser()}
    for name in ("visitor", "other visitor"):  # a visitor's session, as their first submission makes it
        session = clients[name].session
        session["visitor"] = True
        session.save()
    clients["Ana"], ana = student_browser(first, "Ana")
    clients["Ben (Ana's class)"], _ = student_browser(first, "Ben")
    clients["Cy (other class)"], _ = student_browser(second, "Cy")
    clients["ada (Ana's teacher)"], clients["bob (other teacher)"] = teacher_browser(ada), teacher_browser(bob)
    no_session = NoSession(enforce_csrf_checks=True)
    no_session.get("/")
    no_session.defaults["HTTP_X_CSRFTOKEN"] = no_session.cookies["csrftoken"].value
    clients["no session"] = no_session
    owners = {
        "visitor": {"owner": f"session:{clients['visitor'].session.session_key}"},
        "Ana": {"owner": ana.owner, "classroom": first, "student": ana},
        "ada (Ana's teacher)": {"owner": f"teacher:{ada.pk}"},
    }
    return clients, owners, first


def _run(owner: dict, status=Run.QUEUED, batch=None, lane=0) -> Run:
    spec = methods.validate_run("lora", "sentiment", 10, 0, {})
    return Run.queue_spec(spec, status=status, batch=batch, lane=lane, **owner)


def _race(owner: dict) -> Batch:
    batch = Batch.objects.create(kind=Batch.RACE, task="sentiment", steps=10, seed=0, config={"methods": ["lora"] * 2})
    _run(owner, Run.RUNNING, batch, 0)
    _run(owner, Run.QUEUED, batch, 1)
    return batch


def _dataset(owner: dict) -> Dataset:
    return Dataset.objects.create(
        name="mine",
        owner=owner["owner"],
        classroom=owner.get("classroom"),
        student=owner.get("student"),
        labels=["a", "b"],
        train_size=8,
        val_size=2,
    )


def _runs_state(runs) -> list:
    return sorted(Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("pk", "status", "cancel_requested"))


def _class_form(room: Classroom) -> dict:
    form = SettingsForm(instance=room)
    data = {name: form.initial[name] for name in form.fields}
    return {**data, "max_steps": 7}


# Every state change on an existing thing: (method, route as the OpenAPI document or the URL
# configuration spells it) -> (who may own such a thing, make one: -> (path values, state now)).
def _cancel_run(owner, room):
    run = _run(owner)
    return {"run_id": run.pk}, lambda: _runs_state([run])


def _cancel_race(owner, room):
    race = _race(owner)
    return {"race_id": race.pk}, lambda: _runs_state(race.runs.all())


def _delete_dataset(owner, room):
    dataset = _dataset(owner)
    return {"dataset_id": dataset.pk}, lambda: Dataset.objects.filter(pk=dataset.pk).exists()


def _class_state(room):
    return lambda: Classroom.objects.filter(pk=room.pk).values("max_steps", "submissions_paused").get()


ACTIONS = {
    ("post", "/api/runs/{run_id}/cancel"): (tuple(MAY_ACT), _cancel_run, {}),
    ("post", "/api/races/{race_id}/cancel"): (tuple(MAY_ACT), _cancel_race, {}),
    ("delete", "/api/datasets/{dataset_id}"): (tuple(MAY_ACT), _delete_dataset, {}),
    # A class is its teacher's: settings and pause.
    ("post", "classes/<str:code>/"): (
        ("ada (Ana's teacher)",),
        lambda o, room: ({"code": room.code}, _class_state(room)),
        _class_form,
    ),
    ("post", "classes/<str:code>/pause/"): (
        ("ada (Ana's teacher)",),
        lambda o, room: ({"code": room.code}, _class_state(room)),
        lambda room: {"paused": "1"},
    ),
}
# State changes that make a new thing of the caller's own: no owner to check, but training on an
# uploaded dataset needs the right to use it (tests/api/test_uploads.py, and below).
CREATES = {("post", "/api/runs"), ("post", "/api/races"), ("post", "/api/experiments"), ("post", "/api/datasets")}
# The pages' routes that change state without an owner: who the caller is (joining, signing in
# and out, signing up) or a teacher's new class.
IDENTITY = {"join/", "leave/", "teachers/login/", "teachers/logout/", "teachers/signup/", "classes/"}
READ_ONLY = {
    "",
    "healthz",
    "chapters/<int:number>/",
    "playgrounds/<slug:slug>/",
    "train/",
    "compare/",
    "pareto/",
    "api/runs/<int:run_id>/events",
    "api/races/<int:race_id>/events",
}


def _page_routes(patterns, prefix="") -> set[str]:
    routes = set()
    for p in patterns:
        if isinstance(p, URLResolver):
            if str(p.pattern) == "api/":
                continue  # the NinjaAPI: its operations come from the OpenAPI document
            routes |= _page_routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            routes.add(prefix + str(p.pattern))
    return routes


def test_every_state_changing_endpoint_is_in_the_matrix():
    """A new POST, PUT, PATCH or DELETE operation, or a new page route, fails here until it is
    placed: acting on an owner's thing (ACTIONS), creating the caller's own (CREATES), the
    caller's identity, or read-only."""
    operations = {
        (method, path)
        for path, ops in api.get_openapi_schema()["paths"].items()
        for method in ops
        if method in ("post", "put", "patch", "delete")
    }
    api_actions = {key for key in ACTIONS if key[1].startswith("/api/")}
    assert operations == api_actions | CREATES
    page_actions = {route for method, route in ACTIONS if not route.startswith("/api/")}
    assert _page_routes(get_resolver().url_patterns) == page_actions | IDENTITY | READ_ONLY


def _send(client, method: str, route: str, values: dict, data: dict | None):
    if route.startswith("/api/"):
        path = route.format(**values)
        if method == "delete":
            return client.delete(path)
        return client.post(path, "{}", content_type="application/json")
    path = "/" + re.sub(r"<\w+:(\w+)>", lambda m: str(values[m.group(1)]), route)
    return client.post(path, data or {})


def _as_missing(response, values: dict) -> tuple:
    """The response with the thing's id or code written as N, to compare with a missing one's."""
    text = response.content.decode() + response.get("Location", "")
    text = re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", text)  # masked anew for every page
    for value in values.values():
        text = text.replace(str(value), "N")
    return response.status_code, text.replace(str(MISSING_ID), "N").replace(MISSING_CODE, "N")


CASES = [
    (method, route, owner, actor)
    for (method, route), (owners, _, _) in ACTIONS.items()
    for owner in owners
    for actor in ACTORS
]


@pytest.mark.parametrize("method, route, owner, actor", CASES, ids=[f"{m} {r} of {o} by {a}" for m, r, o, a in CASES])
def test_only_the_owner_and_their_teacher_act(world, method, route, owner, actor):
    clients, owners, room = world
    _, make, form = ACTIONS[(method, route)]
    values, state = make(owners[owner], room)
    before = state()
    data = form(room) if form else None
    response = _send(clients[actor], method, route, values, data)
    if actor in MAY_ACT[owner]:
        assert response.status_code in (202, 204, 302), (response.status_code, response.content[:300])
        assert state() != before
        return
    # Exactly what a missing thing gets, and nothing changed.
    missing_values = {k: MISSING_CODE if k == "code" else MISSING_ID for k in values}
    missing = _send(clients[actor], method, route, missing_values, data)
    assert _as_missing(response, values) == _as_missing(missing, missing_values)
    assert response.status_code in (404, 302), response.status_code  # 302: a page's sign-in
    assert state() == before


def test_a_public_run_is_seen_by_all_and_its_cancel_button_is_for_its_owner(world):
    clients, owners, _ = world
    run = _run(owners["visitor"])
    for actor in ACTORS:
        body = clients[actor].get(f"/api/runs/{run.pk}")
        if actor in ("Ana", "Ben (Ana's class)", "Cy (other class)"):
            assert body.status_code == 404  # a student sees only their own runs
            continue
        assert body.status_code == 200
        assert body.json()["may_cancel"] is (actor == "visitor")
    race = _race(owners["Ana"])
    assert clients["Ana"].get(f"/api/races/{race.pk}").json()["may_cancel"] is True
    assert clients["ada (Ana's teacher)"].get(f"/api/races/{race.pk}").json()["may_cancel"] is True


def test_one_session_cannot_cancel_the_runs_of_many(world):
    """The reported attack: one fresh session cancelling every visible public run."""
    clients, owners, _ = world
    runs = [_run(owners["visitor"]) for _ in range(5)] + [_run(owners["ada (Ana's teacher)"]) for _ in range(5)]
    attacker = browser()
    for run in runs:
        assert attacker.post(f"/api/runs/{run.pk}/cancel", "{}", content_type="application/json").status_code == 404
    assert set(Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("status", flat=True)) == {Run.QUEUED}


@pytest.mark.parametrize(
    "endpoint, body",
    [
        ("/api/runs", {"method": "lora", "steps": 2}),
        ("/api/races", {"steps": 2, "methods": ["lora"]}),
        ("/api/experiments", {"kind": "targets", "steps": 2}),
    ],
)
def test_creating_never_trains_on_an_upload_the_caller_may_not_use(world, endpoint, body):
    clients, owners, _ = world
    task = _dataset(owners["Ana"]).task_name
    before = Run.objects.count()
    for actor in ("other visitor", "Cy (other class)", "bob (other teacher)", "no session"):
        response = clients[actor].post(endpoint, {**body, "task": task}, content_type="application/json")
        assert response.status_code == 400 and task in response.json()["error"], (actor, response.content)
    assert Run.objects.count() == before
