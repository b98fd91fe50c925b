"""Helpers for tests that build and train models in-process."""

import torch

from workers import classifier, encoding


def sentiment_batches(n=32, size=8):
    """The first n sentiment training examples as batches of `size`, on the CPU."""
    train, _ = encoding.encode_task("sentiment")
    cpu = torch.device("cpu")
    return [encoding.collate(train.ids[i : i + size], train.labels[i : i + size], cpu) for i in range(0, n, size)]


@torch.no_grad()
def logits(model, batch):
    model.eval()
    return model(**batch).logits


@torch.no_grad()
def mean_loss(model, batches):
    model.eval()
    return sum(model(**b).loss.item() for b in batches) / len(batches)


def poison_head(monkeypatch) -> None:
    """Make every model built from now on give a NaN loss at its first step."""
    real_build = classifier.build_classifier

    def poisoned(num_labels, seed):
        model = real_build(num_labels, seed)
        with torch.no_grad():
            model.classifier.weight.fill_(float("nan"))
        return model

    monkeypatch.setattr(classifier, "build_classifier", poisoned)
