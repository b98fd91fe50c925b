"""The training engine on CPU: real LoRA runs of all-MiniLM-L6-v2, kept short."""

import functools
import threading
import time

import pytest
import torch

from simulations import params as formulas
from tests.support.training import poison_head
from workers import base_model, classifier, datasets, encoding, measure, training
from workers.methods import validate_run

pytestmark = pytest.mark.slow


def lora_spec(steps=30, **params):
    return validate_run("lora", "sentiment", steps, 0, params)


def collect():
    points = []

    def report(batch, evals):
        points.extend(batch)
        return True

    return points, report


def sample_batch(n=8):
    train, _ = encoding.encode_task("sentiment")
    return encoding.collate(train.ids[:n], train.labels[:n], torch.device("cpu"))


def test_it_lowers_the_loss_on_sentiment():
    points, report = collect()
    metrics = training.train(lora_spec(steps=60, lr=3e-3, eval_every=0), report)
    first = sum(p.loss for p in points[:10]) / 10
    last = sum(p.loss for p in points[-10:]) / 10
    assert [p.step for p in points] == list(range(1, 61))
    assert last < first - 0.1
    assert metrics["val_accuracy"] > 0.6


@pytest.mark.parametrize(
    "targets",
    [
        ["query"],
        ["query", "value"],
        ["query", "key", "value", "attention_output"],
        ["query", "key", "value", "attention_output", "ffn"],
    ],
)
@pytest.mark.parametrize("rank", [1, 8])
def test_it_counts_trainable_parameters_as_the_formula_and_peft_do(targets, rank):
    spec = lora_spec(rank=rank, target_modules=targets)
    model = classifier.apply_method(classifier.build_classifier(2, 0), spec)
    dims = base_model.dimensions()
    shapes = [s for t in targets for s in dims.target_shapes(t)]
    head = formulas.classifier_head_params(dims.hidden, 2)
    expected = formulas.lora_model_params(shapes, dims.layers, rank, head)
    trainable, _ = measure.count_params(model)
    peft_trainable, _ = model.get_nb_trainable_parameters()
    assert trainable == peft_trainable == expected
    if targets == ["query", "value"]:
        # The seed documents' convention: 2·d·r per square matrix × matrices × layers.
        assert expected - head == 2 * dims.hidden * rank * 2 * dims.layers


def test_it_starts_exactly_at_the_base_model_because_b_is_zero():
    model = classifier.apply_method(classifier.build_classifier(2, 0), lora_spec(rank=8)).eval()
    batch = sample_batch()
    with torch.no_grad():
        adapted = model(**batch).logits
        with model.disable_adapter():
            base = model(**batch).logits
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and all(torch.count_nonzero(p) == 0 for p in lora_b)
    assert torch.equal(adapted, base)


def test_it_changes_only_lora_and_head_parameters():
    spec = lora_spec(steps=5, rank=4)
    model = classifier.apply_method(classifier.build_classifier(2, 0), spec)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(3):
        loss = model(**sample_batch()).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed, "nothing trained"
    for name in changed:
        assert "lora_" in name or "modules_to_save" in name, name
    assert any("lora_B" in n for n in changed) and any("modules_to_save" in n for n in changed)


def test_it_pads_each_batch_only_to_its_longest_sequence():
    train, _ = encoding.encode_task("sentiment")
    lengths = [len(x) for x in train.ids]
    short = sorted(range(len(lengths)), key=lengths.__getitem__)[:4]
    batch = encoding.collate([train.ids[i] for i in short], [train.labels[i] for i in short], "cpu")
    assert batch["input_ids"].shape[1] == max(lengths[i] for i in short) < max(lengths)
    assert batch["attention_mask"].sum() == sum(lengths[i] for i in short)


def test_each_epoch_draws_every_full_batch_once_and_the_next_epoch_reshuffles():
    train, _ = encoding.encode_task("sentiment")
    size = 16
    epoch = len(train.labels) // size
    stream = encoding.batches(train, size, seed=3)
    drawn = [next(stream) for _ in range(2 * epoch)]
    first = sorted(map(tuple, (ids for batch, _ in drawn[:epoch] for ids in batch)))
    assert all(len(batch) == size for batch, _ in drawn)
    assert first == sorted(map(tuple, train.ids))  # 800 examples: every one once
    again = encoding.batches(train, size, seed=3)
    assert [next(again) for _ in range(2 * epoch)] == drawn
    assert drawn[epoch:] != drawn[:epoch]


def test_it_reads_the_base_weights_from_disk_once_per_process(monkeypatch):
    classifier.load_base()
    loads = classifier.disk_loads

    def no_disk(*args, **kwargs):
        raise AssertionError("the base model was read from disk again")

    import transformers

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", no_disk)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_disk)
    training.train(lora_spec(steps=2), collect()[1])
    training.train(lora_spec(steps=2, rank=2), collect()[1])
    assert classifier.disk_loads == loads == 1


def test_a_run_that_arrives_while_the_warm_up_reads_waits_for_that_read(monkeypatch):
    reads = []

    @functools.cache
    def slow_read():
        reads.append(threading.current_thread().name)
        time.sleep(0.3)
        return object()

    monkeypatch.setattr(classifier, "_read_base", slow_read)
    warming = threading.Thread(target=classifier.warm_up, name="warm-up")
    warming.start()
    while not reads:
        time.sleep(0.01)
    base = classifier.load_base()  # during the read
    warming.join()
    assert reads == ["warm-up"] and base is slow_read()


def test_it_gives_the_same_curve_for_the_same_seed():
    first, report1 = collect()
    second, report2 = collect()
    training.train(lora_spec(steps=8, dropout=0.1), report1)
    training.train(lora_spec(steps=8, dropout=0.1), report2)
    assert [p.loss for p in first] == [p.loss for p in second]


def test_the_learning_rate_falls_linearly_from_the_full_rate_to_a_nth_at_the_last_step():
    _, report = collect()
    run = training.Training(lora_spec(steps=4, lr=1e-3), report)
    rates = []
    while True:
        rates.append(run.run.optimizer.param_groups[0]["lr"])  # the rate the next step takes
        if not run.step():
            break
    assert rates[:4] == pytest.approx([1e-3, 0.75e-3, 0.5e-3, 0.25e-3])


def test_it_stops_when_the_report_says_cancel():
    calls = []

    def cancel_at_once(batch, evals):
        calls.append(batch)
        return False

    metrics = training.train(lora_spec(steps=500), cancel_at_once)
    assert metrics["cancelled"] is True
    assert len(calls) == 1 and calls[0][-1].step < 500


@pytest.mark.parametrize("method", ["lora", "full", "prefix"])
def test_a_long_step_asks_should_stop_between_its_layers_and_stops_mid_step(method):
    """A cancel need not wait for a long step to end: each encoder layer asks before its forward
    pass and before its part of the backward pass (6 layers: 12 questions a step)."""
    asked = []

    def stop_mid_backward_of_step_3():
        asked.append(1)
        return len(asked) > 2 * 12 + 9  # step 3: its forward asked 6 times, its backward 3

    points, report = collect()
    spec = validate_run(method, "sentiment", 50, 0, {"eval_every": 0})
    metrics = training.train(spec, report, should_stop=stop_mid_backward_of_step_3)
    assert metrics["cancelled"] is True
    # Steps 1 and 2 were taken and kept; step 3 stopped in its backward pass and was not.
    assert [p.step for p in points] == [1, 2] and len(asked) == 2 * 12 + 10
    assert metrics["val_accuracy"] is None  # not evaluated again after the cancel


def test_it_fails_with_a_readable_message_when_the_loss_is_not_finite(monkeypatch):
    poison_head(monkeypatch)
    with pytest.raises(training.TrainingError, match="loss became nan at step 1; try a smaller learning rate"):
        training.train(lora_spec(steps=3), collect()[1])


def test_it_saves_the_adapter_and_reports_its_size(tmp_path):
    metrics = training.train(lora_spec(steps=2), collect()[1], save_dir=tmp_path / "run")
    files = {p.name: p.stat().st_size for p in (tmp_path / "run").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "peftlab.json"} <= set(files)
    assert metrics["adapter_bytes"] == sum(files.values())


def test_it_measures_time_memory_and_accuracy():
    metrics = training.train(lora_spec(steps=5), collect()[1])
    assert metrics["train_seconds"] > 0 and metrics["steps_per_second"] > 0
    assert metrics["peak_memory_bytes"] > 0
    assert 0.0 <= metrics["val_accuracy"] <= 1.0
    task = datasets.load_task("sentiment")
    assert metrics["total_params"] > 20_000_000 and len(task.labels) == 2


def test_it_counts_the_base_encoder_as_the_formula_does():
    dims = base_model.dimensions()
    expected = dims.encoder_params()
    assert sum(p.numel() for p in classifier.load_base().encoder.parameters()) == expected
    # The model card's 22.7M for all-MiniLM-L6-v2 counts the pooler (d² + d), which the lab's
    # classifier leaves out (its head reads the mean of the token states).
    with_pooler = dims.encoder_params() + dims.hidden**2 + dims.hidden
    assert not dims.pooler and round(with_pooler / 1e6, 1) == 22.7 and expected == 22_565_376


def test_on_cuda_the_peak_leaves_out_what_the_process_held_before_the_run(monkeypatch):
    # The allocator's figures stand in for a GPU's: 100 bytes held from before, cuBLAS's
    # workspaces 65 more, a peak of 1,165 during the run.
    allocated = {"bytes": 100}
    monkeypatch.setattr(measure, "_allocate_cublas_workspaces", lambda device: allocated.update(bytes=165))
    monkeypatch.setattr(measure.gc, "collect", lambda: allocated.update(collected=True))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: allocated["bytes"])
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: 1165)
    memory = measure.PeakMemory(torch.device("cuda"))
    with memory:
        pass
    assert allocated["collected"]
    assert memory.result({}, 0)["peak_memory_bytes"] == 1000


def test_it_counts_activation_memory_that_grows_with_the_batch():
    small = training.train(lora_spec(steps=2, batch_size=4), collect()[1])
    large = training.train(lora_spec(steps=2, batch_size=32), collect()[1])
    acts_small = small["memory_breakdown"]["activations"]
    acts_large = large["memory_breakdown"]["activations"]
    assert 0 < acts_small < acts_large
    breakdown = large["memory_breakdown"]
    assert large["peak_memory_bytes"] == sum(breakdown.values())
    assert "counted from the tensors" in large["peak_memory_source"]
