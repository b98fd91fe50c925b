"""P14 NF4 and double quantisation: 4-bit codes, block-wise absmax scaling, and what they cost.

Pure numpy (and the standard library's NormalDist for the normal quantile function), no Django.

Sources: Dettmers, Pagnoni, Holtzman & Zettlemoyer 2023, "QLoRA: Efficient Finetuning of
Quantized LLMs" (arXiv:2305.14314), §3 (NF4, double quantisation), and the source documents 001 ch6,
003 ("The Three Innovations") and 004 ("QLoRA").

Block-wise absmax quantisation. Split the weights into blocks of B numbers. Each block stores one
scale c = max |w| over the block, and each weight as the index of the nearest code value q_j to
w / c (a number in [-1, 1]). Reading it back gives ŵ = q_j · c. With k-bit indices and a
b-bit scale per block, a weight costs k + b / B bits.

NF4 (4-bit NormalFloat) places its 16 code values at quantiles of N(0, 1), so that a block of
Gaussian weights fills every code about equally often; int4 places them evenly.

Double quantisation stores the per-block scales themselves in 8 bits, with one fp32 scale per
group of 256 blocks: 8/B + 32/(256·B) bits per weight instead of 32/B.
"""

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

# The offset of Dettmers et al.: the mean of 1 − ½·(1/15) and 1 − ½·(1/16), the outermost
# quantile for 15 and for 16 levels. Using it for the largest level avoids Φ⁻¹(1) = ∞.
NF4_OFFSET = 0.5 * ((1 - 1 / (2 * 15)) + (1 - 1 / (2 * 16)))
CODES = ("nf4", "int4")
CODE_BITS = 4
FP16_BITS = 16
SCALE_BITS = 32  # an fp32 absmax per block, as in the paper
DQ_CODE_BITS = 8  # the scales' 8-bit codes under double quantisation
DQ_GROUP = 256  # blocks that share one fp32 second-level scale

BLOCKSIZES = (16, 32, 64, 128, 256, 512, 1024)
SAMPLE_SIZES = (1024, 4096, 16384, 65536)
# Nominal LLaMA sizes (the sources quote 7B in fp16 = 14 GB and 65B = 130 GB, so nominal counts).
MODEL_SIZES = {"7B": 7e9, "13B": 13e9, "33B": 33e9, "65B": 65e9}
GPU_MEMORY_GB = (24, 48, 80)
SEED_MAX = 2**31 - 1


def nf4_levels(offset: float = NF4_OFFSET) -> np.ndarray:
    """The 16 NF4 code values, sorted, in [-1, 1] (Dettmers et al. 2023, §3, "4-bit NormalFloat").

    Asymmetric so that zero is exactly representable: 8 positive values are the normal
    quantiles Φ⁻¹(p) at 8 evenly spaced p from `offset` down towards ½ (9 points, dropping ½
    itself), 7 negative values the mirror image of 7 such quantiles (8 points, dropping ½), plus
    0. Dividing by the largest value puts the extremes at exactly −1 and 1.
    """
    inv = NormalDist().inv_cdf
    positive = [inv(p) for p in np.linspace(offset, 0.5, 9)[:-1]]
    negative = [-inv(p) for p in np.linspace(offset, 0.5, 8)[:-1]]
    levels = np.sort(np.array(positive + [0.0] + negative))
    return levels / levels.max()


def int4_levels() -> np.ndarray:
    """Symmetric absmax int4: round(7·w/c) ∈ {−7 … 7}, so 15 evenly spaced values j/7.

    The 16th pattern (−8) is unused, since absmax scaling maps the block's extreme to ±7.
    """
    return np.arange(-7, 8) / 7.0


def levels_of(code: str) -> np.ndarray:
    """The code values of "nf4" or "int4"."""
    if code == "nf4":
        return nf4_levels()
    if code == "int4":
        return int4_levels()
    raise ValueError(f"code must be one of {', '.join(CODES)} (got {code!r})")


def round_to_levels(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Each x replaced by the nearest of the sorted `levels` (ties go to the upper one)."""
    midpoints = (levels[1:] + levels[:-1]) / 2
    return levels[np.searchsorted(midpoints, x, side="right")]


def absmax_per_block(w: np.ndarray, blocksize: int) -> np.ndarray:
    """max |w| over each block of `blocksize` consecutive weights (len(w) a multiple of it)."""
    if blocksize < 1 or len(w) % blocksize:
        raise ValueError(f"the number of weights ({len(w)}) must be a multiple of the block size ({blocksize})")
    return np.abs(w.reshape(-1, blocksize)).max(axis=1)


def double_quantize_scales(scales: np.ndarray, group: int = DQ_GROUP) -> np.ndarray:
    """The scales as read back after double quantisation.

    Like bitsandbytes, subtract the scales' mean (one fp32 number), then quantise them in groups
    of `group` with an fp32 absmax per group to 8-bit codes. We use symmetric linear int8 codes
    (round(127·x/c)); the paper uses an 8-bit float, which costs the same 8 bits.
    """
    mean = scales.mean()
    centred = scales - mean
    pad = (-len(centred)) % group
    padded = np.concatenate([centred, np.zeros(pad)]).reshape(-1, group)
    second = np.abs(padded).max(axis=1, keepdims=True)
    second[second == 0] = 1.0
    restored = np.round(127 * padded / second) * second / 127
    return restored.reshape(-1)[: len(scales)] + mean


def quantize_blockwise(w: np.ndarray, levels: np.ndarray, blocksize: int, double_quant: bool = False) -> np.ndarray:
    """The weights as read back after block-wise absmax quantisation to `levels`."""
    w = np.asarray(w, dtype=float)
    scales = absmax_per_block(w, blocksize)
    safe = np.where(scales == 0, 1.0, scales)
    codes = round_to_levels(w.reshape(-1, blocksize) / safe[:, None], levels)
    if double_quant:
        scales = double_quantize_scales(scales)
    return (codes * scales[:, None]).reshape(-1)


def scale_overhead_bits(blocksize: int, double_quant: bool = False) -> float:
    """Bits per weight spent on scales: 32/B, or 8/B + 32/(256·B) with double quantisation.

    At B = 64: 32/64 = 0.5 bits, and 8/64 + 32/(64·256) = 0.127 bits (the LoRA efficiency article: "from 0.5 bits
    per parameter to approximately 0.127").
    """
    if double_quant:
        return DQ_CODE_BITS / blocksize + SCALE_BITS / (blocksize * DQ_GROUP)
    return SCALE_BITS / blocksize


def bits_per_param(blocksize: int, double_quant: bool = False) -> float:
    """4 bits of code plus the scale overhead: 4.5 at B = 64, about 4.127 with double quant."""
    return CODE_BITS + scale_overhead_bits(blocksize, double_quant)


def weight_bytes(n_params: float, bits: float) -> float:
    """Bytes to hold n_params weights at `bits` bits each."""
    return n_params * bits / 8


def scale_constants(n_params: float, blocksize: int) -> int:
    """How many per-block scales n_params weights need: ⌈n / B⌉ (7B at B = 64: ~110M)."""
    return int(-(-n_params // blocksize))


@dataclass(frozen=True)
class ErrorStudy:
    """Quantisation error of Gaussian weights, for every sample size, block size and code.

    Arrays are indexed [sample size, block size] (SAMPLE_SIZES × BLOCKSIZES); dicts by code.
    """

    mse: dict[str, np.ndarray]
    mse_dq: dict[str, np.ndarray]
    max_abs_error: dict[str, np.ndarray]
    error_edges: np.ndarray
    error_hist: dict[str, np.ndarray]  # [size, block, bin]: share of weights per error bin
    normalized_edges: np.ndarray
    normalized_hist: np.ndarray  # [size, block, bin]: share of w / c per bin (code-independent)


def gaussian_weights(n: int, seed: int) -> np.ndarray:
    """n weights drawn from N(0, 1); a smaller n is a prefix of a larger one with the same seed."""
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be between 0 and {SEED_MAX} (got {seed})")
    return np.random.default_rng(seed).standard_normal(n)


def error_study(seed: int, sizes=SAMPLE_SIZES, blocksizes=BLOCKSIZES, bins: int = 41) -> ErrorStudy:
    """Quantise N(0, 1) weights with NF4 and int4 at every block size and measure the error.

    The weights have unit variance, so an MSE is also the error's share of the weights' power.
    """
    if max(blocksizes) > min(sizes):
        raise ValueError("every sample size must hold at least one block of the largest size")
    weights = gaussian_weights(max(sizes), seed)
    shape = (len(sizes), len(blocksizes))
    mse = {c: np.zeros(shape) for c in CODES}
    mse_dq = {c: np.zeros(shape) for c in CODES}
    worst = {c: np.zeros(shape) for c in CODES}
    errors = {}
    normalized_edges = np.linspace(-1, 1, bins + 1)
    normalized_hist = np.zeros(shape + (bins,))
    for i, n in enumerate(sizes):
        w = weights[:n]
        for j, b in enumerate(blocksizes):
            scales = absmax_per_block(w, b)
            counts, _ = np.histogram((w.reshape(-1, b) / scales[:, None]).ravel(), normalized_edges)
            normalized_hist[i, j] = counts / n
            for c in CODES:
                err = w - quantize_blockwise(w, levels_of(c), b)
                errors[c, i, j] = err
                mse[c][i, j] = np.mean(err**2)
                worst[c][i, j] = np.abs(err).max()
                mse_dq[c][i, j] = np.mean((w - quantize_blockwise(w, levels_of(c), b, True)) ** 2)
    # One set of error bins for every chart, so that switching settings keeps the axis.
    limit = max(float(worst[c].max()) for c in CODES)
    error_edges = np.linspace(-limit, limit, bins + 1)
    error_hist = {c: np.zeros(shape + (bins,)) for c in CODES}
    for (c, i, j), err in errors.items():
        error_hist[c][i, j] = np.histogram(err, error_edges)[0] / len(err)
    return ErrorStudy(mse, mse_dq, worst, error_edges, error_hist, normalized_edges, normalized_hist)


def memory_table(models=MODEL_SIZES, blocksizes=BLOCKSIZES) -> dict:
    """Weight memory in GB (10⁹ bytes) by model: fp16, and 4-bit with and without double quant
    at every block size. Weights only: LoRA, optimizer state and activations come on top."""
    table = {}
    for name, n in models.items():
        table[name] = {
            "params": n,
            "fp16_gb": weight_bytes(n, FP16_BITS) / 1e9,
            "nf4_gb": [weight_bytes(n, bits_per_param(b)) / 1e9 for b in blocksizes],
            "nf4_dq_gb": [weight_bytes(n, bits_per_param(b, True)) / 1e9 for b in blocksizes],
            "scale_constants": [scale_constants(n, b) for b in blocksizes],
        }
    return table
