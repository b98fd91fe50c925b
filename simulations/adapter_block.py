"""P8 Adapter block: the Houlsby bottleneck and what it costs (pure arithmetic, no Django).

Houlsby et al. 2019 ("Parameter-Efficient Transfer Learning for NLP") insert into each
transformer layer two adapters, one after the attention sublayer and one after the feed-forward
sublayer. An adapter maps h ↦ h + W_up · f(W_down · h + b_down) + b_up with W_down of shape m×d,
W_up of shape d×m and m ≪ d: a bottleneck of width m with a residual connection around it.

The the prompting-and-LoRA lecture counts 2·d·m parameters per adapter (the two weight matrices). With the
biases it is 2·d·m + m + d (`simulations.params.adapter_params`); the page shows both.
"""

from dataclasses import dataclass

from simulations.params import Dims, adapter_params, adapter_weight_params

HIDDEN_SIZES = (256, 384, 512, 768, 1024, 2048, 4096, 12288)
BOTTLENECKS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
ADAPTERS_PER_LAYER = 2

# Published configurations (Devlin et al. 2019, bert-base/large-uncased config.json).
BERT_BASE = Dims(hidden=768, intermediate=3072, layers=12, vocab=30522, max_positions=512, token_types=2)
BERT_LARGE = Dims(hidden=1024, intermediate=4096, layers=24, vocab=30522, max_positions=512, token_types=2)
# GPT-3 175B (Brown et al. 2020, Table 2.1): d = 12288, 96 layers; its total is the nominal 175B.
GPT3 = {"hidden": 12288, "layers": 96, "total": 175e9}


def adapter_weights(hidden: int, bottleneck: int) -> int:
    """The sources' count: W_down (d×m) and W_up (m×d), 2·d·m (d = 1024, m = 64: 131,072)."""
    return adapter_weight_params(hidden, bottleneck)


def validate(hidden: int, bottleneck: int) -> None:
    """Raise ValueError with a readable message when m is not a bottleneck of d."""
    if hidden < 1:
        raise ValueError(f"the hidden size d must be at least 1 (got {hidden})")
    if not 1 <= bottleneck <= hidden:
        raise ValueError(f"the bottleneck m must be between 1 and d = {hidden} (got {bottleneck})")


@dataclass(frozen=True)
class ModelShare:
    """Two adapters in every layer of one model, and their share of the model's parameters."""

    name: str
    hidden: int
    layers: int
    total: float  # the base model's parameters
    weights: int  # 2 adapters × layers × 2·d·m
    with_biases: int  # 2 adapters × layers × (2·d·m + m + d)

    @property
    def share(self) -> float:
        return self.weights / self.total

    @property
    def share_with_biases(self) -> float:
        return self.with_biases / self.total


def model_share(name: str, hidden: int, layers: int, total: float, bottleneck: int) -> ModelShare:
    """2·L adapters of width m on a model with hidden size d, L layers and `total` parameters."""
    validate(hidden, bottleneck)
    n = ADAPTERS_PER_LAYER * layers
    return ModelShare(
        name, hidden, layers, total, n * adapter_weights(hidden, bottleneck), n * adapter_params(hidden, bottleneck)
    )


def bert_total(dims: Dims) -> int:
    """A BERT encoder's parameters, counted from its configuration."""
    return dims.encoder_params()


def layer_breakdown(hidden: int, bottleneck: int) -> dict[str, int]:
    """One transformer layer with its two adapters, as the prompting-and-LoRA lecture tabulates it: attention 4d²,
    feed-forward 8d² (with the usual 4d inner width), two adapters 2dm each, layer norms 4d."""
    d, m = hidden, bottleneck
    return {
        "attention": 4 * d * d,
        "adapter_1": 2 * d * m,
        "feed_forward": 8 * d * d,
        "adapter_2": 2 * d * m,
        "layer_norms": 4 * d,
    }
