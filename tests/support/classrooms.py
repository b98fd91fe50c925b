"""Helpers for the classroom tests: teachers, classes, students and their browsers (Django test
clients that enforce CSRF and send the token back, as a page's JavaScript does)."""

from django.contrib.auth import get_user_model
from django.test import Client

from peftlab.classroom.models import Classroom, Student
from peftlab.runs.models import Batch, Run
from workers import methods

PASSWORD = "a long enough passphrase 42"


def browser() -> Client:
    client = Client(enforce_csrf_checks=True)
    client.get("/")
    client.defaults["HTTP_X_CSRFTOKEN"] = client.cookies["csrftoken"].value
    return client


def visitor_owner(client: Client) -> str:
    """The owner key of a visitor's browser, its session made as a first submission makes it."""
    session = client.session
    session["visitor"] = True
    session.save()
    return f"session:{session.session_key}"


def teacher(username: str) -> "get_user_model()":
    return get_user_model().objects.create_user(username, password=PASSWORD)


def teacher_browser(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/")  # the CSRF cookie after the login (which rotates it)
    client.defaults["HTTP_X_CSRFTOKEN"] = client.cookies["csrftoken"].value
    return client


def classroom(user, name="NLP seminar", **settings) -> Classroom:
    return Classroom.objects.create(teacher=user, name=name, **settings)


def join(client: Client, code: str, nickname: str):
    return client.post("/join/", {"code": code, "nickname": nickname})


def student_browser(room: Classroom, nickname: str) -> tuple[Client, Student]:
    client = browser()
    response = join(client, room.code, nickname)
    assert response.status_code == 302, response.content.decode()
    return client, Student.objects.get(classroom=room, nickname=nickname)


def owner_of(student: Student | None) -> str:
    return student.owner if student else "session:someone"


def run_of(
    student: Student | None, status=Run.SUCCEEDED, method="lora", batch=None, lane=0, metrics=None, **fields
) -> Run:
    """A stored run as the worker leaves it (no worker involved); a student's, or public."""
    spec = methods.validate_run(method, "sentiment", 10, 0, {})
    return Run.queue_spec(
        spec,
        status=status,
        steps_done=spec.steps if status == Run.SUCCEEDED else 0,
        batch=batch,
        lane=lane,
        classroom=student.classroom if student else None,
        student=student,
        owner=owner_of(student),
        metrics=metrics or {},
        **fields,
    )


def race_of(student: Student | None, statuses=(Run.SUCCEEDED, Run.SUCCEEDED)) -> Batch:
    batch = Batch.objects.create(
        kind=Batch.RACE, task="sentiment", steps=10, seed=0, config={"methods": ["lora"] * len(statuses)}
    )
    for lane, status in enumerate(statuses):
        run_of(student, status=status, batch=batch, lane=lane)
    return batch
