"""P23 rank against data size and P24 target modules: which runs an experiment is made of, what
each is expected to train, and what a finished run measured. Pure python, no Django.

An experiment is a batch of ordinary LoRA runs (peftlab/runs/batches.py queues them). A rank sweep
trains every rank on every training-set size (the `train_examples` run parameter, a seeded,
class-balanced subset, so the small set lies inside the large one); a target sweep trains one
rank on growing sets of target modules. The trainable-parameter count of every lane comes from
simulations/params.py before it runs; the worker measures it again from the model.
"""

from dataclasses import dataclass

from simulations import params as formulas

METHOD = "lora"
# Batch.kind for each experiment kind the API takes.
BATCH_KINDS = {"rank": "rank-sweep", "targets": "target-sweep"}

# Defaults: measured on a 2-core CPU (README "Experiments"), 12 runs of 60 steps take minutes.
DEFAULT_STEPS = 60
DEFAULT_RANKS = (1, 2, 4, 8, 16, 64)
SMALL_TRAIN_EXAMPLES = 64  # 4 batches of 16: 60 steps are 15 passes over it, enough to overfit
DEFAULT_TARGET_RANK = 8
TARGET_SETS = {
    "Q": ("query",),
    "QV": ("query", "value"),
    "QKVO": ("query", "key", "value", "attention_output"),
    "QKVO+FFN": ("query", "key", "value", "attention_output", "ffn"),
}
MAX_RANKS = 8
MAX_SIZES = 2
# Final training loss: the mean over the last steps, so one lucky batch does not decide it.
TRAIN_LOSS_WINDOW = 10


class ExperimentRequestError(ValueError):
    """An experiment request that cannot be accepted; the message says what to change."""


@dataclass(frozen=True)
class Lane:
    label: str
    params: dict  # LoRA run params as POST /api/runs takes them


def default_train_sizes(train_size: int) -> list[int]:
    """A small set and the task's whole training split."""
    return sorted({min(SMALL_TRAIN_EXAMPLES, train_size), train_size})


def _whole_numbers(name: str, values, most: int) -> list[int]:
    if (
        not isinstance(values, (list, tuple))
        or not values
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    ):
        raise ExperimentRequestError(f"{name} must be a non-empty list of whole numbers (got {values!r})")
    if len(values) > most:
        raise ExperimentRequestError(f"{name} takes at most {most} values (got {len(values)})")
    if len(set(values)) != len(values):
        raise ExperimentRequestError(f"{name} has a value twice: {list(values)}")
    return sorted(values)


def rank_sweep(ranks, train_sizes) -> list[Lane]:
    """Every rank at every data size, ranks in the outer loop so that both lines fill in
    together; the rank and size bounds are the run registry's (checked per lane)."""
    ranks = _whole_numbers("ranks", ranks, MAX_RANKS)
    sizes = _whole_numbers("train_sizes", train_sizes, MAX_SIZES)
    return [Lane(lane_label("rank", p), p) for p in ({"rank": r, "train_examples": n} for r in ranks for n in sizes)]


def target_sweep(rank) -> list[Lane]:
    """One rank on each set of target modules, smallest first."""
    if not isinstance(rank, int) or isinstance(rank, bool):
        raise ExperimentRequestError(f"rank must be a whole number (got {rank!r})")
    return [Lane(name, {"rank": rank, "target_modules": list(targets)}) for name, targets in TARGET_SETS.items()]


def lane_label(kind: str, params: dict) -> str:
    """How a run of an experiment is named on the page: "r=8, 64 examples", or "QV"."""
    if kind == "rank":
        return f"r={params['rank']}, {params['train_examples']} examples"
    return target_set_name(params["target_modules"])


def plan(kind: str, train_size: int, ranks=None, train_sizes=None, rank=None) -> tuple[list[Lane], dict]:
    """The lanes of an experiment and the config to keep with it (defaults filled in)."""
    if kind == "rank":
        if rank is not None:
            raise ExperimentRequestError("rank applies to a targets experiment; a rank sweep takes ranks")
        ranks = list(DEFAULT_RANKS) if ranks is None else ranks
        train_sizes = default_train_sizes(train_size) if train_sizes is None else train_sizes
        lanes = rank_sweep(ranks, train_sizes)
        return lanes, {"ranks": sorted(ranks), "train_sizes": sorted(train_sizes)}
    if kind == "targets":
        if ranks is not None or train_sizes is not None:
            raise ExperimentRequestError(
                "ranks and train_sizes apply to a rank sweep; a targets experiment takes one rank"
            )
        rank = DEFAULT_TARGET_RANK if rank is None else rank
        return target_sweep(rank), {"rank": rank, "target_sets": list(TARGET_SETS)}
    raise ExperimentRequestError(f"unknown experiment kind {kind!r}; choose from {sorted(BATCH_KINDS)}")


def expected_trainable(lane_params: dict, dims: formulas.Dims, num_labels: int) -> int:
    """LoRA's trainable parameters for a lane (run params with defaults filled in), by formula."""
    return formulas.trainable_params(METHOD, lane_params, dims, num_labels)


def final_train_loss(losses: list[float]) -> float | None:
    """Mean training loss over the last TRAIN_LOSS_WINDOW steps (None before any step)."""
    tail = losses[-TRAIN_LOSS_WINDOW:]
    return sum(tail) / len(tail) if tail else None


def target_set_name(targets: list[str]) -> str:
    """The short name (Q, QV, ...) of a set of target modules, or the modules joined by +."""
    for name, members in TARGET_SETS.items():
        if list(members) == list(targets):
            return name
    return "+".join(targets)
