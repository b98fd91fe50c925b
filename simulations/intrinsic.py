"""P7 Intrinsic dimension: train the small network only inside a random d-dimensional subspace.

Pure numpy, no Django. Every accuracy here is a real training run of `tinynet`.

Li et al. (2018), "Measuring the Intrinsic Dimension of Objective Landscapes": freeze a random
starting point θ0 ∈ R^D and a random D×d matrix P, and train only z ∈ R^d:

    θ = θ0 + P·z,   z starts at 0, so training starts exactly at θ0.

By the chain rule the gradient with respect to z is the full gradient projected onto P's columns:

    ∂L/∂z = Pᵀ · ∂L/∂θ  evaluated at θ0 + P·z.

The intrinsic dimension d_90 is the smallest d whose subspace training reaches 90 % of the
accuracy of ordinary training of all D parameters. Aghajanyan et al. (2020) measured it for
fine-tuning pretrained language models (θ0 = the pretrained weights) and found it tiny: about
200 for RoBERTa on MRPC (the prompting-and-LoRA lecture). LoRA (Hu et al. 2021) builds on the same fact, but instead of
a random subspace of all the weights it learns a low-rank update ΔW = B·A per matrix.

P's columns are Gaussian, scaled to unit length (Li et al.'s dense projection), so one unit of
any z_i moves θ by exactly one unit of distance, whatever d is.
"""

from dataclasses import dataclass

import numpy as np

from simulations import tinynet

DIMENSIONS = (1, 2, 5, 10, 20, 50, 100, 200, 500)  # the subspace sizes d; "full" D is added
THRESHOLD = 0.90  # d_90: the smallest d reaching 90 % of full training's accuracy
SUBSPACE_LR = 0.05  # z's learning rate (its steps are unit-length directions, see above)
SEED_MAX = 9999

# Seed figures. The prompting-and-LoRA lecture: RoBERTa fine-tuned on MRPC has an intrinsic dimension of about 200, for
# a model the source calls 280M parameters, "0.00007 % of the total". The LoRA efficiency article: subspaces of
# 200–800 dimensions already give competitive results.
SEED_ROBERTA_D90 = 200
SEED_ROBERTA_PARAMS = 280_000_000
SEED_SUBSPACE_RANGE = (200, 800)
# The prompting-and-LoRA lecture's "280M" does not match the model: RoBERTa-large, the model whose MRPC intrinsic
# dimension is about 200 in Aghajanyan et al., is usually quoted at about 355M parameters
# (Liu et al. 2019). The page shows the share both ways.
ROBERTA_LARGE_PARAMS = 355_000_000


@dataclass(frozen=True)
class IntrinsicResult:
    """Test accuracy of subspace training for every d of `dimensions`, and of full training."""

    dimensions: tuple[int, ...]  # d values, the last one = D (full-size random subspace)
    accuracy: list[float]  # test accuracy after training z ∈ R^d
    train_accuracy: list[float]
    full_accuracy: float  # ordinary training of all D parameters (no projection)
    init_accuracy: float  # θ0 untrained: where every subspace run starts
    total_params: int  # D
    losses: list[list[float]]  # training loss per step, per d

    @property
    def d90(self) -> int | None:
        """The smallest d of the grid reaching THRESHOLD × full accuracy (None if none does)."""
        return intrinsic_dimension(self.dimensions, self.accuracy, self.full_accuracy)


def fraction_of_params(d: int, total: int) -> float:
    """d / D: the share of the parameters that subspace training moves independently."""
    return d / total


def intrinsic_dimension(dimensions, accuracies, full_accuracy: float, threshold: float = THRESHOLD) -> int | None:
    """The smallest d (in increasing order of the grid) with accuracy ≥ threshold · full.

    The grid is searched from small to large and the first d that clears the bar is d_90, even if
    a larger d happens to dip below it again (training noise): that is Li et al.'s definition.
    """
    order = np.argsort(dimensions, kind="stable")
    bar = threshold * full_accuracy
    for i in order:
        if accuracies[i] >= bar:
            return int(dimensions[i])
    return None


def projection(total: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """A dense D×d Gaussian matrix with every column scaled to unit length."""
    p = rng.standard_normal((total, d))
    return p / np.linalg.norm(p, axis=0, keepdims=True)


def subspace_grad_fn(theta0: np.ndarray, p: np.ndarray, data: tinynet.Dataset):
    """The loss and ∂L/∂z = Pᵀ·∂L/∂θ at θ = θ0 + P·z, as a function of z."""

    def grad_fn(z):
        loss, g = tinynet.loss_and_grad(theta0 + p @ z, data.x_train, data.y_train)
        return loss, p.T @ g

    return grad_fn


def train_subspace(
    theta0: np.ndarray, p: np.ndarray, data: tinynet.Dataset, steps: int = tinynet.STEPS, lr: float = SUBSPACE_LR
):
    """Adam on z from 0; returns (θ0 + P·z, the loss per step)."""
    z, losses = tinynet.adam(subspace_grad_fn(theta0, p, data), np.zeros(p.shape[1]), steps, lr)
    return theta0 + p @ z, losses


def validate_settings(seed: int) -> None:
    """Raise ValueError with a message a person can act on if a setting is out of bounds."""
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be between 0 and {SEED_MAX} (got {seed})")


def run_intrinsic(seed: int = 0, dimensions=DIMENSIONS) -> IntrinsicResult:
    """Train the net from θ0 (drawn from `seed`) in a random subspace of every d of the grid and
    of size D, and once ordinarily. The same seed gives the same numbers."""
    validate_settings(seed)
    data = tinynet.dataset()
    rng = np.random.default_rng(seed)
    theta0 = tinynet.init_params(rng)
    total = len(theta0)
    full = tinynet.train(theta0, data)
    dims = tuple(d for d in dimensions if d < total) + (total,)

    accs, train_accs, losses = [], [], []
    proj_rng = np.random.default_rng([seed, 7])  # the projections' own stream
    for d in dims:
        theta, curve = train_subspace(theta0, projection(total, d, proj_rng), data)
        accs.append(tinynet.accuracy(theta, data.x_test, data.y_test))
        train_accs.append(tinynet.accuracy(theta, data.x_train, data.y_train))
        losses.append(curve)
    return IntrinsicResult(
        dimensions=dims,
        accuracy=accs,
        train_accuracy=train_accs,
        full_accuracy=tinynet.accuracy(full, data.x_test, data.y_test),
        init_accuracy=tinynet.accuracy(theta0, data.x_test, data.y_test),
        total_params=total,
        losses=losses,
    )
