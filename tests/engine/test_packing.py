"""Packed batches (workers/packing.py) compute what padded batches compute: for every method that
packs, the same logits, loss and gradients on the same batch (dropout off), up to float rounding;
and the packed layout itself: positions restart per sequence, the mask is block-diagonal, each
sequence is read at its own [CLS]."""

import pytest
import torch

from workers import classifier, encoding, measure, packing, training
from workers.methods import METHODS, validate_run

pytestmark = pytest.mark.slow

CPU = torch.device("cpu")
TOL = 1e-4
ONE_ROW = 10**6  # row_tokens above any batch: the whole batch in one row


def pad_id():
    return classifier.load_base().tokenizer.pad_token_id


def a_batch(size=16, skip=0):
    """A batch train() draws (the engine's own stream), lengths mixed as they come."""
    train, _ = encoding.encode_task("sentiment")
    stream = encoding.batches(train, size, seed=0)
    for _ in range(skip):
        next(stream)
    return next(stream)


def test_every_method_either_packs_or_is_known_not_to():
    # Prompt and prefix tuning add virtual tokens / key-value positions per row: never packed.
    assert packing.PACKABLE | {"prompt", "prefix"} == set(METHODS)
    assert not packing.PACKABLE & {"prompt", "prefix"}


@pytest.mark.parametrize("row_tokens", [0, packing.ROW_TOKENS, ONE_ROW])
def test_the_layout_restarts_positions_and_keeps_each_sequence_to_itself(row_tokens):
    ids, labels = a_batch()
    batch = packing.pack(ids, labels, CPU, pad_id(), row_tokens)
    assert batch.tokens == sum(len(s) for s in ids)
    if row_tokens == ONE_ROW:
        assert batch.input_ids.shape == (1, batch.tokens)
    else:
        assert batch.width <= max(row_tokens, max(len(s) for s in ids))
    flat_ids, flat_pos = batch.input_ids.flatten(), batch.position_ids.flatten()
    flat_seq = batch.sequence_ids.flatten()
    for i, seq in enumerate(ids):
        at = (flat_seq == i).nonzero().flatten()
        # Contiguous, in order, at positions 0..n-1, as long as the sequence.
        assert batch.lengths[i].item() == len(seq)
        assert at.tolist() == list(range(at[0].item(), at[0].item() + len(seq)))
        assert flat_ids[at].tolist() == seq
        assert flat_pos[at].tolist() == list(range(len(seq)))
    mask = packing.attention_mask(batch, "sdpa", torch.float32)
    assert mask.dtype == torch.bool and mask.shape == (batch.input_ids.shape[0], 1, batch.width, batch.width)
    same = batch.sequence_ids.unsqueeze(2) == batch.sequence_ids.unsqueeze(1)
    assert torch.equal(mask[:, 0], same)
    # Block-diagonal: each sequence's tokens attend to exactly its own tokens.
    real = batch.sequence_ids >= 0
    assert mask[:, 0][real].sum(-1).tolist() == [len(ids[i]) for i in batch.sequence_ids[real].tolist()]
    eager = packing.attention_mask(batch, "eager", torch.float32)
    assert torch.equal(eager == 0, mask)


def perturbed(model, seed=1):
    """The method's trained parameters moved off their start: LoRA's B, the adapters' up-projection
    and IA3's scales start as the identity, which would make them invisible to the comparison."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.02 * torch.randn(p.shape, generator=generator).to(p.dtype))
    return model


def padded_and_packed(model, ids, labels, row_tokens):
    """(loss, logits, grads) of the padded batch, then of the packed one."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    out = []
    for packed in (False, True):
        model.zero_grad(set_to_none=True)
        if packed:
            loss, logits = packing.forward(model, packing.pack(ids, labels, CPU, pad_id(), row_tokens))
        else:
            result = model(**encoding.collate(ids, labels, CPU))
            loss, logits = result.loss, result.logits
        loss.backward()
        out.append((loss.detach(), logits.detach(), {n: p.grad.clone() for n, p in params}))
    return out


@pytest.fixture(scope="module", params=sorted(packing.PACKABLE))
def model(request):
    spec = validate_run(request.param, "sentiment", 1, 0, {})
    torch.manual_seed(0)
    built = perturbed(classifier.build_model(spec, 2, CPU))
    # Dropout off (its masks are random draws that differ with the layout); gradients still on.
    return built.eval()


@pytest.mark.parametrize("row_tokens", [packing.ROW_TOKENS, 0, ONE_ROW])
def test_packed_logits_loss_and_gradients_are_the_padded_ones(model, row_tokens):
    ids, labels = a_batch(skip=3)
    assert len({len(s) for s in ids}) > 3  # lengths differ: the padded batch has padding
    (loss, logits, grads), (p_loss, p_logits, p_grads) = padded_and_packed(model, ids, labels, row_tokens)
    assert (p_logits - logits).abs().max().item() <= TOL
    assert abs(p_loss.item() - loss.item()) <= TOL
    assert grads.keys() == p_grads.keys() and grads
    for name, grad in grads.items():
        scale = max(1.0, grad.abs().max().item())
        assert (p_grads[name] - grad).abs().max().item() <= TOL * scale, name


def test_the_eager_attention_gets_an_additive_mask_and_the_same_logits():
    spec = validate_run("full", "sentiment", 1, 0, {})
    built = classifier.build_model(spec, 2, CPU).eval()
    built.set_attn_implementation("eager")
    assert built.bert.config._attn_implementation == "eager"
    ids, labels = a_batch(skip=5)
    (loss, logits, _), (p_loss, p_logits, _) = padded_and_packed(built, ids, labels, packing.ROW_TOKENS)
    assert (p_logits - logits).abs().max().item() <= TOL
    assert abs(p_loss.item() - loss.item()) <= TOL


def test_the_reproduce_script_packs_the_methods_the_engine_packs():
    from workers import notebook

    for method in METHODS:
        text = notebook.script(validate_run(method, "sentiment", 2, 0, {}))
        assert ("def pack(" in text and "loss = forward(model, batch)[0]" in text) == (method in packing.PACKABLE)


@pytest.mark.parametrize("method", ["lora", "prompt"])
def test_train_packs_where_the_method_allows_and_counts_real_tokens(method, monkeypatch):
    calls = []
    real_pack = packing.pack

    def spying_pack(*args, **kwargs):
        calls.append(args[0])
        return real_pack(*args, **kwargs)

    monkeypatch.setattr(packing, "pack", spying_pack)
    monkeypatch.setattr(measure, "evaluate", lambda *args: (0.0, 0.0))
    spec = validate_run(method, "sentiment", 3, 0, {"eval_every": 0})
    metrics = training.train(spec, lambda points, evals: True)
    assert len(calls) == (3 if method in packing.PACKABLE else 0)
    train, _ = encoding.encode_task("sentiment")
    stream = encoding.batches(train, 16, spec.seed)
    real = sum(len(x) for _ in range(3) for x in next(stream)[0])
    assert metrics["tokens_per_second"] * metrics["train_seconds"] == pytest.approx(real, rel=0.01)
    assert metrics["memory_breakdown"]["activations"] > 0
