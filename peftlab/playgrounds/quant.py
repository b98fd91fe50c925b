"""JSON endpoints of the "quant" playgrounds: P14 NF4 and double quantisation, P8 adapter block
and P16 low-rank lab. Each validates, calls the math in simulations/, and serialises everything
the page needs in one response; the page's sliders then only index into it."""

import numpy as np
from ninja import Router

from peftlab.api.errors import Error, checked_query
from peftlab.errors import Invalid
from simulations import adapter_block, lowrank_lab, memory, params
from simulations import quantization as quant
from simulations.rounding import significant
from workers.base_model import dimensions

router = Router(tags=["playgrounds"])


def _centers(edges: np.ndarray) -> list:
    return significant((edges[1:] + edges[:-1]) / 2)


# --- P14 ---------------------------------------------------------------------------------------
@router.get(
    "/qlora",
    response={200: dict, 400: Error},
    summary="P14: NF4 against int4, double quantisation, memory by model size",
)
def qlora(request, seed: int = checked_query(0, minimum=0, maximum=quant.SEED_MAX)):
    """Everything P14 draws, for all block sizes, sample sizes and model sizes at once.

    Arrays under "error" are indexed [sample size][block size] (and [bin] for histograms), in the
    order of "sample_sizes" and "blocksizes"; memory arrays [model][block size].
    """
    study = quant.error_study(seed)
    table = quant.memory_table()
    b64 = quant.BLOCKSIZES.index(64)
    return {
        "settings": {"seed": seed},
        "limits": {"seed": [0, quant.SEED_MAX]},
        "codes": {
            "nf4": {"label": "NF4", "levels": significant(quant.nf4_levels(), 6)},
            "int4": {"label": "int4", "levels": significant(quant.int4_levels(), 6)},
        },
        "nf4_offset": significant(quant.NF4_OFFSET, 7),
        "blocksizes": list(quant.BLOCKSIZES),
        "sample_sizes": list(quant.SAMPLE_SIZES),
        "defaults": {"blocksize": 64, "sample_size": 16384, "model": "65B", "code": "nf4"},
        "error": {
            "mse": {c: significant(study.mse[c]) for c in quant.CODES},
            "mse_dq": {c: significant(study.mse_dq[c]) for c in quant.CODES},
            "max_abs_error": {c: significant(study.max_abs_error[c]) for c in quant.CODES},
            "error_centers": _centers(study.error_edges),
            "error_hist": {c: significant(study.error_hist[c]) for c in quant.CODES},
            "normalized_centers": _centers(study.normalized_edges),
            "normalized_hist": significant(study.normalized_hist),
        },
        "bits": {
            "code_bits": quant.CODE_BITS,
            "fp16": quant.FP16_BITS,
            "scale_bits": quant.SCALE_BITS,
            "dq_code_bits": quant.DQ_CODE_BITS,
            "dq_group": quant.DQ_GROUP,
            "overhead": significant([quant.scale_overhead_bits(b) for b in quant.BLOCKSIZES]),
            "overhead_dq": significant([quant.scale_overhead_bits(b, True) for b in quant.BLOCKSIZES]),
            "per_param": significant([quant.bits_per_param(b) for b in quant.BLOCKSIZES]),
            "per_param_dq": significant([quant.bits_per_param(b, True) for b in quant.BLOCKSIZES]),
            "dq_saving_at_64": significant(quant.scale_overhead_bits(64) - quant.scale_overhead_bits(64, True), 3),
        },
        "memory": {
            "models": list(table),
            "params": [row["params"] for row in table.values()],
            "fp16_gb": [significant(row["fp16_gb"]) for row in table.values()],
            "nf4_gb": [significant(row["nf4_gb"]) for row in table.values()],
            "nf4_dq_gb": [significant(row["nf4_dq_gb"]) for row in table.values()],
            "scale_constants": [row["scale_constants"] for row in table.values()],
            # For the note on the prompting-and-LoRA lecture's "65B in 4-bit (~16 GB)" (its code loads a 70B model).
            "pure_4bit_gb": {
                name: significant(quant.weight_bytes(row["params"], quant.CODE_BITS) / 1e9)
                for name, row in table.items()
            },
            "llama2_70b_4bit_gb": significant(quant.weight_bytes(70e9, quant.CODE_BITS) / 1e9),
            # The lecture's Llama-2-70B printout and its "24 GB card", beside the formulas.
            "lecture_70b": memory.lecture_70b_checks(),
            "scales_7b_b64_mb": significant(
                quant.weight_bytes(quant.scale_constants(7e9, 64), quant.SCALE_BITS) / 1e6, 3
            ),
            "scales_7b_b64": quant.scale_constants(7e9, 64),
            "b64_index": b64,
        },
        "gpu_memory_gb": list(quant.GPU_MEMORY_GB),
    }


# --- P8 ----------------------------------------------------------------------------------------
def _adapter_models() -> list[tuple[str, int, int, float]]:
    """(name, d, L, total parameters) of the models the page compares."""
    mini = dimensions()
    return [
        ("all-MiniLM-L6-v2 (the lab's model)", mini.hidden, mini.layers, adapter_block.bert_total(mini)),
        (
            "BERT-base",
            adapter_block.BERT_BASE.hidden,
            adapter_block.BERT_BASE.layers,
            adapter_block.bert_total(adapter_block.BERT_BASE),
        ),
        (
            "BERT-large",
            adapter_block.BERT_LARGE.hidden,
            adapter_block.BERT_LARGE.layers,
            adapter_block.bert_total(adapter_block.BERT_LARGE),
        ),
        ("GPT-3 175B", adapter_block.GPT3["hidden"], adapter_block.GPT3["layers"], adapter_block.GPT3["total"]),
    ]


@router.get("/adapter-block", response={200: dict, 400: Error}, summary="P8: the Houlsby adapter's bottleneck, counted")
def adapter_block_data(request, bottleneck: int = checked_query(64, enum=list(adapter_block.BOTTLENECKS))):
    """Counts for every hidden size d × bottleneck m of the sliders, and the models' shares.

    Grids are indexed [d][m] in the order of "hidden_sizes" and "bottlenecks"; an m larger than
    d is not a bottleneck, so its entries are null. `bottleneck` only checks a link's m.
    """
    if bottleneck not in adapter_block.BOTTLENECKS:
        raise Invalid(f"bottleneck must be one of {', '.join(map(str, adapter_block.BOTTLENECKS))} (got {bottleneck})")
    ds, ms = adapter_block.HIDDEN_SIZES, adapter_block.BOTTLENECKS

    def grid(fn):
        return [[fn(d, m) if m <= d else None for m in ms] for d in ds]

    models = []
    for name, d, layers, total in _adapter_models():
        shares = [adapter_block.model_share(name, d, layers, total, m) if m <= d else None for m in ms]
        models.append(
            {
                "name": name,
                "hidden": d,
                "layers": layers,
                "total": total,
                "adapters": adapter_block.ADAPTERS_PER_LAYER * layers,
                "weights": [s and s.weights for s in shares],
                "with_biases": [s and s.with_biases for s in shares],
                "share": [s and significant(s.share) for s in shares],
                "share_with_biases": [s and significant(s.share_with_biases) for s in shares],
            }
        )
    large = adapter_block.model_share("BERT-large", 1024, 24, 340e6, 64)
    return {
        "settings": {"bottleneck": bottleneck},
        "hidden_sizes": list(ds),
        "bottlenecks": list(ms),
        "defaults": {"hidden": 1024, "bottleneck": 64, "model": 2},
        "adapters_per_layer": adapter_block.ADAPTERS_PER_LAYER,
        "weights": grid(adapter_block.adapter_weights),
        "with_biases": grid(params.adapter_params),
        "ratio": grid(lambda d, m: significant(m / d)),
        "layer": grid(adapter_block.layer_breakdown),
        "models": models,
        # The prompting-and-LoRA lecture's BERT-large figures, against its nominal 340M: two adapters per layer (its
        # text) and one (what its table's percentages work out to).
        "source_check": {
            "bert_large_nominal": 340e6,
            "two_per_layer_share": significant(large.share, 3),
            "one_per_layer_share": significant(large.share / 2, 3),
            "bert_large_adapters": large.weights,
            "gpt3_share_with_bert_large_adapters": significant(large.weights / adapter_block.GPT3["total"], 3),
            "fp32_megabytes": significant(large.weights * 4 / 1e6, 3),
        },
    }


# --- P16 ---------------------------------------------------------------------------------------
def _clean(a) -> list:
    # Without noise the error past the true rank is floating-point residue (~1e-30): show 0.
    a = np.asarray(a, dtype=float)
    return significant(np.where(np.abs(a) < 1e-12, 0.0, a))


@router.get(
    "/low-rank-lab", response={200: dict, 400: Error}, summary="P16: fit a rank-r update to a task of true rank k"
)
def low_rank_lab(
    request,
    true_rank: int = checked_query(3, minimum=1, maximum=lowrank_lab.TRUE_RANK_MAX),
    noise: float = checked_query(0.3, minimum=0, maximum=lowrank_lab.NOISE_MAX),
    seed: int = checked_query(1, minimum=0, maximum=lowrank_lab.SEED_MAX),
):
    """Every sample size n and rank r for one task: curves indexed [n][r], fits [n][r][i][j]."""
    res = lowrank_lab.run_lab(true_rank, noise, seed)
    return {
        "settings": {"true_rank": true_rank, "noise": noise, "seed": seed},
        "limits": {
            "true_rank": [1, lowrank_lab.TRUE_RANK_MAX],
            "noise": [0.0, lowrank_lab.NOISE_MAX],
            "seed": [0, lowrank_lab.SEED_MAX],
        },
        "size": lowrank_lab.SIZE,
        "sample_sizes": list(lowrank_lab.SAMPLE_SIZES),
        "ranks": list(range(lowrank_lab.SIZE + 1)),
        "delta": significant(res.delta, 3),
        "fits": significant(np.round(res.fits, 3), 3),
        "value_limit": significant(max(np.abs(res.delta).max(), np.abs(res.fits).max()), 3),
        "delta_limit": significant(np.abs(res.delta).max(), 3),
        "train_mse": _clean(res.train_mse),
        "heldout_mse": _clean(res.heldout_mse),
        "update_error": _clean(res.update_error),
        "noise_floor": significant(res.noise_floor),
        "params": res.params.tolist(),
        "params_full": lowrank_lab.SIZE * lowrank_lab.SIZE,
        "best_rank": res.best_rank.tolist(),
    }
