"""P2 Memory calculator: the GPU memory that training a transformer takes, component by component.

Pure arithmetic, no Django: the API serialises what these functions return. GB here is 10⁹ bytes,
as the source documents use it.

Per trainable parameter, training with Adam holds (Rajbhandari et al. 2020, "ZeRO", §3.1):

    weights           4 bytes in fp32, 2 in fp16/bf16
    gradients         the same width as the weights
    fp32 master copy  4 bytes, only under mixed precision, and only if the recipe keeps one
    Adam m and v      4 + 4 bytes in fp32; 1 + 1 with 8-bit Adam (Dettmers et al. 2022)

so plain fp32 is 16 bytes/param, mixed precision 16 with the master copy and 12 without it: the
"more than 2×" by which calculators disagree comes from such silent choices, so they are settings.

Frozen parameters (LoRA's base) hold only their weights. QLoRA (Dettmers et al. 2023) stores the
frozen linear weights as 4-bit NF4 in blocks of 64, each block with an absmax constant:

    one fp32 constant per 64 weights                          32/64 = 0.5 bits/param
    double quantization: 8-bit constants per 64 weights,
      plus one fp32 second-level constant per 256 blocks      8/64 + 32/(64·256) ≈ 0.127 bits/param

Activations (the tensors the backward pass needs) follow Korthikanti et al. 2022, "Reducing
Activation Recomputation in Large Transformer Models", §4.1: per layer, 16-bit activations and
a 4h FFN, s·b·h·(34 + 5·a·s/h) bytes. Written out by tensor, with FFN width f and activation
width B bytes (1-byte dropout masks), that is

    B·(8·s·b·h + 2·s·b·f) + 2·s·b·h + (2·B + 1)·a·s²·b

which is 34·s·b·h + 5·a·s²·b for B = 2, f = 4h. Flash attention (Dao et al. 2022) never stores
the s×s scores, so the last term goes. Full gradient checkpointing keeps only each layer's input
(B·s·b·h) and recomputes one layer at a time during the backward pass. A gated FFN (LLaMA's
SwiGLU) stores two more f-wide tensors (our extension: 4·s·b·f instead of 2). A language model
adds its logits, kept in fp32 for the loss: 4·s·b·V.
"""

import math
from dataclasses import dataclass, replace

import numpy as np

from simulations import quantization
from simulations.methods import BATCH_SIZE
from simulations.methods import METHODS as LAB_REGISTRY
from simulations.params import (
    Dims,
    bert_encoder_params,
    classifier_head_params,
    lora_matrix_params,
    trainable_params,
)

GB = 1e9
GPU_LINES = (("24 GB (RTX 4090)", 24e9), ("48 GB (RTX A6000)", 48e9), ("80 GB (A100 / H100)", 80e9))

# Each architecture's name (short enough for a select on a phone) and what sets it apart.
ARCHS = {
    "encoder": "BERT-style encoder",
    "gpt": "GPT-style decoder",
    "llama": "LLaMA-style decoder",
}
ARCH_DETAILS = {
    "encoder": "GELU FFN, two matrices",
    "gpt": "GELU FFN, tied embeddings",
    "llama": "gated SwiGLU FFN, three matrices, untied output",
}
TARGETS = ("query", "key", "value", "output", "ffn")
OPTIMIZERS = {
    "adam32": ("AdamW, fp32 m and v", 4.0, False),
    "adam8": ("8-bit AdamW", 1.0, False),
    "paged32": ("paged AdamW, fp32 m and v", 4.0, True),
    "paged8": ("paged 8-bit AdamW", 1.0, True),
}
QUANTS = {"nf4": "NF4, fp32 constants per 64 weights", "nf4-dq": "NF4 + double quantization"}
NF4_BITS = 4
BLOCK = 64  # QLoRA's first-level block

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SEQS = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
TASKS_MAX = 100


@dataclass(frozen=True)
class Model:
    """A transformer by its config. `params`, when given, overrides the count from the config
    (the "by parameter count" mode); the config still sizes activations and LoRA matrices."""

    name: str
    arch: str
    layers: int
    hidden: int
    heads: int
    vocab: int
    ffn: int
    kv_heads: int | None = None  # grouped-query attention; None means kv_heads = heads
    params: int | None = None
    pooler: bool = True  # an encoder's pooler (the lab's classifier has none: workers/head.py)

    @property
    def kv_dim(self) -> int:
        return self.hidden * (self.kv_heads or self.heads) // self.heads

    def linear_shapes(self) -> dict[str, list[tuple[int, int]]]:
        """(d_in, d_out) of each linear weight of one layer, by LoRA target module."""
        h, f, kv = self.hidden, self.ffn, self.kv_dim
        ffn = [(h, f), (h, f), (f, h)] if self.arch == "llama" else [(h, f), (f, h)]
        return {"query": [(h, h)], "key": [(h, kv)], "value": [(h, kv)], "output": [(h, h)], "ffn": ffn}

    def linear_params(self) -> int:
        """Weights of the layers' linear maps: what QLoRA quantizes."""
        return self.layers * sum(i * o for shapes in self.linear_shapes().values() for i, o in shapes)

    def config_params(self) -> int:
        """The parameter count from the config, biases and norms included."""
        h, L, V = self.hidden, self.layers, self.vocab
        if self.arch == "encoder":
            return bert_encoder_params(V, 512, 2, h, self.ffn, L, self.pooler)
        if self.arch == "gpt":
            # Tied input/output embedding, 2048 learned positions, biases on every linear map.
            per_layer = 4 * (h * h + h) + 2 * h * self.ffn + self.ffn + h + 4 * h
            return V * h + 2048 * h + L * per_layer + 2 * h
        # LLaMA: no biases, RMSNorm (h each), separate input embedding and output head.
        return 2 * V * h + self.linear_params() + L * 2 * h + h

    def total_params(self) -> int:
        return self.params if self.params is not None else self.config_params()


# GPT-3 from Brown et al. 2020, Table 2.1; LLaMA from Touvron et al. 2023; BERT from Devlin et al.
PRESETS = {
    "bert-base": Model("BERT-base", "encoder", 12, 768, 12, 30522, 3072),
    "llama-7b": Model("LLaMA-like 7B", "llama", 32, 4096, 32, 32000, 11008),
    "llama-13b": Model("LLaMA-like 13B", "llama", 40, 5120, 40, 32000, 13824),
    "llama-65b": Model("LLaMA-like 65B", "llama", 80, 8192, 64, 32000, 22016),
    "llama-70b": Model("LLaMA-2-like 70B (8 KV heads)", "llama", 80, 8192, 64, 32000, 28672, kv_heads=8),
    "gpt3-175b": Model("GPT-3 175B", "gpt", 96, 12288, 96, 50257, 4 * 12288),
}


@dataclass(frozen=True)
class Settings:
    """The conventions a user picks. `precision` applies to full fine-tuning's mixed bar and to
    the LoRA/QLoRA adapters and frozen 16-bit parts; the fp32 bar is fp32 throughout."""

    master_weights: bool = True
    optimizer: str = "adam32"
    quant: str = "nf4-dq"
    checkpointing: bool = False
    flash: bool = False
    rank: int = 16
    targets: tuple[str, ...] = ("query", "value")
    lm_logits: bool = True


def quant_constant_bits(double: bool) -> float:
    """Bits per weight spent on the block constants (Dettmers et al. 2023, §3): 32/64 = 0.5, or
    under double quantization 8/64 + 32/(64·256) ≈ 0.127 (simulations.quantization)."""
    return quantization.scale_overhead_bits(BLOCK, double_quant=double)


def lora_params(model: Model, rank: int, targets) -> int:
    """Σ r·(d_in + d_out) over the targeted matrices of a layer, × layers (Hu et al. 2021)."""
    shapes = model.linear_shapes()
    return model.layers * sum(lora_matrix_params(i, o, rank) for t in targets for i, o in shapes[t])


def fmt_count(n: float) -> str:
    """7.0e9 for big counts, 124,416 for small ones."""
    if n >= 1e6:
        exp = int(np.floor(np.log10(n)))
        return f"{n / 10**exp:.2f}e{exp}"
    return f"{int(round(n)):,}"


def fmt_bytes(b: float) -> str:
    if b >= 1e12:
        return f"{b / 1e12:.2f} TB"
    if b >= 1e9:
        return f"{b / 1e9:.1f} GB"
    if b >= 1e6:
        return f"{b / 1e6:.1f} MB"
    return f"{b / 1e3:.1f} kB"


def _g(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Part:
    """One component of the memory: its name, bytes and the formula with the numbers in."""

    key: str
    label: str
    bytes: float
    formula: str


def _per_param(key, label, n, width, what="params") -> Part:
    b = n * width
    return Part(key, label, b, f"{fmt_count(n)} {what} × {_g(width)} bytes = {fmt_bytes(b)}")


def state_parts(model: Model, method: str, s: Settings) -> list[Part]:
    """Weights, gradients, master copy and optimizer state for one method.

    method: "full-fp32", "full-mixed", "lora", "qlora".
    """
    if s.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {s.optimizer!r})")
    total = model.total_params()
    fp32 = method == "full-fp32"
    width = 4 if fp32 else 2
    opt_label, moment_bytes, paged = OPTIMIZERS[s.optimizer]
    parts: list[Part] = []
    if method.startswith("full"):
        trainable = total
        parts.append(_per_param("weights", f"weights ({'fp32' if fp32 else '16-bit'})", total, width))
    else:
        trainable = lora_params(model, s.rank, s.targets)
        if method == "lora":
            parts.append(_per_param("weights", "frozen base (16-bit)", total, 2))
        else:
            # Only the layers' linear weights are quantized; embeddings, norms, biases stay 16-bit.
            quantized = min(model.linear_params(), total)
            rest = total - quantized
            bits = quant_constant_bits(s.quant == "nf4-dq")
            parts.append(
                Part(
                    "weights",
                    "frozen base, NF4 (4 bits)",
                    quantized * NF4_BITS / 8,
                    f"{fmt_count(quantized)} linear weights × 4 bits ÷ 8 = {fmt_bytes(quantized * NF4_BITS / 8)}",
                )
            )
            how = "8/64 + 32/(64·256)" if s.quant == "nf4-dq" else "32/64"
            parts.append(
                Part(
                    "quant_constants",
                    "quantization constants",
                    quantized * bits / 8,
                    f"{fmt_count(quantized)} weights × ({how} = {bits:.3f} bits) ÷ 8 = "
                    f"{fmt_bytes(quantized * bits / 8)}",
                )
            )
            parts.append(_per_param("unquantized", "embeddings, norms, biases (16-bit)", rest, 2))
        parts.append(_per_param("adapter", f"LoRA A and B (r = {s.rank}, 16-bit)", trainable, 2))
    parts.append(_per_param("gradients", "gradients", trainable, width, "trainable params"))
    if not fp32 and s.master_weights:
        parts.append(_per_param("master", "fp32 master weights", trainable, 4, "trainable params"))
    for moment in ("m", "v"):
        label = f"Adam {moment} ({opt_label}{', may page to CPU' if paged else ''})"
        parts.append(_per_param(f"adam_{moment}", label, trainable, moment_bytes, "trainable params"))
    return parts


def activation_bytes(
    model: Model, batch: int, seq: int, width: int, s: Settings, lora_rank: int = 0, lora_matrices: int = 0
) -> tuple[float, str]:
    """Bytes of activations kept for the backward pass, and the formula with the numbers in.

    See the module docstring (Korthikanti et al. 2022, §4.1). lora_matrices is the number of
    adapted matrices per layer: each keeps its r-wide A·x (B·s·b·r bytes).
    """
    b, sq, h, f, a, L = batch, seq, model.hidden, model.ffn, model.heads, model.layers
    ffn_tensors = 4 if model.arch == "llama" else 2
    linear = width * (8 * sq * b * h + ffn_tensors * sq * b * f) + 2 * sq * b * h
    scores = 0 if s.flash else (2 * width + 1) * a * sq * sq * b
    lora = width * sq * b * lora_rank * lora_matrices
    layer = linear + scores + lora
    term = (
        f"{width}·({8}·s·b·h + {ffn_tensors}·s·b·f) + 2·s·b·h"
        + ("" if s.flash else f" + {2 * width + 1}·a·s²·b")
        + (f" + {width}·s·b·r·{lora_matrices}" if lora_matrices else "")
    )
    if s.checkpointing:
        total = L * width * sq * b * h + layer
        text = f"{L} layers × {width}·s·b·h + one recomputed layer [{term}]"
    else:
        total = L * layer
        text = f"{L} layers × [{term}]"
    logits = 4 * sq * b * model.vocab if (s.lm_logits and model.arch != "encoder") else 0
    if logits:
        text += " + 4·s·b·V logits"
    values = f"b = {b}, s = {sq}, h = {h}, f = {f}" + ("" if s.flash else f", a = {a}")
    if lora_matrices:
        values += f", r = {lora_rank}"
    if logits:
        values += f", V = {model.vocab}"
    total += logits
    return float(total), f"{text}, with {values} = {fmt_bytes(total)}"


def method_width(method: str) -> int:
    return 4 if method == "full-fp32" else 2


def lora_matrices_per_layer(model: Model, method: str, s: Settings) -> int:
    if method not in ("lora", "qlora"):
        return 0
    shapes = model.linear_shapes()
    return sum(len(shapes[t]) for t in s.targets)


METHODS = {
    "full-fp32": "Full FT, fp32",
    "full-mixed": "Full FT, mixed precision",
    "lora": "LoRA (16-bit base)",
    "qlora": "QLoRA (NF4 base)",
}


# What a custom model may be (the bounds `validate` holds it to; the API's document states them).
CUSTOM_BOUNDS = {
    "layers": (1, 200),
    "hidden": (8, 65536),
    "heads": (1, 1024),
    "vocab": (2, 1_000_000),
    "ffn": (8, 262144),
}
PARAMS_MIN, PARAMS_MAX = 1e5, 1e13  # a parameter count given instead of a config
LAB_BATCH_MAX = int(BATCH_SIZE.maximum)  # the registry's batch-size bound


def validate(model: Model, s: Settings) -> None:
    """Raise ValueError with a message a person can act on."""
    if model.arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)} (got {model.arch!r})")
    for name, (lo, hi) in CUSTOM_BOUNDS.items():
        v = getattr(model, name)
        if not lo <= v <= hi:
            raise ValueError(f"{name} must be between {lo} and {hi} (got {v})")
    if model.hidden % model.heads:
        raise ValueError(f"hidden ({model.hidden}) must be a multiple of heads ({model.heads})")
    if model.params is not None and not PARAMS_MIN <= model.params <= PARAMS_MAX:
        raise ValueError(f"params must be between {PARAMS_MIN:g} and {PARAMS_MAX:g} (got {model.params:g})")
    if s.quant not in QUANTS:
        raise ValueError(f"quant must be one of {', '.join(QUANTS)} (got {s.quant!r})")
    if s.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {s.optimizer!r})")
    if not s.targets or any(t not in TARGETS for t in s.targets):
        raise ValueError(f"targets must be one or more of {', '.join(TARGETS)} (got {list(s.targets)})")
    smallest = min(min(shape) for t in s.targets for shape in model.linear_shapes()[t])
    if not 1 <= s.rank <= smallest:
        raise ValueError(
            f"rank must be between 1 and {smallest}, the smaller side of the targeted matrices (got {s.rank})"
        )


@dataclass(frozen=True)
class Estimate:
    """Every method's fixed parts, and its activations on the BATCHES × SEQS grid."""

    parts: dict[str, list[Part]]
    activations: dict[str, np.ndarray]  # (len(BATCHES), len(SEQS)) bytes
    activation_formulas: dict[str, list[list[str]]]
    trainable: dict[str, int]
    total_params: int


def estimate(model: Model, s: Settings) -> Estimate:
    validate(model, s)
    parts, acts, formulas, trainable = {}, {}, {}, {}
    for method in METHODS:
        parts[method] = state_parts(model, method, s)
        trainable[method] = model.total_params() if method.startswith("full") else lora_params(model, s.rank, s.targets)
        m = lora_matrices_per_layer(model, method, s)
        grid = np.zeros((len(BATCHES), len(SEQS)))
        texts = []
        for i, b in enumerate(BATCHES):
            row = []
            for j, sq in enumerate(SEQS):
                grid[i, j], text = activation_bytes(model, b, sq, method_width(method), s, s.rank, m)
                row.append(text)
            texts.append(row)
        acts[method], formulas[method] = grid, texts
    return Estimate(parts, acts, formulas, trainable, model.total_params())


def storage(model: Model, s: Settings, tasks_max: int = TASKS_MAX) -> dict:
    """Disk for n = 1 … tasks_max tasks: n full 16-bit copies against one base + n adapters."""
    n = np.arange(1, tasks_max + 1)
    copy = model.total_params() * 2
    adapter = lora_params(model, s.rank, s.targets) * 2
    return {
        "tasks": n.tolist(),
        "copy_bytes": copy,
        "adapter_bytes": adapter,
        "full_copies": (n * copy).tolist(),
        "base_plus_adapters": (copy + n * adapter).tolist(),
        "copy_formula": (f"{fmt_count(model.total_params())} params × 2 bytes = {fmt_bytes(copy)} per copy"),
        "adapter_formula": (
            f"{fmt_count(lora_params(model, s.rank, s.targets))} LoRA params × "
            f"2 bytes = {fmt_bytes(adapter)} per adapter"
        ),
    }


# --- the lab's own runs: all-MiniLM-L6-v2 as the engine trains it --------------------------------
LAB_SEQ = 32  # dynamic padding pads each batch to its longest sentence: ~20–30 tokens here
LAB_METHODS = tuple(LAB_REGISTRY)  # every method of the registry (simulations/methods.py)
LAB_WIDTH = 4  # the engine keeps its weights, gradients and AdamW state in fp32
# The precisions a run's training steps compute in, as the engine's metrics name them
# (workers/precision.py): fp32, or bf16 autocast (bf16 matrix products, fp32 weights).
LAB_PRECISIONS = ("fp32", "bf16 autocast")
AUTOCAST_WIDTH = 2  # bytes of a bf16 element
# The devices a run trains on, as torch names them (workers/training.py pick_device). They keep a
# dropout mask differently: CUDA's fused dropout keeps one byte an element (a bool mask); the CPU
# has no fused kernel and keeps the mask as a tensor of the dropped tensor's own dtype (4 bytes an
# element in fp32), measured with saved-tensor hooks over one step of the engine.
LAB_DEVICES = ("cpu", "cuda")
# Methods that train something at or before the embeddings' output (the embedding matrices, the
# embedding LayerNorm's bias, the soft prompt): autograd also keeps the embedding LayerNorm's input
# and the embedding dropout's mask. For the others nothing before the first layer needs a gradient.
_TRAIN_AT_EMBEDDINGS = ("full", "bitfit", "prompt")
# The calculator's target names, as the lab's registry (simulations/methods.py TARGET_MODULES) spells them.
_LAB_TARGET_NAMES = {"query": "query", "key": "key", "value": "value", "output": "attention_output", "ffn": "ffn"}


def lab_dims(model: Model) -> Dims:
    """The encoder as simulations.params counts it (BERT: 512 positions, 2 token types)."""
    return Dims(
        hidden=model.hidden,
        intermediate=model.ffn,
        layers=model.layers,
        vocab=model.vocab,
        max_positions=512,
        token_types=2,
        pooler=model.pooler,
    )


@dataclass(frozen=True)
class _LabStep:
    """One training step's shape, for the per-method terms of lab_activation_bytes."""

    b: int  # batch
    s: int  # sequence length (with prompt tuning's virtual tokens)
    h: int
    f: int
    a: int  # attention heads
    sk: int  # keys per query (with prefix tuning's virtual tokens)
    B: int  # bytes of an fp32 element
    H: int  # bytes of a bf16 element
    autocast: bool
    rank: int
    targets: tuple[str, ...]  # the calculator's names
    shapes: dict
    bottleneck: int
    virtual_tokens: int


def _full_activations(k: _LabStep) -> tuple[float, str, str]:
    if k.autocast:
        return k.H * (5 * k.s * k.b * k.h + k.s * k.b * k.f), "H·(5·s·b·h + s·b·f)", ""
    return k.B * (3 * k.s * k.b * k.h + k.s * k.b * k.f), "B·(3·s·b·h + s·b·f)", ""


def _lora_activations(k: _LabStep, dora: bool = False) -> tuple[float, str, str]:
    inputs = []
    if {"query", "key", "value"} & set(k.targets):
        inputs.append(k.h)  # one tensor: Q, K and V read the same input
    if "output" in k.targets:
        inputs.append(k.h)
    if "ffn" in k.targets:
        inputs += [k.h, k.f]
    matrices = [o for t in k.targets for _, o in k.shapes[t]]
    extra = k.B * k.s * k.b * (sum(inputs) + k.rank * len(matrices))
    text = f"B·s·b·({' + '.join(map(str, inputs)) or 0} + r·{len(matrices)})"
    if dora:
        extra += 3 * k.B * k.s * k.b * sum(matrices)
        text += f" + 3·B·s·b·{sum(matrices)}"
    return extra, text, f", r = {k.rank}"


def _adapter_activations(k: _LabStep) -> tuple[float, str, str]:
    # Two adapters a layer, each keeping its input and its m-wide pre- and post-activation; under
    # autocast these are bf16 and the bf16 copies of its two matrices (2·h·m) are kept too.
    if k.autocast:
        extra = 2 * k.H * (k.s * k.b * k.h + 2 * k.s * k.b * k.bottleneck + 2 * k.h * k.bottleneck)
        return extra, "2·H·(s·b·h + 2·s·b·m + 2·h·m)", f", m = {k.bottleneck}"
    extra = 2 * k.B * (k.s * k.b * k.h + 2 * k.s * k.b * k.bottleneck)
    return extra, "2·B·(s·b·h + 2·s·b·m)", f", m = {k.bottleneck}"


def _ia3_activations(k: _LabStep) -> tuple[float, str, str]:
    # The outputs it scales: bf16 under autocast (a linear map's output); the FFN's inner
    # activation fp32 either way (peft casts it to the scale's dtype before scaling it).
    outputs = sum(o for t in k.targets if t != "ffn" for _, o in k.shapes[t])
    ffn = k.f if "ffn" in k.targets else 0
    if k.autocast:
        return k.s * k.b * (k.H * outputs + k.B * ffn), f"s·b·(H·{outputs} + B·{ffn})", ""
    return k.B * k.s * k.b * (outputs + ffn), f"B·s·b·({outputs} + {ffn})", ""


def _first_layer_unkept(k: _LabStep, method: str, M: int, Ma: int) -> float:
    """What the first layer's attention does not keep when nothing before the layer trains: its
    input needs no gradient, so autograd keeps a tensor there only where a gradient will pass
    through it. Q·Kᵀ keeps Q only if K needs a gradient and K only if Q does; probabilities·V keeps
    V only if the probabilities need one (Q or K does) and the probabilities only if V does; the
    softmax and its dropout keep theirs only if the scores need one; the attention output's
    dropout only if the attention output needs one. Under autocast the bf16 copies of W_Q, W_K and
    W_V are not kept (their input needs no gradient), nor W_O's where its input needs none."""
    if method in _TRAIN_AT_EMBEDDINGS:
        return 0
    targets = set(k.targets) if method in ("lora", "qlora", "dora", "ia3") else set()
    q = "query" in targets
    key = "key" in targets or method == "prefix"
    v = "value" in targets or method == "prefix"
    scores = q or key
    context = scores or v
    out = context or "output" in targets
    sbh, a_ss = k.s * k.b * k.h, k.a * k.s * k.sk * k.b
    unkept = k.B * sbh * ((not key) + (not q) + (not scores))  # Q, K, V
    unkept += (k.B * (not v) + (k.B + Ma) * (not scores)) * a_ss  # probabilities, softmax, mask
    unkept += M * sbh * (not out)
    if k.autocast:
        unkept += k.H * k.h * k.h * (3 + (not context))
    return unkept


# What each method of the registry keeps for the backward pass beyond what every method keeps
# (see lab_activation_bytes): (bytes a layer, the term's formula, the values of its own symbols).
LAB_ACTIVATIONS = {
    "full": _full_activations,
    "lora": _lora_activations,
    "qlora": _lora_activations,
    "dora": lambda k: _lora_activations(k, dora=True),
    "adapter": _adapter_activations,
    "prompt": lambda k: (0, "", ""),  # its n virtual tokens lengthen s
    "prefix": lambda k: (2 * k.B * k.virtual_tokens * k.b * k.h, "2·B·n·b·h", f", n = {k.virtual_tokens}"),
    "ia3": _ia3_activations,
    "bitfit": lambda k: (0, "", ""),  # a bias's gradient needs no input
}


def lab_activation_bytes(
    model: Model,
    method: str,
    batch: int,
    seq: int,
    rank: int = 0,
    targets=(),
    bottleneck: int = 0,
    virtual_tokens: int = 0,
    precision: str = "fp32",
    device: str = "cpu",
) -> tuple[float, str]:
    """Bytes autograd keeps for the backward pass of one step of the lab's engine on `device`,
    and the formula with the numbers in.

    Per layer, Korthikanti's tensors (see activation_bytes) split in two. What every method
    keeps to pass the gradient back through the layer to its input, B = 4 bytes:
        B·(5·s·b·h + s·b·f) + 2·M·s·b·h + (2·B + Ma)·a·s²·b
    (Q, K, V, both LayerNorm inputs, the GELU input, two dropout masks of M bytes an element,
    the attention probabilities and their dropout mask of Ma bytes). Korthikanti counts a mask at
    one byte, which is what CUDA's fused dropout keeps (M = Ma = 1); on the CPU a mask is a tensor
    of the dropped tensor's dtype: M = Ma = B in fp32 (measured: the prediction was 13–14 % low
    with one byte). Where a method trains something at or before the embeddings (full
    fine-tuning, BitFit, prompt tuning) autograd also keeps, once, the embedding LayerNorm's input
    and the embedding dropout's mask: (B + Me)·s·b·h. And the inputs of the linear maps, kept only
    where that map's weight trains:
        B·(3·s·b·h + s·b·f)   (attention input, attention output's input, FFN input, GELU output).
    Full fine-tuning keeps both. LoRA/QLoRA/DoRA keep the input of their targeted maps and the
    r-wide A·x of each adapted matrix (B·s·b·r); peft's DoRA also keeps its base, LoRA and
    rescaled outputs (3·B·s·b·d_out per matrix). The Houlsby adapter keeps, per adapter (two a
    layer), its input and its m-wide pre- and post-activation: B·(s·b·h + 2·s·b·m) (bf16 under
    autocast, with the bf16 copies of its two matrices). Prompt tuning
    lengthens every sequence by its n virtual tokens (s → s + n). Prefix tuning lengthens the keys
    and values: the scores are s×(s + n), and the n prefix keys and values are kept (2·B·n·b·h).
    IA3 keeps the keys and values it scales and the FFN's inner activation it scales
    (B·(2·s·b·h + s·b·f) with its default targets; under autocast the keys and values are bf16).
    BitFit keeps nothing more: a bias's gradient needs no input. In the first layer nothing before
    it trains, so its attention keeps only what a gradient passes through (_first_layer_unkept).

    Under bf16 autocast (precision "bf16 autocast", H = 2 bytes), as measured on the CPU: each
    linear map multiplies a bf16 copy of its weight, and autograd keeps that copy to pass the
    gradient to the map's input, H·(4·h² + 2·h·f) a layer, whether the weight trains or not; the
    GELU input is bf16 (H·s·b·f instead of B·s·b·f); attention and the LayerNorm inputs stay fp32.
    On the CPU the two masks of the hidden states are then bf16 too (M = H: they drop the output of
    a linear map), while the attention probabilities' mask stays fp32 (Ma = B: softmax computes in
    fp32). Full fine-tuning keeps a bf16 copy of each linear map's input, Q, K and V each their
    own: H·(5·s·b·h + s·b·f). QLoRA's 4-bit layers compute in fp32 whatever autocast says, so its
    activations are those of an fp32 step.
    """
    if precision not in LAB_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(LAB_PRECISIONS)} (got {precision!r})")
    if device not in LAB_DEVICES:
        raise ValueError(f"device must be one of {', '.join(LAB_DEVICES)} (got {device!r})")
    h, f, a, L, B = model.hidden, model.ffn, model.heads, model.layers, LAB_WIDTH
    autocast = precision == "bf16 autocast" and method != "qlora"
    H = AUTOCAST_WIDTH
    # A dropout mask's bytes an element: of the hidden states (M), of the attention probabilities
    # (Ma) and of the embeddings (Me, always fp32 here).
    if device == "cuda":
        M = Ma = Me = 1
    else:
        M, Ma, Me = (H if autocast else B), B, B
    b = batch
    s = seq + (virtual_tokens if method == "prompt" else 0)
    sk = s + (virtual_tokens if method == "prefix" else 0)
    gelu, gelu_text = (H, "H·s·b·f") if autocast else (B, "s·b·f")
    through = B * 5 * s * b * h + gelu * s * b * f + 2 * M * s * b * h + (2 * B + Ma) * a * s * sk * b
    text = (
        f"B·5·s·b·h + {gelu_text}" if autocast else "B·(5·s·b·h + s·b·f)"
    ) + f" + {2 * M}·s·b·h + {2 * B + Ma}·a·s·{'(s+n)' if method == 'prefix' else 's'}·b"
    if autocast:
        through += H * (4 * h * h + 2 * h * f)
        text += " + H·(4·h² + 2·h·f)"
    step = _LabStep(
        b=b,
        s=s,
        h=h,
        f=f,
        a=a,
        sk=sk,
        B=B,
        H=H,
        autocast=autocast,
        rank=rank,
        targets=tuple(targets or ()),
        shapes=model.linear_shapes(),
        bottleneck=bottleneck,
        virtual_tokens=virtual_tokens,
    )
    extra, extra_text, extra_values = LAB_ACTIVATIONS[method](step)
    embeddings = (B + Me) * s * b * h if method in _TRAIN_AT_EMBEDDINGS else 0
    first = _first_layer_unkept(step, method, M, Ma)
    total = L * (through + extra) + embeddings - first
    term = text + (f" + {extra_text}" if extra_text else "")
    values = f"B = {B}, " + (f"H = {H}, " if autocast else "") + f"b = {b}, s = {s}, h = {h}, f = {f}, a = {a}"
    values += extra_values
    masks = f"dropout masks of {M}, {Ma} and {Me} bytes an element on the {device.upper()}"
    head = f"{L} layers × [{term}]" + (f" + {B + Me}·s·b·h (the embeddings)" if embeddings else "")
    head += f" − {fmt_bytes(first)} the first layer's attention need not keep" if first else ""
    return float(total), f"{head}, with {values}; {masks} = {fmt_bytes(total)}"


def lab_prediction(
    model: Model,
    method: str,
    batch: int,
    rank: int,
    targets,
    num_labels: int = 2,
    seq: int = LAB_SEQ,
    bottleneck: int = 0,
    virtual_tokens: int = 0,
    precision: str = "fp32",
    device: str = "cpu",
) -> dict:
    """The calculator's prediction for a run of the lab's engine on this encoder, for every
    method of the lab, on `device` (cpu or cuda: they keep dropout masks differently).

    The engine keeps fp32 weights and trains them with torch AdamW (fp32 m and v, no master
    copy), its steps in fp32 or under bf16 autocast (`precision`): parameters as stored (4 bytes;
    QLoRA's layer weights in NF4 with double quantization), 4 bytes of gradient and 8 of Adam
    state per trainable parameter (simulations.params counts them), and the activations of
    lab_activation_bytes. targets use the calculator's names (query, key, value, output, ffn).
    Returns bytes by the keys the engine's metrics.memory_breakdown uses.
    """
    if method not in LAB_METHODS:
        raise ValueError(f"method must be one of {', '.join(LAB_METHODS)} (got {method!r})")
    if not 1 <= batch <= LAB_BATCH_MAX:
        raise ValueError(f"batch_size must be between 1 and {LAB_BATCH_MAX} (got {batch})")
    if not 1 <= seq <= 4096:
        raise ValueError(f"seq must be between 1 and 4096 (got {seq})")
    targets = tuple(targets or ())
    if method in ("lora", "qlora", "dora"):
        validate(model, Settings(rank=rank, targets=targets or ("query",)))
        if not targets:
            raise ValueError("targets must name at least one module")
    dims = lab_dims(model)
    lab_params = {
        "rank": rank,
        "bottleneck": bottleneck,
        "virtual_tokens": virtual_tokens,
        "target_modules": [_LAB_TARGET_NAMES[t] for t in targets if t in _LAB_TARGET_NAMES],
    }
    trainable = trainable_params(method, lab_params, dims, num_labels)
    encoder = model.config_params()
    # What the method adds to the encoder (bitfit and full train parameters it already has).
    added = {"full": trainable - encoder, "bitfit": classifier_head_params(model.hidden, num_labels)}.get(
        method, trainable
    )
    if method == "qlora":
        q = model.linear_params()
        params = q * (NF4_BITS + quant_constant_bits(True)) / 8 + LAB_WIDTH * (encoder - q + added)
    else:
        params = LAB_WIDTH * (encoder + added)
    act, formula = lab_activation_bytes(
        model, method, batch, seq, rank, targets, bottleneck, virtual_tokens, precision, device
    )
    out = {
        "params": params,
        "grads": LAB_WIDTH * trainable,
        "optimizer_state": 2 * LAB_WIDTH * trainable,
        "activations": act,
    }
    out["total"] = sum(out.values())
    out["trainable"] = trainable
    out["activation_formula"] = formula
    out["seq"] = seq
    out["precision"] = precision
    out["device"] = device
    return out


def lab_run_prediction(
    model: Model,
    method: str,
    run_params: dict,
    num_labels: int,
    seq: int = LAB_SEQ,
    precision: str = "fp32",
    device: str = "cpu",
) -> dict:
    """lab_prediction for a run as the lab's registry describes it (simulations/methods.py params:
    rank, target_modules with the lab's names, bottleneck, virtual_tokens, batch_size)."""
    calc_names = {lab: calc for calc, lab in _LAB_TARGET_NAMES.items()}
    targets = [calc_names[t] for t in run_params.get("target_modules", [])]
    return lab_prediction(
        model,
        method,
        run_params.get("batch_size", 16),
        run_params.get("rank", 0),
        targets,
        num_labels,
        seq,
        run_params.get("bottleneck", 0),
        run_params.get("virtual_tokens", 0),
        precision,
        device,
    )


def with_params(model: Model, params: float | None) -> Model:
    return replace(model, params=None if params is None else int(params))


A100_BYTES = 80e9  # one A100's memory, as the sources count it


def gpus_to_hold(nbytes: float, per_gpu: float = A100_BYTES) -> int:
    """How many GPUs of `per_gpu` bytes it takes just to hold `nbytes`."""
    return math.ceil(nbytes / per_gpu)


def adam_state_bytes(trainable: float, optimizer: str = "adam32") -> float:
    """Adam's two moments, m and v, for `trainable` parameters: 8 bytes each in fp32."""
    return 2 * OPTIMIZERS[optimizer][1] * trainable


LECTURE_LORA_TRAINABLE = 4.7e6  # the lecture's LoRA on GPT-3 ("4.7M trainable params")


def lecture_checks() -> dict:
    """The lecture's GPT-3 memory claims beside what its own numbers give.

    "27 A100s just for the optimizer states": 27 × 80 GB holds its whole 12-byte training state
    (2.1 TB); the optimizer states alone (Adam m and v, 8 bytes × 175B = 1.4 TB) need 18.
    "4.7M × 12 bytes = 56 MB of optimizer state": 12 bytes is weights + gradients + m + v;
    Adam's m and v are 8 bytes per parameter, 37.6 MB.
    """
    gpt3 = with_params(PRESETS["gpt3-175b"], 175e9)
    state = sum(p.bytes for p in state_parts(gpt3, "full-mixed", Settings(master_weights=False)))
    moments = adam_state_bytes(175e9)
    lora_moments = adam_state_bytes(LECTURE_LORA_TRAINABLE)
    return {
        "state_bytes": state,
        "state_a100s": gpus_to_hold(state),
        "optimizer_bytes": moments,
        "optimizer_a100s": gpus_to_hold(moments),
        "quoted_a100s": 27,
        "lora_trainable": LECTURE_LORA_TRAINABLE,
        "lora_quoted_bytes": LECTURE_LORA_TRAINABLE * 12,
        "lora_optimizer_bytes": lora_moments,
    }


# The lecture's QLoRA example: peft's printout for Llama-2-70B, r = 16 on q_proj and v_proj, and
# the claim that such a model fine-tunes on a 24 GB RTX 4090.
LECTURE_70B_PRINTED_TRAINABLE = 18_874_368
LECTURE_70B_CARD_BYTES = 24e9


def lecture_70b_checks() -> dict:
    """The lecture's Llama-2-70B figures beside the formulas.

    Llama-2-70B has d = 8192, 80 layers and 8 key/value heads, so v_proj maps 8192 → 1024:
    r = 16 on q and v trains 80 · 16 · ((8192 + 8192) + (8192 + 1024)) = 32,768,000. The printed
    18,874,368 is GPT-3 175B's Q and V at r = 4. Its 4-bit weights alone are 35 GB, more than 24 GB.
    """
    weights_4bit = quantization.weight_bytes(70e9, quantization.CODE_BITS)
    return {
        "printed": LECTURE_70B_PRINTED_TRAINABLE,
        "formula": lora_params(PRESETS["llama-70b"], 16, ("query", "value")),
        "gpt3_qv_r4": lora_params(PRESETS["gpt3-175b"], 4, ("query", "value")),
        "card_bytes": LECTURE_70B_CARD_BYTES,
        "weights_4bit_bytes": weights_4bit,
        "weights_nf4_dq_bytes": quantization.weight_bytes(70e9, quantization.bits_per_param(64, double_quant=True)),
    }


def source_notes() -> list[dict]:
    """Where the source documents disagree with each other or with the arithmetic, computed here.

    Each note: the source, what it says, and what the formula gives.
    """
    gpt3 = with_params(PRESETS["gpt3-175b"], 175e9)
    twelve = sum(p.bytes for p in state_parts(gpt3, "full-mixed", Settings(master_weights=False)))
    sixteen = sum(p.bytes for p in state_parts(gpt3, "full-mixed", Settings(master_weights=True)))
    moments = 2 * 4 * 175e9
    act, _ = activation_bytes(PRESETS["gpt3-175b"], 1, 2048, 2, Settings(lm_logits=False))
    seven = PRESETS["llama-7b"]
    act7, _ = activation_bytes(seven, 4, 2048, 2, Settings(lm_logits=False))
    act7f, _ = activation_bytes(seven, 4, 2048, 2, Settings(lm_logits=False, flash=True))
    checks = lecture_checks()
    return [
        {
            "source": "the prompting-and-LoRA lecture (introduction)",
            "text": f"Says GPT-3 needs “at least {checks['quoted_a100s']} A100s just for the optimizer states”. "
            f"That is the whole training state: {fmt_bytes(checks['state_bytes'])} at 12 bytes per parameter "
            f"fills {checks['state_a100s']} A100s of 80 GB. The optimizer states alone, Adam's m and v at "
            f"8 bytes per parameter, are {fmt_bytes(checks['optimizer_bytes'])}: {checks['optimizer_a100s']} A100s.",
        },
        {
            "source": "the prompting-and-LoRA lecture (memory section)",
            "text": f"Gives LoRA's optimizer state as “4.7M × 12 bytes = 56 MB”. Adam keeps two fp32 moments, "
            f"8 bytes per trainable parameter: {fmt_bytes(checks['lora_optimizer_bytes'])}. The 12 bytes "
            f"({fmt_bytes(checks['lora_quoted_bytes'])}) count the 16-bit weights and gradients as well.",
        },
        {
            "source": "the prompting-and-LoRA lecture (GPT-3 memory table)",
            "text": f"Counts 2 + 2 + 4 + 4 = 12 bytes per parameter: {fmt_bytes(twelve)} for 175B. "
            f"Mixed precision usually also keeps an fp32 master copy (ZeRO counts 16 bytes): "
            f'{fmt_bytes(sixteen)}. Tick or untick "fp32 master weights" to see both.',
        },
        {
            "source": "the prompting-and-LoRA lecture (introduction)",
            "text": f"Says the optimizer states take 350 GB; its own table's Adam m and v in fp32 come "
            f"to {fmt_bytes(moments)} (8 bytes × 175B).",
        },
        {
            "source": "the prompting-and-LoRA lecture (full FT vs LoRA table)",
            "text": f'Totals ~2.65 TB by listing the 350 GB of fp16 weights twice (as "model weights" '
            f'and as "trainable params"). Without the double count it is {fmt_bytes(twelve)} '
            f"plus activations; Korthikanti's formula gives {fmt_bytes(act)} of activations at "
            f'batch 1 and 2048 tokens (the source says "200+ GB").',
        },
        {
            "source": "the LoRA efficiency article (activations of a 32-layer 7B model, batch 4, 2048 tokens)",
            "text": f"Estimates 50–100 GB. The formula gives {fmt_bytes(act7)} when the attention "
            f"scores are stored and {fmt_bytes(act7f)} with flash attention: the source's range "
            f"lies between the two conventions.",
        },
    ]
