"""The generated script really runs: LoRA for two steps, on the CPU, offline, alone in an empty
folder, in a fresh Python process that imports nothing of the lab and names no path of this server
(its data is embedded), and gives the losses of the run it reproduces. Here for a
run in the precision this machine's default does not choose: tests/browser/test_browser_compare.py checks
the same for a run of the embedded lab, which trains in the default (workers/precision.py)."""

import re

import pytest
import torch

from simulations import params as formulas
from tests.support.reproduce import assert_no_server_path, printed_losses, run_script
from workers import base_model, datasets, methods, notebook, precision, training

pytestmark = pytest.mark.slow


def test_the_generated_lora_script_of_a_run_in_the_other_precision_gives_its_losses(tmp_path, monkeypatch):
    spec = methods.validate_run("lora", "sentiment", 2, 0, {"rank": 4})
    bf16 = precision.training_dtype(torch.device("cpu"), "auto") is None
    monkeypatch.setenv(precision.SETTING, "bf16" if bf16 else "off")
    losses = []
    metrics = training.train(spec, lambda points, evals: losses.extend(p.loss for p in points) or True)
    text = notebook.script(spec, run_id=1, metrics=metrics)
    assert f"AUTOCAST = {bf16}" in text
    assert f"training steps in {'bf16 autocast' if bf16 else 'fp32'}" in text
    assert_no_server_path(text)
    done = run_script(text, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert printed_losses(done.stdout) == pytest.approx(losses, abs=1e-4)
    # The script's own count is the lab's formula's (simulations/params.py).
    trainable = re.search(r"^lora: ([\d,]+) trainable parameters", done.stdout, re.M)
    expected = formulas.trainable_params(
        "lora", spec.params, base_model.dimensions(), len(datasets.load_task("sentiment").labels)
    )
    assert trainable and int(trainable.group(1).replace(",", "")) == expected
    accuracy = re.search(r"^validation accuracy: ([0-9.]+)$", done.stdout, re.M)
    assert accuracy and 0.0 <= float(accuracy.group(1)) <= 1.0
