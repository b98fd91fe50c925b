"""P16 Low-rank lab: learn a weight update of true intrinsic rank k from noisy data with rank r.

Pure numpy, no Django.

The task (the LoRA course, chapter 8, made into a regression so that data size matters): inputs x ∈ R^d
drawn from N(0, I), targets y = x·ΔW* + ε with ε ~ N(0, σ²I), and ΔW* = U·Vᵀ of rank k, scaled
so that the signal x·ΔW* has unit power per output (‖ΔW*‖_F² = d_out). The frozen base weight W
is left out: its contribution x·W is known and subtracted, which is exactly what LoRA's update
has to learn.

The fit. The rank-r least-squares fit of Y ≈ X·ΔW is reduced-rank regression (Izenman 1975;
Reinsel & Velu 1998): take the ordinary least-squares solution B̂ and project it onto the r
leading right singular vectors V_r of the fitted values X·B̂:

    ΔW_r = B̂ · V_r V_rᵀ,

a product (B̂V_r)(V_rᵀ) of a d_in×r and an r×d_out matrix, i.e. LoRA's B·A with r·(d_in+d_out)
numbers. Nothing is better on the training set at rank r; the training error therefore only
falls as r grows.

Held-out error. For a new x ~ N(0, I) the expected squared error per output is exactly

    σ² + ‖ΔW_r − ΔW*‖_F² / d_out,

the noise floor σ² plus how far the fitted update is from the true one. We report that
expectation, not an estimate from a finite test set. With plenty of data it plateaus at σ² from
r = k on; with little data, ranks past k fit the noise and it rises again: overfitting.
"""

from dataclasses import dataclass

import numpy as np

from simulations.params import lora_matrix_params

SIZE = 20  # d_in = d_out
TRUE_RANK_MAX = 8
NOISE_MAX = 1.0
SAMPLE_SIZES = (30, 60, 120, 480, 2000)
SEED_MAX = 2**31 - 1


def validate(true_rank: int, noise: float, seed: int) -> None:
    """Raise ValueError with a message a person can act on if a setting is out of bounds."""
    if not 1 <= true_rank <= TRUE_RANK_MAX:
        raise ValueError(f"true_rank must be between 1 and {TRUE_RANK_MAX} (got {true_rank})")
    if not 0.0 <= noise <= NOISE_MAX:  # also rejects NaN
        raise ValueError(f"noise must be between 0 and {NOISE_MAX:g} (got {noise:g})")
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be between 0 and {SEED_MAX} (got {seed})")


def true_update(true_rank: int, seed: int, size: int = SIZE) -> np.ndarray:
    """ΔW* = U·Vᵀ of rank k with Gaussian U, V, scaled to ‖ΔW*‖_F² = size (unit signal power)."""
    rng = np.random.default_rng([seed, 0])
    delta = rng.standard_normal((size, true_rank)) @ rng.standard_normal((true_rank, size))
    return delta * np.sqrt(size) / np.linalg.norm(delta)


def training_data(n: int, noise: float, delta: np.ndarray, seed: int):
    """X (n×d) and Y = X·ΔW* + σ·E. A smaller n is a prefix of a larger one for the same seed,
    and the noise draw does not depend on σ, so moving σ only rescales the same noise."""
    rng = np.random.default_rng([seed, 1])
    x = rng.standard_normal((n, delta.shape[0]))
    e = rng.standard_normal((n, delta.shape[1]))
    return x, x @ delta + noise * e


def reduced_rank_fits(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The least-squares ΔW_r for every r = 0 … d_out: shape (d_out + 1, d_in, d_out)."""
    if x.shape[0] < x.shape[1]:
        raise ValueError(f"need at least d_in = {x.shape[1]} samples for least squares (got {x.shape[0]})")
    ols, *_ = np.linalg.lstsq(x, y, rcond=None)
    _, _, vt = np.linalg.svd(x @ ols, full_matrices=False)
    fits = [np.zeros_like(ols)]
    for r in range(1, y.shape[1] + 1):
        v = vt[:r].T
        fits.append(ols @ v @ v.T)
    return np.array(fits)


@dataclass(frozen=True)
class LabResult:
    """For one (k, σ, seed): per sample size n (SAMPLE_SIZES) and rank r = 0 … SIZE."""

    delta: np.ndarray  # ΔW*
    fits: np.ndarray  # [n, r, d_in, d_out]
    train_mse: np.ndarray  # [n, r]: mean squared error on the training set
    heldout_mse: np.ndarray  # [n, r]: σ² + ‖ΔW_r − ΔW*‖_F² / d_out
    update_error: np.ndarray  # [n, r]: ‖ΔW_r − ΔW*‖_F / ‖ΔW*‖_F
    noise_floor: float  # σ²
    params: np.ndarray  # [r]: r·(d_in + d_out)
    best_rank: np.ndarray  # [n]: argmin over r of the held-out error


def run_lab(true_rank: int, noise: float, seed: int, sizes=SAMPLE_SIZES) -> LabResult:
    """Fit every rank on every sample size for one task."""
    validate(true_rank, noise, seed)
    delta = true_update(true_rank, seed)
    x_all, y_all = training_data(max(sizes), noise, delta, seed)
    fits, train, held, upd = [], [], [], []
    for n in sizes:
        x, y = x_all[:n], y_all[:n]
        f = reduced_rank_fits(x, y)
        fits.append(f)
        train.append([np.mean((y - x @ fr) ** 2) for fr in f])
        gap = np.array([np.sum((fr - delta) ** 2) for fr in f])
        held.append(noise**2 + gap / delta.shape[1])
        upd.append(np.sqrt(gap) / np.linalg.norm(delta))
    held = np.array(held)
    ranks = np.arange(delta.shape[1] + 1)
    return LabResult(
        delta,
        np.array(fits),
        np.array(train),
        held,
        np.array(upd),
        noise**2,
        lora_matrix_params(delta.shape[0], delta.shape[1], ranks),
        held.argmin(axis=1),
    )
