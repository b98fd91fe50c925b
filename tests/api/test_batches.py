"""peftlab.runs.batches: validate every lane, store a batch in one transaction, dispatch on commit."""

import pytest

from peftlab.runs.batches import BatchRequestError, batch_status, create_batch, lanes_of
from peftlab.runs.models import Batch, Run

pytestmark = pytest.mark.django_db


def test_it_stores_one_run_per_lane_and_dispatches_them_in_lane_order_after_commit(
    sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        batch = create_batch(
            "rank-sweep",
            "sentiment",
            5,
            7,
            [("lora", {"rank": 2}), ("lora", {"rank": 4}), ("full", {})],
            config={"ranks": [2, 4]},
        )
    assert sent == []  # nothing leaves before the transaction commits
    for callback in callbacks:
        callback()
    runs = lanes_of(batch)
    assert [run_id for run_id, _ in sent] == [r.pk for r in runs]
    assert [(r.lane, r.method, r.params.get("rank")) for r in runs] == [
        (0, "lora", 2),
        (1, "lora", 4),
        (2, "full", None),
    ]
    assert all((r.task, r.steps, r.seed, r.status, r.batch_id) == ("sentiment", 5, 7, "queued", batch.pk) for r in runs)
    assert runs[2].params == {"lr": 1.5e-4, "batch_size": 16, "eval_every": 25}  # defaults filled in
    assert (batch.kind, batch.task, batch.steps, batch.seed, batch.config) == (
        "rank-sweep",
        "sentiment",
        5,
        7,
        {"ranks": [2, 4]},
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (("race", "sentiment", 5, 0, [("lora", {}), ("magic", {})]), "lane 2: unknown method 'magic'"),
        (("race", "sentiment", 5, 0, [("bitfit", {"rank": 4})]), "lane 1: 'rank' does not apply to bitfit"),
        (("race", "nope", 5, 0, [("lora", {})]), "unknown task 'nope'"),
        (("race", "sentiment", 0, 0, [("lora", {})]), "steps must be between 1 and 2000"),
        (("race", "sentiment", 5, 0, []), "between 1 and 24 lanes (got 0)"),
        (("sprint", "sentiment", 5, 0, [("lora", {})]), "unknown batch kind 'sprint'"),
    ],
)
def test_it_refuses_bad_input_and_stores_nothing(sent, args, message):
    with pytest.raises(BatchRequestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_batch(*args)
    assert not Batch.objects.exists() and not Run.objects.exists() and sent == []


def test_a_caller_can_lower_the_lane_limit(sent):
    with pytest.raises(BatchRequestError, match="between 1 and 2 lanes"):
        create_batch("race", "sentiment", 5, 0, [("lora", {})] * 3, max_lanes=2)


@pytest.mark.parametrize(
    "statuses, status",
    [
        (["succeeded", "running", "queued"], "running"),
        (["succeeded", "queued"], "running"),
        (["succeeded", "succeeded"], "succeeded"),
        (["succeeded", "failed", "cancelled"], "failed"),
        (["succeeded", "cancelled"], "cancelled"),
    ],
)
def test_the_batch_status_sums_up_its_lanes(statuses, status):
    assert batch_status(statuses) == status
