"""JSON endpoints behind the interactive playgrounds: validate, call the math, serialise."""

import numpy as np
from ninja import Router, Schema

from peftlab.api.errors import Error, checked_query
from simulations import lowrank
from simulations.rounding import significant

router = Router(tags=["playgrounds"])


class LowRankSettings(Schema):
    kind: str
    size: int
    seed: int
    true_rank: int
    noise: float


class LowRankLimits(Schema):
    size: list[int]
    seed: list[int]
    true_rank: list[int]
    noise: list[float]


class LowRankKind(Schema):
    label: str
    help: str


class LowRankOut(Schema):
    settings: LowRankSettings
    limits: LowRankLimits
    kinds: dict[str, LowRankKind]
    shape: list[int]
    matrix: list[list[float]]
    reconstructions: list[list[list[float]]]
    singular_values: list[float]
    errors: list[float]
    energy: list[float]
    params_factors: list[int]
    params_full: int
    params_ratio: list[float]
    break_even_rank: int
    value_limit: float


def _entries(a: np.ndarray) -> list:
    # The matrices are scaled to max |entry| = 1, so 4 decimals is about 4 significant digits
    # for the entries that show on the colour scale, and rounded floats print short in JSON.
    return np.round(a, 4).tolist()


# The bounds are documented here and enforced by lowrank.validate_settings, whose messages say
# what was sent; true_rank is also at most size, which the schema cannot say.
@router.get(
    "/low-rank", response={200: LowRankOut, 400: Error}, summary="P9: a matrix and its best rank-r approximations"
)
def low_rank(
    request,
    kind: str = checked_query("lowrank", enum=list(lowrank.KINDS)),
    size: int = checked_query(24, minimum=lowrank.SIZE_MIN, maximum=lowrank.SIZE_MAX),
    seed: int = checked_query(1, minimum=0, maximum=lowrank.SEED_MAX),
    true_rank: int = checked_query(3, description="at most size", minimum=1, maximum=lowrank.SIZE_MAX),
    noise: float = checked_query(0.05, minimum=0, maximum=lowrank.NOISE_MAX),
):
    """A test matrix and, for every rank r = 0 … size, its truncated-SVD reconstruction M_r.

    Lists indexed by r have size + 1 entries. errors[r] = ‖M − M_r‖_F / ‖M‖_F, energy[r] =
    Σ_{i≤r} σ_i² / Σ σ_i², params_factors[r] = r·(m+n) against params_full = m·n.
    """
    matrix = lowrank.make_matrix(kind, size, seed, true_rank, noise)
    rec = lowrank.svd_reconstructions(matrix)
    return {
        "settings": {"kind": kind, "size": size, "seed": seed, "true_rank": true_rank, "noise": noise},
        "limits": {
            "size": [lowrank.SIZE_MIN, lowrank.SIZE_MAX],
            "seed": [0, lowrank.SEED_MAX],
            "true_rank": [1, size],
            "noise": [0.0, lowrank.NOISE_MAX],
        },
        "kinds": {name: {"label": label, "help": text} for name, (label, text) in lowrank.KINDS.items()},
        "shape": list(matrix.shape),
        "matrix": _entries(matrix),
        "reconstructions": _entries(rec.recons),
        "singular_values": significant(rec.singular_values),
        "errors": significant(rec.errors),
        "energy": significant(rec.energy),
        "params_factors": rec.params_factors.tolist(),
        "params_full": rec.params_full,
        "params_ratio": significant(rec.params_ratio),
        "break_even_rank": rec.break_even_rank,
        "value_limit": round(rec.value_limit, 4),
    }
