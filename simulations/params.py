"""Trainable-parameter counts by formula (pure arithmetic, no framework).

Each function names the method's paper and what it counts. The engine stores the formula's
prediction beside the count it takes from the model, and the tests require the two to agree.

Shapes are (d_in, d_out) pairs; `Dims` carries the numbers of a BERT-style encoder so that these
functions need nothing but integers.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Dims:
    hidden: int
    intermediate: int
    layers: int
    vocab: int
    max_positions: int
    token_types: int
    # The pooler (a d×d layer on the [CLS] state). The lab's classifier has none: its head reads the
    # mean of the token states (workers/head.py), so its encoder is loaded without one.
    pooler: bool = True

    def encoder_params(self) -> int:
        """The encoder's parameters, counted from these dimensions (bert_encoder_params)."""
        return bert_encoder_params(
            self.vocab, self.max_positions, self.token_types, self.hidden, self.intermediate, self.layers, self.pooler
        )

    def target_shapes(self, target: str) -> list[tuple[int, int]]:
        """(d_in, d_out) of each matrix one layer has for this target module."""
        d, f = self.hidden, self.intermediate
        return {
            "query": [(d, d)],
            "key": [(d, d)],
            "value": [(d, d)],
            "attention_output": [(d, d)],
            "ffn": [(d, f), (f, d)],
        }[target]


def lora_matrix_params(d_in: int, d_out: int, rank: int) -> int:
    """LoRA (Hu et al. 2021): A is r×d_in and B is d_out×r, so r·(d_in + d_out) per matrix,
    2·d·r for a square d×d matrix (the figure the source documents quote)."""
    return rank * (d_in + d_out)


def classifier_head_params(hidden: int, num_labels: int) -> int:
    """A linear classifier on the pooled hidden state: weight hidden×labels plus a bias per label."""
    return hidden * num_labels + num_labels


def lora_model_params(shapes_per_layer: list[tuple[int, int]], layers: int, rank: int, head: int = 0) -> int:
    """Σ r·(d_in+d_out) over the adapted matrices of one layer, × layers, + the trained head."""
    per_layer = sum(lora_matrix_params(d_in, d_out, rank) for d_in, d_out in shapes_per_layer)
    return per_layer * layers + head


def dora_model_params(shapes_per_layer: list[tuple[int, int]], layers: int, rank: int, head: int = 0) -> int:
    """DoRA (Liu et al. 2024): LoRA on the direction plus one trained magnitude per output
    column of every adapted matrix: LoRA's count + Σ d_out × layers."""
    magnitudes = sum(d_out for _, d_out in shapes_per_layer) * layers
    return lora_model_params(shapes_per_layer, layers, rank, head) + magnitudes


def adapter_weight_params(hidden: int, bottleneck: int) -> int:
    """The two projections of a bottleneck adapter without biases, 2·d·m: the source documents'
    convention (m = 64 on d = 1024 gives 131,072)."""
    return 2 * hidden * bottleneck


def adapter_params(hidden: int, bottleneck: int) -> int:
    """One Houlsby bottleneck adapter (Houlsby et al. 2019): down d×m and up m×d with biases,
    2·d·m + m + d, the count the lab's adapters train."""
    return adapter_weight_params(hidden, bottleneck) + bottleneck + hidden


def adapter_model_params(hidden: int, bottleneck: int, layers: int, head: int = 0) -> int:
    """Two adapters per layer (after attention and after the FFN), + the trained head."""
    return 2 * layers * adapter_params(hidden, bottleneck) + head


def prompt_params(virtual_tokens: int, hidden: int, head: int = 0) -> int:
    """Prompt tuning (Lester et al. 2021): n trained input embeddings of size d, + the head."""
    return virtual_tokens * hidden + head


def prefix_params(virtual_tokens: int, hidden: int, layers: int, head: int = 0) -> int:
    """Prefix tuning (Li & Liang 2021): a key and a value vector per virtual token per layer,
    n·2·d·L (without the optional reparametrisation MLP), + the head."""
    return virtual_tokens * 2 * hidden * layers + head


def ia3_params(targets: list[str], dims: Dims, head: int = 0) -> int:
    """IA3 (Liu et al. 2022): one learned scale per feature. An attention projection's scale
    multiplies its output (d_out numbers); the FFN's multiplies its inner activation, the input of
    its second matrix (f numbers), where the paper puts l_ff. With the default targets (key, value,
    ffn): (2·d + f)·L, 55,296 on BERT-base."""
    per_layer = 0
    for target in targets:
        if target == "ffn":
            per_layer += dims.intermediate
        else:
            per_layer += sum(d_out for _, d_out in dims.target_shapes(target))
    return per_layer * dims.layers + head


def ia3_peft_bert_default_params(dims: Dims, head: int = 0) -> int:
    """What peft's IA3Config trains on a BERT encoder when it is given no target_modules: its
    table's key, value and output.dense, with output.dense also the feed-forward module. peft
    matches a name in a list as the end of a module's name, so output.dense finds the FFN's second
    matrix and the attention output (attention.output.dense) as well, and scales the input of
    both: (2·d + d + f)·L, d·L more than the paper's placement."""
    d, f = dims.hidden, dims.intermediate
    return (2 * d + d + f) * dims.layers + head


def bitfit_params(dims: Dims, head: int = 0) -> int:
    """BitFit (Ben Zaken et al. 2022): every bias of the encoder. The embedding LayerNorm (d);
    per layer Q, K, V, attention output (4d), two LayerNorms (2d), FFN (f + d); the pooler (d),
    where the encoder has one."""
    d, f = dims.hidden, dims.intermediate
    return d + dims.layers * (4 * d + 2 * d + f + d) + (d if dims.pooler else 0) + head


def bert_encoder_params(
    vocab: int, max_positions: int, token_types: int, hidden: int, intermediate: int, layers: int, pooler: bool = True
) -> int:
    """Parameters of a BERT encoder (Devlin et al. 2019), counted layer by layer.

    Embeddings: (vocab + positions + token types)·d, plus a LayerNorm (2d).
    Each layer: Q, K, V and the attention output, d×d with bias each (4·(d²+d)); a LayerNorm;
    the FFN d×f and f×d with biases (2·d·f + f + d); another LayerNorm.
    Pooler: one d×d layer with bias.
    """
    d, f = hidden, intermediate
    embeddings = (vocab + max_positions + token_types) * d + 2 * d
    layer = 4 * (d * d + d) + 2 * d + (2 * d * f + f + d) + 2 * d
    return embeddings + layers * layer + (d * d + d if pooler else 0)


def _shapes(params: dict, dims: Dims) -> list[tuple[int, int]]:
    return [s for t in params.get("target_modules", []) for s in dims.target_shapes(t)]


def _full(params: dict, dims: Dims, head: int) -> int:
    return dims.encoder_params() + head


# Each method of the registry (simulations/methods.py) by name: what it trains, given its run
# parameters (as workers/methods.py validate_run returns them), the encoder and the head's count.
FORMULAS = {
    "full": _full,
    "lora": lambda p, dims, head: lora_model_params(_shapes(p, dims), dims.layers, p["rank"], head),
    "qlora": lambda p, dims, head: lora_model_params(_shapes(p, dims), dims.layers, p["rank"], head),
    "dora": lambda p, dims, head: dora_model_params(_shapes(p, dims), dims.layers, p["rank"], head),
    "adapter": lambda p, dims, head: adapter_model_params(dims.hidden, p["bottleneck"], dims.layers, head),
    "prompt": lambda p, dims, head: prompt_params(p["virtual_tokens"], dims.hidden, head),
    "prefix": lambda p, dims, head: prefix_params(p["virtual_tokens"], dims.hidden, dims.layers, head),
    "ia3": lambda p, dims, head: ia3_params(p.get("target_modules", []), dims, head),
    "bitfit": lambda p, dims, head: bitfit_params(dims, head),
}


def trainable_params(method: str, params: dict, dims: Dims, num_labels: int) -> int:
    """What `method` with `params` trains on this encoder with a num_labels head."""
    if method not in FORMULAS:
        raise ValueError(f"no formula for method {method!r}")
    return FORMULAS[method](params, dims, classifier_head_params(dims.hidden, num_labels))
