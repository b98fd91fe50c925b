"""JSON endpoints behind chapter 2's playgrounds (P3–P5): validate, call simulations/prompting.py,
serialise. Each answers everything its page needs in one response; the sliders only index it.

Token counts use the lab's own tokenizer (all-MiniLM-L6-v2's WordPiece, its tokenizer.json),
loaded with the `tokenizers` package: no torch or transformers in the web process.
"""

import json
from dataclasses import asdict
from functools import cache

import numpy as np
from ninja import Router

from peftlab.api.errors import Error, checked_query
from peftlab.errors import Invalid
from simulations import prompting
from workers import base_model

router = Router(tags=["playgrounds"])

TOKENIZER_NOTE = (
    f"Token counts are WordPiece tokens of this lab's {base_model.NAME} tokenizer, "
    "special tokens not counted. GPT-3 uses byte-pair encoding (BPE), whose counts "
    "differ somewhat; WordPiece also drops the line breaks a BPE model would count."
)


@cache
def _tokenizer():
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(base_model.model_path() / "tokenizer.json"))
    # The shipped file pads and truncates to 128 for sentence embeddings; a prompt's length is
    # what we want to know, so neither applies here.
    tok.no_truncation()
    tok.no_padding()
    return tok


def _max_seq_length() -> int:
    # The length the sentence-transformers model was trained to embed, shipped beside its weights.
    return json.loads((base_model.model_path() / "sentence_bert_config.json").read_text())["max_seq_length"]


def count_tokens(text: str) -> int:
    return len(_tokenizer().encode(text, add_special_tokens=False).ids)


def _query_parameter():
    # check_query collapses runs of spaces, then refuses an empty query or one over QUERY_MAX_CHARS.
    return checked_query(
        None,
        description=f"a review of one line, at most {prompting.QUERY_MAX_CHARS} "
        "characters (default: the page's example)",
        pattern=r"\S",
        maxLength=prompting.QUERY_MAX_CHARS,
    )


def _query(query: str | None) -> str:
    return prompting.check_query(prompting.DEFAULT_QUERY if query is None else query)


def _reported(*keys: str) -> list[dict]:
    return [asdict(r) for r in prompting.reported(*keys)]


# --- P3 -------------------------------------------------------------------------------------------


@router.get(
    "/in-context-learning",
    response={200: dict, 400: Error},
    summary="P3: few-shot prompts, their tokens, and reported accuracy",
)
def in_context_learning(request, query: str | None = _query_parameter()):
    """The prompt for every k = 0 … len(pool), its token count, and for each context window the
    largest k whose prompt (query included) still leaves room for the answer. SuperGLUE rows are
    reported results (Brown et al. 2020, via the prompting-and-LoRA lecture) with the few-shot gain computed here."""
    query = _query(query)
    tokens = prompting.prompt_tokens(count_tokens, query)
    windows = [
        ("minilm-seq", "Lab, trained", _max_seq_length(), "max_seq_length in the lab's sentence_bert_config.json"),
        (
            "minilm",
            "Lab, positions",
            base_model.dimensions().max_positions,
            "max_position_embeddings in the lab's config.json",
        ),
    ]
    windows += list(prompting.CONTEXT_WINDOWS)
    mean_example = float(np.mean(tokens.per_example))
    fixed = tokens.instruction + tokens.query + tokens.answer
    trace, cost = prompting.SEED_ICL["trace"], prompting.SEED_ICL["cost"]
    source_check = prompting.lecture_window_check()
    return {
        "query": query,
        "default_query": prompting.DEFAULT_QUERY,
        "query_max_chars": prompting.QUERY_MAX_CHARS,
        "ks": list(range(len(prompting.POOL) + 1)),
        "prompts": [prompting.few_shot_prompt(k, query) for k in range(len(prompting.POOL) + 1)],
        "examples": [{"text": t, "label": lab, "tokens": n} for (t, lab), n in zip(prompting.POOL, tokens.per_example)],
        "tokens": tokens.by_k,
        "extra_tokens": [n - tokens.by_k[0] for n in tokens.by_k],
        "instruction_tokens": tokens.instruction,
        "query_tokens": tokens.query,
        "answer_tokens": tokens.answer,
        "mean_example_tokens": round(mean_example, 1),
        "windows": [
            {
                "key": key,
                "label": label,
                "size": size,
                "source": source,
                "fits": prompting.largest_k_that_fits(size, tokens.by_k, tokens.answer),
                "estimated_fit": prompting.examples_that_fit(size, mean_example, fixed),
            }
            for key, label, size, source in windows
        ],
        "few_shot_range": list(prompting.SEED_ICL["few_shot_range"]),
        "tokenizer_note": TOKENIZER_NOTE,
        "superglue": {
            "shots": prompting.SUPERGLUE_SHOTS,
            "rows": [
                {
                    **asdict(r),
                    "gain": prompting.few_shot_gain(r),
                    "matches_quoted": prompting.few_shot_gain(r) == r.quoted_gap,
                }
                for r in prompting.SUPERGLUE
            ],
            "per_decade": [
                {**d, "decades": round(d["decades"], 2), "points_per_decade": round(d["points_per_decade"], 1)}
                for d in prompting.gain_per_decade()
            ],
        },
        "lecture": {
            "trace": {**trace, "computed": prompting.few_shot_budget(trace["k"], trace["per_example"], trace["query"])},
            "cost": {**cost, "computed": prompting.few_shot_budget(cost["k"], cost["per_example"], 0)},
            "gpt3_window": prompting.SEED_ICL["gpt3_window"],
            "gpt3_fit": list(prompting.SEED_ICL["gpt3_fit"]),
            "gpt3_per_example": [round(x) for x in source_check["gpt3_per_example"]],
            "window_4k": prompting.SEED_ICL["window_4k"],
            "fit_4k": prompting.SEED_ICL["fit_4k"],
            "k4_per_example": round(source_check["k4_per_example"]),
            "k4_at_gpt3_sizes": [round(x) for x in source_check["k4_at_gpt3_sizes"]],
        },
    }


# --- P4 -------------------------------------------------------------------------------------------


@router.get(
    "/prompt-sensitivity",
    response={200: dict, 400: Error},
    summary="P4: every prompt format, and contextual calibration",
)
def prompt_sensitivity(request, query: str | None = _query_parameter()):
    """Every combination of label words × separator × instruction × ordering with its exact prompt
    and token count; the calibration grid calibrated[b][r] for content-free p(Positive) = bias[b]
    and raw p(Positive) = raw[r], with each step (divide, sum, renormalise)."""
    query = _query(query)
    grid = prompting.calibration_grid()
    seed = prompting.SEED_CALIBRATION
    worked = prompting.calibrate(seed["raw"], seed["bias"])
    return {
        "query": query,
        "default_query": prompting.DEFAULT_QUERY,
        "query_max_chars": prompting.QUERY_MAX_CHARS,
        "choices": {
            "labels": {k: " / ".join(v) for k, v in prompting.LABEL_WORDS.items()},
            "separator": {k: v[0] for k, v in prompting.SEPARATORS.items()},
            "instruction": {k: v[0] for k, v in prompting.INSTRUCTIONS.items()},
            "ordering": {k: v[0] for k, v in prompting.ORDERINGS.items()},
        },
        "defaults": {
            "labels": "posneg",
            "separator": "answer",
            "instruction": "explicit",
            "ordering": "alternate_pos_last",
        },
        "orderings": {k: prompting.ordering_labels(k) for k in prompting.ORDERINGS},
        "formats": prompting.all_formats(count_tokens, query),
        "calibration": {
            "real_prompt": prompting.query_block(query),
            "content_free_prompt": prompting.query_block(prompting.CONTENT_FREE),
            "raw": prompting.RAW_GRID.tolist(),
            "raw_neg": np.round(1 - prompting.RAW_GRID, 2).tolist(),
            "bias": prompting.BIAS_GRID.tolist(),
            "bias_neg": np.round(1 - prompting.BIAS_GRID, 2).tolist(),
            "defaults": {"raw": seed["raw"], "bias": seed["bias"]},
            **{name: np.round(values, 4).tolist() for name, values in grid.items()},
            "worked_example": {
                "raw": seed["raw"],
                "bias": seed["bias"],
                "source_says": seed["source_says"],
                "raw_neg": round(1 - seed["raw"], 2),
                "bias_neg": round(1 - seed["bias"], 2),
                "source_says_neg": round(1 - seed["source_says"], 2),
                "divided": [round(x, 4) for x in worked.divided],
                "total": round(worked.total, 4),
                "calibrated": [round(x, 4) for x in worked.calibrated],
            },
        },
        "reported": _reported(
            "label_words", "separator", "instruction", "ordering", "spread_uncalibrated", "spread_calibrated"
        ),
        "sst2": {
            "rows": _reported("sst2_order_worst", "sst2_order_best"),
            "spread": prompting.spread("sst2_order_worst", "sst2_order_best"),
        },
        "tokenizer_note": TOKENIZER_NOTE,
    }


# --- P5 -------------------------------------------------------------------------------------------


@router.get(
    "/chain-of-thought",
    response={200: dict, 400: Error},
    summary="P5: a word problem answered directly and step by step",
)
def chain_of_thought(
    request,
    problem: str = checked_query("bakery", enum=list(prompting.PROBLEMS_BY_KEY)),
    values: str | None = checked_query(
        None,
        description="the problem's numbers in order, separated by commas (as many as it "
        f"takes, each {prompting.VALUE_MIN} to {prompting.VALUE_MAX})",
        pattern=r"^\s*\d{1,6}\s*(,\s*\d{1,6}\s*)*$",
    ),
):
    """For every problem (the chosen one with `values`, the others at their own numbers): the
    steps computed exactly, and per mode (direct, few-shot CoT, zero-shot CoT) the prompt, the
    written answer and their token counts. `values` lists the chosen problem's numbers in order."""
    if problem not in prompting.PROBLEMS_BY_KEY:
        raise Invalid(f"problem must be one of {', '.join(prompting.PROBLEMS_BY_KEY)}")
    chosen = prompting.PROBLEMS_BY_KEY[problem]
    out = []
    for p in prompting.PROBLEMS:
        numbers = prompting.default_values(p)
        if p is chosen and values is not None:
            given = prompting.parse_values(values)
            if len(given) != len(numbers):
                raise Invalid(f"{p.key} takes {len(numbers)} values ({', '.join(numbers)}), got {len(given)}")
            numbers = dict(zip(numbers, given))
        solved = prompting.chain_of_thought(p, numbers, count_tokens)
        out.append(
            {
                "key": p.key,
                "title": p.title,
                "unit": p.unit,
                "quantities": [{"name": n, "label": label, "value": numbers[n]} for n, label, _ in p.quantities],
                **solved,
            }
        )
    return {
        "problem": problem,
        "value_min": prompting.VALUE_MIN,
        "value_max": prompting.VALUE_MAX,
        "modes": prompting.COT_MODES,
        "trigger": prompting.ZERO_SHOT_COT_TRIGGER,
        "trigger_words": prompting.word_count(prompting.ZERO_SHOT_COT_TRIGGER),
        "problems": out,
        "reported": {
            "groups": [{"label": label, "rows": _reported(*keys)} for label, keys in prompting.COT_GROUPS],
            "gains": {label: round(prompting.spread(*keys), 1) for label, keys in prompting.COT_GROUPS},
            "notes": prompting.cot_notes(),
            "task_types": _reported(
                "cot_arithmetic", "cot_logic", "cot_commonsense", "cot_classification", "cot_factual"
            ),
            "self_consistency": _reported("self_consistency")[0],
            "small_models": _reported("cot_small_models")[0],
        },
        "tokenizer_note": TOKENIZER_NOTE,
    }
