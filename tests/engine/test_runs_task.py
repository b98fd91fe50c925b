"""The Celery task in-process (its function, not a worker): what it writes for each outcome."""

import io
import zipfile

import pytest
import torch

from peftlab.runs import tasks
from peftlab.runs.models import EvalPoint, Point, Run
from tests.support.training import poison_head
from workers import artifacts, classifier, encoding
from workers.methods import validate_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def queued_run(method="lora", steps=4, **params):
    spec = validate_run(method, "sentiment", steps, 0, {"eval_every": 2, **params})
    return Run.objects.create(method=spec.method, task=spec.task, steps=spec.steps, seed=spec.seed, params=spec.params)


@pytest.fixture(autouse=True)
def artifacts_dir(settings, tmp_path):
    settings.PEFTLAB_ARTIFACTS_DIR = tmp_path
    return tmp_path


def test_it_writes_points_evals_metrics_and_the_adapter():
    run = queued_run()
    assert tasks.train_run(run.pk) == "succeeded"
    run.refresh_from_db()
    assert run.status == "succeeded" and run.steps_done == 4 and run.device == "cpu"
    assert list(Point.objects.filter(run=run).values_list("step", flat=True)) == [1, 2, 3, 4]
    assert list(EvalPoint.objects.filter(run=run).values_list("step", flat=True)) == [2, 4]
    assert run.metrics["trainable_params"] == run.metrics["trainable_params_predicted"]
    assert run.metrics["adapter_bytes"] > 0


def test_it_fails_a_run_whose_loss_is_not_finite_and_takes_the_next(monkeypatch):
    poison_head(monkeypatch)
    bad = queued_run()
    assert tasks.train_run(bad.pk) == "failed"
    bad.refresh_from_db()
    assert "loss became nan at step 1" in bad.error and "smaller learning rate" in bad.error
    monkeypatch.undo()
    good = queued_run()
    assert tasks.train_run(good.pk) == "succeeded"


def test_it_trains_a_run_once_when_its_message_comes_twice():
    run = queued_run(steps=2)
    assert tasks.train_run(run.pk) == "succeeded"
    assert tasks.train_run(run.pk) == "skipped"
    assert Point.objects.filter(run=run).count() == 2


def test_it_serves_the_adapter_as_a_zip_that_loads_back_to_the_same_logits(client, artifacts_dir, tmp_path):
    run = queued_run(method="dora", rank=4)
    spec = validate_run(run.method, run.task, run.steps, run.seed, run.params)
    model = classifier.build_model(spec, 2, torch.device("cpu"))
    with torch.no_grad():
        for _name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)  # as if trained
    artifacts.save(model, spec, ["negative", "positive"], artifacts_dir / str(run.pk))
    assert client.get(f"/api/runs/{run.pk}/adapter").status_code == 409  # still queued
    Run.objects.filter(pk=run.pk).update(status=Run.SUCCEEDED)

    response = client.get(f"/api/runs/{run.pk}/adapter")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    unpacked = tmp_path / "download"
    zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).extractall(unpacked)
    loaded = artifacts.load_trained(unpacked)
    train, _ = encoding.encode_task("sentiment")
    batch = encoding.collate(train.ids[:8], train.labels[:8], torch.device("cpu"))
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(**inputs).logits, model(**inputs).logits, atol=1e-6)
    assert client.get("/api/runs/999/adapter").status_code == 404
