"""A task's texts as token ids, and the batches a run draws from them.

Each task is tokenized once, unpadded; a batch pads only to its own longest sequence.
"""

import random
from dataclasses import dataclass
from functools import cache

import torch

from workers import classifier, datasets, subsets
from workers.constants import MAX_TOKENS


@dataclass
class Encoded:
    ids: list[list[int]]
    labels: list[int]


def encode_task(task_name: str) -> tuple[Encoded, Encoded]:
    """Token ids of a task's train and validation texts, unpadded (padding is per batch).
    A shipped task is encoded once per process; an uploaded one (a few thousand rows at most,
    read from the database) each time, so a process never trains on a stale copy."""
    if datasets.is_shipped(task_name):
        return _encode_shipped(task_name)
    return _encode(datasets.load_task(task_name))


@cache
def _encode_shipped(task_name: str) -> tuple[Encoded, Encoded]:
    return _encode(datasets.load_task(task_name))


def _encode(task: datasets.Task) -> tuple[Encoded, Encoded]:
    tokenizer = classifier.load_base().tokenizer

    def encode(examples):
        ids = tokenizer([e.text for e in examples], truncation=True, max_length=MAX_TOKENS)["input_ids"]
        return Encoded(ids=ids, labels=[e.label for e in examples])

    return encode(task.train), encode(task.val)


def train_subset(data: Encoded, size: int | None, seed: int) -> Encoded:
    """The run's training examples: the whole split, or a seeded class-balanced subset."""
    if size is None or size >= len(data.labels):
        return data
    idx = subsets.balanced_subset(data.labels, size, seed)
    return Encoded(ids=[data.ids[i] for i in idx], labels=[data.labels[i] for i in idx])


def collate(ids: list[list[int]], labels: list[int], device) -> dict:
    """Pad to the longest sequence in this batch only (dynamic padding)."""
    width = max(len(x) for x in ids)
    pad = classifier.load_base().tokenizer.pad_token_id
    input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": mask.to(device),
        "labels": torch.tensor(labels, dtype=torch.long, device=device),
    }


def batches(data: Encoded, batch_size: int, seed: int):
    """An endless stream of full, shuffled batches, reshuffled every epoch from the run's seed.

    batch_size must not exceed the data (training.train caps it); an epoch's last partial batch
    is dropped so that every step sees the same number of examples. (Batches grouped by length
    pad less, but learn worse here: bench/throughput.py's "length groups" lever measures both.
    training.train removes the padding instead, keeping the batches: workers/packing.py.)
    """
    rng = random.Random(seed)
    order = list(range(len(data.labels)))
    while True:
        rng.shuffle(order)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[start : start + batch_size]
            yield [data.ids[i] for i in idx], [data.labels[i] for i in idx]
