"""P6 Lottery ticket: prune a small trained network and compare three ways to use the sparse net.

Pure numpy, no Django. Every accuracy here is measured on the held-out test points of
`tinynet.dataset()` after a real training run of `tinynet.train`.

The lottery ticket hypothesis (Frankle & Carbin 2019): a dense network, randomly initialised,
contains a sparse subnetwork that, trained alone from the *same* initial values, reaches the
dense network's accuracy. They find it by iterative magnitude pruning (IMP):

    1. initialise θ0 and train to θ_T;
    2. remove the fraction of the remaining weights with the smallest |θ_T| (mask m);
    3. rewind the survivors to their initial values θ0 ⊙ m and train again with m fixed;
    4. repeat 2–3 until the wanted sparsity.

Here the rounds of IMP step through the sparsity grid (0 → 20 → 40 → … → 98 %), so each grid
point is one more round. At every sparsity s three networks are compared:

    pruned:  the dense θ_T with its smallest-|θ| weights set to 0, no retraining (one shot);
    ticket:  the IMP mask, survivors rewound to θ0 and retrained (the winning ticket);
    random:  a random mask with the same number of weights per layer as the ticket, the same θ0,
             retrained the same way (the control: is it the mask, or only the count?).

Only weights are pruned; biases are always kept (Frankle & Carbin prune weights too).
"""

from dataclasses import dataclass

import numpy as np

from simulations import tinynet

SPARSITIES = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98)  # fraction of weights removed
SCOPES = {
    "global": "One threshold for all layers: the smallest weights of the whole net go first.",
    "layer": "Each layer loses the same fraction of its own weights.",
}
SEED_MAX = 9999
MATCH_TOLERANCE = 0.01  # "matches the dense net": test accuracy within 1 point of it

# The figures the source documents quote (the prompting-and-LoRA lecture): Frankle & Carbin's VGG-19 on CIFAR-10 kept its
# accuracy with 90 % of its weights pruned; "maybe 10 million of 100 million" weights do the work.
SEED_VGG19_PRUNED = 0.90
SEED_TICKET_WEIGHTS, SEED_DENSE_WEIGHTS = 10_000_000, 100_000_000


@dataclass(frozen=True)
class LotteryResult:
    """Accuracies and masks at every sparsity of SPARSITIES (lists indexed like it)."""

    sparsities: tuple[float, ...]
    dense_accuracy: float  # the trained dense network on the test set
    pruned: list[float]  # test accuracy, pruned without retraining
    ticket: list[float]  # test accuracy, IMP mask rewound to θ0 and retrained
    random: list[float]  # test accuracy, random mask (same per-layer counts) retrained from θ0
    ticket_masks: list[list[np.ndarray]]  # [sparsity][layer] boolean (fan_in, fan_out)
    remaining: list[int]  # weights left in the ticket (and in the random control)
    total_weights: int
    initial_weights: list[np.ndarray]  # θ0 per layer (fan_in, fan_out): what a ticket rewinds to

    @property
    def ticket_matches_up_to(self) -> float:
        """The highest sparsity up to which every ticket stays within MATCH_TOLERANCE of dense."""
        return matching_sparsity(self.sparsities, self.ticket, self.dense_accuracy)

    @property
    def random_matches_up_to(self) -> float:
        return matching_sparsity(self.sparsities, self.random, self.dense_accuracy)

    @property
    def ticket_ahead_at(self) -> list[float]:
        """The sparsities where the ticket beats the random mask by more than MATCH_TOLERANCE."""
        return [s for s, t, r in zip(self.sparsities, self.ticket, self.random) if t > r + MATCH_TOLERANCE]


def matching_sparsity(sparsities, accuracies, dense_accuracy: float, tolerance: float = MATCH_TOLERANCE) -> float:
    """The largest s in the grid such that every accuracy at sparsity ≤ s is ≥ dense − tolerance.

    Walks up the grid and stops at the first miss, so a lucky point past a collapse does not
    count. Sparsity 0 always counts (it is the dense net or its exact retraining).
    """
    best = sparsities[0]
    for s, acc in zip(sparsities, accuracies):
        if acc < dense_accuracy - tolerance and s > 0:
            break
        best = s
    return best


def magnitude_mask(theta: np.ndarray, alive: np.ndarray, sparsity: float, scope: str = "global") -> np.ndarray:
    """A boolean mask over θ that removes weights by smallest |θ| until `sparsity` of all the
    weights are gone. `alive` is the current mask (already-pruned weights stay pruned; biases are
    False in neither: they are never touched). Ties break by position, so the result is exact:
    round(sparsity · count) weights are removed, globally or in each layer."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)} (got {scope!r})")
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1) (got {sparsity})")
    mask = alive.copy()
    groups = tinynet.weight_slices() if scope == "layer" else [tinynet.weight_mask()]
    for group in groups:
        idx = np.flatnonzero(_select(len(theta), group))
        n_remove = int(round(sparsity * len(idx)))
        # Already-pruned weights count as removed first: their magnitude is treated as −1.
        score = np.where(alive[idx], np.abs(theta[idx]), -1.0)
        order = np.argsort(score, kind="stable")
        mask[idx[order[:n_remove]]] = False
    return mask


def _select(n: int, group) -> np.ndarray:
    sel = np.zeros(n, dtype=bool)
    sel[group] = True
    return sel


def random_mask_like(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random mask that keeps exactly as many weights in each layer as `mask` does."""
    out = ~tinynet.weight_mask()  # biases kept
    for s in tinynet.weight_slices():
        n = s.stop - s.start
        keep = int(mask[s].sum())
        chosen = np.zeros(n, dtype=bool)
        chosen[rng.choice(n, size=keep, replace=False)] = True
        out[s] = chosen
    return out


def layer_masks(mask: np.ndarray) -> list[np.ndarray]:
    """The weight part of a mask as one (fan_in, fan_out) boolean matrix per layer."""
    return [mask[s].reshape(shape) for s, shape in zip(tinynet.weight_slices(), tinynet.layer_shapes())]


def validate_settings(seed: int, scope: str) -> None:
    """Raise ValueError with a message a person can act on if a setting is out of bounds."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)} (got {scope!r})")
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be between 0 and {SEED_MAX} (got {seed})")


def run_lottery(seed: int = 0, scope: str = "global", sparsities=SPARSITIES) -> LotteryResult:
    """Train the dense net from the init of `seed`, then prune / IMP-rewind / random-mask it at
    every sparsity of the grid (see the module docstring). Same seed and scope, same numbers."""
    validate_settings(seed, scope)
    data = tinynet.dataset()
    rng = np.random.default_rng(seed)
    theta0 = tinynet.init_params(rng)
    dense = tinynet.train(theta0, data)
    dense_acc = tinynet.accuracy(dense, data.x_test, data.y_test)
    everything = np.ones(len(theta0), dtype=bool)
    n_weights = int(tinynet.weight_mask().sum())

    pruned, ticket, random, masks, remaining = [], [], [], [], []
    ticket_mask, ticket_trained = everything, dense  # round 0: the dense net is its own ticket
    control_rng = np.random.default_rng([seed, 1])  # the random masks' own stream
    for s in sparsities:
        one_shot = magnitude_mask(dense, everything, s, scope)
        pruned.append(tinynet.accuracy(dense * one_shot, data.x_test, data.y_test))

        if s == 0:
            ticket_acc = random_acc = dense_acc
        else:
            # One IMP round: prune the last ticket's trained weights, rewind to θ0, retrain.
            ticket_mask = magnitude_mask(ticket_trained, ticket_mask, s, scope)
            ticket_trained = tinynet.train(theta0, data, ticket_mask)
            ticket_acc = tinynet.accuracy(ticket_trained, data.x_test, data.y_test)
            control = random_mask_like(ticket_mask, control_rng)
            random_acc = tinynet.accuracy(tinynet.train(theta0, data, control), data.x_test, data.y_test)
        ticket.append(ticket_acc)
        random.append(random_acc)
        masks.append(layer_masks(ticket_mask))
        remaining.append(int(ticket_mask[tinynet.weight_mask()].sum()))
    return LotteryResult(
        tuple(sparsities),
        dense_acc,
        pruned,
        ticket,
        random,
        masks,
        remaining,
        n_weights,
        [w.copy() for w, _ in tinynet.unpack(theta0)],
    )
