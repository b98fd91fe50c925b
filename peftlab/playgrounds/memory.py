"""JSON endpoints of P2, the memory calculator: validate, call simulations.memory, serialise."""

from dataclasses import asdict

from ninja import Query, Router

from peftlab.api.errors import Error, checked_query
from peftlab.errors import Invalid
from simulations import cost, memory
from workers import base_model

router = Router(tags=["playgrounds"])

MINILM = "minilm"


def presets() -> dict[str, memory.Model]:
    return {MINILM: base_model.memory_model(), **memory.PRESETS}


def _model_json(model: memory.Model) -> dict:
    return {
        **asdict(model),
        "config_params": model.config_params(),
        "total_params": model.total_params(),
        "linear_params": model.linear_params(),
    }


def _targets(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _targets_pattern(names, at_least_one: bool) -> str:
    """What _targets reads as names among `names` only: items separated by commas, each a name or
    empty, spaces around them ignored (and at least one name, when `at_least_one`)."""
    name = "(" + "|".join(names) + ")"
    if at_least_one:
        return rf"^(\s*,)*\s*{name}\s*(,\s*({name}\s*)?)*$"
    return rf"^\s*({name}\s*)?(,\s*({name}\s*)?)*$"


CUSTOM_ONLY = "custom preset only: "
NUM_LABELS_MAX = 1000


def _custom_bounds(name: str) -> str:
    low, high = memory.CUSTOM_BOUNDS[name]
    return f"{CUSTOM_ONLY}{low} to {high}"


# arch … ffn only count for the custom preset, so their bounds (memory.validate) are described, not
# declared: another preset ignores them. rank is also at most the smaller side of the targeted
# matrices, and hidden a multiple of heads, which the schema cannot say.
@router.get(
    "/memory-calculator",
    response={200: dict, 400: Error},
    summary="P2: training memory by component, method and setting",
)
def memory_calculator(
    request,
    preset: str = checked_query("llama-7b", enum=["custom", MINILM, *memory.PRESETS]),
    arch: str = Query("llama", description=CUSTOM_ONLY + ", ".join(memory.ARCHS)),
    layers: int = Query(32, description=_custom_bounds("layers")),
    hidden: int = Query(4096, description=_custom_bounds("hidden") + ", a multiple of heads"),
    heads: int = Query(32, description=_custom_bounds("heads")),
    kv_heads: int | None = Query(None, description=CUSTOM_ONLY + "grouped-query attention"),
    vocab: int = Query(32000, description=_custom_bounds("vocab")),
    ffn: int = Query(11008, description=_custom_bounds("ffn")),
    # int(params) must lie in [PARAMS_MIN, PARAMS_MAX]; NaN and infinity have no int.
    params: float | None = checked_query(
        None, allow_inf_nan=False, minimum=memory.PARAMS_MIN, exclusiveMaximum=memory.PARAMS_MAX + 1
    ),
    master: bool = True,
    optimizer: str = checked_query("adam32", enum=list(memory.OPTIMIZERS)),
    quant: str = checked_query("nf4-dq", enum=list(memory.QUANTS)),
    checkpointing: bool = False,
    flash: bool = False,
    rank: int = checked_query(16, description="at most the smaller side of the targeted matrices", minimum=1),
    targets: str = checked_query(
        "query,value",
        description="one or more of " + ", ".join(memory.TARGETS) + ", separated by commas",
        pattern=_targets_pattern(memory.TARGETS, at_least_one=True),
    ),
    lm_logits: bool = True,
):
    """Every component for four methods (full fp32, full mixed, LoRA, QLoRA).

    A preset other than "custom" fixes the config; "custom" takes arch … ffn. `params` (a count)
    overrides the count from the config. Activations come on the grid batches × seqs, so that
    the page's sliders only index them.
    """
    known = presets()
    if preset == "custom":
        model = memory.Model("custom", arch, layers, hidden, heads, vocab, ffn, kv_heads=kv_heads)
    elif preset in known:
        model = known[preset]
    else:
        raise Invalid(f"preset must be custom or one of {', '.join(known)} (got {preset!r})")
    model = memory.with_params(model, params)
    settings = memory.Settings(
        master_weights=master,
        optimizer=optimizer,
        quant=quant,
        checkpointing=checkpointing,
        flash=flash,
        rank=rank,
        targets=_targets(targets),
        lm_logits=lm_logits,
    )
    est = memory.estimate(model, settings)
    return {
        "settings": {
            "preset": preset,
            "params": params,
            "master": master,
            "optimizer": optimizer,
            "quant": quant,
            "checkpointing": checkpointing,
            "flash": flash,
            "rank": rank,
            "targets": list(settings.targets),
            "lm_logits": lm_logits,
        },
        "model": _model_json(model),
        "presets": {k: _model_json(v) for k, v in known.items()},
        "options": {
            "archs": memory.ARCHS,
            "arch_details": memory.ARCH_DETAILS,
            "targets": list(memory.TARGETS),
            "optimizers": {k: v[0] for k, v in memory.OPTIMIZERS.items()},
            "quants": memory.QUANTS,
        },
        "batches": list(memory.BATCHES),
        "seqs": list(memory.SEQS),
        "gpu_lines": [{"label": label, "bytes": b} for label, b in memory.GPU_LINES],
        "methods": [
            {
                "key": key,
                "label": label,
                "trainable": est.trainable[key],
                "parts": [asdict(p) for p in est.parts[key]],
                "fixed_bytes": sum(p.bytes for p in est.parts[key]),
                "activations": est.activations[key].tolist(),
                "activation_formulas": est.activation_formulas[key],
            }
            for key, label in memory.METHODS.items()
        ],
        "storage": memory.storage(model, settings),
        "quant_bits": {"nf4": memory.quant_constant_bits(False), "nf4-dq": memory.quant_constant_bits(True)},
        "source_notes": memory.source_notes(),
        "lab_seq": memory.LAB_SEQ,
    }


# The lab's target names, mapped onto the calculator's.
_LAB_TARGETS = {"query": "query", "key": "key", "value": "value", "attention_output": "output", "ffn": "ffn"}


@router.get(
    "/memory-calculator/lab",
    response={200: dict, 400: Error},
    summary="P2: the prediction for a run of the lab's engine",
)
def memory_lab(
    request,
    method: str = checked_query("lora", enum=list(memory.LAB_METHODS)),
    batch_size: int = checked_query(16, minimum=1, maximum=memory.LAB_BATCH_MAX),
    rank: int = Query(8, description="lora, qlora and dora: 1 to the smaller side of the targeted matrices"),
    targets: str = checked_query(
        "query,value",
        description="any of " + ", ".join(_LAB_TARGETS) + ", separated by commas; lora, qlora and dora need one",
        pattern=_targets_pattern(_LAB_TARGETS, at_least_one=False),
    ),
    num_labels: int = checked_query(2, minimum=1, maximum=NUM_LABELS_MAX),
    precision: str = checked_query("fp32", enum=list(memory.LAB_PRECISIONS)),
    device: str = checked_query("cpu", enum=list(memory.LAB_DEVICES)),
):
    """Predicted bytes (params, grads, optimizer_state, activations, total) for a run on
    all-MiniLM-L6-v2 as the engine trains it (AdamW; steps in fp32 or under bf16 autocast, as
    `precision` says) on `device` (cpu or cuda: they keep dropout masks differently), at a padded
    length of LAB_SEQ."""
    lab_targets = _targets(targets)
    unknown = [t for t in lab_targets if t not in _LAB_TARGETS]
    if unknown:
        raise Invalid(f"targets must be among {', '.join(_LAB_TARGETS)} (got {unknown})")
    if not 1 <= num_labels <= NUM_LABELS_MAX:
        raise Invalid(f"num_labels must be between 1 and {NUM_LABELS_MAX} (got {num_labels})")
    pred = memory.lab_prediction(
        base_model.memory_model(),
        method,
        batch_size,
        rank,
        [_LAB_TARGETS[t] for t in lab_targets],
        num_labels,
        precision=precision,
        device=device,
    )
    return {"method": method, "batch_size": batch_size, "rank": rank, "targets": list(lab_targets), **pred}


# --- P1 Cost of fine-tuning --------------------------------------------------------------------
@router.get(
    "/cost-of-fine-tuning",
    response={200: dict, 400: Error},
    summary="P1: GPU-hours, cost and checkpoint size by model size",
)
def cost_of_fine_tuning(
    request,
    tokens: float = checked_query(500e6, minimum=cost.TOKENS_RANGE[0], maximum=cost.TOKENS_RANGE[1]),
    gpu: str = checked_query("a100", enum=list(cost.GPUS)),
    utilisation: float = checked_query(0.4, minimum=cost.UTILISATION_RANGE[0], maximum=cost.UTILISATION_RANGE[1]),
    price: float = checked_query(
        25 / 8, description="dollars per GPU-hour", minimum=cost.PRICE_RANGE[0], maximum=cost.PRICE_RANGE[1]
    ),
    bytes_per_param: int = checked_query(2, enum=[2, 4]),
):
    """One fine-tuning run per model (6·N·D FLOPs), and totals[t-1][r-1] for t tasks × r runs."""
    settings = cost.Settings(
        tokens=tokens, gpu=gpu, utilisation=utilisation, price=price, bytes_per_param=bytes_per_param
    )
    rows = cost.table(settings)
    return {
        "settings": {
            "tokens": tokens,
            "gpu": gpu,
            "utilisation": utilisation,
            "price": price,
            "bytes_per_param": bytes_per_param,
        },
        "gpus": {k: label for k, (label, _) in cost.GPUS.items()},
        "tasks": list(range(1, cost.TASKS_MAX + 1)),
        "runs": list(range(1, cost.RUNS_MAX + 1)),
        "models": rows,
        "pretrain": cost.pretrain_cost(),
        "jump": cost.jump(rows),
        "source_notes": cost.source_notes(settings),
    }
