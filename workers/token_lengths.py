"""Token lengths of a task's examples, as the engine's tokenizer counts them.

The web layer predicts a run's memory before it starts; the activations grow with the padded
length of the widest batch, at most the task's longest training example. This reads the base
model's tokenizer.json with the `tokenizers` library alone (no torch, no transformers).
"""

from functools import cache

from workers import base_model, datasets
from workers.constants import MAX_TOKENS


@cache
def _tokenizer():
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(base_model.model_path() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    return tokenizer


def longest_train_example(task_name: str) -> int:
    """Tokens ([CLS] and [SEP] included) of the task's longest training example; cached for a
    shipped task, counted afresh for an uploaded one (it lives in the database)."""
    if datasets.is_shipped(task_name):
        return _longest_shipped(task_name)
    return _longest(datasets.load_task(task_name))


@cache
def _longest_shipped(task_name: str) -> int:
    return _longest(datasets.load_task(task_name))


def _longest(task: datasets.Task) -> int:
    texts = [e.text for e in task.train]
    return max(len(encoding.ids) for encoding in _tokenizer().encode_batch(texts))
