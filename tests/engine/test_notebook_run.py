"""The generated script really runs: LoRA for two steps, on the CPU, offline, in a fresh Python
process that imports nothing of the lab, and gives the losses of the run it reproduces. Here for a
run in the precision this machine's default does not choose: tests/browser/test_browser_compare.py checks
the same for a run of the embedded lab, which trains in the default (workers/precision.py)."""

import os
import re
import subprocess
import sys

import pytest
import torch

from simulations import params as formulas
from workers import base_model, datasets, methods, notebook, precision, training

pytestmark = pytest.mark.slow


def run_script(text: str, tmp_path, timeout=120) -> subprocess.CompletedProcess:
    path = tmp_path / "reproduce.py"
    path.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "PEFTLAB"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    # Run from the temporary folder: the lab's packages are not importable from there.
    return subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
    )


def printed_losses(stdout: str) -> list[float]:
    return [float(x) for x in re.findall(r"^step \d+  training loss ([0-9.]+)$", stdout, re.M)]


def test_the_generated_lora_script_of_a_run_in_the_other_precision_gives_its_losses(tmp_path, monkeypatch):
    spec = methods.validate_run("lora", "sentiment", 2, 0, {"rank": 4})
    bf16 = precision.training_dtype(torch.device("cpu"), "auto") is None
    monkeypatch.setenv(precision.SETTING, "bf16" if bf16 else "off")
    losses = []
    metrics = training.train(spec, lambda points, evals: losses.extend(p.loss for p in points) or True)
    text = notebook.script(spec, run_id=1, metrics=metrics)
    assert f"AUTOCAST = {bf16}" in text
    assert f"training steps in {'bf16 autocast' if bf16 else 'fp32'}" in text
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
