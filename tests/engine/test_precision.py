"""The precision of training steps (workers/precision.py): PEFTLAB_AUTOCAST, what the engine does
with it, and what a run records."""

import pytest
import torch
from torch import nn

from peftlab.runs import checks
from workers import classifier, precision, training
from workers.methods import validate_run


def test_auto_is_bf16_on_a_cpu_with_native_bf16_and_fp32_elsewhere(monkeypatch):
    monkeypatch.delenv(precision.SETTING, raising=False)
    assert precision.choice() == "auto"
    monkeypatch.setenv(precision.SETTING, "")
    assert precision.choice() == "auto"
    native = precision.cpu_native_bf16()
    assert precision.training_dtype(torch.device("cpu")) is (torch.bfloat16 if native else None)
    for native in (True, False):
        monkeypatch.setattr(precision, "cpu_native_bf16", lambda native=native: native)
        assert precision.training_dtype(torch.device("cpu")) is (torch.bfloat16 if native else None)
        # On a GPU the small model's steps wait on kernel launches, which autocast adds to.
        assert precision.training_dtype(torch.device("cuda")) is None
        assert precision.training_dtype(torch.device("cuda"), "bf16") is torch.bfloat16


def test_a_cpu_multiplies_bf16_natively_with_avx512_bf16_or_amx(monkeypatch):
    for avx512_bf16, amx, native in [(True, False, True), (False, True, True), (False, False, False)]:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda avx512_bf16=avx512_bf16: avx512_bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda amx=amx: amx)
        assert precision.cpu_native_bf16() is native


@pytest.mark.parametrize("value, dtype", [("bf16", torch.bfloat16), (" BF16 ", torch.bfloat16), ("off", None)])
def test_the_setting_chooses_on_any_device(monkeypatch, value, dtype):
    monkeypatch.setenv(precision.SETTING, value)
    assert precision.training_dtype(torch.device("cpu")) is dtype
    assert precision.name(dtype) == ("bf16 autocast" if dtype else "fp32")


def test_an_unknown_setting_is_refused_by_manage_py_check_and_by_the_engine(monkeypatch):
    monkeypatch.setenv(precision.SETTING, "fp16")
    [error] = checks.precision_setting(None)
    assert error.id == "peftlab.E001" and "must be one of auto, bf16, off (got 'fp16')" in error.msg
    with pytest.raises(precision.PrecisionError):
        precision.training_dtype(torch.device("cpu"))
    monkeypatch.setenv(precision.SETTING, "auto")
    assert checks.precision_setting(None) == []


def linear_outputs(monkeypatch) -> list[tuple[bool, torch.dtype]]:
    """(training?, output dtype) of every linear layer's forward pass in the next training.train."""
    seen = []
    build = classifier.build_model

    def build_model(*args, **kwargs):
        model = build(*args, **kwargs)
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.register_forward_hook(lambda m, i, out: seen.append((m.training, out.dtype)))
        return model

    monkeypatch.setattr(classifier, "build_model", build_model)
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("method", ["prompt", "ia3"])  # one padded, one packed
def test_under_bf16_the_training_steps_multiply_in_bf16_and_evaluation_stays_fp32(monkeypatch, method):
    monkeypatch.setenv(precision.SETTING, "bf16")
    seen = linear_outputs(monkeypatch)
    losses = []
    metrics = training.train(
        validate_run(method, "sentiment", 2, 0, {}), lambda points, evals: losses.extend(p.loss for p in points) or True
    )
    assert metrics["precision"] == "bf16 autocast"
    assert {dtype for training, dtype in seen if training} == {torch.bfloat16}
    assert {dtype for training, dtype in seen if not training} == {torch.float32}
    assert len(losses) == 2 and all(0.1 < loss < 3 for loss in losses)


@pytest.mark.slow
def test_under_bf16_a_frozen_weight_is_cast_once_per_run_and_the_losses_do_not_change(monkeypatch):
    monkeypatch.setenv(precision.SETTING, "bf16")
    spec = validate_run("lora", "sentiment", 3, 0, {"eval_every": 0})

    def losses():
        out = []
        training.train(spec, lambda points, evals: out.extend(p.loss for p in points) or True)
        return out

    called, cast = [], precision.cast_frozen_weights_once
    monkeypatch.setattr(
        precision, "cast_frozen_weights_once", lambda model, dtype: called.append(dtype) or cast(model, dtype)
    )
    once = losses()
    assert called == [torch.bfloat16]
    monkeypatch.setattr(precision, "cast_frozen_weights_once", lambda model, dtype: None)
    assert once == losses()  # autocast's own cast at every step: the same numbers


def test_a_frozen_linear_layer_multiplies_its_cast_copy_under_autocast_and_its_fp32_weight_outside():
    frozen, trained = nn.Linear(8, 4).requires_grad_(False), nn.Linear(8, 4)
    model = nn.Sequential(frozen, nn.ReLU(), trained)
    precision.cast_frozen_weights_once(model, torch.bfloat16)
    x = torch.randn(2, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert frozen(x).dtype == torch.bfloat16
        cast_at_this_step = nn.functional.linear(x.bfloat16(), frozen.weight.bfloat16(), frozen.bias.bfloat16())
        assert torch.equal(frozen(x), cast_at_this_step)
    assert frozen(x).dtype == torch.float32
    assert torch.allclose(frozen(x), x @ frozen.weight.T + frozen.bias)
    assert "forward" not in vars(trained)  # a weight that trains is autocast's to cast, at each step
    precision.cast_frozen_weights_once(nn.Linear(8, 4).requires_grad_(False), None)  # fp32: nothing
