"""P19 Method spectrum: what the sources report about cost against accuracy, beside the arithmetic.

The scores are data, not the lab's measurements: the PEFT derivations post describes its GLUE chart (RoBERTa-base)
in prose only, as gaps to full fine-tuning or to LoRA, and the prompting-and-LoRA lecture tabulates LoRA's quality by
rank and each method's trainable share. Each row keeps the source's own words (the tests find them in
the seed file) and the line they stand on. Trainable counts are computed with simulations/params.py
for the settings the source names; where the sources disagree with each other or with the count, the
notes say so with the computed value.

No Django imports: peftlab/playgrounds/family.py serialises what this returns.
"""

from dataclasses import dataclass, field

from simulations import sources
from simulations.adapter_block import BERT_BASE, BERT_LARGE
from simulations.family import BY_KEY, ROBERTA_BASE, count, encoder_total
from simulations.lora import GPT3_175B, TARGET_SETS
from simulations.params import Dims, adapter_weight_params, lora_matrix_params


@dataclass(frozen=True)
class Reported:
    """One method in the PEFT derivations post's GLUE comparison. `gap` is GLUE points behind `relative_to`
    (positive = worse) as a (low, high) range, None where the source gives no figure."""

    method: str
    settings: dict
    gap: tuple[float, float] | None
    relative_to: str
    quotes: tuple[tuple[int, str], ...]  # (line in the PEFT derivations post, the source's words)
    setting_note: str = ""
    extra: dict = field(default_factory=dict)


GLUE_SOURCE = "the PEFT derivations post (“Method Comparison: GLUE in One Picture”, RoBERTa-base)"
GLUE_ROBERTA_BASE = (
    Reported(
        "full",
        {},
        (0.0, 0.0),
        "full",
        ((90, "essentially ties full fine-tuning"),),
        "every weight: the reference the gaps are measured from",
    ),
    Reported(
        "lora",
        {"rank": 8, "variant": "QV"},
        (-0.1, 0.1),
        "full",
        (
            (90, "LoRA $r=8$ at 0.24% trainable parameters essentially ties full fine-tuning (within 0.1 points)"),
            (44, "attaching LoRA to the query and value projections"),
        ),
        "r = 8 on the query and value projections",
        {"quoted_share_pct": 0.24},
    ),
    # The source gives the adapter's size only as a ratio to LoRA's; the m at which two Houlsby
    # adapters per layer reach it is computed by `implied_bottleneck`.
    Reported(
        "adapter",
        {"ratio_to_lora": 4},
        (0.0, 0.0),
        "lora",
        ((91, "Adapter matches LoRA’s quality but at ~4x the trainable parameter count"),),
        "size given only as “~4x” LoRA's count",
    ),
    Reported(
        "prefix",
        {"virtual_tokens": 20},
        (0.5, 1.0),
        "lora",
        (
            (65, "a 20-token prefix can only carry so much, so on hard tasks Prefix-Tuning lags LoRA by 0.5-1 point"),
            (92, "Prefix-Tuning trades a small accuracy drop for very low parameter count"),
        ),
        "n = 20, the prefix length the source uses",
    ),
    Reported(
        "prompt",
        {"virtual_tokens": 20},
        (3.0, 4.0),
        "full",
        ((93, "on smaller models it leaves 3-4 points on the table"),),
        "n = 20 (the source names no length for prompt tuning; the lab uses its prefix length)",
    ),
    Reported(
        "bitfit",
        {},
        None,
        "lora",
        (
            (94, "BitFit is a remarkable baseline given how trivial it is"),
            (73, "as a serious method it underperforms LoRA by a small margin"),
            (73, "around 0.08% of parameters for BERT"),
        ),
        "every bias",
        {"quoted_share_pct": 0.08},
    ),
)
GLUE_BY_METHOD = {row.method: row for row in GLUE_ROBERTA_BASE}

# The table the post's GLUE comparison goes back to: Hu et al. 2021 (LoRA), Table 2, RoBERTa-base,
# GLUE dev scores per task (the same figures print in the LoRA repository's README). Full
# fine-tuning's row is Liu et al. 2019's, as Hu et al. quote it; LoRA's is r = 8 on Q and V.
TABLE2_SOURCE = "Hu et al. 2021 (LoRA), Table 2, RoBERTa-base"
GLUE_TASKS = ("MNLI", "SST-2", "MRPC", "CoLA", "QNLI", "QQP", "RTE", "STS-B")
TABLE2_ROBERTA_BASE = {
    "full": {"scores": (87.6, 94.8, 90.2, 63.6, 92.8, 91.9, 78.7, 91.2), "printed_average": 86.4},
    "lora": {"scores": (87.5, 95.1, 89.7, 63.4, 93.3, 90.8, 86.6, 91.5), "printed_average": 87.2},
}
# The post's other rows this lab has not matched to a figure of that table: the page says so.
TABLE2_UNCONFIRMED = ("adapter", "prefix", "prompt", "bitfit")


def glue_mean(method: str) -> float:
    """The mean of a Table 2 row's eight GLUE scores."""
    scores = TABLE2_ROBERTA_BASE[method]["scores"]
    return sum(scores) / len(scores)


def table2_gap(method: str) -> float:
    """GLUE points behind full fine-tuning in Table 2 (positive = worse, as the chart's gaps)."""
    return glue_mean("full") - glue_mean(method)


def table2_figures(method: str) -> dict | None:
    """A method's Table 2 figures for the page, or None where the lab has none."""
    if method not in TABLE2_ROBERTA_BASE:
        return None
    row = TABLE2_ROBERTA_BASE[method]
    return {
        "source": TABLE2_SOURCE,
        "tasks": list(GLUE_TASKS),
        "scores": list(row["scores"]),
        "mean": round(glue_mean(method), 2),
        "printed_average": row["printed_average"],
        "gap": round(table2_gap(method), 2),
    }


def implied_bottleneck(ratio: float, lora_count: int, dims: Dims) -> int:
    """The bottleneck m at which two adapters per layer (2·d·m weights each) train `ratio` times
    `lora_count`: the setting behind a size quoted only as a multiple of LoRA's."""
    per_unit_m = 2 * dims.layers * adapter_weight_params(dims.hidden, 1)
    return round(ratio * lora_count / per_unit_m)


def glue_settings(row: Reported, dims: Dims = ROBERTA_BASE) -> tuple[str | None, int | None]:
    """(target set, knob value) that a GLUE row stands for, for simulations.family.count."""
    method = BY_KEY[row.method]
    if row.method == "adapter":
        lora = GLUE_BY_METHOD["lora"].settings
        m = implied_bottleneck(row.settings["ratio_to_lora"], count("lora", dims, lora["variant"], lora["rank"]), dims)
        return None, m
    variant = row.settings.get("variant")
    value = row.settings.get(method.knob.param) if method.knob else None
    return variant, value


def gap_to_full(row: Reported) -> tuple[float, float] | None:
    """The reported gap restated against full fine-tuning: a gap to LoRA adds LoRA's own range."""
    if row.gap is None:
        return None
    if row.relative_to == "full":
        return row.gap
    lora_lo, lora_hi = GLUE_BY_METHOD["lora"].gap
    return (round(row.gap[0] + lora_lo, 6), round(row.gap[1] + lora_hi, 6))


def glue_points(dims: Dims = ROBERTA_BASE) -> list[dict]:
    """Each method of the PEFT derivations post's GLUE chart: its computed count and share on RoBERTa-base at the
    seed's settings, and the reported gap to full fine-tuning (None where the seed has no figure)."""
    total = encoder_total(dims)
    lora_count = count("lora", dims, "QV", 8)
    points = []
    for row in GLUE_ROBERTA_BASE:
        variant, value = glue_settings(row, dims)
        n = count(row.method, dims, variant, value)
        gap = gap_to_full(row)
        points.append(
            {
                "method": row.method,
                "label": BY_KEY[row.method].label,
                "variant": variant,
                "value": value,
                "setting": row.setting_note,
                "trainable": n,
                "share": n / total,
                "ratio_to_lora": n / lora_count,
                "gap": list(gap) if gap else None,
                "gap_mid": (gap[0] + gap[1]) / 2 if gap else None,
                "reported_gap": list(row.gap) if row.gap else None,
                "relative_to": row.relative_to,
                "quotes": [{"line": line, "text": text} for line, text in row.quotes],
                "gap_source": GLUE_SOURCE,
                "table2": table2_figures(row.method),
                "table2_unconfirmed": row.method in TABLE2_UNCONFIRMED,
            }
        )
    return points


# --- The prompting-and-LoRA lecture: LoRA's quality by rank on GPT-3 ---------------------------------------------------

# The prompting-and-LoRA lecture, lines 197-201, "Rank | Trainable Params (per matrix) | Quality vs Full FT": r → (the
# quoted count, quality low %, quality high %, the quoted quality). "99%+" is read as 99-100 and
# "~100%" as 100.
RANK_QUALITY_GPT3 = (
    (1, "24K", 90, 95, "90-95%"),
    (4, "98K", 95, 98, "95-98%"),
    (8, "197K", 98, 99, "98-99%"),
    (16, "393K", 99, 100, "99%+"),
    (64, "1.6M", 100, 100, "~100%"),
)
RANK_QUALITY_SOURCE = "the prompting-and-LoRA lecture (rank table, “Quality vs Full FT”, LoRA on GPT-3)"


def rank_quality(hidden: int = GPT3_175B.hidden) -> list[dict]:
    """The prompting-and-LoRA lecture's rank table with the per-matrix count 2·d·r and share 2r/d computed at GPT-3's d."""
    rows = []
    for rank, quoted, lo, hi, quoted_quality in RANK_QUALITY_GPT3:
        n = lora_matrix_params(hidden, hidden, rank)
        rows.append(
            {
                "rank": rank,
                "per_matrix": n,
                "share": n / (hidden * hidden),
                "quoted_count": quoted,
                "quality": [lo, hi],
                "quoted_quality": quoted_quality,
            }
        )
    return rows


# --- The sources' trainable-share tables -----------------------------------------------------------


@dataclass(frozen=True)
class QuotedShare:
    """A trainable share as a source's table quotes it: a range (lo-hi %), "about" x %, or "below" x %.
    `document` is the source's key in simulations.sources, `part` the table or passage quoted."""

    document: str
    part: str
    line: int
    method: str
    kind: str
    low: float | None
    high: float
    quote: str

    @property
    def source(self) -> str:
        """The source as a page names it: "the PEFT derivations post's table"."""
        return f"{sources.DOCUMENTS[self.document]}'s {self.part}"

    @property
    def short(self) -> str:
        """A chart row's short name: "post, table"."""
        return f"{SHORT_NAMES[self.document]}, {self.part}"


SHORT_NAMES = {"000": "lecture", "004": "post"}

SHARE_TABLES = (
    QuotedShare("004", "table", 23, "lora", "range", 0.1, 1, "| LoRA | 0.1 - 1% |"),
    QuotedShare("004", "table", 24, "adapter", "range", 0.5, 2, "| Adapter | 0.5 - 2% |"),
    QuotedShare("004", "table", 25, "prefix", "about", 0.1, 0.1, "| Prefix-Tuning | ~0.1% |"),
    QuotedShare("004", "table", 26, "prompt", "below", None, 0.01, "| Prompt-Tuning | <0.01% |"),
    QuotedShare("004", "table", 27, "bitfit", "about", 0.1, 0.1, "| BitFit | ~0.1% |"),
    QuotedShare("000", "table", 282, "prompt", "about", 0.01, 0.01, "| Prompt tuning | ~0.01% |"),
    QuotedShare("000", "table", 283, "adapter", "range", 2, 4, "| Adapter | ~2-4% |"),
    QuotedShare("000", "table", 284, "lora", "about", 0.1, 0.1, "| LoRA | ~0.1% |"),
    QuotedShare(
        "000",
        "timeline",
        273,
        "adapter",
        "about",
        3.6,
        3.6,
        "3.6% params, matched full FT on GLUE",
    ),
)

# The prompting-and-LoRA lecture, lines 216-219: the four-method table for GPT-3 175B, "Trainable Params" column.
GPT3_TABLE = {"adapter": (6.3e6, "6.3M (0.004%)"), "lora": (4.7e6, "4.7M (0.003%)"), "prompt": (77e3, "77K (0.00004%)")}
ADAPTER_M_SEED = 64  # the prompting-and-LoRA lecture: "m = 64 was sufficient", the adapter setting it counts with


def smallest_value_reaching(method_key: str, share_pct: float, dims: Dims) -> int:
    """The smallest knob value (r, m or n, any integer) at which the method's default setting
    reaches share_pct % of the model: counts are linear in the knob, so this is a division."""
    base = count(method_key, dims, None, 0)  # an adapter's d bias of W_up is there at m = 0
    per_unit = count(method_key, dims, None, 1) - base
    return int(-(-(share_pct / 100 * encoder_total(dims) - base) // per_unit))


def largest_value_below(method_key: str, share_pct: float, dims: Dims) -> int:
    """The largest n at which prompt or prefix tuning stays under share_pct %."""
    per_token = count(method_key, dims, None, 1)
    return int(share_pct / 100 * encoder_total(dims) // per_token)


def gpt3_table_rows() -> list[dict]:
    """The prompting-and-LoRA lecture's GPT-3 counts beside the formula at GPT-3's own d = 12,288 and 96 layers."""
    d, layers = GPT3_175B.hidden, GPT3_175B.layers
    formula = {
        "lora": GPT3_175B.lora_params(TARGET_SETS["QKVO"], 8),
        "adapter": 2 * layers * adapter_weight_params(d, ADAPTER_M_SEED),
        "prompt": None,
    }
    bert_large = 2 * BERT_LARGE.layers * adapter_weight_params(BERT_LARGE.hidden, ADAPTER_M_SEED)
    rows = []
    for method, (quoted, text) in GPT3_TABLE.items():
        rows.append(
            {
                "method": method,
                "label": BY_KEY[method].label,
                "quoted": text,
                "quoted_count": quoted,
                "quoted_share": quoted / GPT3_175B.total_params,
                "formula": formula[method],
                "tokens_at_gpt3_width": quoted / d if method == "prompt" else None,
                "bert_large_formula": bert_large if method == "adapter" else None,
            }
        )
    return rows


def _pct(x: float) -> str:
    return f"{100 * x:.3g}%"


def discrepancies(dims: Dims = ROBERTA_BASE) -> list[dict]:
    """Where the sources disagree with each other or with the counts, in sentences with the
    computed values."""
    total = encoder_total(dims)
    share = {p["method"]: p for p in glue_points(dims)}
    lora, prefix, prompt = share["lora"], share["prefix"], share["prompt"]
    adapter_m = share["adapter"]["value"]
    bitfit_share = {
        name: count("bitfit", dd) / encoder_total(dd)
        for name, dd in (("BERT-base", BERT_BASE), ("BERT-large", BERT_LARGE), ("RoBERTa-base", dims))
    }
    m_lo = smallest_value_reaching("adapter", 2, dims)
    m_hi = smallest_value_reaching("adapter", 4, dims)
    gpt3 = {r["method"]: r for r in gpt3_table_rows()}
    full2, lora2 = table2_figures("full"), table2_figures("lora")
    notes = [
        {
            "topic": "glue_table",
            "text": (
                "The PEFT derivations post says LoRA r = 8 “essentially ties full fine-tuning (within 0.1 points)”. In "
                f"{TABLE2_SOURCE}, the mean of the eight GLUE tasks is {lora2['mean']:.2f} for LoRA and "
                f"{full2['mean']:.2f} for full fine-tuning (printed {lora2['printed_average']} and "
                f"{full2['printed_average']}): LoRA is {-lora2['gap']:.2f} points ahead, not level. The post's gaps for "
                f"adapters, prefix tuning, prompt tuning and BitFit are its own words; this lab has not "
                "matched them to a figure of that table."
            ),
        },
        {
            "topic": "lora",
            "text": (
                f"Agrees: LoRA r = 8 on Q and V trains {lora['trainable']:,} of RoBERTa-base's "
                f"{total:,} parameters, {_pct(lora['share'])}; the PEFT derivations post says 0.24%."
            ),
        },
        {
            "topic": "prefix",
            "text": (
                f"The PEFT derivations post's table gives prefix tuning ~0.1% and its GLUE text a “very low parameter "
                f"count”, but its own 20-token prefix trains n·2·d·L = {prefix['trainable']:,} "
                f"parameters on RoBERTa-base ({_pct(prefix['share'])}), more than LoRA r = 8 "
                f"({lora['trainable']:,}). ~0.1% is about "
                f"{smallest_value_reaching('prefix', 0.1, dims)} tokens."
            ),
        },
        {
            "topic": "prompt",
            "text": (
                f"The PEFT derivations post's table says prompt tuning trains <0.01%, the prompting-and-LoRA lecture's ~0.01%. On RoBERTa-base "
                f"n·d stays under 0.01% up to n = {largest_value_below('prompt', 0.01, dims)} tokens; "
                f"20 tokens give {prompt['trainable']:,} ({_pct(prompt['share'])})."
            ),
        },
        {
            "topic": "adapter",
            "text": (
                f"The two tables disagree on adapters: the PEFT derivations post 0.5-2%, the prompting-and-LoRA lecture ~2-4% (and 3.6% in its "
                f"timeline). On RoBERTa-base two Houlsby adapters per layer reach 2% at m = {m_lo} and "
                f"4% at m = {m_hi}; the PEFT derivations post's “~4x LoRA” is m = {adapter_m} "
                f"({share['adapter']['trainable']:,}, {_pct(share['adapter']['share'])}, "
                f"{share['adapter']['ratio_to_lora']:.2f}× LoRA with the biases)."
            ),
        },
        {
            "topic": "bitfit",
            "text": (
                "The PEFT derivations post puts BitFit at “around 0.08% of parameters for BERT” and ~0.1% in its table; "
                "counting every bias gives "
                + ", ".join(f"{k} {_pct(v)}" for k, v in bitfit_share.items())
                + ". The 0.08% fits BERT-large."
            ),
        },
        {
            "topic": "gpt3",
            "text": (
                f"The prompting-and-LoRA lecture's GPT-3 table: LoRA r = 8 “4.7M”, but Q, K, V and O in {GPT3_175B.layers} layers at d = {GPT3_175B.hidden:,} "
                f"give {gpt3['lora']['formula']:,}; adapters “6.3M” is BERT-large's count (two adapters of "
                f"m = {ADAPTER_M_SEED} in {BERT_LARGE.layers} layers: {gpt3['adapter']['bert_large_formula']:,}); at GPT-3's width and depth they are {gpt3['adapter']['formula']:,}; "
                f"prompt tuning “77K” is {gpt3['prompt']['tokens_at_gpt3_width']:.1f} vectors of width "
                f"12,288, not a whole number of tokens. The percentages follow from the quoted counts."
            ),
        },
    ]
    return notes
