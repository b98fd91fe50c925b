"""Chapter 2, adapting without training: P3 in-context learning, P4 prompt sensitivity and
contextual calibration, P5 chain of thought (pure python/numpy, no Django).

Nothing here calls a language model. The prompts are real text, built from a small pool of
labelled reviews and word problems written for the lab; their lengths are counted by whatever
`count(text) -> int` the caller passes (the web layer passes the lab's own WordPiece tokenizer).
The accuracies are *reported results* quoted in the prompting-and-LoRA lecture, kept in the tables below
with the paper each comes from; the lab measures none of them.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from math import floor, log10

import numpy as np

Counter = Callable[[str], int]

QUERY_MAX_CHARS = 300

# --- the example pool (P3, P4) --------------------------------------------------------------------

POSITIVE, NEGATIVE = "Positive", "Negative"

# Short reviews written for the lab, alternating labels so that any first k are balanced.
POOL = (
    ("The staff remembered my name on the second visit and the coffee was worth the walk across town.", POSITIVE),
    ("The charger stopped working after a week, and support kept sending me the same useless link.", NEGATIVE),
    ("A quiet, clever film that trusts its audience and ends exactly when it should.", POSITIVE),
    ("The room smelled of smoke even though the booking promised a non-smoking floor.", NEGATIVE),
    ("Setup took five minutes, and the battery still lasts two full days of heavy use.", POSITIVE),
    ("I wanted to like the sequel, but the jokes were recycled and the plot went nowhere.", NEGATIVE),
    ("Not cheap, but the shoes have survived a winter of rain without a single leak.", POSITIVE),
    ("The pasta was bland, the bread was stale, and we waited forty minutes for both.", NEGATIVE),
    ("Our guide knew every street of the old town and made the history feel alive.", POSITIVE),
    ("The app logs me out every time I switch screens, which makes it almost unusable.", NEGATIVE),
    ("I expected little from a budget blender, yet it crushes ice better than my old one.", POSITIVE),
    ("The lead actor mumbles through every scene and the ending makes no sense at all.", NEGATIVE),
    ("Check-in was fast, the bed was huge, and the view over the harbour was stunning.", POSITIVE),
    ("The package arrived two weeks late with a cracked screen and no apology.", NEGATIVE),
    ("Hard to put down: the characters feel like people I have actually met.", POSITIVE),
    ("Despite the great reviews, the soup was lukewarm and tasted mostly of salt.", NEGATIVE),
    ("The headphones block out the train completely and never hurt my ears.", POSITIVE),
    ("The instructions were missing half the steps, so the shelf now leans to one side.", NEGATIVE),
    ("Every dish on the tasting menu surprised us, and the dessert was the best of all.", POSITIVE),
    ("The documentary repeats the same three points for two hours without adding anything.", NEGATIVE),
    ("My plants have never looked healthier since I moved them under this lamp.", POSITIVE),
    ("The hotel pool was closed for repairs for our whole stay and nobody told us.", NEGATIVE),
    ("The keyboard feels solid, the keys are quiet, and it pairs instantly with every device.", POSITIVE),
    ("I returned the jacket because the zip broke the first time I wore it.", NEGATIVE),
    ("A warm, funny show that the whole family watched together without a single complaint.", POSITIVE),
    ("The delivery driver left the groceries in the rain and half the eggs were broken.", NEGATIVE),
    ("The museum's new wing is bright, well laid out, and free on Sunday mornings.", POSITIVE),
    ("It is not a bad phone, but it is certainly not worth twice the price of the last one.", NEGATIVE),
    ("The vet explained every option patiently and our dog was home the same evening.", POSITIVE),
    ("The concert started an hour late and the sound was so muddy we left early.", NEGATIVE),
    ("Simple recipes, clear photos, and every meal I have tried came out as promised.", POSITIVE),
    ("The mattress sagged in the middle within a month and the warranty did not cover it.", NEGATIVE),
)

DEFAULT_QUERY = "The plot dragged in the middle, but the last twenty minutes were worth the wait."

INSTRUCTION = "Classify the sentiment of each review as Positive or Negative."
CONTENT_FREE = "N/A"  # Zhao et al. 2021's content-free input


def check_query(text: str) -> str:
    """The review a learner types as the query: one line, not empty, not huge."""
    text = " ".join(str(text).split())
    if not text:
        raise ValueError("query must not be empty")
    if len(text) > QUERY_MAX_CHARS:
        raise ValueError(f"query must be at most {QUERY_MAX_CHARS} characters (got {len(text)})")
    return text


# --- P3: the few-shot prompt and its tokens -------------------------------------------------------


def example_block(text: str, label: str) -> str:
    return f"Review: {text}\nSentiment: {label}\n\n"


def query_block(text: str) -> str:
    return f"Review: {text}\nSentiment:"


def few_shot_prompt(k: int, query: str = DEFAULT_QUERY, pool=POOL) -> str:
    """The instruction, the first k labelled examples of the pool, then the query left open."""
    if not 0 <= k <= len(pool):
        raise ValueError(f"k must be between 0 and {len(pool)}")
    shots = "".join(example_block(text, label) for text, label in pool[:k])
    return f"{INSTRUCTION}\n\n{shots}{query_block(query)}"


@dataclass(frozen=True)
class PromptTokens:
    by_k: list[int]  # tokens of the whole prompt with k = 0 … len(pool) examples
    per_example: list[int]  # tokens of each example block
    instruction: int
    query: int
    answer: int  # the longest label word: room the model needs to answer


def prompt_tokens(count: Counter, query: str = DEFAULT_QUERY, pool=POOL) -> PromptTokens:
    """Token counts for every k, counted on the real prompt text (not summed from parts)."""
    return PromptTokens(
        by_k=[count(few_shot_prompt(k, query, pool)) for k in range(len(pool) + 1)],
        per_example=[count(example_block(text, label)) for text, label in pool],
        instruction=count(INSTRUCTION),
        query=count(query_block(query)),
        answer=max(count(" " + label) for label in (POSITIVE, NEGATIVE)),
    )


def largest_k_that_fits(window: int, by_k: list[int], answer: int) -> int:
    """The most examples whose prompt still leaves room for the answer; -1 if even k = 0 does not
    fit. Every token of the prompt, the query included, must be inside the window."""
    fitting = [k for k, tokens in enumerate(by_k) if tokens + answer <= window]
    return max(fitting) if fitting else -1


def examples_that_fit(window: int, per_example: float, fixed: float) -> int:
    """How many examples of `per_example` tokens fit beside `fixed` tokens (instruction, query,
    answer): the back-of-envelope count the seed makes."""
    return max(0, floor((window - fixed) / per_example))


def few_shot_budget(k: int, per_example: float, query: float) -> float:
    """Input length of a k-shot prompt: k examples plus the query (the prompting-and-LoRA lecture: 4 × 100 + 50 = 450)."""
    return k * per_example + query


def implied_tokens_per_example(window: int, examples: float) -> float:
    """What a claim "a window of W tokens holds N examples" says each example costs."""
    return window / examples


# Context windows to compare, each with where its size comes from. The lab's own model is added
# by the web layer from its config.json.
CONTEXT_WINDOWS = (
    ("gpt2", "GPT-2", 1024, "Radford et al. 2019 (n_ctx in GPT-2's released config)"),
    ("gpt3", "GPT-3", 2048, 'the prompting-and-LoRA lecture: "a 2048-token context window" (Brown et al. 2020)'),
    ("4k", "4K context", 4096, 'the prompting-and-LoRA lecture: "a 4K context can hold ~16 short examples"'),
)

# The prompting-and-LoRA lecture's own back-of-envelope figures about context and examples.
SEED_ICL = {
    "few_shot_range": (4, 32),  # "Few-shot: Provide 4-32 examples"
    "gpt3_window": 2048,
    "gpt3_fit": (10, 20),  # "you might fit 10-20 short examples"
    "window_4k": 4096,
    "fit_4k": 16,  # "A 4K context can hold ~16 short examples"
    "trace": {"k": 4, "per_example": 100, "query": 50, "total": 450},  # its few-shot forward pass
    "cost": {"k": 16, "per_example": 100, "extra": 1600},  # "1600 extra tokens per call"
}


def lecture_window_check() -> dict:
    """The source's two fit claims, turned into the tokens per example each implies.

    2048 tokens for 10–20 examples is ~100–205 tokens each; 4096 for ~16 is 256 each. At one
    example size the bigger window would hold twice as many, not fewer: the claims disagree.
    """
    lo, hi = SEED_ICL["gpt3_fit"]
    w2, w4 = SEED_ICL["gpt3_window"], SEED_ICL["window_4k"]
    per_2k = (implied_tokens_per_example(w2, hi), implied_tokens_per_example(w2, lo))
    return {
        "gpt3_per_example": per_2k,
        "k4_per_example": implied_tokens_per_example(w4, SEED_ICL["fit_4k"]),
        "k4_at_gpt3_sizes": (w4 / per_2k[1], w4 / per_2k[0]),
    }


# --- P3: reported accuracy by model size ----------------------------------------------------------


@dataclass(frozen=True)
class SuperGlueRow:
    model: str
    params: float
    zero_shot: float
    few_shot: float
    quoted_gap: float  # the source's own "Gap closed by few-shot" column
    source: str


_GPT3 = "Brown et al. 2020 (GPT-3), SuperGLUE, as tabulated in the prompting-and-LoRA lecture"
SUPERGLUE = (
    SuperGlueRow("GPT-3 Small", 125e6, 42.0, 43.1, 1.1, _GPT3),
    SuperGlueRow("GPT-3 Medium", 350e6, 43.8, 46.5, 2.7, _GPT3),
    SuperGlueRow("GPT-3 Large", 760e6, 45.2, 50.3, 5.1, _GPT3),
    SuperGlueRow("GPT-3 XL", 1.3e9, 47.9, 55.1, 7.2, _GPT3),
    SuperGlueRow("GPT-3", 175e9, 55.4, 71.8, 16.4, _GPT3),
)
SUPERGLUE_SHOTS = 32  # the prompting-and-LoRA lecture: "32-shot GPT-3 scored 71.8"


def few_shot_gain(row: SuperGlueRow) -> float:
    """Few-shot minus zero-shot, in SuperGLUE points, to one decimal like the table."""
    return round(row.few_shot - row.zero_shot, 1)


def gain_per_decade(rows=SUPERGLUE) -> list[dict]:
    """How fast the few-shot gain grows per tenfold of parameters between consecutive rows.

    The source calls the growth superlinear; against log model size the last step (1.3B → 175B)
    is slower per tenfold than the steps below it, so these five rows do not show it.
    """
    out = []
    for a, b in zip(rows, rows[1:]):
        decades = log10(b.params / a.params)
        out.append(
            {
                "from": a.model,
                "to": b.model,
                "decades": decades,
                "points_per_decade": (few_shot_gain(b) - few_shot_gain(a)) / decades,
            }
        )
    return out


# --- reported results (P4, P5) --------------------------------------------------------------------


@dataclass(frozen=True)
class Reported:
    key: str
    label: str
    low: float | None  # None where the source gives only an upper bound ("up to …")
    high: float | None  # None where the source gives no figure at all ("minimal or negative")
    unit: str
    source: str
    note: str = ""  # what the source says in words where it gives no number


_ZHAO = "Zhao et al. 2021 (Calibrate before use), as quoted in the prompting-and-LoRA lecture"
_SEED = "the prompting-and-LoRA lecture's table of formatting choices (no paper named)"
# Chain of thought: each figure with the paper, model and setting it was measured in. The lecture
# credits "Let's think step by step" with GSM8K 18 % → 57 % and names Wei et al.; that phrase is
# Kojima et al.'s zero-shot CoT, and 18 → 57 is Wei et al.'s few-shot CoT on PaLM 540B.
_WEI = "Wei et al. 2022 (chain-of-thought prompting), PaLM 540B with eight worked examples"
_KOJIMA = "Kojima et al. 2022 (zero-shot reasoners), InstructGPT text-davinci-002"
_COT_TABLE = "the prompting-and-LoRA lecture's table of where CoT helps (no paper named)"

REPORTED = (
    # P4: how much formatting moves accuracy
    Reported("sst2_order_worst", "SST-2, worst ordering", 54, 54, "% accuracy", _ZHAO),
    Reported("sst2_order_best", "SST-2, best ordering", 93, 93, "% accuracy", _ZHAO),
    Reported("label_words", "Label words", None, 20, "points", _SEED),
    Reported("separator", "Separator", 5, 15, "points", _SEED),
    Reported("instruction", "Instruction framing", 10, 25, "points", _SEED),
    Reported("ordering", "Example ordering", None, 40, "points", _SEED),
    Reported("spread_uncalibrated", "Across formats, uncalibrated", 40, 40, "points", _ZHAO),
    Reported("spread_calibrated", "Across formats, calibrated", None, 5, "points", _ZHAO),
    # P5: chain of thought, as the papers report it
    Reported("gsm8k_kojima_standard", "GSM8K, zero-shot", 10.4, 10.4, "% accuracy", _KOJIMA),
    Reported("gsm8k_kojima_zero_shot_cot", 'GSM8K, + "Let\'s think step by step"', 40.7, 40.7, "% accuracy", _KOJIMA),
    Reported("gsm8k_wei_standard", "GSM8K, few-shot standard prompt", 17.9, 17.9, "% accuracy", _WEI),
    Reported("gsm8k_wei_few_shot_cot", "GSM8K, few-shot with worked reasoning", 56.9, 56.9, "% accuracy", _WEI),
    Reported("multiarith_kojima_standard", "MultiArith, zero-shot", 17.7, 17.7, "% accuracy", _KOJIMA),
    Reported("multiarith_kojima_zero_shot_cot", "MultiArith, zero-shot CoT", 78.7, 78.7, "% accuracy", _KOJIMA),
    Reported("cot_arithmetic", "Multi-step arithmetic", 40, 60, "points", _COT_TABLE),
    Reported("cot_logic", "Logic puzzles", 20, 40, "points", _COT_TABLE),
    Reported("cot_commonsense", "Commonsense reasoning", 10, 20, "points", _COT_TABLE),
    Reported("cot_classification", "Simple classification", None, None, "points", _COT_TABLE, "minimal or negative"),
    Reported("cot_factual", "Factual recall", 0, 0, "points", _COT_TABLE, "none"),
    Reported(
        "self_consistency",
        "Self-consistency over standard CoT, math",
        5,
        10,
        "points",
        "Wang et al. 2022 (self-consistency), as quoted in the prompting-and-LoRA lecture",
    ),
    Reported(
        "cot_small_models",
        "Below this size CoT often hurts",
        10e9,
        10e9,
        "parameters",
        'the prompting-and-LoRA lecture on Wei et al. 2022 ("<10B parameters")',
    ),
)
REPORTED_BY_KEY = {r.key: r for r in REPORTED}
ZERO_SHOT_COT_TRIGGER = "Let's think step by step."
# What the lecture says about those results, to set beside the papers' figures: GSM8K
# 18 % → 57 % credited to "Let's think step by step" (and to Wei et al.), → 79 % with worked
# chains; MultiArith 18 % → 79 % zero-shot CoT, "a 61-percentage-point improvement from five words".
LECTURE_COT = {"gsm8k": (18, 57, 79), "multiarith": (18, 79), "multiarith_gain": 61, "trigger_words": 5}
# The groups the chart draws: one benchmark, one model, one paper each.
COT_GROUPS = (
    ("GSM8K · InstructGPT", ("gsm8k_kojima_standard", "gsm8k_kojima_zero_shot_cot")),
    ("GSM8K · PaLM 540B", ("gsm8k_wei_standard", "gsm8k_wei_few_shot_cot")),
    ("MultiArith · InstructGPT", ("multiarith_kojima_standard", "multiarith_kojima_zero_shot_cot")),
)


def cot_notes() -> list[str]:
    """The lecture's chain-of-thought figures beside the papers' own, each attributed."""
    r = REPORTED_BY_KEY
    lg, lm = LECTURE_COT["gsm8k"], LECTURE_COT["multiarith"]
    trigger_words = word_count(ZERO_SHOT_COT_TRIGGER)
    return [
        f"A lecture on prompting, LoRA and adapters credits the {trigger_words} words “{ZERO_SHOT_COT_TRIGGER}” with GSM8K "
        f"{lg[0]}% → {lg[1]}% and names Wei et al. Those are Wei et al.'s PaLM 540B figures with eight worked "
        f"examples, {r['gsm8k_wei_standard'].high}% → {r['gsm8k_wei_few_shot_cot'].high}% "
        f"(+{spread('gsm8k_wei_standard', 'gsm8k_wei_few_shot_cot'):.1f} points). The phrase is Kojima et al.'s "
        f"zero-shot CoT; on GSM8K they report {r['gsm8k_kojima_standard'].high}% → "
        f"{r['gsm8k_kojima_zero_shot_cot'].high}% (+{spread('gsm8k_kojima_standard', 'gsm8k_kojima_zero_shot_cot'):.1f}) "
        "with InstructGPT (text-davinci-002).",
        f"Its MultiArith {lm[0]}% → {lm[1]}% (“{LECTURE_COT['multiarith_gain']} points from "
        f"{LECTURE_COT['trigger_words']} words”) is Kojima et al.'s {r['multiarith_kojima_standard'].high}% → "
        f"{r['multiarith_kojima_zero_shot_cot'].high}% rounded: "
        f"+{spread('multiarith_kojima_standard', 'multiarith_kojima_zero_shot_cot'):.1f} points.",
        f"Its {lg[2]}% on GSM8K “with worked reasoning examples” is not a figure this lab found in either paper; "
        "the chart leaves it out.",
    ]


def reported(*keys: str) -> list[Reported]:
    return [REPORTED_BY_KEY[k] for k in keys]


def spread(worst: str, best: str) -> float:
    """The swing between two reported accuracies, in points (SST-2 ordering: 93 − 54 = 39)."""
    return REPORTED_BY_KEY[best].high - REPORTED_BY_KEY[worst].low


def word_count(text: str) -> int:
    return len(text.split())


# --- P4: prompt formats ---------------------------------------------------------------------------

LABEL_WORDS = {
    "posneg": ("Positive", "Negative"),
    "goodbad": ("Good", "Bad"),
    "truefalse": ("True", "False"),
    "digits": ("1", "0"),
}
SEPARATORS = {
    "answer": ("Answer:", "{text}\nAnswer: {label}"),
    "newline": ("new line", "{text}\n{label}"),
    "arrow": ("=>", "{text} => {label}"),
}
INSTRUCTIONS = {
    "none": ("none", ""),
    "classify": ("Classify this", "Classify this review."),
    "question": ("What sentiment?", "What sentiment is this review?"),
    "explicit": ("Exact output format", "Answer with exactly one word: {pos} or {neg}."),
}
# Four examples, two of each label: the same examples, only their order changes.
ORDER_EXAMPLES = (0, 2, 1, 3)  # indices into POOL: two positives, then two negatives
ORDERINGS = {
    "alternate_pos_last": ("N P N P (ends positive)", (2, 0, 3, 1)),
    "alternate_neg_last": ("P N P N (ends negative)", (0, 2, 1, 3)),
    "positives_last": ("N N P P", (2, 3, 0, 1)),
    "negatives_last": ("P P N N", (0, 1, 2, 3)),
}


def format_key(labels: str, separator: str, instruction: str, ordering: str) -> str:
    return f"{labels}|{separator}|{instruction}|{ordering}"


def formatted_prompt(labels: str, separator: str, instruction: str, ordering: str, query: str = DEFAULT_QUERY) -> str:
    """A four-shot prompt in one combination of the format choices, query left open."""
    try:
        pos, neg = LABEL_WORDS[labels]
        template = SEPARATORS[separator][1]
        header = INSTRUCTIONS[instruction][1].format(pos=pos, neg=neg)
        order = ORDERINGS[ordering][1]
    except KeyError as e:
        raise ValueError(f"unknown format choice {e.args[0]!r}") from None
    word = {POSITIVE: pos, NEGATIVE: neg}
    shots = [POOL[ORDER_EXAMPLES[i]] for i in order]
    blocks = [template.format(text=text, label=word[label]) for text, label in shots]
    open_query = template.format(text=query, label="").rstrip(" ")
    return "\n\n".join(([header] if header else []) + blocks + [open_query])


def ordering_labels(ordering: str) -> list[str]:
    return [POOL[ORDER_EXAMPLES[i]][1] for i in ORDERINGS[ordering][1]]


def all_formats(count: Counter, query: str = DEFAULT_QUERY) -> dict[str, dict]:
    """Every combination of the four choices: its exact prompt text and its token count."""
    out = {}
    for labels in LABEL_WORDS:
        for separator in SEPARATORS:
            for instruction in INSTRUCTIONS:
                for ordering in ORDERINGS:
                    text = formatted_prompt(labels, separator, instruction, ordering, query)
                    out[format_key(labels, separator, instruction, ordering)] = {"prompt": text, "tokens": count(text)}
    return out


# --- P4: contextual calibration -------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    divided: tuple[float, float]  # raw p / content-free p, per label
    total: float  # their sum
    calibrated: tuple[float, float]  # divided / total


def calibrate(raw_pos: float, bias_pos: float) -> Calibration:
    """Zhao et al. 2021's contextual calibration for two labels: divide each raw probability by
    the probability the model gives that label on a content-free input, then renormalise."""
    if not 0.0 <= raw_pos <= 1.0:
        raise ValueError("raw probability must be between 0 and 1")
    if not 0.0 < bias_pos < 1.0:
        raise ValueError("content-free probability must be strictly between 0 and 1")
    q_pos, q_neg = raw_pos / bias_pos, (1.0 - raw_pos) / (1.0 - bias_pos)
    total = q_pos + q_neg
    return Calibration((q_pos, q_neg), total, (q_pos / total, q_neg / total))


RAW_GRID = np.round(np.linspace(0.0, 1.0, 101), 2)  # the raw-probability slider
BIAS_GRID = np.round(np.linspace(0.01, 0.99, 99), 2)  # the content-free slider (never 0 or 1)
SEED_CALIBRATION = {"raw": 0.9, "bias": 0.7, "source_says": 0.81}  # the prompting-and-LoRA lecture's worked example


def calibration_grid(raw=RAW_GRID, bias=BIAS_GRID) -> dict[str, np.ndarray]:
    """calibrate() at every slider setting: arrays indexed [bias index, raw index]."""
    r = np.asarray(raw, dtype=float)[None, :]
    b = np.asarray(bias, dtype=float)[:, None]
    q_pos, q_neg = r / b, (1.0 - r) / (1.0 - b)
    total = q_pos + q_neg
    return {
        "divided_pos": q_pos,
        "divided_neg": q_neg,
        "total": total,
        "calibrated_pos": q_pos / total,
        "calibrated_neg": q_neg / total,
    }


# --- P5: word problems, solved step by step -------------------------------------------------------

OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: Fraction(a, b)}
SYMBOL = {"+": "+", "-": "−", "*": "×", "/": "÷"}


@dataclass(frozen=True)
class Step:
    out: str
    op: str
    a: str
    b: str
    say: str  # the sentence the model would write, with {a}, {b}, {out} and {sum} filled in


@dataclass(frozen=True)
class Problem:
    key: str
    title: str
    question: str  # with {names} for the quantities
    quantities: tuple[tuple[str, str, int], ...]  # (name, label, default value)
    steps: tuple[Step, ...]
    unit: str


PROBLEMS = (
    Problem(
        "bakery",
        "Muffins left",
        "A bakery bakes {trays} trays of {per_tray} muffins. It sells {morning} muffins in the "
        "morning and {afternoon} in the afternoon. How many muffins are left?",
        (
            ("trays", "trays", 4),
            ("per_tray", "muffins per tray", 12),
            ("morning", "sold in the morning", 29),
            ("afternoon", "sold in the afternoon", 8),
        ),
        (
            Step("baked", "*", "trays", "per_tray", "The bakery bakes {a} trays of {b}, so {sum} muffins."),
            Step("sold", "+", "morning", "afternoon", "It sells {a} and then {b}, so {sum} muffins in all."),
            Step("left", "-", "baked", "sold", "That leaves {sum} muffins."),
        ),
        "muffins",
    ),
    Problem(
        "pencils",
        "Pencils per class",
        "A school orders {boxes} boxes of {per_box} pencils and shares them equally among "
        "{classes} classes. Each class then gives {given} pencils to the art room. How many "
        "pencils does each class keep?",
        (
            ("boxes", "boxes", 7),
            ("per_box", "pencils per box", 24),
            ("classes", "classes", 6),
            ("given", "given to the art room", 5),
        ),
        (
            Step("total", "*", "boxes", "per_box", "{a} boxes of {b} pencils is {sum} pencils."),
            Step("share", "/", "total", "classes", "Shared among {b} classes, each gets {sum}."),
            Step("keep", "-", "share", "given", "After giving away {b}, each class keeps {sum} pencils."),
        ),
        "pencils",
    ),
    Problem(
        "reading",
        "Pages read",
        "Sam reads {weekday} pages on each of the {weekdays} weekdays and {weekend} pages on each "
        "of the {weekend_days} weekend days. How many pages does he read in {weeks} weeks?",
        (
            ("weekday", "pages per weekday", 18),
            ("weekdays", "weekdays", 5),
            ("weekend", "pages per weekend day", 35),
            ("weekend_days", "weekend days", 2),
            ("weeks", "weeks", 3),
        ),
        (
            Step("week_days", "*", "weekday", "weekdays", "On weekdays he reads {a} × {b} = {sum} pages."),
            Step("week_end", "*", "weekend", "weekend_days", "At the weekend he reads {a} × {b} = {sum} pages."),
            Step("week", "+", "week_days", "week_end", "So one week is {a} + {b} = {sum} pages."),
            Step("all", "*", "week", "weeks", "Over {b} weeks that is {sum} pages."),
        ),
        "pages",
    ),
    Problem(
        "tickets",
        "Change from the tickets",
        "A museum ticket costs ${adult} for adults and ${child} for children. A group of {adults} "
        "adults and {children} children pays with a ${paid} note. How much change do they get?",
        (
            ("adult", "adult ticket ($)", 9),
            ("child", "child ticket ($)", 5),
            ("adults", "adults", 3),
            ("children", "children", 4),
            ("paid", "note paid ($)", 50),
        ),
        (
            Step("adult_cost", "*", "adults", "adult", "The adults pay {a} × ${b} = ${sum}."),
            Step("child_cost", "*", "children", "child", "The children pay {a} × ${b} = ${sum}."),
            Step("cost", "+", "adult_cost", "child_cost", "Together that is ${a} + ${b} = ${sum}."),
            Step("change", "-", "paid", "cost", "The change from ${a} is ${sum}."),
        ),
        "dollars",
    ),
)
PROBLEMS_BY_KEY = {p.key: p for p in PROBLEMS}
VALUE_MIN, VALUE_MAX = 1, 999


def _number(x) -> str:
    x = Fraction(x)
    return str(x.numerator) if x.denominator == 1 else f"{float(x):g}"


def solve(problem: Problem, values: dict[str, int]) -> list[dict]:
    """Each step's operation, operands and result, computed exactly. Raises ValueError when the
    numbers make a step meaningless (a share that does not divide, a negative count)."""
    known: dict[str, Fraction] = {k: Fraction(v) for k, v in values.items()}
    out = []
    for step in problem.steps:
        a, b = known[step.a], known[step.b]
        if step.op == "/" and b == 0:
            raise ValueError(f"{step.b} must not be zero")
        result = Fraction(OPS[step.op](a, b))
        if result.denominator != 1:
            raise ValueError(
                f"{_number(a)} does not divide evenly by {_number(b)}: pick numbers that share out exactly"
            )
        if result < 0:
            raise ValueError(f'these numbers give a negative count ({_number(result)}) at "{step.out}"')
        known[step.out] = result
        out.append(
            {
                "name": step.out,
                "op": step.op,
                "a": int(a),
                "b": int(b),
                "result": int(result),
                "expression": f"{_number(a)} {SYMBOL[step.op]} {_number(b)} = {_number(result)}",
                "sentence": step.say.format(a=_number(a), b=_number(b), sum=_number(result)),
            }
        )
    return out


def check_values(problem: Problem, values: dict[str, int]) -> dict[str, int]:
    names = [name for name, _, _ in problem.quantities]
    if set(values) != set(names):
        raise ValueError(f"{problem.key} needs exactly these numbers: {', '.join(names)}")
    for name in names:
        v = values[name]
        if isinstance(v, bool) or not isinstance(v, int) or not VALUE_MIN <= v <= VALUE_MAX:
            raise ValueError(f"{name} must be a whole number from {VALUE_MIN} to {VALUE_MAX}")
    return {name: values[name] for name in names}


def default_values(problem: Problem) -> dict[str, int]:
    return {name: value for name, _, value in problem.quantities}


def question_text(problem: Problem, values: dict[str, int]) -> str:
    return problem.question.format(**values)


def direct_answer(answer: int) -> str:
    return f"The answer is {answer}."


def cot_answer(steps: list[dict], answer: int) -> str:
    return " ".join(s["sentence"] for s in steps) + f" {direct_answer(answer)}"


def zero_shot_cot_answer(steps: list[dict], answer: int) -> str:
    # Kojima et al.'s second stage asks for the answer after the reasoning it generated.
    return " ".join(s["sentence"] for s in steps) + f" {zero_shot_final(answer)}"


def zero_shot_final(answer: int) -> str:
    return f"Therefore, the answer is {answer}."


COT_MODES = {
    "direct": "Standard prompt: a worked example with its answer only",
    "few_shot_cot": "Few-shot chain of thought: a worked example with its reasoning",
    "zero_shot_cot": 'Zero-shot chain of thought: no example, "Let\'s think step by step"',
}


def cot_prompt(mode: str, exemplar: tuple[str, list[dict], int], question: str) -> str:
    """The prompt for each mode; the exemplar is another problem, fully worked."""
    ex_question, ex_steps, ex_answer = exemplar
    if mode == "direct":
        return f"Q: {ex_question}\nA: {direct_answer(ex_answer)}\n\nQ: {question}\nA:"
    if mode == "few_shot_cot":
        return f"Q: {ex_question}\nA: {cot_answer(ex_steps, ex_answer)}\n\nQ: {question}\nA:"
    if mode == "zero_shot_cot":
        return f"Q: {question}\nA: {ZERO_SHOT_COT_TRIGGER}"
    raise ValueError(f"mode must be one of {', '.join(COT_MODES)}")


def cot_output(mode: str, steps: list[dict], answer: int) -> str:
    if mode == "direct":
        return direct_answer(answer)
    if mode == "few_shot_cot":
        return cot_answer(steps, answer)
    if mode == "zero_shot_cot":
        return zero_shot_cot_answer(steps, answer)
    raise ValueError(f"mode must be one of {', '.join(COT_MODES)}")


def exemplar_for(problem: Problem) -> Problem:
    """The worked example shown in the prompt: the next problem in the list, never the same."""
    i = PROBLEMS.index(problem)
    return PROBLEMS[(i + 1) % len(PROBLEMS)]


def chain_of_thought(problem: Problem, values: dict[str, int], count: Counter) -> dict:
    """Everything the page shows for one problem: the steps, and per mode the prompt, the model's
    written answer and their token counts."""
    values = check_values(problem, values)
    steps = solve(problem, values)
    answer = steps[-1]["result"]
    ex = exemplar_for(problem)
    ex_values = default_values(ex)
    ex_steps = solve(ex, ex_values)
    exemplar = (question_text(ex, ex_values), ex_steps, ex_steps[-1]["result"])
    question = question_text(problem, values)
    modes = {}
    for mode in COT_MODES:
        prompt, output = cot_prompt(mode, exemplar, question), cot_output(mode, steps, answer)
        final = zero_shot_final(answer) if mode == "zero_shot_cot" else direct_answer(answer)
        modes[mode] = {
            "prompt": prompt,
            "output": output,
            "final": final,
            "prompt_tokens": count(prompt),
            "output_tokens": count(output),
        }
    return {"question": question, "steps": steps, "answer": answer, "modes": modes}


def parse_values(text: str) -> list[int]:
    """ "4,12,29,8" → [4, 12, 29, 8]; the query string carries a problem's numbers this way."""
    parts = [p.strip() for p in str(text).split(",")]
    if not all(re.fullmatch(r"\d{1,6}", p) for p in parts):
        raise ValueError("values must be whole numbers separated by commas, like 4,12,29,8")
    return [int(p) for p in parts]
