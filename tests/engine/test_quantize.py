"""QLoRA's 4-bit base built in memory (workers/quantize.py), trained with LoRA on CPU."""

import copy
import warnings

import bitsandbytes as bnb
import pytest
import torch
from peft import LoraConfig, TaskType, get_peft_model
from torch import nn

from workers import base_model, classifier, encoding
from workers import quantize as q4
from workers.head import mean_pool

pytestmark = pytest.mark.slow

CPU = torch.device("cpu")
LINEARS_PER_LAYER = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
STEPS = 30


def lora(model, targets=("query", "value"), rank=8):
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=rank,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=base_model.module_regex(list(targets)),
    )
    return get_peft_model(model, config)


def quantized(seed=0):
    return q4.quantize_4bit(classifier.build_classifier(2, seed), torch.float32, CPU)


@pytest.fixture(scope="module")
def batch():
    train, _ = encoding.encode_task("sentiment")
    return encoding.collate(train.ids[:16], train.labels[:16], CPU)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # On a small shared CPU, torch's intra-op threads spin against whatever else runs there: a
    # batch-8 forward+backward here took 0.35-1.6 s with 2 threads beside another busy process,
    # 0.12 s with 1.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def inputs(batch):
    return {k: v for k, v in batch.items() if k != "labels"}


@torch.no_grad()
def logits(model, batch):
    return model.eval()(**inputs(batch)).logits


def tensors(model):
    """Every tensor of the model by name, a Params4bit's quant state included, copied."""
    out = {}
    for name, p in model.named_parameters():
        out[name] = p.detach().clone()
        if isinstance(p, bnb.nn.Params4bit):
            out[name + ".absmax"] = p.quant_state.absmax.clone()
            out[name + ".nested_absmax"] = p.quant_state.state2.absmax.clone()
    return out


@pytest.fixture(scope="module")
def trained(batch):
    """LoRA on the 4-bit base, STEPS AdamW steps at lr 3e-3 on one batch: (model, losses, before, after)."""
    torch.manual_seed(0)
    model = lora(quantized())
    before = tensors(model)
    optimizer = q4.make_optimizer([p for p in model.parameters() if p.requires_grad], 3e-3, CPU)
    model.train()
    losses = []
    for _ in range(STEPS):
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, losses, before, tensors(model)


def test_it_replaces_every_encoder_linear_with_nf4_double_quantized_linear4bit():
    model = quantized()
    bert = model.bert
    for layer in bert.encoder.layer:
        for path in LINEARS_PER_LAYER:
            linear = layer.get_submodule(path)
            assert type(linear) is bnb.nn.Linear4bit, path
            weight = linear.weight
            assert isinstance(weight, bnb.nn.Params4bit) and weight.bnb_quantized
            # Two 4-bit codes per byte: out × in weights in out·in/2 uint8.
            assert weight.dtype == torch.uint8
            assert weight.numel() * 2 == linear.in_features * linear.out_features
            assert weight.quant_type == "nf4" and weight.quant_state.quant_type == "nf4"
            assert weight.quant_state.nested  # double quantization: the absmax are 8-bit too
            assert weight.quant_state.absmax.dtype == torch.uint8
            assert weight.quant_state.blocksize == 64 and weight.quant_state.state2.blocksize == 256
            assert linear.compute_dtype == torch.float32
            assert linear.bias.dtype == torch.float32 and not linear.bias.requires_grad
    # The head stays fp32 (the encoder has no pooler); embeddings and LayerNorms are untouched.
    assert type(model.classifier) is nn.Linear and model.classifier.weight.dtype == torch.float32
    assert bert.pooler is None
    assert bert.embeddings.word_embeddings.weight.dtype == torch.float32
    assert sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()) == 6 * len(LINEARS_PER_LAYER)
    # The cached encoder that the next run copies is still the fp32 one.
    cached = classifier.load_base().encoder.encoder.layer[0].attention.self.query
    assert type(cached) is nn.Linear and cached.weight.dtype == torch.float32


def test_it_hands_peft_a_base_that_gets_its_4bit_lora_layer():
    model = lora(quantized(), targets=("query", "key", "value", "attention_output", "ffn"))
    query = model.base_model.model.bert.encoder.layer[0].attention.self.query
    from peft.tuners.lora.bnb import Linear4bit as LoraLinear4bit

    assert type(query) is LoraLinear4bit
    assert type(query.base_layer) is bnb.nn.Linear4bit
    assert query.base_layer.weight.quant_type == "nf4"
    assert query.base_layer.weight.quant_state.nested
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier.modules_to_save" in n for n in trainable)
    assert not any(p.requires_grad for p in query.base_layer.parameters())


def footprint(model):
    """Every parameter and buffer's bytes, a Params4bit's quant state included (nothing deduplicated)."""
    total = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    for p in model.parameters():
        if isinstance(p, bnb.nn.Params4bit):
            s = p.quant_state
            total += sum(
                t.numel() * t.element_size() for t in (s.absmax, s.code, s.offset, s.state2.absmax, s.state2.code)
            )
    return total


def test_it_holds_the_quantized_linears_in_about_a_seventh_of_their_fp32_bytes():
    fp32 = classifier.build_classifier(2, 0)
    fp32_linear, fp32_total, fp32_all = (
        q4.base_weight_bytes(fp32, linear_only=True),
        q4.base_weight_bytes(fp32),
        footprint(fp32),
    )
    model = q4.quantize_4bit(fp32, torch.float32, CPU)  # in place
    nf4_linear, nf4_total, nf4_all = (
        q4.base_weight_bytes(model, linear_only=True),
        q4.base_weight_bytes(model),
        footprint(model),
    )
    print(
        f"linear weights: fp32 {fp32_linear} B, nf4 {nf4_linear} B ({fp32_linear / nf4_linear:.2f}x); "
        f"whole model: fp32 {fp32_total} B, 4-bit base {nf4_total} B"
    )
    # 36 matrices, 10.6M weights: 4 bytes each in fp32; 0.5 byte + one 8-bit absmax per 64 (+ a
    # float per 256 absmax and the code books) in NF4 with double quantization: ≈ 7.7× smaller.
    assert fp32_linear == 4 * 6 * (4 * 384 * 384 + 2 * 384 * 1536)
    assert 7.0 < fp32_linear / nf4_linear < 8.0
    assert nf4_total < fp32_total and nf4_all < fp32_all
    assert fp32_total - nf4_total == fp32_linear - nf4_linear  # only those weights changed
    assert fp32_total == fp32_all and nf4_total <= nf4_all  # base_weight_bytes shares code books


def test_it_starts_near_the_fp32_model_and_exactly_at_the_4bit_base(batch):
    fp32 = classifier.build_classifier(2, 0)
    fp32_logits = logits(fp32, batch)
    base = quantized()
    base_logits = logits(base, batch)
    # NF4 rounding moves the model: the fresh head's logits (|x| < 0.05) by ≈1e-2, the pooled
    # sentence vectors by ≈20% of their norm, in nearly the same direction.
    diff = (base_logits - fp32_logits).abs().max().item()
    with torch.no_grad():
        pooled, pooled_4bit = (
            mean_pool(m.bert(**inputs(batch)).last_hidden_state, batch["attention_mask"]) for m in (fp32, base)
        )
    cosine = nn.functional.cosine_similarity(pooled, pooled_4bit).min().item()
    print(
        f"4-bit vs fp32 step-0 logits: max abs diff {diff:.4g} (fp32 logits up to "
        f"{fp32_logits.abs().max().item():.3g}); pooled cosine >= {cosine:.4f}"
    )
    assert 0 < diff < 0.5 * fp32_logits.abs().max().item()
    assert 0.95 < cosine < 1
    # LoRA's B starts at zero: the adapted model computes exactly what its 4-bit base does.
    adapted = lora(quantized(), targets=("query", "key", "value", "attention_output", "ffn"))
    assert torch.equal(logits(adapted, batch), base_logits)
    with adapted.disable_adapter():
        assert torch.equal(logits(adapted, batch), base_logits)


def test_it_lowers_the_loss_training_only_lora_and_the_head(trained):
    model, losses, before, after = trained
    print("LoRA on 4-bit, one batch of 16, every 5th loss:", [round(x, 3) for x in losses[::5]])
    assert all(map(torch.isfinite, map(torch.tensor, losses)))
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.2
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed == {n for n in before if "lora_" in n or "classifier.modules_to_save" in n}
    assert any("lora_A" in n for n in changed) and any("lora_B" in n for n in changed)
    # The 4-bit weights (data and both levels of the quant state) did not move.
    assert not any(".base_layer.weight" in n for n in changed)


def test_it_keeps_its_4bit_layout_through_evaluation_and_trains_after_it(batch):
    # bitsandbytes' default on an AVX512-BF16 CPU repacks a Linear4bit for its inference kernel on
    # the first eval forward without grad (losing double quant), and a training forward after that
    # fails; quantize_4bit turns that off.
    model = lora(quantized()).eval()
    with torch.enable_grad():  # the path training takes through bnb.matmul_4bit
        grad_path = model(**inputs(batch)).logits.detach()
    with torch.no_grad():  # what measure.evaluate does: eval mode, no grad
        model(**inputs(batch))
    weight = model.base_model.model.bert.encoder.layer[0].attention.self.query.base_layer.weight
    assert weight.quant_state.nested and not getattr(weight.quant_state, "packing_format_for_cpu", False)
    assert torch.equal(logits(model, batch), grad_path)
    model.train()
    model(**batch).loss.backward()
    assert model.base_model.model.bert.encoder.layer[1].attention.self.query.lora_B["default"].weight.grad is not None


def test_it_quantizes_a_second_run_without_reading_the_weights_from_disk(monkeypatch):
    import transformers

    classifier.load_base()
    loads = classifier.disk_loads

    def no_disk(*args, **kwargs):
        raise AssertionError("the base weights were read from disk again")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", no_disk)
    monkeypatch.setattr(transformers.BertModel, "from_pretrained", no_disk)
    for seed in (1, 2):
        model = lora(q4.quantize_4bit(classifier.build_classifier(2, seed), torch.float32, CPU))
        assert model.base_model.model.bert.encoder.layer[5].attention.self.value.base_layer.weight.bnb_quantized
    assert classifier.disk_loads == loads == 1


def test_it_merges_into_4bit_lossily_and_into_fp32_exactly(trained, batch):
    model, _, _, _ = trained
    unmerged = logits(model, batch)

    # peft's merge on a 4-bit base: dequantize, add B·A, quantize back to NF4. It works on CPU and
    # stays 4-bit, but most of the (small) update rounds away in the re-quantization.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        merged = copy.deepcopy(model).merge_and_unload()
    assert any("rounding errors" in str(w.message) for w in caught)
    query = merged.bert.encoder.layer[0].attention.self.query
    assert type(query) is bnb.nn.Linear4bit and query.weight.quant_state.nested
    merged_diff = (logits(merged, batch) - unmerged).abs().max().item()

    # Merging into a dequantized fp32 base instead computes what the adapted model does.
    fp32 = q4.merge_to_fp32(copy.deepcopy(model))
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in fp32.modules())
    assert fp32.bert.encoder.layer[0].attention.self.query.weight.dtype == torch.float32
    fp32_diff = (logits(fp32, batch) - unmerged).abs().max().item()
    print(
        f"merged vs unmerged logits: into 4-bit {merged_diff:.4g}, into fp32 {fp32_diff:.3g} "
        f"(logits up to {unmerged.abs().max().item():.3g})"
    )
    assert fp32_diff < 1e-4
    assert merged_diff > 100 * fp32_diff


def test_it_uses_plain_adamw_on_cpu_where_paged_adamw_only_falls_back():
    p = nn.Parameter(torch.randn(32, 32))
    assert type(q4.make_optimizer([p], 1e-3, CPU)) is torch.optim.AdamW
    paged = bnb.optim.PagedAdamW([p], lr=1e-3)  # constructs on CPU...
    p.grad = torch.randn_like(p)
    with pytest.warns(UserWarning, match="Paged optimizers are not supported on CPU"):
        paged.step()  # ...and steps as a non-paged optimizer
