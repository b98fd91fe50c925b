"""The precision a run's training steps compute in: fp32, or bf16 autocast.

Under bf16 autocast (torch.autocast) the matrix products of the forward pass run in bf16 while the
weights, their gradients and AdamW's state stay fp32: what Trainer's `bf16=True` does. Evaluation,
the latency measurement and the demo sentences stay fp32 either way.

PEFTLAB_AUTOCAST chooses, per worker:
    auto (the default)  bf16 on a CPU that multiplies bf16 natively, with AVX512-BF16 or AMX
                        (×1.2–1.4 steps/s at the same validation accuracy, measured in
                        docs/performance.md); fp32 on other CPUs and on a GPU. On an NVIDIA H100
                        the small base model's steps are bound by kernel launches, not arithmetic,
                        and autocast's casts add launches: bf16 ran at 0.66× the fp32 steps/s for
                        LoRA and 0.81× for full fine-tuning (docs/performance.md, "On a GPU")
    bf16                bf16 on any device. Without native bf16 a CPU multiplies bf16 slower than
                        fp32: 57 against 261 GFLOP/s on one CPU measured here, about 1 against 180
                        on another
    off                 fp32 everywhere

The memory calculator predicts a lab run in either precision (simulations/memory.lab_prediction):
under autocast, autograd also keeps each linear map's bf16 weight copy for the backward pass.
"""

import contextlib
import os

# torch is imported inside the functions that use it: the web process reads `choice` for
# `manage.py check` (peftlab/runs/checks.py) and never imports torch.
CHOICES = ("auto", "bf16", "off")
SETTING = "PEFTLAB_AUTOCAST"
# What a run's metrics record under "precision".
FP32, BF16 = "fp32", "bf16 autocast"


class PrecisionError(ValueError):
    pass


def cpu_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware."""
    import torch

    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def choice() -> str:
    value = os.environ.get(SETTING, "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise PrecisionError(f"{SETTING} must be one of {', '.join(CHOICES)} (got {value!r})")
    return value


def training_dtype(device, chosen: str | None = None):
    """The autocast dtype (torch.bfloat16) of the training steps on `device`, or None for fp32."""
    import torch

    chosen = chosen or choice()
    if chosen == "bf16" or (chosen == "auto" and device.type == "cpu" and cpu_native_bf16()):
        return torch.bfloat16
    return None


def name(dtype) -> str:
    """How a run's metrics record it."""
    return FP32 if dtype is None else BF16


def autocast(device, dtype):
    """The context a training forward pass runs in."""
    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def cast_frozen_weights_once(model, dtype) -> None:
    """Under autocast, each frozen linear layer of `model` multiplies a `dtype` copy of its weight
    made once, not one made at every forward pass. Autocast's own cache keeps only weights that
    train, and only for one step; a frozen weight does not change during a run, so the copy is the
    same numbers every time (the losses are identical to the bit). Outside autocast (evaluation,
    the latency passes, the demo) the layer multiplies its fp32 weight as before. QLoRA's 4-bit
    layers are not plain linear layers and are left as they are."""
    if dtype is None:
        return
    import torch
    from torch import nn
    from torch.nn import functional

    def forward_of(layer, copy):
        def forward(x):
            weight = copy if torch.is_autocast_enabled(x.device.type) else layer.weight
            return functional.linear(x, weight, layer.bias)

        return forward

    for layer in model.modules():
        if type(layer) is nn.Linear and not layer.weight.requires_grad:
            layer.forward = forward_of(layer, layer.weight.detach().to(dtype))
