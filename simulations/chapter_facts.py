"""The figures a chapter's own text quotes, computed from the lab's formulas (never typed into a
template), formatted as the text shows them. Chapter number → {name: text}.

Pure Python: the chapter pages render these; tests/unit/test_chapters.py checks each against the seed
figure it reproduces.
"""

from functools import cache

from simulations import memory, params, quantization

_GPT3 = memory.with_params(memory.PRESETS["gpt3-175b"], 175e9)
_LLAMA7 = memory.with_params(memory.PRESETS["llama-7b"], 7e9)
_LLAMA65 = memory.with_params(memory.PRESETS["llama-65b"], 65e9)


def _state_bytes(model: memory.Model, method: str, settings: memory.Settings) -> float:
    return sum(p.bytes for p in memory.state_parts(model, method, settings))


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _int(n: float) -> str:
    return f"{int(round(n)):,}"


@cache
def facts() -> dict[int, dict[str, str]]:
    # Chapter 1 (the prompting-and-LoRA lecture): fp16 weights and gradients + fp32 Adam moments, no master copy:
    # 350 + 350 + 700 + 700 GB. The LoRA course, chapter 0: a 7B model in fp32 with Adam, 28 + 28 + 56 GB.
    gpt3_mixed = _state_bytes(_GPT3, "full-mixed", memory.Settings(master_weights=False))
    seven_fp32 = _state_bytes(_LLAMA7, "full-fp32", memory.Settings())
    seven_copy = 7e9 * 2
    qv = ("query", "value")
    seven_lora_qv = memory.lora_params(_LLAMA7, 8, qv)
    # Chapter 4 (the prompting-and-LoRA lecture): one adapter, d = 1024, m = 64.
    adapter = params.adapter_weight_params(1024, 64)
    # Chapter 5 (the LoRA course, chapter 3): r = 8 on a 4096×4096 matrix.
    lora_4096 = params.lora_matrix_params(4096, 4096, 8)
    # Chapter 7 (the LoRA course, chapter 6, 003): NF4 with fp32 block constants, and double quantization.
    nf4 = quantization.bits_per_param(memory.BLOCK, double_quant=False)
    nf4_dq = quantization.bits_per_param(memory.BLOCK, double_quant=True)
    qlora_65b = _state_bytes(_LLAMA65, "qlora", memory.Settings(rank=16, targets=qv))
    # Chapter 8 (the prompting-and-LoRA lecture): prefix of 20 tokens in a 32-layer, d = 4096 model; prompt tuning.
    prefix = params.prefix_params(20, 4096, 32)
    prompt = params.prompt_params(20, 4096)
    return {
        1: {
            "gpt3_mixed": memory.fmt_bytes(gpt3_mixed),
            "seven_fp32": memory.fmt_bytes(seven_fp32),
            "seven_copy": memory.fmt_bytes(seven_copy),
            "ten_copies": memory.fmt_bytes(10 * seven_copy),
        },
        4: {"adapter_1024_64": _int(adapter), "adapter_ratio": f"{1024 * 1024 / adapter:g}"},
        5: {"lora_4096_r8": _int(lora_4096), "lora_4096_share": _pct(lora_4096 / 4096**2), "full_4096": _int(4096**2)},
        6: {
            "seven_copy": memory.fmt_bytes(seven_copy),
            "seven_lora_qv": memory.fmt_bytes(seven_lora_qv * 2),
            "hundred_copies": memory.fmt_bytes(100 * seven_copy),
            "hundred_adapters": memory.fmt_bytes(seven_copy + 100 * seven_lora_qv * 2),
        },
        7: {
            "nf4_bits": f"{nf4:.1f}",
            "nf4_dq_bits": f"{nf4_dq:.3f}",
            "qlora_65b": memory.fmt_bytes(qlora_65b),
            "fp16_65b": memory.fmt_bytes(65e9 * 2),
        },
        8: {"prefix_20_32_4096": memory.fmt_count(prefix), "prompt_20_4096": _int(prompt)},
    }


def for_chapter(number: int) -> dict[str, str]:
    return facts().get(number, {})
