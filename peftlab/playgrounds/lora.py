"""JSON endpoints behind the LoRA chapter's playgrounds (P10–P12): validate, call the math in
simulations/lora.py, serialise. Each returns everything its page needs in one response."""

import numpy as np
from ninja import Router

from peftlab.api.errors import Error, checked_query
from simulations import lora
from simulations.rounding import significant
from workers import base_model

SEED = {"minimum": 0, "maximum": 2**31 - 1}  # lora.validate_forward and validate_zero_start

router = Router(tags=["playgrounds"])


def _round(a, decimals: int = 4) -> list:
    return np.round(np.asarray(a, dtype=float), decimals).tolist()


def _base_model_config() -> lora.ModelConfig:
    # The lab's own base model, read from the config.json shipped with its weights.
    return lora.bert_config(
        "minilm",
        f"{base_model.NAME} (this lab)",
        base_model.dimensions(),
        "the config.json shipped with the lab's base model",
    )


# --- P11 ----------------------------------------------------------------------------------------


@router.get("/parameter-counter", response={200: dict}, summary="P11: LoRA parameter counts per matrix and per model")
def parameter_counter(request):
    """Counts for every rank r = 1 … 256.

    per_matrix: for each hidden size d, LoRA's 2·d·r on a d×d matrix, the full d², and 2r/d.
    models: for each real config, the LoRA parameters of each target set at every rank (LoRA
    matrices only, no classifier head) and the model's total. notes: the source figures that the
    formula does not reproduce, with what the formula gives.
    """
    ranks = np.arange(lora.RANK_MIN, lora.RANK_MAX + 1)
    table = lora.per_matrix_table(ranks=ranks)
    minilm = _base_model_config()
    models = []
    for model in (minilm, *lora.REFERENCE_MODELS):
        counts = lora.model_counts(model, ranks)
        models.append(
            {
                "key": model.key,
                "label": model.label,
                "hidden": model.hidden,
                "intermediate": model.intermediate,
                "layers": model.layers,
                "ffn_matrices": model.ffn_matrices,
                "total_params": model.total_params,
                "source": model.source,
                "counts": {name: c.tolist() for name, c in counts.items()},
                "share": {name: significant(c / model.total_params) for name, c in counts.items()},
            }
        )
    gpt3, llama = lora.GPT3_175B, lora.LLAMA_7B
    all_targets = lora.TARGET_SETS["QKVO+FFN"]
    notes = {
        "gpt3": {
            "source": "A lecture on prompting, LoRA and adapters",
            "rank": 8,
            "qkvo_prose": lora.SEED_GPT3_R8_QKVO_PROSE,
            "qkvo_formula": gpt3.lora_params(lora.TARGET_SETS["QKVO"], 8),
            "layers": gpt3.layers,
            "rows": [
                {
                    "targets": name,
                    "quoted_figure": lora.SEED_GPT3_R8[name],
                    "formula": gpt3.lora_params(targets, 8),
                    "rank_matching_quote": round(lora.rank_for_count(gpt3, targets, lora.SEED_GPT3_R8[name]), 1),
                }
                for name, targets in lora.TARGET_SETS.items()
            ],
            "per_matrix_r8": lora.lora_matrix_params(gpt3.hidden, gpt3.hidden, 8),
        },
        "llama": {
            "source": "An article, “LoRA and the Efficiency Revolution”, in a peft printout for LLaMA-2 7B,",
            "rank": 16,
            "quoted_figure": lora.SEED_LLAMA_R16_ALL,
            "formula": llama.lora_params(all_targets, 16),
            "qv_source": "The same article, in its rank table for Q and V,",
            "qv_rows": [
                {
                    "rank": r,
                    "quoted_figure": quoted,
                    "formula": llama.lora_params(lora.TARGET_SETS["QV"], r),
                    "formula_qkvo": llama.lora_params(lora.TARGET_SETS["QKVO"], r),
                }
                for r, quoted in lora.SEED_LLAMA_QV.items()
            ],
        },
    }
    return {
        "ranks": ranks.tolist(),
        "hidden_sizes": table["hidden"].tolist(),
        "per_matrix": {
            "lora": table["lora"].tolist(),
            "full": table["full"].tolist(),
            "share": significant(table["share"]),
            "break_even": table["break_even"].tolist(),
        },
        "target_sets": {name: list(targets) for name, targets in lora.TARGET_SETS.items()},
        "models": models,
        "base_model": minilm.key,
        "notes": notes,
    }


# --- P10 ----------------------------------------------------------------------------------------


@router.get(
    "/lora-forward", response={200: dict, 400: Error}, summary="P10: the LoRA forward path on a small seeded example"
)
def lora_forward(
    request,
    d: int = checked_query(8, minimum=lora.FORWARD_D_MIN, maximum=lora.FORWARD_D_MAX),
    seed: int = checked_query(0, **SEED),
):
    """W, x and Wx; for every r = 1 … d: A, B, Ax and BAx; and for every r and every α on the
    grid the adapter's output (α/r)·BAx and h = Wx + (α/r)·BAx (update[r-1][i] and h[r-1][i] are
    rank r, α = alphas[i]), so the sliders only index."""
    ex = lora.forward_example(d, seed)
    ranks = list(range(1, d + 1))
    return {
        "settings": {"d": d, "seed": seed},
        "limits": {"d": [lora.FORWARD_D_MIN, lora.FORWARD_D_MAX], "seed": [0, 2**31 - 1]},
        "ranks": ranks,
        "alphas": list(lora.ALPHA_GRID),
        "W": _round(ex.W),
        "x": _round(ex.x),
        "Wx": _round(ex.Wx),
        "A": [_round(a) for a in ex.A],
        "B": [_round(b) for b in ex.B],
        "Ax": [_round(v) for v in ex.Ax],
        "BAx": [_round(v) for v in ex.BAx],
        "update": _round(ex.update),
        "h": _round(ex.h),
        "scale": _round(ex.scale),
        "params_full": d * d,
        "params_lora": [lora.lora_matrix_params(d, d, r) for r in ranks],
    }


# --- P12 ----------------------------------------------------------------------------------------


@router.get(
    "/zero-start",
    response={200: dict, 400: Error},
    summary="P12: LoRA training from B = 0, from A = B = 0, across ranks",
)
def zero_start(
    request,
    alpha: float = checked_query(8, minimum=lora.ALPHA_MIN, maximum=lora.ALPHA_MAX),
    lr: float = checked_query(0.01, minimum=lora.LR_MIN, maximum=lora.LR_MAX),
    seed: int = checked_query(0, **SEED),
):
    """Every trajectory for every scaling × init × rank: ‖ΔW‖_F, loss and gradient norms per
    step, and (for the α/r scaling) ΔW itself per step, rounded, against the target update ΔW*.
    Arrays are indexed by step 0 … steps."""
    target, runs = lora.zero_start(alpha, lr, seed)
    trajectories = {
        scaling: {
            init: {
                str(r): {
                    "norm": significant(t.norm),
                    "loss": significant(t.loss),
                    "grad_A": significant(t.grad_A),
                    "grad_B": significant(t.grad_B),
                    # The heatmap shows LoRA's own scaling only; the other scaling's
                    # matrices would double the response for a chart nobody draws.
                    "delta": _round(t.delta, 3) if scaling == "alpha_over_r" else None,
                }
                for r, t in by_rank.items()
            }
            for init, by_rank in by_init.items()
        }
        for scaling, by_init in runs.items()
    }
    return {
        "settings": {"alpha": alpha, "lr": lr, "seed": seed},
        "limits": {"alpha": [lora.ALPHA_MIN, lora.ALPHA_MAX], "lr": [lora.LR_MIN, lora.LR_MAX], "seed": [0, 2**31 - 1]},
        "d": lora.ZERO_D,
        "target_rank": lora.ZERO_TARGET_RANK,
        "steps": lora.ZERO_STEPS,
        "ranks": list(lora.ZERO_RANKS),
        "inits": lora.INITS,
        "scalings": lora.SCALINGS,
        "scale": {"alpha_over_r": [alpha / r for r in lora.ZERO_RANKS], "alpha": [alpha for _ in lora.ZERO_RANKS]},
        "target": _round(target, 3),
        "target_norm": round(float(np.linalg.norm(target)), 4),
        "trajectories": trajectories,
    }
