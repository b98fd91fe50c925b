"""P15 PEFT family map: where each method puts its trainable parameters, and how many.

Every count comes from the formulas in simulations/params.py (the ones the engine's runs are
checked against); this module only lays out which settings each method sweeps, which parts of a
transformer block each one trains, and what each costs at inference (facts from the seeds).
Counts leave out the classifier head: every method in the lab's runs trains the same head.

No Django imports: peftlab/playgrounds/family.py serialises what this returns.
"""

from dataclasses import dataclass

import numpy as np

from simulations.adapter_block import BERT_BASE, BERT_LARGE
from simulations.lora import TARGET_SETS
from simulations.methods import METHODS as REGISTRY
from simulations.params import Dims, ia3_peft_bert_default_params, trainable_params

# Liu et al. 2019: BERT-base's shape with a 50,265-token vocabulary, 514 positions, one token
# type (the same numbers as simulations/lora.py's ROBERTA_BASE, as Dims for params.py).
ROBERTA_BASE = Dims(hidden=768, intermediate=3072, layers=12, vocab=50265, max_positions=514, token_types=1)

# (key, label, dims, source); the lab's own base model is added by the caller from its config.
REFERENCE_MODELS = (
    ("bert-base", "BERT-base", BERT_BASE, "Devlin et al. 2019: d = 768, 12 layers, FFN 3072"),
    (
        "roberta-base",
        "RoBERTa-base",
        ROBERTA_BASE,
        "Liu et al. 2019: BERT-base's shape, 50,265-token vocabulary (the model of the PEFT derivations post's GLUE chart)",
    ),
    ("bert-large", "BERT-large", BERT_LARGE, "Devlin et al. 2019: d = 1024, 24 layers, FFN 4096"),
)


@dataclass(frozen=True)
class Knob:
    """The one size setting a method has, the values the slider steps through, its default."""

    param: str  # the run API's parameter name
    symbol: str
    label: str
    values: tuple[int, ...]
    default: int


RANK = Knob("rank", "r", "LoRA rank r", (1, 2, 4, 8, 16, 32, 64), 8)
BOTTLENECK = Knob("bottleneck", "m", "bottleneck size m", (1, 2, 4, 8, 16, 32, 64, 128, 256), 64)
TOKENS = Knob("virtual_tokens", "n", "virtual tokens n", (1, 2, 5, 10, 20, 50, 100), 20)


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    knob: Knob | None
    variants: tuple[str, ...]  # target sets for LoRA and DoRA; ("default",) for the rest
    default_variant: str
    targets: tuple[str, ...] = ()  # fixed target modules (IA3)


LORA_VARIANTS = tuple(TARGET_SETS)
METHODS = (
    Method("full", "Full fine-tuning", None, ("default",), "default"),
    Method("lora", "LoRA", RANK, LORA_VARIANTS, "QV"),
    Method("dora", "DoRA", RANK, LORA_VARIANTS, "QV"),
    Method("adapter", "Adapter (Houlsby)", BOTTLENECK, ("default",), "default"),
    Method("prefix", "Prefix tuning", TOKENS, ("default",), "default"),
    Method("prompt", "Prompt tuning", TOKENS, ("default",), "default"),
    # The lab's IA3 default (its record's target_modules): keys, values and the FFN's inner
    # activation, as in Liu et al. 2022 (simulations/params.py ia3_params).
    Method("ia3", "IA3", None, ("default",), "default", tuple(REGISTRY["ia3"].param("target_modules").default)),
    Method("bitfit", "BitFit", None, ("default",), "default"),
)
BY_KEY = {m.key: m for m in METHODS}


def encoder_total(dims: Dims) -> int:
    """The whole encoder's parameters (without a head): the 100% of every share."""
    return dims.encoder_params()


def run_params(method: Method, variant: str, value: int | None) -> dict:
    """The run-API parameters that `method` has at this target set and knob value."""
    params = {}
    if method.key in ("lora", "dora"):
        params["target_modules"] = list(TARGET_SETS[variant])
    elif method.targets:
        params["target_modules"] = list(method.targets)
    if method.knob is not None:
        params[method.knob.param] = value
    return params


def count(method_key: str, dims: Dims, variant: str | None = None, value: int | None = None) -> int:
    """Trainable parameters of one method on one encoder, without the head (params.py formulas)."""
    method = BY_KEY[method_key]
    variant = variant or method.default_variant
    if variant not in method.variants:
        raise ValueError(f"{method.label} has no target set {variant!r}")
    if method.knob is not None and value is None:
        value = method.knob.default
    return trainable_params(method_key, run_params(method, variant, value), dims, num_labels=0)


def counts_table(dims: Dims) -> dict[str, dict[str, list[int]]]:
    """For every method and target set, the count at every value its slider steps through
    (one entry for methods without a size setting)."""
    table = {}
    for method in METHODS:
        values = method.knob.values if method.knob else (None,)
        table[method.key] = {v: [count(method.key, dims, v, x) for x in values] for v in method.variants}
    return table


def ia3_peft_default(dims: Dims) -> int:
    """IA3 as peft's IA3Config builds it on a BERT encoder given no target_modules, without the
    head: it also scales the attention output's input (params.py ia3_peft_bert_default_params)."""
    return ia3_peft_bert_default_params(dims)


def prefix_over_prompt(dims: Dims) -> int:
    """Prefix tuning trains a key and a value vector per token in every layer, prompt tuning one
    input vector per token: at equal n the prefix is 2·L times larger."""
    return count("prefix", dims, value=1) // count("prompt", dims, value=1)


# --- The block diagram -------------------------------------------------------------------------

# Parts of one transformer block (and what surrounds it), bottom to top. "base" parts are the
# pretrained model, frozen unless a method trains them; "added" parts exist only under a method.
PARTS = {
    "embeddings": ("token and position embeddings", "base", "embeddings"),
    "prompt": ("soft prompt vectors", "added", "prompt"),
    "q": ("query projection W_Q", "base", "W_Q"),
    "k": ("key projection W_K", "base", "W_K"),
    "v": ("value projection W_V", "base", "W_V"),
    "prefix": ("prefix keys and values", "added", "prefix"),
    "attention": ("attention softmax(QKᵀ/√d)·V", "base", "attention"),
    "o": ("attention output W_O", "base", "W_O"),
    "adapter1": ("adapter after attention", "added", "adapter"),
    "ln1": ("first LayerNorm", "base", "LayerNorm"),
    "ffn_up": ("FFN up projection (d → 4d)", "base", "FFN up"),
    "ffn_down": ("FFN down projection (4d → d)", "base", "FFN down"),
    "adapter2": ("adapter after the FFN", "added", "adapter"),
    "ln2": ("second LayerNorm", "base", "LayerNorm"),
    "biases": ("bias vectors", "base", "b"),
    "head": ("classifier head", "head", "head"),
    **{
        f"lora_{p}": (f"B·A beside {name}", "added", "B·A")
        for p, name in (
            ("q", "W_Q"),
            ("k", "W_K"),
            ("v", "W_V"),
            ("o", "W_O"),
            ("ffn_up", "FFN up"),
            ("ffn_down", "FFN down"),
        )
    },
    "ia3_k": ("scale vector l_k", "added", "l_k"),
    "ia3_v": ("scale vector l_v", "added", "l_v"),
    "ia3_ffn": ("scale vector l_ff on the FFN's inner activation", "added", "l_ff"),
}
# Which diagram parts a run-API target module covers.
TARGET_PARTS = {
    "query": ("q",),
    "key": ("k",),
    "value": ("v",),
    "attention_output": ("o",),
    "ffn": ("ffn_up", "ffn_down"),
}
PARAMETER_FREE = ("attention",)


def _lora_text(part: str, dora: bool) -> str:
    matrix = PARTS[part][0]
    if dora:
        return (
            f"DoRA splits {matrix} into a length per output column and a direction. The "
            "direction gets a LoRA update B·A; the lengths train as one vector. Both fold back "
            "into one matrix after training."
        )
    return (
        f"LoRA trains A (r × d_in) and B (d_out × r) beside the frozen {matrix}: "
        "h = Wx + (α/r)·BAx. B starts at zero, so training starts from the base model."
    )


def highlights(method_key: str, variant: str | None = None) -> dict[str, str]:
    """The parts this method trains (or adds and trains), each with what the method does there."""
    method = BY_KEY[method_key]
    variant = variant or method.default_variant
    if method_key == "full":
        return {
            p: "Every weight and bias here gets gradients and an optimizer state, and a "
            "whole new copy of the model is saved per task."
            for p, (_, kind, _) in PARTS.items()
            if kind == "base" and p not in PARAMETER_FREE
        }
    if method_key in ("lora", "dora"):
        parts = [p for t in TARGET_SETS[variant] for p in TARGET_PARTS[t]]
        return {f"lora_{p}": _lora_text(p, method_key == "dora") for p in parts}
    if method_key == "adapter":
        text = (
            "A bottleneck in series: down to m numbers, a nonlinearity, back up to d, with a "
            "shortcut around it. Two per block; W_up starts at zero, so the block starts as "
            "the identity."
        )
        return {"adapter1": text, "adapter2": text}
    if method_key == "prefix":
        return {
            "prefix": "n trained key vectors and n value vectors are put in front of the real "
            "ones in every layer: every token can attend to them. No weight changes.",
            "attention": "Attention now runs over n extra positions in every layer.",
        }
    if method_key == "prompt":
        return {
            "prompt": "n trained vectors are put in front of the input embeddings, at the "
            "input only. The model's weights and every deeper layer stay as they are."
        }
    if method_key == "ia3":
        return {
            "ia3_k": "A learned vector multiplies the keys feature by feature (W_K's output).",
            "ia3_v": "A learned vector multiplies the values feature by feature (W_V's output).",
            "ia3_ffn": "A learned vector multiplies the FFN's inner activation feature by "
            "feature: the 4d numbers after the nonlinearity, the input of FFN down (as in Liu et "
            "al. 2022).",
        }
    if method_key == "bitfit":
        return {
            "biases": "Only the bias vectors train: of Q, K, V, the attention output, both "
            "FFN matrices, both LayerNorms, the embedding LayerNorm and the pooler. "
            "Every matrix stays frozen."
        }
    raise ValueError(f"unknown method {method_key!r}")


def frozen_text(part: str) -> str:
    """What a part that the method does not train does (the head trains under every method)."""
    label, kind, _ = PARTS[part]
    if kind == "head":
        return (
            "A new classifier head trains under every method in the lab's runs (the counts "
            "leave it out, as they are the same for all)."
        )
    if part in PARAMETER_FREE:
        return f"The {label} has no parameters of its own."
    return f"The {label} is frozen: it is used as pretrained and gets no gradient."


# --- Inference properties (facts from the seeds) -----------------------------------------------

# The PEFT derivations post, Q&A "Adapter vs LoRA at serving time?": "Adapters add 1-3% latency per block ...
# with parallel adapters this drops to under 1%". Reported, not measured by the lab.
ADAPTER_LATENCY_PCT = {"serial": (1, 3), "parallel_below": 1}

PROPERTIES = {
    "full": {
        "mergeable": "nothing to merge",
        "latency": "none",
        "why": "The trained weights are the model; each task is a whole new copy.",
        "source": "the prompting-and-LoRA lecture (summary table: extra inference cost “None”, full copy per task)",
    },
    "lora": {
        "mergeable": "yes",
        "latency": "none once merged",
        "why": "W′ = W + (α/r)·B·A is one matrix of the same shape as W.",
        "source": "the LoRA course, chapter 5 and 7; the PEFT derivations post (“Merging ... adds zero latency”)",
    },
    "dora": {
        "mergeable": "yes",
        "latency": "none once merged",
        "why": "Length times direction, with the LoRA update inside, is again one matrix.",
        "source": "the LoRA course, chapter 7 lists DoRA as a LoRA refinement; merging is from the DoRA paper (Liu et al. 2024)",
    },
    "adapter": {
        "mergeable": "no",
        "latency": "yes: two extra layers per block, run in series",
        "why": "A nonlinearity sits between W_down and W_up, so the product cannot be "
        "folded into a neighbouring matrix.",
        "source": "the LoRA course, chapter 7; the PEFT derivations post (Adapter vs LoRA table and Q&A)",
    },
    "prefix": {
        "mergeable": "no",
        "latency": "yes: every layer attends over n more positions",
        "why": "The prefix is extra keys and values, not a change to any weight.",
        "source": "the PEFT derivations post (Prefix-Tuning section)",
    },
    "prompt": {
        "mergeable": "no",
        "latency": "small: n more input positions",
        "why": "The soft prompt is extra input; every request carries it.",
        "source": "the prompting-and-LoRA lecture (summary table: “Virtual token processing”)",
    },
    "ia3": {
        "mergeable": "yes",
        "latency": "none once merged",
        "why": "Scaling a matrix's output by a vector l scales its rows: diag(l)·W is one "
        "matrix; scaling its input scales its columns.",
        "source": "the LoRA course, chapter 7 (“learned scaling vectors”); merging is from the IA3 paper (Liu et al. 2022)",
    },
    "bitfit": {
        "mergeable": "nothing to merge",
        "latency": "none",
        "why": "The trained biases take the place of the old ones; the shapes never change.",
        "source": "the PEFT derivations post (BitFit section); the LoRA course, chapter 7",
    },
}


def adapter_latency_text() -> str:
    lo, hi = ADAPTER_LATENCY_PCT["serial"]
    return (
        f"{lo}–{hi}% latency per block, under {ADAPTER_LATENCY_PCT['parallel_below']}% with "
        "parallel adapters (reported in the PEFT derivations post, not measured here)"
    )


def ia3_merge_gap(d_in: int = 4, d_out: int = 3, seed: int = 0) -> float:
    """Largest |diag(l)·(W·x) − (diag(l)·W)·x| on random numbers: IA3's output scaling folds into
    W exactly (up to rounding), which is why it adds no latency once merged."""
    rng = np.random.default_rng(seed)
    W, x, scale = rng.normal(size=(d_out, d_in)), rng.normal(size=d_in), rng.normal(size=d_out)
    return float(np.max(np.abs(scale * (W @ x) - (scale[:, None] * W) @ x)))
