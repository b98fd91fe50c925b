"""Prefix tuning: learned key/value prefixes in every attention layer."""

import pytest
import torch

from simulations import params as formulas
from workers import base_model, classifier, encoding, prefix

pytestmark = pytest.mark.slow


def batch(n=8, start=0):
    train, _ = encoding.encode_task("sentiment")
    return encoding.collate(train.ids[start : start + n], train.labels[start : start + n], torch.device("cpu"))


def test_it_trains_only_the_prefixes_and_the_head():
    model = prefix.attach_prefixes(classifier.build_classifier(2, 0), virtual_tokens=5, seed=0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    dims = base_model.dimensions()
    assert trainable == {
        f"bert.encoder.layer.{i}.attention.self.prefix_{kv}" for i in range(dims.layers) for kv in ("key", "value")
    } | {"classifier.weight", "classifier.bias"}
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert count == formulas.prefix_params(5, dims.hidden, dims.layers, formulas.classifier_head_params(dims.hidden, 2))


def test_it_lets_every_token_attend_to_the_prefixes_even_with_padding():
    model = prefix.attach_prefixes(classifier.build_classifier(2, 0), virtual_tokens=3, seed=0).eval()
    padded = batch(8)  # rows of different lengths: the mask is used
    single = {k: v[:1, : int(padded["attention_mask"][0].sum())] for k, v in padded.items() if k != "labels"}
    with torch.no_grad():
        together = model(**{k: v for k, v in padded.items() if k != "labels"}).logits[0]
        alone = model(**single).logits[0]
    assert torch.allclose(together, alone, atol=1e-5)  # padding changes nothing for the prefixed model
    plain = classifier.build_classifier(2, 0).eval()
    with torch.no_grad():
        assert not torch.allclose(plain(**single).logits[0], alone)  # the prefixes do change the output
