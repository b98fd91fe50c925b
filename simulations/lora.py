"""P10–P12, the LoRA chapter: parameter counts, the forward path and the zero start.

Pure numpy, no Django: the API (peftlab/playgrounds/lora.py) validates and serialises.

LoRA (Hu et al. 2021) keeps a pretrained d_out×d_in matrix W frozen and trains its update as a
product of two thin matrices, A (r×d_in) and B (d_out×r), scaled by α/r:

    h = W·x + (α/r)·B·(A·x),    ΔW = (α/r)·B·A.

A starts random and B starts at zero, so ΔW = 0 before the first step. The per-matrix and
per-model counts reuse simulations/params.py, the one place where the count formulas live.
"""

from dataclasses import dataclass

import numpy as np

from simulations.params import Dims, lora_matrix_params, lora_model_params

# --- P11 parameter counter ----------------------------------------------------------------------

# The target-module sets the playground compares, by the names the run API uses.
TARGET_SETS = {
    "Q": ("query",),
    "QV": ("query", "value"),
    "QKVO": ("query", "key", "value", "attention_output"),
    "QKVO+FFN": ("query", "key", "value", "attention_output", "ffn"),
}
RANK_MIN, RANK_MAX = 1, 256
# Hidden sizes the d slider steps through: the models below and the sizes between them.
HIDDEN_SIZES = (64, 128, 256, 384, 512, 768, 1024, 2048, 4096, 5120, 8192, 12288)


@dataclass(frozen=True)
class ModelConfig:
    """What the counter needs of a transformer: its widths, depth, FFN layout and total size.

    ffn_matrices is 2 for the classic FFN (d→f, f→d) and 3 for LLaMA's gated one (gate and up
    d→f, down f→d).
    """

    key: str
    label: str
    hidden: int
    intermediate: int
    layers: int
    ffn_matrices: int
    total_params: int
    source: str

    def target_shapes(self, target: str) -> list[tuple[int, int]]:
        """(d_in, d_out) of each matrix one layer has for this target module."""
        d, f = self.hidden, self.intermediate
        if target in ("query", "key", "value", "attention_output"):
            return [(d, d)]
        if target == "ffn":
            return [(d, f)] * (self.ffn_matrices - 1) + [(f, d)]
        raise ValueError(f"unknown target module {target!r}")

    def lora_params(self, targets: tuple[str, ...], rank: int) -> int:
        """Σ r·(d_in + d_out) over the adapted matrices of a layer, × layers (no head)."""
        shapes = [s for t in targets for s in self.target_shapes(t)]
        return lora_model_params(shapes, self.layers, rank)


def decoder_params(
    vocab: int,
    positions: int,
    hidden: int,
    intermediate: int,
    layers: int,
    ffn_matrices: int,
    biases: bool,
    tied: bool,
    norm_params: int,
) -> int:
    """Parameters of a decoder-only transformer, counted layer by layer.

    Embeddings: vocab·d token embeddings (plus positions·d if learned), and an output projection
    of vocab·d unless tied to the embeddings. Each layer: Q, K, V, O (4·d², + 4d biases); the FFN
    (ffn_matrices matrices of d·f, + f per d→f matrix and d for f→d as biases); two norms of
    norm_params each (2d for LayerNorm, d for RMSNorm); one final norm.
    """
    d, f = hidden, intermediate
    embeddings = (vocab + positions) * d + (0 if tied else vocab * d)
    attention = 4 * d * d + (4 * d if biases else 0)
    ffn = ffn_matrices * d * f + ((ffn_matrices - 1) * f + d if biases else 0)
    return embeddings + layers * (attention + ffn + 2 * norm_params) + norm_params


def bert_config(key: str, label: str, dims: Dims, source: str) -> ModelConfig:
    """A BERT-style encoder's config from its Dims (the base model's come from its config.json)."""
    total = dims.encoder_params()
    return ModelConfig(key, label, dims.hidden, dims.intermediate, dims.layers, 2, total, source)


BERT_BASE = bert_config(
    "bert-base", "BERT-base", Dims(768, 3072, 12, 30522, 512, 2), "Devlin et al. 2019: d=768, 12 layers, FFN 3072"
)
ROBERTA_BASE = bert_config(
    "roberta-base",
    "RoBERTa-base",
    Dims(768, 3072, 12, 50265, 514, 1),
    "Liu et al. 2019: BERT-base shape, 50,265-token vocabulary",
)
LLAMA_7B = ModelConfig(
    "llama-7b",
    "LLaMA-7B-like",
    4096,
    11008,
    32,
    3,
    decoder_params(32000, 0, 4096, 11008, 32, ffn_matrices=3, biases=False, tied=False, norm_params=4096),
    "Touvron et al. 2023: d=4096, 32 layers, gated FFN 11008, RMSNorm, no biases",
)
GPT3_175B = ModelConfig(
    "gpt3-175b",
    "GPT-3 175B",
    12288,
    4 * 12288,
    96,
    2,
    decoder_params(50257, 2048, 12288, 4 * 12288, 96, ffn_matrices=2, biases=True, tied=True, norm_params=2 * 12288),
    "Brown et al. 2020: d=12288, 96 layers, FFN 4d, learned positions, tied embeddings",
)
REFERENCE_MODELS = (BERT_BASE, ROBERTA_BASE, LLAMA_7B, GPT3_175B)

# Figures the source documents quote that the formula does not give; the page names them.
# 000 (the prompting/LoRA/adapters lecture): "Across all attention matrices in GPT-3 (Q, K, V, O
# × 96 layers), LoRA with r = 8 trains about 4.7 million parameters"; its target table lists
# Q only 4.7M, Q+V 9.4M, Q+K+V+O 18.8M, attention + FFN 37.7M.
SEED_GPT3_R8 = {"Q": 4.7e6, "QV": 9.4e6, "QKVO": 18.8e6, "QKVO+FFN": 37.7e6}
SEED_GPT3_R8_QKVO_PROSE = 4.7e6  # the sentence, which contradicts the same seed's table
# 003 (the efficiency-revolution essay): peft's print_trainable_parameters for LLaMA-2 7B, r=16,
# on q, k, v, o, gate, up and down projections: "trainable params: 41,943,040".
SEED_LLAMA_R16_ALL = 41_943_040
# 003, its rank table "Trainable Params (7B model, QV only)" for d = 4096: rank → quoted count.
# 2·d·r × 2 matrices × 32 layers gives half of each; the quoted figures are the Q, K, V, O count.
SEED_LLAMA_QV = {4: 4.2e6, 8: 8.4e6, 16: 16.8e6, 64: 67.1e6, 256: 268e6}


def per_matrix_table(hidden_sizes=HIDDEN_SIZES, ranks=None) -> dict:
    """For a square d×d matrix and every (d, r): LoRA's 2·d·r, the full d², the share 2r/d, and
    the break-even rank: the smallest r with 2·d·r ≥ d², i.e. ⌈d/2⌉."""
    ranks = np.arange(RANK_MIN, RANK_MAX + 1) if ranks is None else np.asarray(ranks)
    d = np.asarray(hidden_sizes)[:, None]
    lora = lora_matrix_params(d, d, ranks[None, :])
    return {
        "ranks": ranks,
        "hidden": np.asarray(hidden_sizes),
        "lora": lora,
        "full": (d * d)[:, 0],
        "share": lora / (d * d),
        "break_even": -(-d[:, 0] // 2),
    }


def model_counts(model: ModelConfig, ranks) -> dict[str, np.ndarray]:
    """Trainable LoRA parameters for each target set at each rank (LoRA matrices only)."""
    ranks = np.asarray(ranks)
    return {
        name: np.array([model.lora_params(targets, int(r)) for r in ranks]) for name, targets in TARGET_SETS.items()
    }


def rank_for_count(model: ModelConfig, targets: tuple[str, ...], count: float) -> float:
    """The rank at which `targets` on `model` would train `count` parameters (count is linear
    in r, so this is count / (count at r = 1)); says which r a quoted figure corresponds to."""
    return count / model.lora_params(targets, 1)


# --- P10 forward path ---------------------------------------------------------------------------

FORWARD_D_MIN, FORWARD_D_MAX = 4, 16
ALPHA_GRID = tuple(range(0, 33))  # α = 0 … 32; α = 0 switches the adapter off


def validate_forward(d: int, seed: int) -> None:
    if not FORWARD_D_MIN <= d <= FORWARD_D_MAX:
        raise ValueError(f"d must be between {FORWARD_D_MIN} and {FORWARD_D_MAX} (got {d})")
    if not 0 <= seed <= 2**31 - 1:
        raise ValueError(f"seed must be between 0 and {2**31 - 1} (got {seed})")


@dataclass(frozen=True)
class ForwardExample:
    """One small layer and input, and the LoRA forward path for every rank r = 1 … d.

    Per-rank arrays are indexed by r − 1. A_r is the first r rows of one r_max×d matrix and B_r
    the first r columns of one d×r_max matrix, so raising r adds directions and keeps the old ones.
    """

    W: np.ndarray  # d×d, frozen
    x: np.ndarray  # d
    Wx: np.ndarray  # d
    A: list[np.ndarray]  # A[r-1]: r×d
    B: list[np.ndarray]  # B[r-1]: d×r
    Ax: list[np.ndarray]  # r
    BAx: list[np.ndarray]  # d, before the α/r scale
    update: np.ndarray  # (d ranks, len(ALPHA_GRID), d): (α/r)·BAx, the adapter's contribution
    h: np.ndarray  # (d ranks, len(ALPHA_GRID), d): h = Wx + (α/r)·BAx
    scale: np.ndarray  # (d ranks, len(ALPHA_GRID)): α/r


def forward_example(d: int = 8, seed: int = 0, alphas=ALPHA_GRID) -> ForwardExample:
    """A seeded d×d frozen W, an input x, and trained-looking A and B (B is not zero here: this
    shows the path after some training; P12 shows the start). Then, for each r and α on the grid,

        h = W·x + (α/r)·B·(A·x),

    computed the way LoRA computes it: A·x first (a vector of width r), never the d×d product B·A.
    """
    validate_forward(d, seed)
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, d)) / np.sqrt(d)
    x = rng.standard_normal(d)
    A_full = rng.standard_normal((d, d)) / np.sqrt(d)
    B_full = rng.standard_normal((d, d)) * 0.5
    Wx = W @ x
    A = [A_full[:r] for r in range(1, d + 1)]
    B = [B_full[:, :r] for r in range(1, d + 1)]
    Ax = [a @ x for a in A]
    BAx = [b @ ax for b, ax in zip(B, Ax)]
    ranks = np.arange(1, d + 1)
    scale = np.asarray(alphas, dtype=float)[None, :] / ranks[:, None]
    update = scale[:, :, None] * np.asarray(BAx)[:, None, :]
    h = Wx[None, None, :] + update
    return ForwardExample(W, x, Wx, A, B, Ax, BAx, update, h, scale)


# --- P12 zero start -----------------------------------------------------------------------------

ZERO_D = 8
ZERO_TARGET_RANK = 2
ZERO_RANKS = (1, 2, 4, 8)
ZERO_STEPS = 60
INITS = {
    "lora": "A random, B = 0 (LoRA)",
    "both_zero": "A = 0 and B = 0",
    "both_random": "A and B random",
}
SCALINGS = {
    "alpha_over_r": "α/r (LoRA)",
    "alpha": "α, not divided by r",
}
ALPHA_MIN, ALPHA_MAX = 1, 64
LR_MIN, LR_MAX = 1e-4, 0.2


def validate_zero_start(alpha: float, lr: float, seed: int) -> None:
    if not ALPHA_MIN <= alpha <= ALPHA_MAX:
        raise ValueError(f"alpha must be between {ALPHA_MIN} and {ALPHA_MAX} (got {alpha:g})")
    if not LR_MIN <= lr <= LR_MAX:
        raise ValueError(f"lr must be between {LR_MIN:g} and {LR_MAX:g} (got {lr:g})")
    if not 0 <= seed <= 2**31 - 1:
        raise ValueError(f"seed must be between 0 and {2**31 - 1} (got {seed})")


def target_update(d: int, rank: int, seed: int) -> np.ndarray:
    """The update the adapter should learn: a seeded rank-`rank` d×d matrix with ‖·‖_F = 1."""
    rng = np.random.default_rng(seed)
    target = rng.standard_normal((d, rank)) @ rng.standard_normal((rank, d))
    return target / np.linalg.norm(target)


@dataclass(frozen=True)
class Trajectory:
    """Adam on L = ½‖(s)·B·A − ΔW*‖_F², s the scale; arrays are indexed by step 0 … steps."""

    delta: np.ndarray  # (steps+1, d, d): ΔW = s·B·A after each step
    norm: np.ndarray  # ‖ΔW‖_F
    loss: np.ndarray  # ½‖ΔW − ΔW*‖_F²
    grad_A: np.ndarray  # ‖∂L/∂A‖_F at the parameters of that step
    grad_B: np.ndarray  # ‖∂L/∂B‖_F


def train_lora(target: np.ndarray, rank: int, init: str, scale: float, lr: float, steps: int, seed: int) -> Trajectory:
    """Fit ΔW = scale·B·A to `target` with Adam (β1 0.9, β2 0.999, ε 1e-8), the optimiser LoRA
    is trained with. With ΔW − ΔW* = E the gradients are

        ∂L/∂B = scale·E·Aᵀ,    ∂L/∂A = scale·Bᵀ·E,

    so with B = 0 the gradient to A is zero but the one to B is not (A is random): B moves first
    and ΔW grows from exactly 0. With A = B = 0 both gradients are zero forever, and so is every
    Adam step (its update is m̂ / (√v̂ + ε) = 0 / ε).

    A's random start has standard deviation 1/√d (a Kaiming-like scale that does not depend on r,
    like peft's), so the α/r factor is what keeps the update size comparable across ranks.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)} (got {init!r})")
    d = target.shape[0]
    rng = np.random.default_rng(seed + 1)
    A_random = rng.standard_normal((rank, d)) / np.sqrt(d)
    B_random = rng.standard_normal((d, rank)) / np.sqrt(d)
    A = np.zeros((rank, d)) if init == "both_zero" else A_random
    B = B_random if init == "both_random" else np.zeros((d, rank))
    params = [A, B]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    deltas, losses, gA, gB = [], [], [], []
    for t in range(steps + 1):
        A, B = params
        delta = scale * B @ A
        err = delta - target
        grads = [scale * B.T @ err, scale * err @ A.T]
        deltas.append(delta)
        losses.append(0.5 * float(np.sum(err**2)))
        gA.append(float(np.linalg.norm(grads[0])))
        gB.append(float(np.linalg.norm(grads[1])))
        if t == steps:
            break
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g**2
            m_hat = m[i] / (1 - b1 ** (t + 1))
            v_hat = v[i] / (1 - b2 ** (t + 1))
            params[i] = params[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
    deltas = np.asarray(deltas)
    return Trajectory(deltas, np.linalg.norm(deltas, axis=(1, 2)), np.asarray(losses), np.asarray(gA), np.asarray(gB))


def zero_start(
    alpha: float = 8,
    lr: float = 0.01,
    seed: int = 0,
    d: int = ZERO_D,
    target_rank: int = ZERO_TARGET_RANK,
    ranks=ZERO_RANKS,
    steps: int = ZERO_STEPS,
):
    """Every trajectory the page can show: {scaling: {init: {rank: Trajectory}}}, and ΔW*.

    scaling "alpha_over_r" multiplies B·A by α/r (LoRA); "alpha" by α alone, to show what the
    division by r buys: the same α gives a similar update size at every rank.
    """
    validate_zero_start(alpha, lr, seed)
    target = target_update(d, target_rank, seed)
    runs = {
        scaling: {
            init: {
                r: train_lora(target, r, init, alpha / r if scaling == "alpha_over_r" else alpha, lr, steps, seed)
                for r in ranks
            }
            for init in INITS
        }
        for scaling in SCALINGS
    }
    return target, runs
