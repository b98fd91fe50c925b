"""JSON endpoints behind the PEFT family chapter (P15 family map, P19 method spectrum): call the
math in simulations/family.py and simulations/spectrum.py and serialise. Each page fetches once:
the response holds every count its sliders and toggles can reach."""

from ninja import Router

from peftlab.api.errors import Error, checked_query
from peftlab.errors import Invalid
from simulations import family, spectrum
from simulations.rounding import significant
from workers import base_model

router = Router(tags=["playgrounds"])


def _models() -> list[tuple[str, str, family.Dims, str]]:
    # The lab's own base model first, its dimensions read from the config.json of its weights.
    own = (
        "minilm",
        f"{base_model.NAME} (this lab)",
        base_model.dimensions(),
        "the config.json shipped with the lab's base model",
    )
    return [own, *family.REFERENCE_MODELS]


MODEL_KEYS = ["minilm", *(key for key, *_ in family.REFERENCE_MODELS)]  # _models()' keys


@router.get(
    "/family-map",
    response={200: dict, 400: Error},
    summary="P15: where each PEFT method trains, and how many parameters",
)
def family_map(request, model: str | None = checked_query(None, enum=MODEL_KEYS)):
    """Every method's trainable count (head excluded) on every model at every value of its size
    setting and every target set; the parts of a block each method trains, with what it does
    there; and whether it merges and adds latency. `model`, when given, must be one of the keys;
    it only picks the default the page starts on."""
    models = _models()
    keys = [key for key, *_ in models]
    if model is not None and model not in keys:
        raise Invalid(f"model must be one of {', '.join(keys)} (got {model!r})")
    out_models = []
    for key, label, dims, source in models:
        total = family.encoder_total(dims)
        counts = family.counts_table(dims)
        out_models.append(
            {
                "key": key,
                "label": label,
                "source": source,
                "hidden": dims.hidden,
                "intermediate": dims.intermediate,
                "layers": dims.layers,
                "total": total,
                "counts": counts,
                "shares": {
                    m: {v: [significant(c / total) for c in row] for v, row in by.items()} for m, by in counts.items()
                },
                "prefix_over_prompt": family.prefix_over_prompt(dims),
                "ia3_peft_default": family.ia3_peft_default(dims),
            }
        )
    methods = []
    for m in family.METHODS:
        props = family.PROPERTIES[m.key]
        methods.append(
            {
                "key": m.key,
                "label": m.label,
                "variants": list(m.variants),
                "default_variant": m.default_variant,
                "knob": None
                if m.knob is None
                else {
                    "param": m.knob.param,
                    "symbol": m.knob.symbol,
                    "label": m.knob.label,
                    "values": list(m.knob.values),
                    "default": m.knob.default,
                },
                "highlights": {v: family.highlights(m.key, v) for v in m.variants},
                **props,
                "latency_detail": family.adapter_latency_text() if m.key == "adapter" else "",
            }
        )
    return {
        "models": out_models,
        "methods": methods,
        "parts": {
            k: {"label": label, "kind": kind, "short": short, "frozen_text": family.frozen_text(k)}
            for k, (label, kind, short) in family.PARTS.items()
        },
        "target_sets": {k: list(v) for k, v in family.TARGET_SETS.items()},
        "defaults": {"model": model or "minilm", "method": "lora"},
        "ia3_merge_gap": family.ia3_merge_gap(),
    }


@router.get(
    "/method-spectrum", response={200: dict}, summary="P19: reported GLUE gaps and quality against trainable share"
)
def method_spectrum(request):
    """The PEFT derivations post's GLUE comparison (RoBERTa-base) with computed counts, the prompting-and-LoRA lecture's LoRA rank table
    with computed shares, the sources' quoted trainable shares beside the counts, and the notes on
    where they disagree."""
    dims = spectrum.ROBERTA_BASE
    return {
        "glue": {
            "source": spectrum.GLUE_SOURCE,
            "model": "RoBERTa-base",
            "total": spectrum.encoder_total(dims),
            "points": spectrum.glue_points(dims),
        },
        "rank_quality": {
            "source": spectrum.RANK_QUALITY_SOURCE,
            "hidden": spectrum.GPT3_175B.hidden,
            "rows": spectrum.rank_quality(),
        },
        "share_tables": [
            {
                "source": q.source,
                "short": q.short,
                "line": q.line,
                "method": q.method,
                "kind": q.kind,
                "low": q.low,
                "high": q.high,
                "quote": q.quote,
            }
            for q in spectrum.SHARE_TABLES
        ],
        "gpt3_table": spectrum.gpt3_table_rows(),
        "notes": spectrum.discrepancies(dims),
        "methods": [{"key": m.key, "label": m.label} for m in family.METHODS],
    }
