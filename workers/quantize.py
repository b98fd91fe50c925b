"""QLoRA's 4-bit base (Dettmers et al. 2023), built in memory from the cached encoder.

`transformers` builds a QLoRA base with `from_pretrained(..., quantization_config=BitsAndBytesConfig(
load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True))`, but that reads the
weights from disk on every run. Here the fp32 model that `classifier.build_classifier` made from the
cached encoder is quantized in place instead:

    model = quantize_4bit(classifier.build_classifier(n, seed), compute_dtype, device)
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, ...))
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], lr, device)

Every `nn.Linear` of the encoder becomes a `bitsandbytes.nn.Linear4bit` whose weight is NF4 with
double quantization (the per-block absmax constants are themselves 8-bit quantized: the quant
state is `nested`). The classifier head stays fp32, as do the embeddings and the
LayerNorms (QLoRA quantizes only the linear layers' weights; biases stay in full precision).

Why not `peft.prepare_model_for_kbit_training`: it runs on CPU, but on this model it does three
things, none of them wanted here.
  * It freezes every parameter: `get_peft_model` freezes everything but the adapters and the
    `modules_to_save` head anyway.
  * It casts fp16/bf16 parameters that are not `Params4bit` to fp32: ours are fp32 already (the
    cached encoder is fp32; only the quantized weights change storage).
  * Because `quantize_4bit` marks the model `is_loaded_in_4bit` (see below), it turns on gradient
    checkpointing (with the input-embedding grad hook it needs). That trades compute for
    activation memory; for a 6-layer, 384-wide encoder on batches of short sentences the
    activations are a few MB, and a step's forward+backward took 1.6x as long with it (0.31 s
    against 0.20 s, batch 16, one CPU thread).
So the base is left as it is: the casts and the freezing it would do are already true.

One flag tells peft what this model is, as `from_pretrained(quantization_config=...)` would have
set it: `model.is_loaded_in_4bit = True`. peft's LoRA dispatch needs it to pick its bitsandbytes
`Linear4bit` LoRA layer. Without it, since `Linear4bit` subclasses `nn.Linear`, peft wraps the layer
in its plain `Linear` LoRA layer, which trains but whose merge fails (it adds the out×in delta to
the packed (out·in/2)×1 uint8 data: a size mismatch).

A CPU quirk of bitsandbytes 0.50 that this module switches off: on a CPU with AVX512-BF16,
`Linear4bit.forward` in eval mode without grad (what `measure.evaluate` does) permanently repacks
its weight into a layout for bitsandbytes' CPU inference kernel, dequantizing the double-quantized
absmax into bf16 (the state stops being `nested`, and holds more bytes). After that, eval logits
differ from the training path's (≈4e-4), and a training forward fails ("a view of a leaf Variable
that requires grad is being used in an in-place operation"): a run that evaluates mid-training
would crash at its next step. `quantize_4bit` sets `support_avx512bf16_for_cpu = False` on each
layer, so the weight keeps the NF4 + double-quant layout that training uses, in both modes.

Merging: see `merge_to_fp32` (peft's `merge_and_unload()` works on a 4-bit base but re-quantizes).
"""

import logging
from collections.abc import Iterable

import torch
from torch import nn

log = logging.getLogger(__name__)

QUANT_TYPE = "nf4"
DOUBLE_QUANT = True
BLOCKSIZE = 64  # QLoRA's block size for the first quantization (the nested one uses 256)


def _bnb():
    # bitsandbytes prints a line about an optional `kernels` package when imported on CPU; it is
    # imported on first use so that merely importing this module stays cheap and quiet.
    import bitsandbytes as bnb

    return bnb


def _skipped(name: str, skip: Iterable[str]) -> bool:
    return any(part in skip for part in name.split("."))


def quantize_4bit(
    model: nn.Module, compute_dtype: torch.dtype, device: torch.device, skip: Iterable[str] = ("classifier",)
) -> nn.Module:
    """Replace every `nn.Linear` of `model` (except those under a module named in `skip`) with an
    NF4, double-quantized `bitsandbytes.nn.Linear4bit` holding the same weights; return the model.

    The weights come from the model in memory (nothing is read from disk). The quantization
    happens when the new `Params4bit` is moved to `device` (`bnb.functional.quantize_4bit` runs
    there: on CPU the packed uint8 data and quant state are made on the CPU). `compute_dtype` is
    the dtype each layer dequantizes to and multiplies in: fp32 on CPU, bf16 on CUDA (the caller
    decides). The rest of the model (embeddings, LayerNorms, skipped layers, all biases) keeps its
    dtype; call `.to(device)` on the result to move it (moving a quantized weight does not
    re-quantize it).
    """
    bnb = _bnb()
    device = torch.device(device)
    skip = tuple(skip)
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if type(module) is nn.Linear and not _skipped(name, skip)
    ]
    for name, linear in targets:
        # Built on the meta device: Linear4bit's own init would draw a random fp32 weight first.
        layer = bnb.nn.Linear4bit(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            compute_dtype=compute_dtype,
            compress_statistics=DOUBLE_QUANT,
            quant_type=QUANT_TYPE,
            device="meta",
        )
        weight = linear.weight.detach().to(torch.float32).contiguous()
        layer.weight = bnb.nn.Params4bit(
            weight,
            requires_grad=False,
            blocksize=BLOCKSIZE,
            compress_statistics=DOUBLE_QUANT,
            quant_type=QUANT_TYPE,
            module=layer,
        ).to(device)  # quantizes here
        if linear.bias is not None:
            layer.bias = nn.Parameter(linear.bias.detach().to(device).clone(), requires_grad=False)
        # See the module docstring: keep one weight layout (and double quant) in eval and train.
        layer.support_avx512bf16_for_cpu = False
        layer.train(linear.training)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, layer)
    # What from_pretrained(quantization_config=...) would set; peft's LoRA dispatch reads it.
    model.is_loaded_in_4bit = True
    log.debug("quantized %d linear layers to 4-bit %s", len(targets), QUANT_TYPE)
    return model


def _quant_state_tensors(state) -> list[torch.Tensor]:
    tensors = [t for t in (state.absmax, state.code, state.offset) if isinstance(t, torch.Tensor)]
    if getattr(state, "nested", False) and getattr(state, "state2", None) is not None:
        tensors += [t for t in (state.state2.absmax, state.state2.code) if isinstance(t, torch.Tensor)]
    return tensors


def _is_adapter(name: str) -> bool:
    # LoRA's own tensors, and peft's trainable copy of a modules_to_save module (the original,
    # under `original_module`, is the base's and is counted).
    return "lora_" in name or ".modules_to_save." in name


def base_weight_bytes(model: nn.Module, linear_only: bool = False, skip: Iterable[str] = ("classifier",)) -> int:
    """Bytes the base model's tensors actually hold, each storage counted once.

    A `Params4bit` counts its packed uint8 data plus its quant state's tensors (the 8-bit absmax,
    the NF4 code, the offset, and the nested state's absmax and code); every other parameter or
    buffer counts numel × element size. LoRA adapter tensors and peft's trainable copy of a
    `modules_to_save` module are not the base's and are left out.

    With `linear_only`, only the weights of the linear layers that `quantize_4bit` would quantize
    (those not under a module named in `skip`) are counted, so fp32 and 4-bit compare like for like.
    """
    bnb = _bnb()
    skip = tuple(skip)
    seen: set[tuple[int, int]] = set()
    total = 0

    def add(t: torch.Tensor) -> None:
        nonlocal total
        if t.device.type == "meta":
            return
        key = (t.untyped_storage().data_ptr(), t.data_ptr())
        if key in seen:
            return
        seen.add(key)
        total += t.numel() * t.element_size()

    def add_param(p: torch.Tensor) -> None:
        add(p.data)
        if isinstance(p, bnb.nn.Params4bit) and p.quant_state is not None:
            for t in _quant_state_tensors(p.quant_state):
                add(t)

    if linear_only:
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear) and not _is_adapter(name) and not _skipped(name, skip):
                add_param(module.weight)
        return total
    for name, p in model.named_parameters(remove_duplicate=True):
        if not _is_adapter(name):
            add_param(p)
    for name, b in model.named_buffers(remove_duplicate=True):
        if not _is_adapter(name):
            add(b)
    return total


def dequantize_weight(weight) -> torch.Tensor:
    """The fp32 matrix a 4-bit weight stands for (out_features × in_features)."""
    bnb = _bnb()
    state = weight.quant_state
    if getattr(state, "packing_format_for_cpu", False):
        raise ValueError(
            "this weight was repacked for bitsandbytes' CPU inference kernel; quantize_4bit's layers never are"
        )
    return bnb.functional.dequantize_4bit(weight.data, state).to(torch.float32)


def merge_to_fp32(peft_model: nn.Module) -> nn.Module:
    """Fold the active LoRA adapters into a dequantized fp32 copy of the base; return the plain model.

    peft's own `merge_and_unload()` on a 4-bit base adds B·A to the dequantized weight and
    quantizes the sum back to NF4. A LoRA update is far smaller than NF4's step (the 16 levels of a
    block of 64 span ±absmax), so most of it rounds away and the merged model does not compute what
    the adapted one did. Here every `Linear4bit` becomes an fp32 `nn.Linear` holding
    dequantize(W) (+ scaling·B·A where adapted): what the adapted model computes, up to float
    rounding (logits within ~1e-6 here, against ~2e-2 to 1 for peft's merge). The trained `modules_to_save` head replaces the original. `peft_model` is consumed
    (its LoRA layers are unloaded in place).
    """
    bnb = _bnb()
    from peft.tuners.lora import LoraLayer

    merged: dict[str, torch.Tensor] = {}
    for name, module in peft_model.base_model.model.named_modules():
        if not (isinstance(module, LoraLayer) and isinstance(module.get_base_layer(), bnb.nn.Linear4bit)):
            continue
        if module.merged:
            raise ValueError(f"{name} already has an adapter merged into its 4-bit weight")
        weight = dequantize_weight(module.get_base_layer().weight)
        for adapter in module.active_adapters:
            if adapter not in module.lora_A:
                continue
            if adapter in module.lora_variant or module.lora_bias[adapter]:
                raise ValueError(f"{name}: only plain LoRA (no DoRA/aLoRA, no lora_bias) is merged here")
            weight = weight + module.get_delta_weight(adapter).to(torch.float32)
        merged[name] = weight
    with torch.no_grad():
        model = peft_model.unload()
        for name, layer in list(model.named_modules()):
            if not isinstance(layer, bnb.nn.Linear4bit):
                continue
            weight = merged.get(name)
            if weight is None:
                weight = dequantize_weight(layer.weight)
            linear = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None, device="meta")
            linear.weight = nn.Parameter(weight.detach().contiguous(), requires_grad=False)
            if layer.bias is not None:
                linear.bias = nn.Parameter(layer.bias.detach().to(torch.float32).clone(), requires_grad=False)
            linear.train(layer.training)
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, linear)
    model.is_loaded_in_4bit = False
    return model


def make_optimizer(params, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """QLoRA's optimizer for `params`: paged AdamW on CUDA, `torch.optim.AdamW` on CPU.

    Paged AdamW keeps its state in CUDA unified memory, which the driver pages out to host RAM
    when the GPU runs short, so a memory spike does not end the run. On CPU there is nothing to
    page: the state already lives in host RAM. bitsandbytes 0.50's `PagedAdamW` does construct
    and step on CPU, but it says "Paged optimizers are not supported on CPU. Falling back to
    non-paged optimizer behavior." (a UserWarning) and then runs bitsandbytes' plain 32-bit Adam,
    which gives the same update as `torch.optim.AdamW` (same defaults, weight decay 0.01; equal to
    ~1e-7 here). So the CPU path uses torch's AdamW directly: same numbers, no warning, no
    bitsandbytes optimizer state to reason about.
    """
    params = list(params)
    if torch.device(device).type == "cuda":
        return _bnb().optim.PagedAdamW(params, lr=lr)
    return torch.optim.AdamW(params, lr=lr)
