"""The method registry (simulations/methods.py), walked: every record has its builder, its
formula, its memory-model entry, a colour and a description, and every set of methods elsewhere is
read from the records' flags. Then every method really trained on CPU: what trains, how much,
and that it loads back. One table row per method; a new method gets every check
(huggingface/peft's pattern)."""

import json
import re
import subprocess
import sys

import pytest
import torch

from simulations import decision, memory
from simulations import methods as registry
from simulations import params as formulas
from workers import (
    artifacts,
    base_model,
    builders,
    classifier,
    datasets,
    encoding,
    measure,
    notebook,
    packing,
    training,
)
from workers.methods import METHODS, validate_run

slow = pytest.mark.slow

CPU = torch.device("cpu")
# What each method may train, by parameter name.
TRAINS = {
    "full": r".*",
    "lora": r".*(lora_[AB]|modules_to_save).*",
    "qlora": r".*(lora_[AB]|modules_to_save).*",
    "dora": r".*(lora_[AB]|lora_magnitude_vector|modules_to_save).*",
    "adapter": r".*(adapter|classifier).*",
    "prompt": r".*(prompt_encoder|modules_to_save).*",
    "prefix": r".*(prefix_(key|value)|classifier).*",
    "ia3": r".*(ia3_l|modules_to_save).*",
    "bitfit": r".*(\.bias$|classifier).*",
}
# Methods whose untrained additions are the identity (B = 0, up-projection = 0, scales = 1, or
# nothing added); prompt and prefix tuning add attention targets, which changes the output.
STARTS_AS_BASE = {"full", "lora", "dora", "qlora", "adapter", "ia3", "bitfit"}


# --- the registry: one record per method, and what each record needs elsewhere -----------------


def defaults(method):
    return validate_run(method, "sentiment", 1, 0, {}).params


def test_the_engine_and_the_web_read_the_same_records():
    assert METHODS is registry.METHODS
    assert all(name == m.name for name, m in METHODS.items())


@pytest.mark.parametrize("method", list(registry.METHODS))
def test_every_record_has_its_builder_formula_memory_entry_colour_and_description(method):
    record = registry.METHODS[method]
    assert callable(builders.BUILDERS[method])
    assert callable(formulas.FORMULAS[method])
    dims, head = base_model.dimensions(), formulas.classifier_head_params(base_model.dimensions().hidden, 2)
    assert formulas.trainable_params(method, defaults(method), dims, 2) > head > 0
    assert callable(memory.LAB_ACTIVATIONS[method])
    minilm = base_model.memory_model

    predicted = memory.lab_run_prediction(minilm(), method, defaults(method), 2)
    assert predicted["total"] > predicted["activations"] > 0
    assert re.fullmatch(r"#[0-9a-f]{6}", record.colour)
    for text in (record.label, record.summary, record.trains):
        assert text.strip() and "\n" not in text
    assert record.saved_by in ("peft", "transformers", "lab")
    assert record.param_names == tuple(p.name for p in record.params)
    assert {"lr", "batch_size", "eval_every", "train_examples"} <= set(record.param_names)


def test_nothing_keyed_by_method_names_a_method_the_registry_lacks():
    names = set(registry.METHODS)
    assert set(builders.BUILDERS) == set(formulas.FORMULAS) == set(memory.LAB_ACTIVATIONS) == names
    # What a generated notebook carries for the methods the lab builds and saves itself.
    assert set(notebook.LAB_CODE) == set(notebook.WHY_NOT_PEFT) == registry.names_where(saved_by="lab")


def test_no_two_methods_share_a_colour_or_a_label():
    records = registry.METHODS.values()
    assert len({m.colour for m in records}) == len({m.label for m in records}) == len(records)


def test_the_sets_of_methods_elsewhere_are_the_records_flags():
    records = registry.METHODS.values()
    assert builders.MERGEABLE == {m.name for m in records if m.mergeable}
    assert packing.PACKABLE == {m.name for m in records if m.packable}
    assert memory.LAB_METHODS == decision.TRAINABLE == tuple(registry.METHODS)
    # peft saves what it builds; the whole model is transformers'; the lab saves its own modules.
    assert registry.names_where(saved_by="transformers") == {"full"}
    assert registry.names_where(saved_by="lab") == {"adapter", "prefix", "bitfit"}


def test_the_registry_and_the_run_validation_load_no_torch_and_simulations_nothing_of_the_lab():
    code = (
        "import sys, simulations.methods, workers.methods, workers.notebook; "
        "assert 'torch' not in sys.modules, 'torch'; "
        "assert not {m.split('.')[0] for m in sys.modules} & {'django', 'peftlab'}"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    code = (
        "import importlib, pkgutil, sys, simulations; "
        "[importlib.import_module(f'simulations.{m.name}') for m in pkgutil.iter_modules(simulations.__path__)]; "
        "assert not {m.split('.')[0] for m in sys.modules} & {'django', 'peftlab', 'workers', 'classroom', 'torch'}"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_registry_method_is_in_this_table():
    assert set(TRAINS) == set(METHODS)


def spec_for(method, steps=6, **params):
    return validate_run(method, "sentiment", steps, 0, params)


def fixed_batch(n=64):
    train, _ = encoding.encode_task("sentiment")
    return encoding.collate(train.ids[-n:], train.labels[-n:], CPU)


def logits(model, batch):
    model.eval()
    with torch.no_grad():
        return model(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()


def loss_on(model, batch):
    model.eval()
    with torch.no_grad():
        return model(**batch).loss.item()


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.fixture(scope="module", params=sorted(METHODS))
def trained(request, tmp_path_factory):
    """A model of each method, its state before training, and the same model after a few steps on
    one batch of 16 (every method lowers that batch's loss within them: the gradient reaches
    what it trains)."""
    method = request.param
    spec = spec_for(method, steps=6)
    torch.manual_seed(0)
    model = classifier.build_model(spec, 2, CPU)
    before = snapshot(model)
    batch, train_batch = fixed_batch(), fixed_batch(16)
    start_loss, start_logits = loss_on(model, train_batch), logits(model, batch)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=spec.params["lr"])
    model.train()
    for _ in range(spec.steps):
        loss = model(**train_batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {
        "method": method,
        "spec": spec,
        "model": model,
        "before": before,
        "batch": batch,
        "train_batch": train_batch,
        "start_loss": start_loss,
        "start_logits": start_logits,
        "folder": tmp_path_factory.mktemp(method),
    }


@slow
def test_it_lowers_the_loss(trained):
    assert loss_on(trained["model"], trained["train_batch"]) < trained["start_loss"]


@slow
def test_it_changes_only_what_the_method_trains(trained):
    model, before = trained["model"], trained["before"]
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed and changed <= trainable
    pattern = re.compile(TRAINS[trained["method"]])
    assert all(pattern.fullmatch(n) for n in trainable), sorted(n for n in trainable if not pattern.fullmatch(n))[:5]


@slow
def test_it_trains_as_many_parameters_as_the_formula_says(trained):
    spec = trained["spec"]
    counted, total = measure.count_params(trained["model"])
    assert counted == formulas.trainable_params(spec.method, spec.params, base_model.dimensions(), 2)
    assert total >= 22_000_000


@slow
def test_it_starts_exactly_at_the_base_model_unless_it_adds_tokens(trained):
    method = trained["method"]
    base = classifier.build_classifier(2, 0)
    if method == "qlora":
        from workers import quantize

        base = quantize.quantize_4bit(base, torch.float32, CPU)
    same = torch.equal(trained["start_logits"], logits(base, trained["batch"]))
    assert same == (method in STARTS_AS_BASE)


@slow
def test_it_saves_what_it_trained_and_loads_it_back(trained):
    spec, model = trained["spec"], trained["model"]
    size = artifacts.save(model, spec, ["negative", "positive"], trained["folder"])
    loaded = artifacts.load_trained(trained["folder"])
    assert torch.allclose(logits(loaded, trained["batch"]), logits(model, trained["batch"]), atol=1e-5)
    # A run saved before the head changed (no "head" in its manifest) is refused, not misread.
    manifest = trained["folder"] / artifacts.MANIFEST
    old = {k: v for k, v in json.loads(manifest.read_text()).items() if k != "head"}
    manifest.write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"another classifier head \(\[CLS\] through the pooler\)"):
        artifacts.load_trained(trained["folder"])
    trainable, _ = measure.count_params(model)
    if spec.method not in ("full",):
        # What ships is about the trained numbers, 4 bytes each, not a copy of the model.
        assert size < 4 * trainable + 200_000


@slow
@pytest.mark.parametrize("method", ["lora", "dora"])
def test_it_merges_and_unmerges_without_changing_the_outputs(method):
    model = classifier.build_model(spec_for(method, rank=4), 2, CPU)
    layer = model.base_model.model.bert.encoder.layer[0].attention.self.query
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # a trained-looking update, so merging moves W
    base_weight = layer.base_layer.weight.detach().clone()
    batch = fixed_batch(16)
    unmerged = logits(model, batch)
    model.merge_adapter()
    assert not torch.equal(layer.base_layer.weight, base_weight)
    assert torch.allclose(logits(model, batch), unmerged, atol=1e-4)
    model.unmerge_adapter()
    assert torch.allclose(layer.base_layer.weight, base_weight, atol=1e-6)


@slow
def test_qlora_keeps_its_base_in_nf4_with_double_quantisation_below_fp32():
    import bitsandbytes as bnb

    from workers import quantize

    model = classifier.build_model(spec_for("qlora"), 2, CPU)
    query = model.base_model.model.bert.encoder.layer[0].attention.self.query.base_layer
    assert isinstance(query, bnb.nn.Linear4bit)
    assert query.weight.quant_type == "nf4" and query.weight.quant_state.nested
    fp32 = classifier.build_model(spec_for("lora"), 2, CPU)
    assert quantize.base_weight_bytes(model) < quantize.base_weight_bytes(fp32)


@slow
@pytest.mark.parametrize("method", sorted(METHODS))
def test_it_measures_a_whole_run(method, tmp_path):
    evals = []

    def report(points, new_evals):
        evals.extend(new_evals)
        return True

    spec = validate_run(method, "topic", 4, 1, {"eval_every": 2})
    metrics = training.train(spec, report, save_dir=tmp_path)
    assert [e.step for e in evals] == [2, 4]
    assert metrics["val_accuracy"] == evals[-1].val_accuracy
    assert metrics["peak_memory_bytes"] > metrics["memory_breakdown"]["params"] > 0
    assert metrics["adapter_bytes"] > 0 and metrics["latency_ms"] > 0
    assert metrics["trainable_params"] == formulas.trainable_params(
        method, spec.params, base_model.dimensions(), len(datasets.load_task("topic").labels)
    )
    if method in ("lora", "dora"):
        assert metrics["merge_max_abs_diff"] < 1e-4 and metrics["latency_merged_ms"] > 0
    if method == "adapter":
        assert metrics["latency_base_ms"] > 0
