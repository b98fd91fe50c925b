"""P23/P24 experiments: the train_examples run parameter (validation and the balanced subset), the
experiment plans, and the experiment API (in-process; one real sweep through the embedded lab)."""

import json
from collections import Counter

import pytest
from django.test import Client

from peftlab.runs.models import Batch, EvalPoint, Point, Run
from simulations import experiments
from workers import base_model, datasets, encoding, training
from workers.methods import RunRequestError, validate_run
from workers.subsets import balanced_subset

# ---- train_examples: validation -----------------------------------------------------------------


def test_train_examples_is_optional_and_left_out_when_unset():
    assert "train_examples" not in validate_run("lora", "sentiment", 5, 0, {}).params
    assert "train_examples" not in validate_run("bitfit", "sentiment", 5, 0, {"train_examples": None}).params
    assert validate_run("full", "topic", 5, 0, {"train_examples": 100}).params["train_examples"] == 100


@pytest.mark.parametrize(
    "value, message",
    [
        (15, "train_examples must be between 16 and 800 (got 15)"),
        (801, "train_examples must be between 16 and 800 (got 801)"),
        (32.5, "train_examples must be a whole number"),
        ("64", "train_examples must be a number"),
        (True, "train_examples must be a number"),
    ],
)
def test_train_examples_out_of_bounds_is_refused(value, message):
    with pytest.raises(RunRequestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_run("lora", "sentiment", 5, 0, {"train_examples": value})


def test_the_bound_is_the_tasks_own_training_size():
    size = datasets.load_task("topic").train_size
    validate_run("lora", "topic", 5, 0, {"train_examples": size})
    with pytest.raises(RunRequestError, match=f"between 16 and {size}"):
        validate_run("lora", "topic", 5, 0, {"train_examples": size + 1})


# ---- train_examples: the subset ------------------------------------------------------------------


def test_the_subset_is_balanced_deterministic_and_nested():
    labels = [0] * 70 + [1] * 20 + [2] * 10
    sub = balanced_subset(labels, 30, seed=3)
    assert len(sub) == len(set(sub)) == 30 and sub == sorted(sub)
    assert Counter(labels[i] for i in sub) == {0: 10, 1: 10, 2: 10}
    assert balanced_subset(labels, 30, seed=3) == sub
    assert balanced_subset(labels, 30, seed=4) != sub
    # A class that runs out leaves the rest to the others.
    assert Counter(labels[i] for i in balanced_subset(labels, 50, seed=3)) == {0: 20, 1: 20, 2: 10}
    # The small subset lies inside the larger one of the same seed.
    assert set(balanced_subset(labels, 12, seed=3)) <= set(sub)
    counts = Counter(labels[i] for i in balanced_subset(labels, 31, seed=3))
    assert sorted(counts.values()) == [10, 10, 11]


def test_the_subset_refuses_impossible_sizes():
    with pytest.raises(ValueError):
        balanced_subset([0, 1], 3, seed=0)


def test_the_engine_trains_on_the_subset_and_keeps_the_validation_split():
    full_train, val = encoding.encode_task("sentiment")
    sub = encoding.train_subset(full_train, 32, seed=0)
    assert len(sub.labels) == 32 and Counter(sub.labels) == {0: 16, 1: 16}
    assert encoding.train_subset(full_train, None, seed=0) is full_train
    spec = validate_run("lora", "sentiment", 2, 0, {"rank": 1, "train_examples": 32, "batch_size": 8, "eval_every": 0})
    metrics = training.train(spec, lambda points, evals: True)
    assert metrics["train_examples"] == 32
    assert encoding.encode_task("sentiment")[1] is val and len(val.labels) == datasets.load_task("sentiment").val_size


# ---- plans (pure) --------------------------------------------------------------------------------


def test_the_default_rank_sweep_is_six_ranks_at_two_sizes():
    lanes, config = experiments.plan("rank", 800)
    assert config == {"ranks": [1, 2, 4, 8, 16, 64], "train_sizes": [64, 800]}
    assert len(lanes) == 12
    assert [lane.params for lane in lanes[:3]] == [
        {"rank": 1, "train_examples": 64},
        {"rank": 1, "train_examples": 800},
        {"rank": 2, "train_examples": 64},
    ]


def test_the_default_target_sweep_and_its_expected_parameters():
    lanes, config = experiments.plan("targets", 800)
    assert [lane.label for lane in lanes] == ["Q", "QV", "QKVO", "QKVO+FFN"]
    dims = base_model.dimensions()
    counts = [
        experiments.expected_trainable(validate_run("lora", "sentiment", 1, 0, lane.params).params, dims, 2)
        for lane in lanes
    ]
    d, f, layers, head = dims.hidden, dims.intermediate, dims.layers, dims.hidden * 2 + 2
    assert counts[0] == 8 * 2 * d * layers + head
    assert counts[3] == 8 * (4 * 2 * d + 2 * (d + f)) * layers + head
    assert counts == sorted(counts)


@pytest.mark.parametrize(
    "kind, options, message",
    [
        ("rank", {"ranks": []}, "ranks must be a non-empty list"),
        ("rank", {"ranks": [4, 4]}, "ranks has a value twice"),
        ("rank", {"ranks": list(range(1, 10))}, "at most 8"),
        ("rank", {"train_sizes": [64, 128, 256]}, "at most 2"),
        ("rank", {"ranks": ["8"]}, "whole numbers"),
        ("rank", {"rank": 8}, "rank applies to a targets experiment"),
        ("targets", {"ranks": [8]}, "apply to a rank sweep"),
        ("sweep", {}, "unknown experiment kind 'sweep'"),
    ],
)
def test_bad_plans_are_refused(kind, options, message):
    with pytest.raises(experiments.ExperimentRequestError, match=message):
        experiments.plan(kind, 800, **options)


def test_the_final_training_loss_is_the_mean_of_the_last_steps():
    assert experiments.final_train_loss([]) is None
    assert experiments.final_train_loss([9.0] * 5 + [1.0] * 10) == 1.0
    assert experiments.final_train_loss([2.0, 4.0]) == 3.0


# ---- the API, in-process -------------------------------------------------------------------------


def post(client, body):
    return client.post("/api/experiments", data=json.dumps(body), content_type="application/json")


@pytest.mark.django_db
def test_a_rank_sweep_is_a_batch_of_lora_runs(csrf_client, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            csrf_client, {"kind": "rank", "task": "topic", "steps": 5, "seed": 2, "ranks": [8, 1], "train_sizes": [32]}
        )
    assert response.status_code == 201, response.content
    body = response.json()
    batch = Batch.objects.get(pk=body["id"])
    assert (batch.kind, batch.task, batch.steps, batch.seed) == ("rank-sweep", "topic", 5, 2)
    assert batch.config == {"ranks": [1, 8], "train_sizes": [32]}
    runs = list(batch.runs.order_by("lane"))
    assert [(r.lane, r.method, r.params["rank"], r.params["train_examples"]) for r in runs] == [
        (0, "lora", 1, 32),
        (1, "lora", 8, 32),
    ]
    assert [run_id for run_id, _ in sent] == [r.pk for r in runs]
    assert body["status"] == "running" and [r["status"] for r in body["runs"]] == ["queued", "queued"]
    row = body["runs"][0]
    assert row["label"] == "r=1, 32 examples" and row["url"] == f"/train/?run={runs[0].pk}"
    assert row["trainable_params_expected"] == experiments.expected_trainable(
        runs[0].params, base_model.dimensions(), 4
    )
    assert row["val_accuracy"] is None and row["train_loss"] is None


@pytest.mark.django_db
def test_a_target_sweep_has_four_lanes_at_one_rank(csrf_client, sent):
    response = post(csrf_client, {"kind": "targets", "task": "sentiment", "steps": 3, "rank": 4})
    assert response.status_code == 201, response.content
    runs = list(Batch.objects.get(kind="target-sweep").runs.order_by("lane"))
    assert [r.params["target_modules"] for r in runs] == [list(t) for t in experiments.TARGET_SETS.values()]
    assert {r.params["rank"] for r in runs} == {4}
    assert [r["label"] for r in response.json()["runs"]] == ["Q", "QV", "QKVO", "QKVO+FFN"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, message",
    [
        ({"kind": "rank", "task": "nope"}, "unknown task 'nope'"),
        ({"kind": "race", "task": "sentiment"}, "unknown experiment kind 'race'"),
        ({"kind": "rank", "task": "sentiment", "steps": 0}, "steps"),
        ({"kind": "rank", "task": "sentiment", "ranks": [1, 300]}, "rank must be between 1 and 256 (got 300)"),
        ({"kind": "rank", "task": "sentiment", "train_sizes": [8]}, "train_examples must be between 16 and 800"),
        ({"kind": "rank", "task": "topic", "train_sizes": [64, 5000]}, "train_examples must be between 16 and 600"),
        ({"kind": "rank", "task": "sentiment", "ranks": "1,2"}, "ranks"),
        ({"kind": "targets", "task": "sentiment", "rank": 0}, "rank must be between 1"),
        ({"kind": "targets", "task": "sentiment", "ranks": [1]}, "apply to a rank sweep"),
        ({"kind": "rank", "task": "sentiment", "colour": "red"}, "colour"),
    ],
)
def test_bad_experiments_get_400_and_store_nothing(csrf_client, sent, body, message):
    response = post(csrf_client, body)
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]
    assert not Batch.objects.exists() and not Run.objects.exists() and sent == []


@pytest.mark.django_db
def test_an_experiment_needs_the_csrf_token(sent):
    response = post(Client(enforce_csrf_checks=True), {"kind": "rank", "task": "sentiment"})
    assert response.status_code == 403 and "CSRF" in response.json()["error"]
    assert not Batch.objects.exists()


@pytest.mark.django_db
def test_get_and_list_report_measurements_and_finished_experiments(csrf_client, sent):
    first = post(
        csrf_client, {"kind": "rank", "task": "sentiment", "steps": 12, "ranks": [2], "train_sizes": [16]}
    ).json()
    second = post(csrf_client, {"kind": "targets", "task": "sentiment", "steps": 12}).json()
    run = Run.objects.get(pk=first["runs"][0]["id"])
    # What a worker would write: twelve steps, an evaluation, metrics.
    Point.objects.bulk_create([Point(run=run, step=s, loss=float(s), elapsed=s / 10) for s in range(1, 13)])
    EvalPoint.objects.create(run=run, step=12, val_loss=0.9, val_accuracy=0.7)
    Run.objects.filter(pk=run.pk).update(
        status=Run.SUCCEEDED,
        metrics={
            "trainable_params": 1234,
            "val_accuracy": 0.7,
            "val_loss": 0.9,
            "train_examples": 16,
            "train_seconds": 1.5,
        },
    )

    got = csrf_client.get(f"/api/experiments/{first['id']}").json()
    row = got["runs"][0]
    assert got["status"] == "succeeded" and got["kind"] == "rank"
    assert (row["val_accuracy"], row["val_loss"], row["trainable_params"], row["train_examples_used"]) == (
        0.7,
        0.9,
        1234,
        16,
    )
    assert row["train_loss"] == sum(range(3, 13)) / 10  # the last ten steps

    assert [e["id"] for e in csrf_client.get("/api/experiments").json()] == [second["id"], first["id"]]
    assert [e["id"] for e in csrf_client.get("/api/experiments?kind=targets").json()] == [second["id"]]
    assert [e["id"] for e in csrf_client.get("/api/experiments?kind=rank&finished=true").json()] == [first["id"]]
    assert csrf_client.get("/api/experiments?kind=targets&finished=true").json() == []
    assert csrf_client.get("/api/experiments?task=topic").json() == []
    assert csrf_client.get("/api/experiments?kind=nope").status_code == 400
    assert csrf_client.get("/api/experiments/999999").status_code == 404


@pytest.mark.django_db
def test_the_plan_shows_expected_parameters_before_anything_runs(csrf_client):
    body = csrf_client.get("/api/experiments/plan?kind=targets&task=sentiment").json()
    assert [r["label"] for r in body["runs"]] == ["Q", "QV", "QKVO", "QKVO+FFN"]
    assert all(r["trainable_params_expected"] > 0 for r in body["runs"])
    rank = csrf_client.get("/api/experiments/plan?kind=rank&task=topic").json()
    assert len(rank["runs"]) == 12 and rank["config"]["train_sizes"] == [64, 600]
    assert csrf_client.get("/api/experiments/plan?kind=targets&task=sentiment&rank=999").status_code == 400
    assert csrf_client.get("/api/experiments/plan?kind=nope&task=sentiment").status_code == 400
    assert not Run.objects.exists()


# ---- real processes ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_tiny_rank_sweep_runs_to_the_end_on_the_real_worker(embedded_lab):
    response = embedded_lab.post(
        "/api/experiments", {"kind": "rank", "task": "sentiment", "steps": 2, "ranks": [1, 8], "train_sizes": [32]}
    )
    assert response.status_code == 201, response.text
    experiment = response.json()
    for row in experiment["runs"]:
        embedded_lab.wait_for(row["id"], timeout=600)
    done = embedded_lab.client.get(f"/api/experiments/{experiment['id']}").json()
    assert done["status"] == "succeeded", done
    for row in done["runs"]:
        assert row["train_examples_used"] == 32
        assert row["trainable_params"] == row["trainable_params_expected"]
        assert 0 <= row["val_accuracy"] <= 1 and row["train_loss"] > 0 and row["val_loss"] > 0
    small, large = done["runs"]
    assert (small["rank"], large["rank"]) == (1, 8) and small["trainable_params"] < large["trainable_params"]
