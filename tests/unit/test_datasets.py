"""Tests for the shipped datasets and workers.datasets (no Django, no torch)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from workers import datasets

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "workers" / "data" / "build_datasets.py"
TASKS = ["sentiment", "topic"]

NEGATION = re.compile(r"\b(not|never|nothing|nobody|no)\b|n't\b", re.IGNORECASE)
CONTRAST = re.compile(r"\b(but|yet|although|however|even though|still)\b", re.IGNORECASE)


def all_examples(task):
    return task.train + task.val


def test_it_loads_both_tasks():
    assert set(TASKS) <= set(datasets.task_names())
    sentiment = datasets.load_task("sentiment")
    assert sentiment.labels == ("negative", "positive")
    assert (sentiment.train_size, sentiment.val_size) == (800, 200)
    topic = datasets.load_task("topic")
    assert topic.labels == ("sports", "science", "business", "technology")
    assert (topic.train_size, topic.val_size) == (600, 160)
    for task in (sentiment, topic):
        for ex in all_examples(task):
            assert isinstance(ex, datasets.Example)
            assert isinstance(ex.text, str) and ex.text.strip()
            assert 0 <= ex.label < len(task.labels)


def test_it_caches_loaded_tasks():
    assert datasets.load_task("topic") is datasets.load_task("topic")


def test_it_lists_tasks_with_sizes():
    listed = {t["name"]: t for t in datasets.list_tasks()}
    assert set(TASKS) <= set(listed)
    for name in TASKS:
        task = datasets.load_task(name)
        assert listed[name] == {
            "name": name,
            "title": task.title,
            "description": task.description,
            "labels": list(task.labels),
            "train_size": task.train_size,
            "val_size": task.val_size,
        }
        assert task.title and task.description


@pytest.mark.parametrize("name", TASKS)
def test_it_balances_classes_within_10_percent(name):
    task = datasets.load_task(name)
    for split in (task.train, task.val):
        counts = Counter(ex.label for ex in split)
        assert set(counts) == set(range(len(task.labels)))
        assert max(counts.values()) <= 1.1 * min(counts.values())


@pytest.mark.parametrize("name", TASKS)
def test_it_has_no_duplicate_texts(name):
    texts = [ex.text for ex in all_examples(datasets.load_task(name))]
    assert len(texts) == len(set(texts))
    normalized = [" ".join(t.lower().split()) for t in texts]
    assert len(normalized) == len(set(normalized))


@pytest.mark.parametrize("name", TASKS)
def test_it_has_no_overlap_between_train_and_val(name):
    task = datasets.load_task(name)
    assert not {ex.text for ex in task.train} & {ex.text for ex in task.val}


def test_it_includes_negation_with_both_labels():
    task = datasets.load_task("sentiment")
    negated = [ex for ex in all_examples(task) if NEGATION.search(ex.text)]
    assert any(" not " in ex.text for ex in negated)
    assert any("n't" in ex.text for ex in negated)
    assert len(negated) >= 0.2 * len(all_examples(task))
    # Negation must not be a label shortcut: both labels, neither dominating.
    share_positive = sum(ex.label == task.labels.index("positive") for ex in negated) / len(negated)
    assert 0.3 <= share_positive <= 0.7
    for split in (task.train, task.val):
        assert {ex.label for ex in split if NEGATION.search(ex.text)} == {0, 1}


def test_it_includes_contrast_with_both_labels():
    task = datasets.load_task("sentiment")
    contrast = [ex for ex in all_examples(task) if CONTRAST.search(ex.text)]
    assert any(" but " in ex.text for ex in contrast)
    assert any(" yet " in ex.text for ex in contrast)
    assert len(contrast) >= 0.2 * len(all_examples(task))
    share_positive = sum(ex.label == task.labels.index("positive") for ex in contrast) / len(contrast)
    assert 0.3 <= share_positive <= 0.7
    for split in (task.train, task.val):
        assert {ex.label for ex in split if CONTRAST.search(ex.text)} == {0, 1}


def test_it_raises_a_helpful_error_for_an_unknown_task():
    with pytest.raises(datasets.UnknownTask) as info:
        datasets.load_task("no-such-task")
    message = str(info.value)
    assert "no-such-task" in message
    for name in TASKS:
        assert name in message
    assert isinstance(info.value, KeyError)


def test_it_rejects_paths_as_task_names():
    with pytest.raises(datasets.UnknownTask):
        datasets.load_task("../data/sentiment")


def write_task(folder: Path, rows: str) -> Path:
    folder.mkdir()
    (folder / "task.json").write_text(
        json.dumps({"name": folder.name, "title": "T", "description": "D", "labels": ["a", "b"]}), encoding="utf-8"
    )
    (folder / "train.csv").write_text("text,label\nfirst,a\nsecond,b\n", encoding="utf-8")
    (folder / "val.csv").write_text(rows, encoding="utf-8")
    return folder


def test_it_reads_a_valid_task_folder(tmp_path):
    task = datasets.read_task(write_task(tmp_path / "mini", 'text,label\n"third, quoted",b\n'))
    assert task.labels == ("a", "b")
    assert task.train == (("first", 0), ("second", 1))
    assert task.val == (datasets.Example("third, quoted", 1),)


def test_it_rejects_a_label_not_in_task_json_naming_file_and_line(tmp_path):
    folder = write_task(tmp_path / "bad", "text,label\nfine,a\noops,c\n")
    with pytest.raises(ValueError) as info:
        datasets.read_task(folder)
    message = str(info.value)
    assert "val.csv:3" in message
    assert "'c'" in message


def test_it_regenerates_byte_identical_files(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for name in TASKS:
        for filename in ("train.csv", "val.csv", "task.json"):
            shipped = (datasets.DATA_DIR / name / filename).read_bytes()
            regenerated = (tmp_path / name / filename).read_bytes()
            assert regenerated == shipped, f"{name}/{filename} differs from a fresh build"
