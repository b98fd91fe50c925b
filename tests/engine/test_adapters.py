"""Houlsby bottleneck adapters (workers/adapters.py) on the real all-MiniLM-L6-v2, on CPU."""

import copy
from types import SimpleNamespace

import pytest
import torch

from tests.support.training import logits, mean_loss, sentiment_batches
from workers import adapters, base_model, classifier, measure

pytestmark = pytest.mark.slow

BOTTLENECK = 16
STEPS = 20  # five passes over four sentiment batches: a clear drop, cheap on CPU
LR = 1e-2


def adapted(bottleneck=BOTTLENECK, seed=0):
    return adapters.attach_adapters(classifier.build_classifier(2, seed=seed), bottleneck, seed=seed)


@pytest.fixture(scope="module")
def trained():
    """An adapted classifier trained STEPS AdamW steps on four sentiment batches."""
    batches = sentiment_batches()
    model = adapted()
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


def test_it_starts_bit_for_bit_at_the_base_model():
    batch = sentiment_batches(8)[0]
    base = classifier.build_classifier(2, seed=0)
    model = adapted()
    assert torch.equal(logits(model, batch), logits(base, batch))
    assert all(a.up.weight.abs().sum() == 0 and a.up.bias.abs().sum() == 0 for a in adapters._adapters(model))
    assert all(a.down.weight.abs().sum() > 0 for a in adapters._adapters(model))


def test_it_draws_the_same_adapter_from_the_same_seed():
    def draw(seed):
        return adapters.BottleneckAdapter(384, 16, torch.Generator().manual_seed(seed))

    state = torch.get_rng_state()
    assert torch.equal(draw(3).down.weight, draw(3).down.weight)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is the only randomness
    assert not torch.equal(draw(3).down.weight, draw(4).down.weight)
    h = torch.randn(2, 5, 384)
    assert torch.equal(draw(3)(h), h)  # the identity at init


@pytest.mark.parametrize("bottleneck", [1, 64])
def test_it_trains_the_formulas_count_of_parameters(bottleneck):
    dims = base_model.dimensions()
    d, L, labels = dims.hidden, dims.layers, 2
    model = adapted(bottleneck)
    trainable, total = measure.count_params(model)
    head = d * labels + labels
    # Houlsby: 2 adapters per layer, each down d×m + m and up m×d + d.
    assert trainable == L * 2 * (2 * d * bottleneck + bottleneck + d) + head
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"classifier.weight", "classifier.bias"} <= names
    assert not any(n.startswith("bert.pooler") for n in names)
    assert len([n for n in names if ".adapter." in n]) == L * 2 * 4
    assert total - trainable == sum(p.numel() for p in classifier.load_base().encoder.parameters())


def test_it_changes_only_adapter_and_head_parameters(trained):
    now = trained.model.state_dict()
    trainable = {n for n, p in trained.model.named_parameters() if p.requires_grad}
    assert set(now) == set(trained.before)
    for name, value in now.items():
        if name in trainable:
            assert not torch.equal(value, trained.before[name]), f"{name} did not train"
        else:
            assert torch.equal(value, trained.before[name]), f"frozen {name} changed"


def test_it_lowers_the_loss_on_sentiment(trained):
    assert trained.loss_after < 0.7 * trained.loss_before


def test_it_gives_back_the_base_model_when_disabled_even_after_training(trained):
    batch = trained.batches[0]
    base = classifier.build_classifier(2, seed=0)
    base.classifier.load_state_dict(trained.model.classifier.state_dict())  # the trained head
    assert not torch.equal(logits(trained.model, batch), logits(base, batch))
    with adapters.adapters_disabled(trained.model):
        assert torch.equal(logits(trained.model, batch), logits(base, batch))
    assert not torch.equal(logits(trained.model, batch), logits(base, batch))  # restored
    adapters.adapters_enabled(trained.model, False)
    assert torch.equal(logits(trained.model, batch), logits(base, batch))
    adapters.adapters_enabled(trained.model, True)


def test_it_keeps_its_own_adapters_when_deep_copied(trained):
    batch = trained.batches[0]
    twin = copy.deepcopy(trained.model)
    assert torch.equal(logits(twin, batch), logits(trained.model, batch))
    adapters.adapters_enabled(twin, False)  # the twin's hooks call the twin's adapters only
    assert not torch.equal(logits(twin, batch), logits(trained.model, batch))
