"""Trainable-parameter counts by formula (pure arithmetic, no framework).

LoRA (Hu et al. 2021) replaces the update of a d_in×d_out matrix by B·A with A: r×d_in and
B: d_out×r, so it trains r·(d_in + d_out) numbers per adapted matrix: 2·d·r for a square d×d
matrix, the figure the seed documents quote.
"""


def lora_matrix_params(d_in: int, d_out: int, rank: int) -> int:
    """Parameters of A (r×d_in) and B (d_out×r)."""
    return rank * (d_in + d_out)


def classifier_head_params(hidden: int, num_labels: int) -> int:
    """A linear classifier on the pooled hidden state: weight hidden×labels plus one bias per label."""
    return hidden * num_labels + num_labels


def lora_model_params(shapes_per_layer: list[tuple[int, int]], layers: int, rank: int,
                      head: int = 0) -> int:
    """Σ r·(d_in+d_out) over the adapted matrices of one layer, × layers, + the trained head."""
    per_layer = sum(lora_matrix_params(d_in, d_out, rank) for d_in, d_out in shapes_per_layer)
    return per_layer * layers + head


def bert_encoder_params(vocab: int, max_positions: int, token_types: int, hidden: int,
                        intermediate: int, layers: int, pooler: bool = True) -> int:
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
