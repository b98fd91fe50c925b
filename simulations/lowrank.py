"""P9 Low-rank approximation: test matrices and their best rank-r reconstructions.

Pure numpy, no Django: the API serialises what these functions return.

The fact that the playground shows is the Eckart–Young–Mirsky theorem (Eckart & Young 1936,
Mirsky 1960). Write the singular value decomposition of an m×n matrix as

    M = Σ_i σ_i · u_i v_iᵀ,    σ_1 ≥ σ_2 ≥ … ≥ 0,

and keep the first r terms: M_r = Σ_{i≤r} σ_i · u_i v_iᵀ. Then no matrix of rank ≤ r is closer
to M in the Frobenius norm, and the error is exactly

    ‖M − M_r‖_F² = Σ_{i>r} σ_i².

M_r factors as (U_r Σ_r)(V_rᵀ): an m×r times an r×n matrix, r·(m+n) numbers instead of m·n.
LoRA stores a weight update ΔW as such a product B·A (Hu et al. 2021); the SVD shows the best
that any rank-r product can do for a given matrix.
"""

from dataclasses import dataclass

import numpy as np

from simulations.params import lora_matrix_params

# The kinds of test matrix: (label, what it shows). The page builds its menu from these.
KINDS = {
    "lowrank": (
        "Low rank plus noise",
        "A sum of true-rank random outer products plus Gaussian noise: the error should plateau at the true rank.",
    ),
    "smooth": (
        "Smooth pattern",
        "Tilted Gaussian bumps and a diagonal band: no exact rank, but nearly low rank. The true rank is not used.",
    ),
    "random": (
        "Random",
        "Independent Gaussian entries: full rank and no structure, so low rank "
        "does not help. The true rank and the noise are not used.",
    ),
}
SIZE_MIN, SIZE_MAX = 4, 64
SEED_MAX = 2**31 - 1
NOISE_MAX = 1.0


@dataclass(frozen=True)
class Reconstructions:
    """The truncated SVDs of one m×n matrix, for every rank r = 0 … min(m, n).

    Lists indexed by r have min(m, n) + 1 entries; index 0 is the empty (all-zero) approximation.
    """

    singular_values: np.ndarray  # σ_1 ≥ … ≥ σ_k, k = min(m, n)
    recons: np.ndarray  # shape (k + 1, m, n): recons[r] is the best rank-r matrix M_r
    errors: np.ndarray  # ‖M − M_r‖_F / ‖M‖_F = sqrt(Σ_{i>r} σ_i² / Σ_i σ_i²)
    energy: np.ndarray  # Σ_{i≤r} σ_i² / Σ_i σ_i² (so errors² + energy = 1)
    params_factors: np.ndarray  # r·(m+n): an m×r and an r×n factor
    params_full: int  # m·n

    @property
    def params_ratio(self) -> np.ndarray:
        """r·(m+n) / (m·n): the fraction of the full matrix that the factors cost."""
        return self.params_factors / self.params_full

    @property
    def break_even_rank(self) -> int:
        """The smallest r whose factors cost at least the full matrix: r·(m+n) ≥ m·n."""
        m, n = self.recons.shape[1:]
        return -(-m * n // (m + n))

    @property
    def value_limit(self) -> float:
        """The largest |entry| of M and of all its reconstructions: one colour scale for all."""
        return float(np.abs(self.recons).max(initial=0.0))


def validate_settings(kind: str, size: int, seed: int, true_rank: int, noise: float) -> None:
    """Raise ValueError with a message a person can act on if a setting is out of bounds."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
    if not SIZE_MIN <= size <= SIZE_MAX:
        raise ValueError(f"size must be between {SIZE_MIN} and {SIZE_MAX} (got {size})")
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be between 0 and {SEED_MAX} (got {seed})")
    if not 1 <= true_rank <= size:
        raise ValueError(f"true_rank must be between 1 and the size, {size} (got {true_rank})")
    # `not a <= x <= b` also rejects NaN, which compares false with everything.
    if not 0.0 <= noise <= NOISE_MAX:
        raise ValueError(f"noise must be between 0 and {NOISE_MAX:g} (got {noise:g})")


def make_matrix(kind: str, size: int, seed: int, true_rank: int, noise: float) -> np.ndarray:
    """A size×size test matrix, the same for the same arguments, scaled so max |entry| = 1.

    - "lowrank": L = Σ_{i≤true_rank} a_i b_iᵀ with Gaussian a_i, b_i, plus Gaussian noise N
      scaled so that ‖N‖_F = noise · ‖L‖_F. Its error curve drops to about the noise level at
      r = true_rank and is flat after: the rank-r picture of a fine-tuning update.
    - "smooth": a few rotated, elongated Gaussian bumps and a band along the diagonal, plus noise
      as above. Smooth but not separable, so its singular values decay fast yet never reach 0.
    - "random": iid N(0, 1) entries (true_rank and noise are not used). Full rank with slowly
      decaying singular values: low rank does not always work.

    Scaling does not change any relative error; it only gives every kind the same colour range.
    """
    validate_settings(kind, size, seed, true_rank, noise)
    rng = np.random.default_rng(seed)
    if kind == "lowrank":
        signal = rng.standard_normal((size, true_rank)) @ rng.standard_normal((true_rank, size))
    elif kind == "smooth":
        signal = _smooth_pattern(rng, size)
    else:
        signal = rng.standard_normal((size, size))
        noise = 0.0
    # Draw the noise even when noise == 0 so that moving the noise slider keeps the same signal.
    raw_noise = rng.standard_normal((size, size))
    matrix = signal + noise * np.linalg.norm(signal) / np.linalg.norm(raw_noise) * raw_noise
    return matrix / np.abs(matrix).max()


def _smooth_pattern(rng: np.random.Generator, size: int) -> np.ndarray:
    # A bump elongated along a tilted axis is not a product f(x)·g(y), so it is not exactly low
    # rank; its smoothness is what makes the singular values decay quickly.
    y, x = np.mgrid[0 : 1 : size * 1j, 0 : 1 : size * 1j]
    pattern = 0.8 * np.exp(-((x - y) ** 2) / 0.04)  # a band along the diagonal
    for _ in range(4):
        cx, cy = rng.uniform(0.15, 0.85, 2)
        angle = rng.uniform(0, np.pi)
        long, short = rng.uniform(0.2, 0.4), rng.uniform(0.06, 0.12)
        along = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
        across = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
        sign = rng.choice([-1.0, 1.0])
        pattern += sign * np.exp(-((along / long) ** 2) - (across / short) ** 2)
    return pattern


def svd_reconstructions(matrix: np.ndarray) -> Reconstructions:
    """Every truncated SVD M_r of `matrix`, with its error, energy and parameter count.

    The errors come from the singular values (Eckart–Young–Mirsky, see the module docstring),
    not from subtracting the reconstructions, so they are exact: 0 at full rank, not 1e-16.
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ValueError(f"expected a non-empty 2-D matrix (got shape {matrix.shape})")
    if not np.isfinite(matrix).all():
        raise ValueError("the matrix has NaN or infinite entries")
    m, n = matrix.shape
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    # Sum the tail from the small end rather than computing total − captured: no cancellation,
    # so a tiny error stays accurate and full rank gives exactly 0; rank 0 discards the total
    # summed the same way, so its error is exactly 1.
    discarded = np.concatenate([np.cumsum(s[::-1] ** 2)[::-1], [0.0]])
    total = float(discarded[0])
    if total == 0.0:
        raise ValueError("the matrix is all zeros: relative errors are undefined")

    # terms[i] = σ_i u_i v_iᵀ; the running sum gives M_1 … M_k in one pass.
    terms = np.einsum("i,mi,in->imn", s, u, vt)
    recons = np.concatenate([np.zeros((1, m, n)), np.cumsum(terms, axis=0)])

    captured = np.concatenate([[0.0], np.cumsum(s**2)])
    ranks = np.arange(len(s) + 1)
    return Reconstructions(
        singular_values=s,
        recons=recons,
        errors=np.sqrt(discarded / total),
        energy=captured / total,
        params_factors=lora_matrix_params(m, n, ranks),
        params_full=m * n,
    )
