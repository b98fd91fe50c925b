"""Running a run's reproduce script as a user away from the lab would: alone in an empty folder,
in a fresh Python process that cannot import the lab, offline, on the CPU; and checking that the
text names no path of this server."""

import os
import re
import subprocess
import sys
from pathlib import Path

from workers import base_model

REPO = Path(__file__).resolve().parents[2]


def server_paths(*more) -> set[str]:
    """Absolute paths of this server that downloaded text must not name: the repository, the
    virtual environment (as named and as resolved: the base model's package lies in it), the base
    model's folder, the var folder, and any given."""
    from django.conf import settings

    paths = {REPO, Path(sys.prefix), Path(sys.prefix).resolve(), base_model.model_path(), Path(settings.VAR_DIR)}
    paths |= {Path(p) for p in more}
    return {str(p) for p in paths}


def assert_no_server_path(text: str, *more) -> None:
    named = sorted(p for p in server_paths(*more) if p in text)
    assert not named, f"the text names the server's {named}"


def run_script(text: str, tmp_path: Path, timeout=120) -> subprocess.CompletedProcess:
    """Run `text` as reproduce.py in a new empty folder under `tmp_path`, from there."""
    away = tmp_path / "away"
    away.mkdir()
    path = away / "reproduce.py"
    path.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "PEFTLAB", "PYTHONPATH"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    # As many CPU threads as the lab trained with (the test processes share the cores: see
    # tests/support/parallel.py): on a CPU with AMX, bf16 products split over another number of
    # threads round differently, by up to 4e-4 in a loss after two steps (measured here).
    if threads := os.environ.get("PEFTLAB_TORCH_THREADS"):
        env["OMP_NUM_THREADS"] = threads
    done = subprocess.run(
        [sys.executable, str(path)], cwd=away, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert sorted(p.name for p in away.iterdir()) == ["reproduce.py"], "the script needs no file beside it"
    return done


def printed_losses(stdout: str) -> list[float]:
    return [float(x) for x in re.findall(r"^step \d+  training loss ([0-9.]+)$", stdout, re.M)]
