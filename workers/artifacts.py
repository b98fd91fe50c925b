"""What a run ships: its trained part, saved so that it loads back into the base model.

A run's folder holds `peftlab.json` (method, task labels, parameters, base model, head) and, as the
method's record says (simulations/methods.py `saved_by`):
- peft's own format for lora, dora, qlora, prompt and ia3 (`adapter_config.json`,
  `adapter_model.safetensors`): `PeftModel.from_pretrained` loads it onto the base classifier;
- the whole model for full fine-tuning (`config.json`, `model.safetensors`);
- for the methods peft lacks or cannot run on this encoder (adapter, prefix, bitfit):
  `trained.safetensors`, every tensor that trained, by its name in the model. `load_trained`
  rebuilds the method's structure on a fresh base classifier and puts these tensors in.

Its download (`zip_folder`) is that folder as it leaves the server: the base model named by its
public id, not this server's path, and a model card (workers/card.py) in place of peft's empty
template.
"""

import json
import zipfile
from pathlib import Path

from workers import base_model
from workers.methods import METHODS, RunSpec

# torch, safetensors and the builders are imported inside the functions that need them: the web
# layer imports this module for zip_folder and must not load torch.

MANIFEST = "peftlab.json"
TRAINED = "trained.safetensors"
CARD = "README.md"
PEFT_CONFIG = "adapter_config.json"
# The zip's version in its file name: a zip cached by an older lab (the server path in
# adapter_config.json, peft's template card) is not served again.
ZIP_FORMAT = 2
# The classifier's head a run trained with (workers/head.py). Runs saved before 2026-12-07 read the
# [CLS] state through the pooler and have no "head" in their manifest: their trained part does not
# fit today's classifier.
HEAD = "mean of the token states"


def save(model, spec: RunSpec, labels: list[str], directory: Path) -> int:
    """Write the run's trained part and manifest to `directory`; return the bytes on disk."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    if METHODS[spec.method].saved_by in ("peft", "transformers"):
        model.save_pretrained(directory)
        (directory / CARD).unlink(missing_ok=True)  # peft's template: the download gets the run's card
    else:
        tensors = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(tensors, directory / TRAINED)
    manifest = {"base_model": base_model.NAME, "head": HEAD, "labels": labels, **spec.as_dict()}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def load_trained(directory: Path, device=None):
    """Rebuild a saved run's model from its folder (the inverse of `save`) on `device` (CPU)."""
    import torch
    from safetensors.torch import load_file

    from workers import builders, classifier

    manifest = read_manifest(directory)
    if manifest.get("head") != HEAD:
        raise ValueError(
            f"this run was trained with another classifier head ({manifest.get('head', '[CLS] through the pooler')}); "
            f"today's reads the {HEAD}: train it again to load it"
        )
    spec = RunSpec(
        method=manifest["method"],
        task=manifest["task"],
        steps=manifest["steps"],
        seed=manifest["seed"],
        params=manifest["params"],
    )
    device = device or torch.device("cpu")
    num_labels = len(manifest["labels"])
    saved_by = METHODS[spec.method].saved_by
    if saved_by == "transformers":
        from workers.head import MeanPoolClassifier

        return MeanPoolClassifier.from_pretrained(directory).to(device)
    model = classifier.build_classifier(num_labels, spec.seed)
    if saved_by == "peft":
        from peft import PeftModel

        if spec.method == "qlora":
            from workers import quantize

            compute = torch.bfloat16 if device.type == "cuda" else torch.float32
            model = quantize.quantize_4bit(model, compute, device)
        return PeftModel.from_pretrained(model, directory).to(device)
    model = builders.BUILDERS[spec.method](model, spec, device)
    tensors = load_file(directory / TRAINED)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    if set(tensors) != trained:
        raise ValueError(
            f"{directory / TRAINED} does not match a {spec.method} model: "
            f"unexpected {sorted(set(tensors) - trained)[:3]}, missing {sorted(trained - set(tensors))[:3]}"
        )
    model.load_state_dict(tensors, strict=False)
    return model.to(device)


def public_peft_config(text: str) -> str:
    """adapter_config.json as it leaves the server: peft wrote the base model's local folder (this
    server's layout); a reader gets its public id (the lab loads onto the base it builds itself, so
    it never reads this field)."""
    config = json.loads(text)
    config["base_model_name_or_path"] = base_model.PUBLIC_ID
    return json.dumps(config, indent=2, sort_keys=True)


def zip_folder(directory: Path, card: str) -> Path:
    """A zip of the run's folder beside it (made once), for download, with `card` (the run's model
    card) as its README.md and its adapter_config.json naming the base model's public id."""
    target = directory.with_name(f"{directory.name}.v{ZIP_FORMAT}.zip")
    if not target.exists():
        partial = target.with_suffix(".part")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for f in sorted(directory.rglob("*")):
                name = f.relative_to(directory).as_posix()
                if not f.is_file() or name == CARD:
                    continue
                if name == PEFT_CONFIG:
                    archive.writestr(name, public_peft_config(f.read_text()))
                else:
                    archive.write(f, name)
            archive.writestr(CARD, card)
        partial.rename(target)
    return target


def read_manifest(directory: Path) -> dict:
    """A saved run's peftlab.json."""
    return json.loads((directory / MANIFEST).read_text())
