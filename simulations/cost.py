"""P1 Cost of fine-tuning: GPU-hours, money and checkpoint size by model size.

Pure arithmetic, no Django. Training compute is the usual estimate for a dense transformer
(Kaplan et al. 2020, §2.1): about 6 FLOPs per parameter per token (2 forward, 4 backward),

    FLOPs = 6 · N · D                          N parameters, D training tokens
    GPU-hours = FLOPs / (peak FLOP/s · utilisation) / 3600
    cost = GPU-hours · price per GPU-hour
    checkpoint = N · bytes per parameter

The prompting-and-LoRA lecture's GPT-3 pre-training figure ($4.6M) is Lambda Labs' 2020 estimate, which this formula
reproduces with their assumptions: 300B tokens, a V100 sustaining 28 TFLOP/s, $1.50 per GPU-hour.
"""

from dataclasses import dataclass

import numpy as np

from simulations.memory import fmt_count

# (key, label, parameters): the sizes of the prompting-and-LoRA lecture's table, plus GPT-3 6.7B for its "6.7B → 175B".
MODELS = (
    ("gpt2", "GPT-2 (125M)", 125e6),
    ("gpt2-xl", "GPT-2 XL (1.5B)", 1.5e9),
    ("gpt3-6.7b", "GPT-3 6.7B", 6.7e9),
    ("llama-7b", "LLaMA-7B", 7e9),
    ("llama-13b", "LLaMA-13B", 13e9),
    ("llama-65b", "LLaMA-65B", 65e9),
    ("gpt3-175b", "GPT-3 (175B)", 175e9),
)
# The prompting-and-LoRA lecture's table: GPU-hours per fine-tuning run and checkpoint GB, where it gives them.
SEED_TABLE = {
    "gpt2": (0.5, 0.5),
    "gpt2-xl": (8, 6),
    "llama-7b": (40, 28),
    "llama-13b": (80, 52),
    "llama-65b": (400, 260),
    "gpt3-175b": (1200, 700),
}
# Dense 16-bit tensor-core peaks from the vendors' data sheets, FLOP/s.
GPUS = {
    "a100": ("A100 (312 TFLOP/s bf16)", 312e12),
    "h100": ("H100 SXM (989 TFLOP/s bf16)", 989e12),
    "v100": ("V100 (125 TFLOP/s fp16)", 125e12),
}
TASKS_MAX = 20
RUNS_MAX = 20

# Lambda Labs' GPT-3 estimate (the prompting-and-LoRA lecture: "$4.6 million in compute to train").
PRETRAIN = {"params": 175e9, "tokens": 300e9, "flops_per_s": 28e12, "price": 1.50}


def train_flops(params: float, tokens: float) -> float:
    """6·N·D (Kaplan et al. 2020)."""
    return 6.0 * params * tokens


def gpu_hours(params: float, tokens: float, peak: float, utilisation: float) -> float:
    return train_flops(params, tokens) / (peak * utilisation) / 3600.0


def pretrain_cost() -> dict:
    """GPT-3's pre-training under Lambda Labs' assumptions: ≈ $4.7M, the source's ~$4.6M."""
    p = PRETRAIN
    hours = train_flops(p["params"], p["tokens"]) / p["flops_per_s"] / 3600.0
    return {
        "gpu_hours": hours,
        "cost": hours * p["price"],
        "formula": (
            f"6 × {fmt_count(p['params'])} params × {fmt_count(p['tokens'])} tokens = "
            f"{fmt_count(train_flops(p['params'], p['tokens']))} FLOPs; "
            f"÷ {p['flops_per_s'] / 1e12:g} "
            f"TFLOP/s sustained (V100) ÷ 3600 = {hours:,.0f} GPU-hours; × ${p['price']:.2f} = "
            f"${hours * p['price'] / 1e6:.2f}M"
        ),
    }


@dataclass(frozen=True)
class Settings:
    tokens: float = 500e6  # tokens seen in one fine-tuning run
    gpu: str = "a100"
    utilisation: float = 0.4
    price: float = 25 / 8  # the prompting-and-LoRA lecture: $25/hour for an 8×A100 node
    bytes_per_param: int = 2


# The settings' bounds (`validate` holds them; the API's document states them).
TOKENS_RANGE = (1e3, 1e13)
UTILISATION_RANGE = (0.01, 1.0)
PRICE_RANGE = (0.01, 1000.0)  # dollars per GPU-hour


def validate(s: Settings) -> None:
    if not TOKENS_RANGE[0] <= s.tokens <= TOKENS_RANGE[1]:
        raise ValueError(f"tokens must be between {TOKENS_RANGE[0]:g} and {TOKENS_RANGE[1]:g} (got {s.tokens:g})")
    if s.gpu not in GPUS:
        raise ValueError(f"gpu must be one of {', '.join(GPUS)} (got {s.gpu!r})")
    if not UTILISATION_RANGE[0] <= s.utilisation <= UTILISATION_RANGE[1]:
        raise ValueError(
            f"utilisation must be between {UTILISATION_RANGE[0]:g} and {UTILISATION_RANGE[1]:g} (got {s.utilisation:g})"
        )
    if not PRICE_RANGE[0] <= s.price <= PRICE_RANGE[1]:
        raise ValueError(
            f"price must be between {PRICE_RANGE[0]:g} and {PRICE_RANGE[1]:g} dollars per GPU-hour (got {s.price:g})"
        )
    if s.bytes_per_param not in (2, 4):
        raise ValueError(f"bytes_per_param must be 2 (fp16/bf16) or 4 (fp32) (got {s.bytes_per_param})")


def table(s: Settings) -> list[dict]:
    """Per model: one run's GPU-hours, cost and checkpoint, with the formula, the source's figure,
    and totals[t-1][r-1] for t tasks × r tuning runs (cost and GPU-hours), storage[t-1]."""
    validate(s)
    label, peak = GPUS[s.gpu]
    tasks = np.arange(1, TASKS_MAX + 1)[:, None]
    runs = np.arange(1, RUNS_MAX + 1)[None, :]
    rows = []
    for key, name, n in MODELS:
        hours = gpu_hours(n, s.tokens, peak, s.utilisation)
        cost = hours * s.price
        ckpt = n * s.bytes_per_param
        seed = SEED_TABLE.get(key)
        rows.append(
            {
                "key": key,
                "label": name,
                "params": n,
                "flops": train_flops(n, s.tokens),
                "gpu_hours": hours,
                "cost": cost,
                "checkpoint_bytes": ckpt,
                "formula": (
                    f"6 × {fmt_count(n)} params × {fmt_count(s.tokens)} tokens = "
                    f"{fmt_count(train_flops(n, s.tokens))} FLOPs; ÷ ({peak / 1e12:g} TFLOP/s × "
                    f"{s.utilisation:g}) ÷ 3600 = {hours:,.4g} GPU-hours; "
                    f"× ${s.price:.4g} = ${cost:,.0f}"
                ),
                "checkpoint_formula": f"{fmt_count(n)} params × {s.bytes_per_param} bytes = {ckpt / 1e9:,.4g} GB",
                "quoted_gpu_hours": seed[0] if seed else None,
                "quoted_checkpoint_gb": seed[1] if seed else None,
                "total_cost": (cost * tasks * runs).tolist(),
                "total_gpu_hours": (hours * tasks * runs).tolist(),
                "storage_bytes": (ckpt * tasks[:, 0]).tolist(),
            }
        )
    return rows


def jump(rows: list[dict], small: str = "gpt3-6.7b", big: str = "gpt3-175b") -> float:
    by = {r["key"]: r for r in rows}
    return by[big]["gpu_hours"] / by[small]["gpu_hours"]


def source_notes(s: Settings) -> list[dict]:
    """Where the prompting-and-LoRA lecture's cost figures do not follow from its own arithmetic."""
    rows = table(s)
    by = {r["key"]: r for r in rows}
    quoted_jump = SEED_TABLE["gpt3-175b"][0] / SEED_TABLE["llama-7b"][0]
    table_cost = SEED_TABLE["gpt3-175b"][0] * 25 / 8
    return [
        {
            "source": "the prompting-and-LoRA lecture (introduction vs its table)",
            "text": f"Says a full fine-tuning run of GPT-3 costs about $1.2M, and ten tasks $12M; its own "
            f"table says 1,200 GPU-hours at $25 per 8×A100 node-hour, which is "
            f"${table_cost:,.0f}, about {1.2e6 / table_cost:,.0f}× less. The $1.2M does not follow "
            f"from the table; here cost = GPU-hours × price.",
        },
        {
            "source": 'the prompting-and-LoRA lecture ("the jump from 6.7B to 175B is roughly 40×")',
            "text": f"With the same tokens per run, compute grows in proportion to the parameters: "
            f"175 / 6.7 = {jump(rows):.0f}×. The source's own table gives "
            f"{quoted_jump:.0f}× from 7B to 175B. It also calls the growth exponential; at a fixed "
            f"number of tokens it is linear (the log-scale bars make it look steep).",
        },
        {
            "source": "the prompting-and-LoRA lecture (checkpoint sizes)",
            "text": f"The text says 350 GB per GPT-3 checkpoint (2 bytes per parameter; ten tasks → "
            f"{10 * 175e9 * 2 / 1e12:g} TB), the table 700 GB (4 bytes), and LLaMA-7B 28 GB "
            f"(4 bytes). Pick the bytes per parameter to match either.",
        },
        {
            "source": "the prompting-and-LoRA lecture (GPU-hours table)",
            "text": f"The table's GPU-hours grow a little faster than the parameters (4 h per billion "
            f"for GPT-2, 6.9 for GPT-3). At {fmt_count(s.tokens)} tokens per run the formula gives "
            f"{by['gpt3-175b']['gpu_hours']:,.0f} GPU-hours for 175B and "
            f"{by['llama-7b']['gpu_hours']:,.0f} for 7B: no single token budget fits every row.",
        },
    ]
