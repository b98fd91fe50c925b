"""BitFit (workers/bitfit.py) on the real all-MiniLM-L6-v2, on CPU."""

from types import SimpleNamespace

import pytest
import torch

from tests.support.training import logits, mean_loss, sentiment_batches
from workers import base_model, bitfit, classifier, measure

pytestmark = pytest.mark.slow

STEPS = 20  # five passes over four sentiment batches: a clear drop, cheap on CPU
LR = 1e-2


def expected_names(layers: int) -> set[str]:
    per_layer = [
        "attention.self.query.bias",
        "attention.self.key.bias",
        "attention.self.value.bias",
        "attention.output.dense.bias",
        "attention.output.LayerNorm.bias",
        "intermediate.dense.bias",
        "output.dense.bias",
        "output.LayerNorm.bias",
    ]
    return {"bert.embeddings.LayerNorm.bias", "classifier.weight", "classifier.bias"} | {
        f"bert.encoder.layer.{i}.{n}" for i in range(layers) for n in per_layer
    }


@pytest.fixture(scope="module")
def trained():
    """A BitFit classifier trained STEPS AdamW steps on four sentiment batches."""
    batches = sentiment_batches()
    model = bitfit.apply_bitfit(classifier.build_classifier(2, seed=0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss_before = mean_loss(model, batches)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    model.train()
    for step in range(STEPS):
        loss = model(**batches[step % len(batches)]).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return SimpleNamespace(
        model=model, batches=batches, before=before, loss_before=loss_before, loss_after=mean_loss(model, batches)
    )


def test_it_trains_exactly_the_encoder_biases_and_the_head():
    dims = base_model.dimensions()
    d, f, L, labels = dims.hidden, dims.intermediate, dims.layers, 2
    model = bitfit.apply_bitfit(classifier.build_classifier(2, seed=0))
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names == expected_names(L)
    trainable, _ = measure.count_params(model)
    # embeddings LN bias + per layer (q,k,v,o biases 4d + attention LN d + FFN in f + FFN out d
    # + output LN d) + head; no pooler (the head reads the mean of the token states).
    assert trainable == d + L * (4 * d + d + f + d + d) + (d * labels + labels)
    assert trainable == 26_498  # d=384, f=1536, L=6, 2 labels


def test_it_starts_at_the_base_model():
    batch = sentiment_batches(8)[0]
    model = bitfit.apply_bitfit(classifier.build_classifier(2, seed=0))
    assert torch.equal(logits(model, batch), logits(classifier.build_classifier(2, seed=0), batch))


def test_it_changes_only_biases_and_head(trained):
    now = trained.model.state_dict()
    trainable = {n for n, p in trained.model.named_parameters() if p.requires_grad}
    assert set(now) == set(trained.before)
    for name, value in now.items():
        if name in trainable:
            assert not torch.equal(value, trained.before[name]), f"{name} did not train"
        else:
            assert torch.equal(value, trained.before[name]), f"frozen {name} changed"


def test_it_lowers_the_loss_on_sentiment(trained):
    assert trained.loss_after < 0.8 * trained.loss_before
