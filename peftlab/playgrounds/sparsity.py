"""JSON endpoints of P6 (lottery ticket) and P7 (intrinsic dimension).

Both answers are real training runs of simulations/tinynet.py, about a second of CPU each. They
are cached twice, keyed by the settings: in this process (functools.lru_cache), and as a JSON
file under VAR_DIR so that a restarted server, or another worker process, answers at once too.
"""

import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from ninja import Router

from peftlab.api.errors import Error, checked_query
from simulations import intrinsic, lottery, tinynet
from simulations.rounding import significant

router = Router(tags=["playgrounds"])

# Bump when the math or the response shape changes, so old cache files are not served.
CACHE_VERSION = "3"  # 3: seed_facts became source_facts


def _cache_dir() -> Path:
    return Path(settings.VAR_DIR) / "playground-cache"


def _file_cached(name: str, compute) -> dict:
    """Read `name` from the cache folder, or compute, write (atomically) and return it."""
    path = _cache_dir() / f"{name}-v{CACHE_VERSION}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    result = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result))
        tmp.replace(path)  # a reader never sees half a file
    except OSError:
        pass  # a read-only disk only costs the next process a recomputation
    return result


def _network() -> dict:
    data = tinynet.dataset()
    return {
        "sizes": list(tinynet.SIZES),
        "params": tinynet.param_count(),
        "steps": tinynet.STEPS,
        "lr": tinynet.LR,
        "train_size": len(data.y_train),
        "test_size": len(data.y_test),
        "classes": tinynet.SIZES[-1],
    }


# --- P6 -------------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _lottery(seed: int, scope: str) -> dict:
    return _file_cached(f"lottery-{scope}-{seed}", lambda: _lottery_json(seed, scope))


def _lottery_json(seed: int, scope: str) -> dict:
    res = lottery.run_lottery(seed, scope)
    data = tinynet.dataset()
    layers = [
        {"name": f"layer {i + 1} ({fan_in} → {fan_out})", "shape": [fan_in, fan_out]}
        for i, (fan_in, fan_out) in enumerate(tinynet.layer_shapes())
    ]
    return {
        "settings": {"seed": seed, "scope": scope},
        "limits": {"seed": [0, lottery.SEED_MAX]},
        "scopes": lottery.SCOPES,
        "network": _network(),
        "sparsities": list(res.sparsities),
        "dense_accuracy": res.dense_accuracy,
        "pruned": res.pruned,
        "ticket": res.ticket,
        "random": res.random,
        "remaining": res.remaining,
        "total_weights": res.total_weights,
        "match_tolerance": lottery.MATCH_TOLERANCE,
        "ticket_matches_up_to": res.ticket_matches_up_to,
        "random_matches_up_to": res.random_matches_up_to,
        "ticket_ahead_at": res.ticket_ahead_at,
        "layers": layers,
        # [sparsity][layer]: 1 where the ticket keeps the weight, 0 where it is pruned.
        "masks": [[m.astype(int).tolist() for m in per_layer] for per_layer in res.ticket_masks],
        "initial_weights": [np.round(w, 4).tolist() for w in res.initial_weights],
        "train_points": {
            "x": significant(data.x_train[:, 0]),
            "y": significant(data.x_train[:, 1]),
            "label": data.y_train.tolist(),
        },
        "source_facts": {
            "vgg19_pruned": lottery.SEED_VGG19_PRUNED,
            "ticket_share": lottery.SEED_TICKET_WEIGHTS / lottery.SEED_DENSE_WEIGHTS,
            "ticket_weights": lottery.SEED_TICKET_WEIGHTS,
            "dense_weights": lottery.SEED_DENSE_WEIGHTS,
        },
    }


@router.get(
    "/lottery-ticket",
    response={200: dict, 400: Error},
    summary="P6: accuracy against sparsity for pruned, ticket and random",
)
def lottery_ticket(
    request,
    seed: int = checked_query(0, minimum=0, maximum=lottery.SEED_MAX),
    scope: str = checked_query("global", enum=list(lottery.SCOPES)),
):
    """Train 2→32→32→3 on the spirals, then at each sparsity of the grid: prune without
    retraining, the lottery ticket (IMP, rewound to θ0, retrained), and a random-mask control.

    Lists indexed by sparsity: pruned, ticket, random (test accuracy), remaining (weights kept),
    masks[s][layer] (0/1 matrices, fan_in × fan_out).
    """
    lottery.validate_settings(seed, scope)
    return _lottery(seed, scope)


# --- P7 -------------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _intrinsic(seed: int) -> dict:
    return _file_cached(f"intrinsic-{seed}", lambda: _intrinsic_json(seed))


def _intrinsic_json(seed: int) -> dict:
    res = intrinsic.run_intrinsic(seed)
    d90 = res.d90
    roberta_fraction = intrinsic.fraction_of_params(intrinsic.SEED_ROBERTA_D90, intrinsic.SEED_ROBERTA_PARAMS)
    return {
        "settings": {"seed": seed},
        "limits": {"seed": [0, intrinsic.SEED_MAX]},
        "network": _network(),
        "dimensions": list(res.dimensions),
        "fractions": significant([intrinsic.fraction_of_params(d, res.total_params) for d in res.dimensions]),
        "accuracy": res.accuracy,
        "train_accuracy": res.train_accuracy,
        "full_accuracy": res.full_accuracy,
        "init_accuracy": res.init_accuracy,
        "threshold": intrinsic.THRESHOLD,
        "bar": intrinsic.THRESHOLD * res.full_accuracy,
        "d90": d90,
        "d90_fraction": None if d90 is None else intrinsic.fraction_of_params(d90, res.total_params),
        "total_params": res.total_params,
        "subspace_lr": intrinsic.SUBSPACE_LR,
        "losses": [significant(curve) for curve in res.losses],
        "source_facts": {
            "roberta_d90": intrinsic.SEED_ROBERTA_D90,
            "roberta_params": intrinsic.SEED_ROBERTA_PARAMS,
            "roberta_fraction": roberta_fraction,
            "roberta_large_params": intrinsic.ROBERTA_LARGE_PARAMS,
            "roberta_large_fraction": intrinsic.fraction_of_params(
                intrinsic.SEED_ROBERTA_D90, intrinsic.ROBERTA_LARGE_PARAMS
            ),
            "subspace_range": list(intrinsic.SEED_SUBSPACE_RANGE),
        },
    }


@router.get(
    "/intrinsic-dimension",
    response={200: dict, 400: Error},
    summary="P7: accuracy of training in a random d-dim subspace",
)
def intrinsic_dimension(request, seed: int = checked_query(0, minimum=0, maximum=intrinsic.SEED_MAX)):
    """Train 2→32→32→3 as θ = θ0 + P·z with z ∈ R^d for each d of the grid (the last is D), and
    once ordinarily. Lists indexed by d: accuracy, train_accuracy, fractions (d/D), losses."""
    intrinsic.validate_settings(seed)
    return _intrinsic(seed)
