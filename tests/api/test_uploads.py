"""Train on your own CSV: every validation rule of POST /api/datasets with its exact status and
nothing stored on a refusal; who sees and may train on an upload; a real training run on one.

The checks themselves are peftlab/api/uploads.py (pure); these tests go through the API with a
browser-like client (CSRF enforced), so the status, the message and the empty tables are what a
learner gets."""

import json
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.wsgi import get_wsgi_application
from django.test import Client

from peftlab.api import uploads
from peftlab.runs import tasks
from peftlab.runs.models import Dataset, DatasetExample, Run
from tests.support.classrooms import browser, classroom, student_browser, teacher, teacher_browser
from tests.support.reproduce import assert_no_server_path, printed_losses, run_script
from workers import datasets

pytestmark = pytest.mark.django_db

EXAMPLE = Path(__file__).resolve().parents[2] / "static" / "examples" / "peftlab-example.csv"
FORMULA = "=cmd()|' /C calc'!A0"
RUN = {"method": "lora", "steps": 3, "seed": 0, "params": {"rank": 4, "batch_size": 8, "eval_every": 0}}


@pytest.fixture(autouse=True)
def artifacts(settings, tmp_path):
    settings.PEFTLAB_ARTIFACTS_DIR = tmp_path / "artifacts"


def csv_bytes(rows, header="text,label") -> bytes:
    lines = [header] + [f"{text},{label}" for text, label in rows]
    return ("\n".join(lines) + "\n").encode()


def balanced(labels=("yes", "no"), per_label=5, start=0) -> list[tuple[str, str]]:
    return [(f"example number {start + i} of {label}", label) for label in labels for i in range(per_label)]


GOOD = csv_bytes(balanced())


def upload(client, data: bytes, name="my data", file_name="mine.csv", **extra):
    fields = {"file": SimpleUploadedFile(file_name, data, content_type="text/csv")}
    if name is not None:
        fields["name"] = name
    return client.post("/api/datasets", fields, **extra)


def error_of(response) -> str:
    return response.json()["error"]


def nothing_stored():
    return Dataset.objects.count() == 0 and DatasetExample.objects.count() == 0


# --- validation: each refusal, its status and message, and nothing stored ------------------------
REFUSALS = [
    (
        "not UTF-8",
        b"text,label\ncaf\xe9 au lait,yes\n",
        400,
        "the file is not UTF-8 (byte 0xe9 at position 14, line 2)",
    ),
    (
        "not UTF-8 after a BOM",
        b"\xef\xbb\xbftext,label\nok,yes\n\xff,no\n",
        400,
        "not UTF-8 (byte 0xff at position 21, line 3)",
    ),
    (
        "missing column",
        b"text\nhello\nworld\n",
        400,
        "the first line must be the header text,label (got 'text'): missing column label.",
    ),
    (
        "missing columns",
        b"sentence,class\nhello,a\n",
        400,
        "missing columns text, label; extra columns 'sentence', 'class'",
    ),
    ("extra column", b"text,label,score\nhello,yes,1\n", 400, "extra column 'score'"),
    ("a column twice", b"text,label,text\nhello,yes,again\n", 400, "extra column 'text'"),
    ("columns swapped", b"label,text\nyes,hello\n", 400, "the columns are in the order 'label,text'"),
    ("semicolons", b"text;label\nhello;yes\n", 400, "separated by something other than commas"),
    ("empty file", b"", 400, "the file is empty"),
    ("blank file", b"\n\n  \n", 400, "the file is empty"),
    ("header only", b"text,label\n", 400, "the file is empty: it has the header text,label but no examples"),
    (
        "a row of three cells",
        csv_bytes(balanced()[:2] + [("good, but slow", "yes")]),
        400,
        "line 4: 3 cells, expected 2 (text,label)",
    ),
    ("empty text", csv_bytes(balanced()[:1] + [("  ", "yes")]), 400, "line 3: the text is empty"),
    ("empty label", csv_bytes(balanced()[:1] + [("hello", "")]), 400, "line 3: the label is empty"),
    (
        "one label only",
        csv_bytes(balanced(labels=("yes",), per_label=10)),
        400,
        "every example has the label 'yes': a classifier needs at least 2 different labels",
    ),
    (
        "too many labels",
        csv_bytes(balanced(labels=[f"l{i}" for i in range(21)], per_label=4)),
        400,
        "the file has more than 20 different labels ('l20' on line 82 is the 21st); at most 20",
    ),
    ("too many rows", csv_bytes(balanced(per_label=2501)), 400, "the file has 5,002 examples; at most 5,000"),
    (
        "too few of a label",
        csv_bytes(balanced(("yes",), 6) + balanced(("no",), 3)),
        400,
        "each label needs at least 4 examples, so that both the training and the validation split have some: 'no' has 3",
    ),
    (
        "a text too long",
        csv_bytes(balanced() + [("x" * 1001, "yes")]),
        400,
        "line 12: the text has 1,001 characters; at most 1,000",
    ),
    (
        "a label too long",
        csv_bytes(balanced() + [("hello", "y" * 41)]),
        400,
        "line 12: the label has 41 characters; at most 40",
    ),
    ("a NUL byte", csv_bytes(balanced()) + b"nul\x00here,yes\n", 400, "line 12"),
    ("broken quoting", csv_bytes(balanced()) + b'"open quote,yes\n', 400, "not valid CSV"),
    (
        "just over the size",
        b"text,label\n" + b"a" * (uploads.MAX_BYTES - 11) + b",b\n",
        413,
        "the file is 2,000,003 bytes; at most 2 MB (2,000,000 bytes)",
    ),
    ("far over the size", b"x" * 3_100_000, 413, "the file is 3.1 MB; at most 2 MB"),
]


@pytest.mark.parametrize("data, status, message", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_a_bad_csv_is_refused_with_its_reason_and_nothing_is_stored(csrf_client, data, status, message):
    response = upload(csrf_client, data)
    assert response.status_code == status, response.content
    assert message in error_of(response)
    assert nothing_stored()


def test_a_body_far_over_the_limit_is_refused_before_it_is_read(csrf_client, monkeypatch):
    """The declared Content-Length alone decides: the multipart parser never runs."""
    from django.http import multipartparser

    monkeypatch.setattr(multipartparser.MultiPartParser, "parse", lambda self: pytest.fail("the body was parsed"))
    response = upload(csrf_client, b"x" * 3_100_000)
    assert response.status_code == 413 and "the file is 3.1 MB; at most 2 MB" in error_of(response)
    assert nothing_stored()


@pytest.mark.parametrize(
    "fields, status, message",
    [
        ({}, 400, "choose a CSV file to upload (the form field 'file')"),
        ({"name": "no file"}, 400, "choose a CSV file to upload"),
        (
            {"file": [SimpleUploadedFile("a.csv", GOOD), SimpleUploadedFile("b.csv", GOOD)]},
            400,
            "one CSV file at a time (got 2)",
        ),
        ({"file": SimpleUploadedFile("a.csv", GOOD), "name": "n" * 81}, 400, "the name has 81 characters; at most 80"),
        ({"file": SimpleUploadedFile("a.csv", GOOD), "name": "two\nlines"}, 400, "the name must be one line of text"),
        ({"file": SimpleUploadedFile("   .csv", GOOD)}, 400, "give the dataset a name"),
    ],
)
def test_a_bad_form_is_refused_and_nothing_is_stored(csrf_client, fields, status, message):
    response = csrf_client.post("/api/datasets", fields)
    assert response.status_code == status and message in error_of(response)
    assert nothing_stored()


def test_a_json_body_is_refused_with_how_to_send_the_file(csrf_client):
    response = csrf_client.post("/api/datasets", json.dumps({"file": "text,label"}), content_type="application/json")
    assert response.status_code == 400 and "choose a CSV file" in error_of(response)
    response = csrf_client.post("/api/datasets", b"--x\r\nbroken", content_type="multipart/form-data; boundary=")
    assert response.status_code == 400 and "multipart/form-data" in error_of(response)
    assert nothing_stored()


def test_an_upload_without_the_csrf_token_is_refused():
    client = Client(enforce_csrf_checks=True)
    client.get("/")  # the cookie, but no X-CSRFToken header
    response = upload(client, GOOD)
    assert response.status_code == 403 and "CSRF" in error_of(response)
    assert nothing_stored()


def test_uploads_count_against_the_submission_rate_limit(csrf_client, settings):
    settings.PEFTLAB_SUBMISSIONS_PER_MINUTE = 2
    assert upload(csrf_client, GOOD).status_code == 201
    assert upload(csrf_client, b"").status_code == 400  # a refused upload counts too
    response = upload(csrf_client, GOOD)
    assert response.status_code == 429 and "too many run submissions" in error_of(response)
    assert int(response["Retry-After"]) >= 1
    assert Dataset.objects.count() == 1


def test_each_person_keeps_a_bounded_number_of_datasets(csrf_client, settings):
    settings.PEFTLAB_DATASETS_PER_OWNER = 2
    first = upload(csrf_client, GOOD).json()
    upload(csrf_client, GOOD)
    response = upload(csrf_client, GOOD)
    assert response.status_code == 409 and "you have 2 uploaded datasets" in error_of(response)
    assert Dataset.objects.count() == 2
    assert csrf_client.delete(f"/api/datasets/{first['id']}").status_code == 204
    assert upload(csrf_client, GOOD).status_code == 201


# --- what is stored ---------------------------------------------------------------------------------
def test_a_good_csv_is_stored_with_a_seeded_split_that_keeps_every_label_in_both(csrf_client):
    data = b"\xef\xbb\xbf" + EXAMPLE.read_bytes().replace(b"\n", b"\r\n")  # Excel's BOM and line ends
    response = upload(csrf_client, data, name="  Support tickets  ", file_name="tickets.csv")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["task"] == f"upload-{body['id']}" and body["name"] == "Support tickets"
    assert body["labels"] == ["billing", "bug", "praise"]  # in order of first appearance
    assert (body["train_size"], body["val_size"]) == (24, 6)  # 20 % of each label's 10
    detail = csrf_client.get(f"/api/datasets/{body['id']}").json()
    assert detail["label_counts"] == [{"label": label, "train": 8, "val": 2} for label in body["labels"]]
    assert detail["rows"][0] == {
        "text": "I was charged twice for the same month.",
        "label": "billing",
        "split": detail["rows"][0]["split"],
    }
    assert len(detail["rows"]) == 10 and detail["uploaded_by"] == "you" and detail["may_delete"]
    # The same file again gives the same split.
    again = upload(csrf_client, data).json()
    splits = [
        list(Dataset.objects.get(pk=pk).examples.values_list("split", flat=True)) for pk in (body["id"], again["id"])
    ]
    assert splits[0] == splits[1]


def test_a_file_at_every_limit_is_taken(csrf_client):
    """5,000 examples, 20 labels, a text of 1,000 characters, a label of 40, just under 2 MB."""
    labels = [f"label {i:02d}".ljust(uploads.MAX_LABEL_CHARS, "x") for i in range(uploads.MAX_LABELS)]
    rows = [(f"{i} " + "w" * 350, labels[i % len(labels)]) for i in range(uploads.MAX_ROWS - 1)]
    rows.append(("t" * uploads.MAX_TEXT_CHARS, labels[0]))
    data = csv_bytes(rows)
    assert 1_900_000 < len(data) <= uploads.MAX_BYTES
    response = upload(csrf_client, data)
    assert response.status_code == 201, response.content
    body = response.json()
    assert len(body["labels"]) == 20 and body["train_size"] + body["val_size"] == 5000
    assert (body["train_size"], body["val_size"]) == (4000, 1000)
    assert DatasetExample.objects.filter(dataset_id=body["id"]).count() == 5000


def test_the_name_defaults_to_the_file_name(csrf_client):
    assert upload(csrf_client, GOOD, name=None, file_name="reviews 2024.csv").json()["name"] == "reviews 2024"


def test_the_split_is_seeded_and_stratified():
    parsed = uploads.parse_csv(csv_bytes(balanced(("a", "b", "c"), per_label=4) + balanced(("d",), 50)))
    sides = uploads.split(parsed)
    assert sides == uploads.split(parsed) and sides != uploads.split(parsed, seed=1)
    for label in range(4):
        mine = [s for s, (_, lab) in zip(sides, parsed.rows) if lab == label]
        assert mine.count(uploads.VAL) == (10 if label == 3 else 1) and uploads.TRAIN in mine


FORMULAS = [FORMULA, "=1+1", "+SUM(A1:A3)", "-2+3", "@SUM(1)", '=HYPERLINK("http://x")']


def formula_csv() -> bytes:
    """The example CSV with formula-like texts under each label (quoted as CSV requires)."""
    extra = "".join(
        f'"{text.replace(chr(34), chr(34) * 2)}",{label}\n'
        for text, label in zip(FORMULAS * 2, ["billing", "bug", "praise"] * 4)
    )
    return EXAMPLE.read_bytes() + extra.encode()


def test_formula_like_cells_are_stored_as_their_literal_text(csrf_client):
    body = upload(csrf_client, formula_csv()).json()
    stored = list(DatasetExample.objects.filter(dataset_id=body["id"]).values_list("text", flat=True))
    for text in FORMULAS:
        assert text in stored  # the characters, not a value computed from them
    task = datasets.load_task(body["task"])
    assert FORMULA in [e.text for e in task.train + task.val]


def test_the_example_csv_is_valid_and_linked_from_the_training_page(client):
    parsed = uploads.parse_csv(EXAMPLE.read_bytes())
    assert len(parsed.labels) == 3 and len(parsed.rows) == 30
    page = client.get("/train/").content.decode()
    assert 'href="/static/examples/peftlab-example.csv"' in page
    assert f"At most 2 MB and {uploads.MAX_ROWS:,} rows" in page and "Download an example CSV" in page


# --- who sees an upload, and who may train on it ------------------------------------------------
@pytest.fixture
def world():
    ada, bob = teacher("ada"), teacher("bob")
    first, second = classroom(ada, "First"), classroom(bob, "Second")
    a_client, _ = student_browser(first, "Ana")
    b_client, _ = student_browser(first, "Ben")
    c_client, _ = student_browser(second, "Cy")
    return {
        "student A": a_client,
        "student B (same class)": b_client,
        "student C (other class)": c_client,
        "teacher of A's class": teacher_browser(ada),
        "other teacher": teacher_browser(bob),
        "visitor": browser(),
        "another visitor": browser(),
    }


def unknown_task(name: str) -> str:
    return f"unknown task {name!r}; choose from {datasets.task_names()}"


def post_json(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


UPLOADERS = {
    # who uploads: who else may see and use it
    "student A": {"student A", "teacher of A's class"},
    "teacher of A's class": {"teacher of A's class", "student A", "student B (same class)"},
    "visitor": {"visitor"},
}


@pytest.mark.parametrize("uploader", list(UPLOADERS))
def test_an_upload_is_seen_and_trained_on_only_by_those_who_may(world, uploader, sent):
    body = upload(world[uploader], GOOD).json()
    task, ids = body["task"], body["id"]
    for viewer, client in world.items():
        allowed = viewer in UPLOADERS[uploader]
        detail = client.get(f"/api/datasets/{ids}")
        assert detail.status_code == (200 if allowed else 404), viewer
        if not allowed:
            assert error_of(detail) == f"there is no dataset {ids}"
        assert (ids in [d["id"] for d in client.get("/api/datasets").json()]) == allowed, viewer
        assert (task in [t["name"] for t in client.get("/api/tasks").json()]) == allowed, viewer
        run = post_json(client, "/api/runs", {**RUN, "task": task})
        if allowed:
            assert run.status_code == 201, (viewer, run.content)
        else:
            # Exactly what a task that does not exist gets: nobody learns which uploads exist.
            assert (run.status_code, error_of(run)) == (400, unknown_task(task)), viewer
    missing = post_json(world["visitor"], "/api/runs", {**RUN, "task": "upload-999999"})
    assert (missing.status_code, error_of(missing)) == (400, unknown_task("upload-999999"))


def test_a_visitors_run_on_their_upload_is_not_shown_to_other_visitors(world, sent):
    mine, other = world["visitor"], world["another visitor"]
    task = upload(mine, GOOD).json()["task"]
    run = post_json(mine, "/api/runs", {**RUN, "task": task}).json()
    public = post_json(mine, "/api/runs", {**RUN, "task": "sentiment"}).json()
    assert mine.get(f"/api/runs/{run['id']}").status_code == 200
    assert other.get(f"/api/runs/{run['id']}").status_code == 404
    assert world["other teacher"].get(f"/api/runs/{run['id']}").status_code == 404
    assert other.get(f"/api/runs/{public['id']}").status_code == 200  # public runs stay public
    assert [r["id"] for r in other.get("/api/runs").json()] == [public["id"]]
    # Its reproduce script carries the upload's examples (seen only by who may see the run).
    script = mine.get(f"/api/runs/{run['id']}/script.py")
    assert script.status_code == 200
    assert all(repr(e.text) in script.content.decode() for e in datasets.load_task(task).train)
    assert other.get(f"/api/runs/{run['id']}/script.py").status_code == 404


def test_races_and_sweeps_take_an_upload_for_those_who_may(world, sent):
    owner, other = world["student A"], world["student C (other class)"]
    data = csv_bytes(balanced(per_label=12))
    task = upload(owner, data).json()["task"]
    race = post_json(owner, "/api/races", {"task": task, "steps": 3, "methods": ["lora", "bitfit"]})
    assert race.status_code == 201, race.content
    lanes = race.json()["runs"]
    assert [r["task"] for r in lanes] == [task, task]
    assert lanes[0]["predictions"]["fp32"]["seq"] > 2  # the memory prediction reads the upload's texts
    refused = post_json(other, "/api/races", {"task": task, "steps": 3, "methods": ["lora"]})
    assert (refused.status_code, error_of(refused)) == (400, unknown_task(task))

    sweep = post_json(world["teacher of A's class"], "/api/experiments", {"kind": "targets", "task": task, "steps": 3})
    assert sweep.status_code == 201, sweep.content
    refused = post_json(other, "/api/experiments", {"kind": "targets", "task": task, "steps": 3})
    assert (refused.status_code, error_of(refused)) == (400, unknown_task(task))
    assert other.get(f"/api/experiments/plan?kind=targets&task={task}").status_code == 400
    assert owner.get(f"/api/experiments/plan?kind=targets&task={task}").status_code == 200
    assert owner.get(f"/api/pareto?task={task}").status_code == 200
    assert other.get(f"/api/pareto?task={task}").status_code == 400
    simulated = owner.get(f"/api/playgrounds/four-method-race/simulated?task={task}")
    assert simulated.status_code == 400 and "no fitted runs" in error_of(simulated)


def test_who_may_delete_a_dataset(world, sent):
    ana, ben, ada = world["student A"], world["student B (same class)"], world["teacher of A's class"]
    mine = upload(ana, GOOD).json()["id"]
    shared = upload(ada, GOOD).json()["id"]
    assert ben.delete(f"/api/datasets/{mine}").status_code == 404  # not his to see
    assert ana.delete(f"/api/datasets/{shared}").status_code == 404  # the teacher's: seen, not hers to delete
    no_token = Client(enforce_csrf_checks=True)
    no_token.cookies = ana.cookies  # her session, but no X-CSRFToken header
    assert no_token.delete(f"/api/datasets/{mine}").status_code == 403
    assert ada.delete(f"/api/datasets/{mine}").status_code == 204  # the teacher of her class
    assert ana.delete(f"/api/datasets/{mine}").status_code == 404
    assert ada.delete(f"/api/datasets/{shared}").status_code == 204
    assert nothing_stored()


@pytest.mark.django_db(transaction=True)
def test_a_queued_run_whose_dataset_was_deleted_fails_with_a_message(csrf_client, sent, settings):
    body = upload(csrf_client, GOOD).json()
    run = post_json(csrf_client, "/api/runs", {**RUN, "task": body["task"]}).json()
    assert csrf_client.delete(f"/api/datasets/{body['id']}").status_code == 204
    assert tasks.train_run(run["id"]) == "failed"
    assert Run.objects.get(pk=run["id"]).error == unknown_task(body["task"])


# --- training on an upload, for real ---------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_run_trains_on_an_uploaded_csv(csrf_client, sent, settings, tmp_path):
    body = upload(csrf_client, formula_csv(), name="tickets").json()
    task = datasets.load_task(body["task"])
    assert FORMULA in [e.text for e in task.train]  # trained on, not only evaluated
    response = post_json(csrf_client, "/api/runs", {**RUN, "task": body["task"]})
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    assert sent == [(run_id, "cpu")]
    assert tasks.train_run(run_id) == "succeeded"
    run = csrf_client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "succeeded" and [p["step"] for p in run["points"]] == [1, 2, 3]
    metrics = run["metrics"]
    labels = ["billing", "bug", "praise"]
    assert metrics["demo"]["labels"] == labels and all(len(p) == 3 for p in metrics["demo"]["probs"])
    # The head has a row per uploaded label: the formula counts 3 labels, and so does the model.
    assert metrics["trainable_params"] == metrics["trainable_params_predicted"]
    two_labels = csv_bytes(balanced(per_label=6))
    other = post_json(csrf_client, "/api/runs", {**RUN, "task": upload(csrf_client, two_labels).json()["task"]}).json()
    assert tasks.train_run(other["id"]) == "succeeded"
    other_metrics = Run.objects.get(pk=other["id"]).metrics
    assert (
        metrics["trainable_params"] - other_metrics["trainable_params"] == 384 + 1
    )  # one more label: a row and a bias
    assert metrics["train_examples"] == body["train_size"] and 0 <= metrics["val_accuracy"] <= 1

    # Its reproduce script, run alone in an empty folder away from the lab (the upload lives in
    # the lab's database: the script carries its examples), gives the run's recorded losses.
    script = csrf_client.get(f"/api/runs/{run_id}/script.py").content.decode()
    assert_no_server_path(script, settings.PEFTLAB_ARTIFACTS_DIR)
    done = run_script(script, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert printed_losses(done.stdout) == pytest.approx([p["loss"] for p in run["points"]], abs=1e-4)


# --- the API never answers 500, whatever is sent -----------------------------------------------
FUZZ_CSRF = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz"
dataset_schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application()).include(
    path_regex="/api/datasets"
)


@dataset_schema.parametrize()
@hypothesis.settings(
    max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=list(hypothesis.HealthCheck)
)
@pytest.mark.django_db(transaction=True)
def test_no_generated_request_to_the_dataset_api_makes_a_server_error(case, sent, settings):
    settings.PEFTLAB_SUBMISSIONS_PER_MINUTE = 0
    response = case.call(headers={"X-CSRFToken": FUZZ_CSRF}, cookies={"csrftoken": FUZZ_CSRF})
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:300]}"
