"""P22: the formulas to remember, each with a worked example computed here from
simulations.params (never typed), and the source figure it reproduces."""

from simulations import params, quantization

GPT3 = 175e9  # parameters (the prompting-and-LoRA lecture)
BYTES = {"fp32": 4, "fp16": 2}


def _row(quantity: str, formula: str, example: str, value: float, unit: str, source: str) -> dict:
    return {
        "quantity": quantity,
        "formula": formula,
        "example": example,
        "value": value,
        "unit": unit,
        "source": source,
    }


def rows(minilm: params.Dims, num_labels: int = 2) -> list[dict]:
    """The cheat sheet's rows; all-MiniLM-L6-v2's own numbers come from its config. A run's
    trainable count adds its classifier head (d·k + k for k labels) to the LoRA matrices."""
    d, r = 4096, 8
    per_matrix = params.lora_matrix_params(d, d, r)
    qv = [s for t in ("query", "value") for s in minilm.target_shapes(t)]
    minilm_lora = params.lora_model_params(qv, minilm.layers, r)
    head = params.classifier_head_params(minilm.hidden, num_labels)
    adam_mixed = BYTES["fp16"] + BYTES["fp16"] + 2 * BYTES["fp32"]
    return [
        _row(
            "LoRA, one matrix",
            "r·(d_in + d_out) = 2·d·r",
            f"r = {r}, d = {d}",
            per_matrix,
            "parameters",
            "the LoRA course, chapter 3: 65,536",
        ),
        _row(
            "… as a share of the matrix",
            "2r/d",
            f"r = {r}, d = {d}",
            100 * per_matrix / d**2,
            "%",
            "the LoRA course, chapter 9: ~0.4 %",
        ),
        _row(
            "LoRA on all-MiniLM-L6-v2, query + value",
            "2·d·r × 2 matrices × layers",
            f"r = {r}, d = {minilm.hidden}, {minilm.layers} layers: the LoRA matrices alone",
            minilm_lora,
            "parameters",
            "the formula; a run trains these and its classifier head (next row)",
        ),
        _row(
            "… with the classifier head, as a run counts it",
            "2·d·r × 2 × layers + (d·k + k)",
            f"the same, + a head for k = {num_labels} labels: {head:,}",
            minilm_lora + head,
            "parameters",
            f"measured on every lab LoRA run at r = {r} on a {num_labels}-label task: trainable_params",
        ),
        _row("LoRA scale", "update = (α/r)·B·A", "α = 16, r = 8", 16 / 8, "× B·A", "the LoRA course, chapter 4"),
        _row(
            "Bottleneck adapter",
            "2·d·m (+ m + d biases)",
            "m = 64, d = 1024",
            params.adapter_weight_params(1024, 64),
            "weights",
            "the prompting-and-LoRA lecture: 131,072",
        ),
        _row(
            "Prefix tuning",
            "n·2·d·L",
            "n = 20, d = 4096, L = 32",
            params.prefix_params(20, 4096, 32),
            "parameters",
            "the prompting-and-LoRA lecture: 5.2M",
        ),
        _row(
            "Prompt tuning",
            "n·d",
            "n = 20, d = 4096",
            params.prompt_params(20, 4096),
            "parameters",
            "Lester et al. 2021",
        ),
        _row(
            "BitFit on all-MiniLM-L6-v2",
            "every bias of the encoder",
            f"d = {minilm.hidden}",
            params.bitfit_params(minilm),
            "parameters",
            "Ben Zaken et al. 2022",
        ),
        _row(
            "Full fine-tuning, mixed precision Adam",
            "fp16 weights + fp16 grads + fp32 m + fp32 v",
            "GPT-3, 175B parameters",
            GPT3 * adam_mixed / 1e12,
            "TB (before activations)",
            "the prompting-and-LoRA lecture: 350 + 350 + 700 + 700 GB ≈ 2.1 TB",
        ),
        _row(
            "… the same with fp32 master weights",
            "+ 4 bytes per parameter",
            "GPT-3, 175B parameters",
            GPT3 * (adam_mixed + BYTES["fp32"]) / 1e12,
            "TB",
            "the 16-bytes convention of most calculators",
        ),
        _row(
            "QLoRA base",
            "4 + 8/64 + 32/(64·256) bits",
            "NF4 + double quantisation",
            quantization.bits_per_param(64, double_quant=True),
            "bits per parameter",
            "the LoRA course, chapter 6, and the PEFT derivations post: ~0.127 bits of constants",
        ),
    ]
