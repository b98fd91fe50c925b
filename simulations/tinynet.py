"""A tiny multilayer perceptron trained with numpy, for the P6 and P7 playgrounds.

Pure numpy, no Django. It is small on purpose: every result the two playgrounds show is a real
training run that finishes in a fraction of a second on a laptop CPU.

The data: three interleaved spiral arms in the plane (a classic non-linear problem: no straight
line separates any arm from the others), drawn from a fixed seed, with a fixed train/test split.

The network: 2 → 32 → 32 → 3, ReLU hidden layers, softmax cross-entropy. All parameters live in
one flat vector θ (weights then bias of each layer, in order), so that a pruning mask (P6) and a
random subspace θ = θ0 + P·z (P7) are both one line of vector algebra.

The optimiser: full-batch Adam (Kingma & Ba 2015),

    m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²,
    θ ← θ − lr · m̂ / (√v̂ + ε),   m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ).

A coordinate whose gradient is always 0 never moves: that is how a masked weight stays pruned.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SIZES = (2, 32, 32, 3)  # input, hidden, hidden, classes
DATA_SEED = 2024  # the data set and its split never change; the seeds the pages offer are the net's
TRAIN_PER_CLASS = 100
TEST_PER_CLASS = 200
STEPS = 300  # Adam steps of every training run in P6 and P7 (the same budget for all)
LR = 0.02


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray  # (n, 2)
    y_train: np.ndarray  # (n,) integer labels 0 … k−1
    x_test: np.ndarray
    y_test: np.ndarray


def spirals(
    per_class: int, rng: np.random.Generator, classes: int = 3, noise: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """`classes` spiral arms, `per_class` points each: radius t ∈ [0.05, 1] and angle
    2πc/k + 6·t + noise·N(0, 1) for arm c, so each arm winds almost a full turn
    (a linear classifier scores about 54 % on the test split, the MLP over 98 %)."""
    t = np.sqrt(rng.uniform(0.0025, 1.0, (classes, per_class)))  # more points far out
    offset = 2 * np.pi * np.arange(classes)[:, None] / classes
    angle = offset + 6.0 * t + noise * rng.standard_normal(t.shape)
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=-1).reshape(-1, 2)
    y = np.repeat(np.arange(classes), per_class)
    return x, y


def dataset() -> Dataset:
    """The playgrounds' data: 3-arm spirals, 600 training and 600 test points, always the same."""
    rng = np.random.default_rng(DATA_SEED)
    x_train, y_train = spirals(TRAIN_PER_CLASS, rng)
    x_test, y_test = spirals(TEST_PER_CLASS, rng)
    return Dataset(x_train, y_train, x_test, y_test)


# --- the flat parameter vector -------------------------------------------------------------------
def layer_shapes(sizes=SIZES) -> list[tuple[int, int]]:
    """The weight matrix shapes (fan_in, fan_out) of each layer."""
    return list(zip(sizes[:-1], sizes[1:]))


def param_count(sizes=SIZES) -> int:
    """D = Σ (fan_in·fan_out + fan_out): 2·32+32 + 32·32+32 + 32·3+3 = 1,251 for 2→32→32→3."""
    return sum(i * o + o for i, o in layer_shapes(sizes))


def weight_slices(sizes=SIZES) -> list[slice]:
    """Where each layer's weight matrix sits in θ (biases follow each matrix)."""
    out, start = [], 0
    for i, o in layer_shapes(sizes):
        out.append(slice(start, start + i * o))
        start += i * o + o
    return out


def weight_mask(sizes=SIZES) -> np.ndarray:
    """A boolean vector over θ: True on weights, False on biases (pruning touches weights only)."""
    is_weight = np.zeros(param_count(sizes), dtype=bool)
    for s in weight_slices(sizes):
        is_weight[s] = True
    return is_weight


def unpack(theta: np.ndarray, sizes=SIZES) -> list[tuple[np.ndarray, np.ndarray]]:
    """Views (W, b) of each layer inside the flat θ."""
    layers, start = [], 0
    for i, o in layer_shapes(sizes):
        w = theta[start : start + i * o].reshape(i, o)
        b = theta[start + i * o : start + i * o + o]
        layers.append((w, b))
        start += i * o + o
    return layers


def init_params(rng: np.random.Generator, sizes=SIZES) -> np.ndarray:
    """He-normal weights (std √(2/fan_in), He et al. 2015) and zero biases."""
    parts = []
    for i, o in layer_shapes(sizes):
        parts += [rng.standard_normal(i * o) * np.sqrt(2.0 / i), np.zeros(o)]
    return np.concatenate(parts)


# --- forward and backward ------------------------------------------------------------------------
def logits(theta: np.ndarray, x: np.ndarray, sizes=SIZES) -> np.ndarray:
    """The network's output scores, shape (n, classes)."""
    layers = unpack(theta, sizes)
    h = x
    for w, b in layers[:-1]:
        h = np.maximum(h @ w + b, 0.0)
    w, b = layers[-1]
    return h @ w + b


def loss_and_grad(theta: np.ndarray, x: np.ndarray, y: np.ndarray, sizes=SIZES) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy L = −(1/n) Σ log softmax(z)_y, and dL/dθ by backpropagation.

    Backward: dL/dz = (softmax(z) − onehot(y))/n at the output; through a layer h' = relu(hW + b):
    dW = hᵀ·δ, db = Σ_rows δ, δ_prev = (δ·Wᵀ) ⊙ [h > 0].
    """
    layers = unpack(theta, sizes)
    acts = [x]
    for w, b in layers[:-1]:
        acts.append(np.maximum(acts[-1] @ w + b, 0.0))
    w, b = layers[-1]
    z = acts[-1] @ w + b
    z = z - z.max(axis=1, keepdims=True)  # stable softmax: same result, no overflow
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = len(y)
    loss = -float(log_p[np.arange(n), y].mean())

    delta = np.exp(log_p)
    delta[np.arange(n), y] -= 1.0
    delta /= n
    grads = []
    for k in range(len(layers) - 1, -1, -1):
        w, _ = layers[k]
        h = acts[k]
        grads.append((delta.sum(axis=0), (h.T @ delta).ravel()))
        if k:
            delta = (delta @ w.T) * (h > 0)
    # grads were collected from the last layer back; θ stores W then b per layer, first to last.
    return loss, np.concatenate([part for db, dw in reversed(grads) for part in (dw, db)])


def accuracy(theta: np.ndarray, x: np.ndarray, y: np.ndarray, sizes=SIZES) -> float:
    """The fraction of points whose highest score is their label."""
    return float(np.mean(logits(theta, x, sizes).argmax(axis=1) == y))


# --- training ------------------------------------------------------------------------------------
def adam(
    grad_fn: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    steps: int = STEPS,
    lr: float = LR,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[np.ndarray, list[float]]:
    """Minimise with Adam from x0 (see the module docstring); returns x and the loss per step."""
    x = np.array(x0, dtype=float)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    losses = []
    for t in range(1, steps + 1):
        loss, g = grad_fn(x)
        losses.append(loss)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        x = x - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    return x, losses


def train(
    theta0: np.ndarray, data: Dataset, mask: np.ndarray | None = None, steps: int = STEPS, lr: float = LR
) -> np.ndarray:
    """Ordinary training of θ from θ0; with a 0/1 `mask`, only the kept entries are trained and
    the pruned ones are held at exactly 0 (θ0 ⊙ mask at the start, gradient ⊙ mask every step)."""
    if mask is None:

        def grad_fn(theta):
            return loss_and_grad(theta, data.x_train, data.y_train)

        start = theta0
    else:
        keep = mask.astype(float)

        def grad_fn(theta):
            loss, g = loss_and_grad(theta, data.x_train, data.y_train)
            return loss, g * keep

        start = theta0 * keep
    theta, _ = adam(grad_fn, start, steps, lr)
    return theta
