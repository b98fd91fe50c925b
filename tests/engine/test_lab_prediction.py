"""simulations.memory.lab_prediction for every method of the lab, against the formula's own terms
and against what the engine measures on real (short) runs."""

import pytest
import torch

from simulations import memory
from workers import encoding, measure, precision, token_lengths, training
from workers.base_model import memory_model as minilm
from workers.methods import METHODS, validate_run


def predict(method, seq=32, precision="fp32", device="cpu", **params):
    spec = validate_run(method, "sentiment", 2, 0, params)
    return memory.lab_run_prediction(minilm(), method, spec.params, 2, seq=seq, precision=precision, device=device)


def test_the_state_terms_follow_16_bytes_per_trainable_parameter_and_4_per_frozen_one():
    for method in METHODS:
        p = predict(method)
        assert p["grads"] == 4 * p["trainable"] and p["optimizer_state"] == 8 * p["trainable"], method
        assert p["total"] == pytest.approx(p["params"] + p["grads"] + p["optimizer_state"] + p["activations"])
    encoder = minilm().config_params()
    assert predict("bitfit")["params"] == predict("full")["params"] == 4 * (encoder + 384 * 2 + 2)
    assert predict("qlora")["params"] < predict("lora")["params"]


def test_the_activation_terms_follow_what_each_method_keeps():
    acts = {m: predict(m)["activations"] for m in METHODS}
    # Frozen linear maps keep no input; BitFit keeps nothing beyond passing the gradient through.
    assert acts["bitfit"] < acts["lora"] < acts["full"]
    assert acts["lora"] == acts["qlora"] < acts["dora"]
    # Prompt tuning's 20 virtual tokens lengthen every sequence: it keeps the most.
    assert acts["prompt"] == max(acts.values())
    assert predict("prompt", virtual_tokens=1)["activations"] < acts["prompt"]
    assert predict("adapter", bottleneck=8)["activations"] < acts["adapter"]
    # Linear in the batch.
    assert predict("lora", batch_size=32)["activations"] == pytest.approx(
        2 * predict("lora", batch_size=16)["activations"]
    )
    assert "6 layers" in predict("prefix")["activation_formula"]


def test_under_bf16_autocast_each_layer_keeps_bf16_copies_of_its_weights_and_a_bf16_gelu_input():
    m = minilm()
    h, f, L, s, b = m.hidden, m.ffn, m.layers, 32, 16
    copies = L * 2 * (4 * h * h + 2 * h * f)
    gelu = L * (4 - 2) * s * b * f  # 4 bytes a GELU input element in fp32, 2 in bf16
    masks = L * (4 - 2) * 2 * s * b * h  # on the CPU the hidden states' two dropout masks become bf16
    first = 2 * 3 * h * h  # the first layer keeps no bf16 copy of W_Q, W_K, W_V (its input needs no gradient)
    for method in ("lora", "prompt", "prefix", "bitfit"):
        fp32, bf16 = predict(method), predict(method, precision="bf16 autocast")
        longer = (s + 20) / s if method == "prompt" else 1  # its 20 virtual tokens
        unkept = 0 if method in ("prompt", "bitfit") else first
        assert bf16["activations"] == fp32["activations"] + copies - (gelu + masks) * longer - unkept, method
        assert "H·(4·h² + 2·h·f)" in bf16["activation_formula"] and "H = 2" in bf16["activation_formula"]
        assert {k: bf16[k] for k in ("params", "grads", "optimizer_state")} == {
            k: fp32[k] for k in ("params", "grads", "optimizer_state")
        }, method
    # Full fine-tuning keeps a bf16 copy of each linear map's input, Q, K and V each their own.
    full = predict("full", precision="bf16 autocast")["activations"] - predict("full")["activations"]
    assert full == copies - gelu - masks + L * (2 * (5 * s * b * h + s * b * f) - 4 * (3 * s * b * h + s * b * f))
    # IA3 keeps the keys and values it scales in bf16, the FFN's inner activation in fp32 (peft casts it).
    ia3 = predict("ia3", precision="bf16 autocast")["activations"] - predict("ia3")["activations"]
    assert ia3 == copies - gelu - masks - first - L * (4 - 2) * 2 * s * b * h
    # QLoRA's 4-bit layers compute in fp32 under autocast too.
    assert predict("qlora", precision="bf16 autocast")["activations"] == predict("qlora")["activations"]


def test_a_dropout_mask_is_one_byte_on_cuda_and_the_dropped_tensors_dtype_on_the_cpu():
    m = minilm()
    h, a, L, s, b = m.hidden, m.heads, m.layers, 32, 16
    for method in ("lora", "full", "ia3"):
        cpu, cuda = predict(method), predict(method, device="cuda")
        # Two masks of the hidden states and one of the attention probabilities a layer, 4 bytes
        # an element against 1; full fine-tuning also the embeddings' mask.
        masks = L * (2 * s * b * h + a * s * s * b) + (s * b * h if method == "full" else 0)
        assert cpu["activations"] - cuda["activations"] == (4 - 1) * masks, method
        assert "bytes an element on the CUDA" in cuda["activation_formula"]
    with pytest.raises(ValueError, match="device must be one of cpu, cuda"):
        predict("lora", device="mps")


def test_its_precisions_are_the_names_the_engine_records():
    assert memory.LAB_PRECISIONS == (precision.FP32, precision.BF16)


def test_it_refuses_what_it_cannot_predict():
    with pytest.raises(ValueError, match="method must be one of"):
        memory.lab_prediction(minilm(), "magic", 16, 8, ["query"])
    with pytest.raises(ValueError, match="batch_size"):
        memory.lab_prediction(minilm(), "full", 0, 0, [])
    with pytest.raises(ValueError, match="rank"):
        memory.lab_prediction(minilm(), "lora", 16, 1000, ["query"])
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16 autocast"):
        memory.lab_prediction(minilm(), "lora", 16, 8, ["query"], precision="fp16")


def test_the_token_length_reader_agrees_with_the_engine():
    train, _ = encoding.encode_task("sentiment")
    assert token_lengths.longest_train_example("sentiment") == max(len(ids) for ids in train.ids)


# The race's default lanes (full, adapter, lora, prompt) are checked against their measured peak
# in tests/topology/test_race_pipeline.py; the other methods here, in-process.
@pytest.mark.slow
@pytest.mark.parametrize("autocast", ["off", "bf16"])
@pytest.mark.parametrize("method", [m for m in METHODS if m not in ("full", "adapter", "lora", "prompt")])
def test_the_prediction_matches_the_engines_measured_peak(method, autocast, monkeypatch):
    """A real step of batch 8, in fp32 and under bf16 autocast: the prediction at the padded
    width of that batch, for the precision the run records, is within 12 % of the measured peak;
    activations alone within 25 % (autograd keeps a few tensors the formula does not name: the
    embeddings' LayerNorm input, reshaped copies)."""
    # The validation pass at the end runs without gradients: it adds nothing to the peak.
    monkeypatch.setattr(measure, "evaluate", lambda *args: (0.0, 0.0))
    monkeypatch.setenv(precision.SETTING, autocast)
    spec = validate_run(method, "sentiment", 1, 0, {"batch_size": 8, "eval_every": 0})
    train, _ = encoding.encode_task("sentiment")
    stream = encoding.batches(train, 8, spec.seed)
    width = max(max(len(ids) for ids in next(stream)[0]) for _ in range(spec.steps))
    measured = training.train(spec, lambda points, evals: False)  # stop at the end: no save, no latency
    got = measured["memory_breakdown"]
    assert measured["precision"] == {"off": precision.FP32, "bf16": precision.BF16}[autocast]
    pred = memory.lab_run_prediction(minilm(), method, spec.params, 2, seq=width, precision=measured["precision"])
    assert pred["trainable"] == measured["trainable_params"]
    for key in ("params", "grads"):
        assert got[key] == pytest.approx(pred[key], rel=0.005), key
    assert got["optimizer_state"] == pytest.approx(pred["optimizer_state"], rel=0.005, abs=2048)
    assert got["activations"] == pytest.approx(pred["activations"], rel=0.25)
    assert measured["peak_memory_bytes"] == pytest.approx(pred["total"], rel=0.12)


# One padded step of batch 16 on sentiment (22 tokens wide), on this CPU, the ActivationMeter
# against the prediction (MB, measured / predicted). Before the dropout masks took the device's
# width (one byte each, as Korthikanti counts) the prediction was low: fp32 LoRA 45.3 / 39.2, full
# 66.3 / 58.5, IA3 61.4 / 55.3, BitFit 43.5 / 35.8. Now: LoRA 45.3 / 45.2, full 66.3 / 66.2, IA3
# 61.4 / 61.3, BitFit 43.5 / 43.5; under bf16 autocast LoRA 56.0 / 55.8, full 69.6 / 69.6, IA3
# 68.8 / 68.7. DoRA is left out: peft's DoRA keeps less than its term says under autocast (67.7 /
# 75.3 MB; 63.3 / 64.7 in fp32).
@pytest.mark.slow
@pytest.mark.parametrize("autocast", ["off", "bf16"])
@pytest.mark.parametrize("method", ["full", "lora", "ia3", "bitfit", "adapter", "prompt", "prefix"])
def test_one_padded_steps_activations_are_predicted_within_2_percent_on_the_cpu(method, autocast, monkeypatch):
    monkeypatch.setenv(precision.SETTING, autocast)
    spec = validate_run(method, "sentiment", 1, 0, {"batch_size": 16, "eval_every": 0})
    run = training._prepare(spec, torch.device("cpu"))
    run.packed = False  # one row per example, padded: the b × s the prediction takes
    ids, labels = next(encoding.batches(run.train_data, 16, spec.seed))
    training._loss(run, ids, labels)
    pred = memory.lab_run_prediction(
        minilm(), method, spec.params, 2, seq=max(map(len, ids)), precision=precision.name(run.compute), device="cpu"
    )
    assert pred["precision"] == {"off": precision.FP32, "bf16": precision.BF16}[autocast]
    assert run.activations.peak == pytest.approx(pred["activations"], rel=0.02)
