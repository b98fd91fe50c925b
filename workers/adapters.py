"""Houlsby bottleneck adapters for the lab's BERT classifier (peft has no such method).

Sources: Houlsby et al. 2019, "Parameter-Efficient Transfer Learning for NLP" (ICML), and the
authors' reference code, github.com/google-research/adapter-bert (modeling.py:
`feedforward_adapter`, `transformer_layer`).

The module
    Adapter(h) = h + W_up · GELU(W_down · h + b_down) + b_up,   W_down: m×d, W_up: d×m,
    so 2·d·m + m + d parameters per adapter. W_up and b_up start at zero: at step 0 the adapter
    adds an exact 0.0 to h, and the adapted model's outputs equal the base model's bit for bit.
    W_down is drawn from a normal (std `init_std`, truncated at ±2 std, as adapter-bert does)
    with a torch.Generator seeded by the caller; b_down is zero.

Where it sits (two per layer, as Houlsby)
    BertSelfOutput (attention output) and BertOutput (FFN output) each compute
    LayerNorm(dropout(dense(x)) + residual). The adapter is applied to dropout(dense(x)): after
    the projection back to d and its dropout, before the residual add and the LayerNorm. That is
    adapter-bert's `transformer_layer` position exactly (dense -> dropout -> adapter -> LN(+res)).

    Mechanism: a forward hook on that sub-layer's `dropout` module replaces its output with
    adapter(output); the adapter is registered as the sub-layer's child `adapter`, so it follows
    .to(), .train()/.eval() and shows in print(model) and named_parameters(). Chosen over wrapping
    `dense` because (1) no pretrained module is replaced or renamed, so every base key of
    state_dict() stays as transformers writes it and code that looks for `nn.Linear` dense layers
    (peft, our module regexes) is unaffected; (2) it is the reference position, after dropout
    (wrapping dense would put it before). The hook is a bound method of the adapter, so
    copy.deepcopy of the model gives hooks that call the copied adapters.

What trains
    attach_adapters freezes every parameter of the model, then unfreezes the adapters and the
    classifier head (`model.classifier`); embeddings, attention, FFN, LayerNorms and the pooler
    stay frozen. (Houlsby also trained the LayerNorms; the lab keeps the narrower set so the
    count is the textbook formula.)
        trainable = L · 2 · (2·d·m + m + d) + (d·labels + labels)

Saving and loading: workers/artifacts.py writes the trained tensors (adapters and head) under
their parameter names and rebuilds the adapters with attach_adapters before loading them.
"""

import contextlib

import torch
from torch import nn

DEFAULT_INIT_STD = 1e-3  # adapter-bert's init_scale


class BottleneckAdapter(nn.Module):
    """h + up(GELU(down(h))), the identity at initialisation (up weight and bias are zero)."""

    def __init__(self, hidden: int, bottleneck: int, generator: torch.Generator, init_std: float = DEFAULT_INIT_STD):
        super().__init__()
        # Made on the meta device so that nn.Linear's own init draws nothing from the global RNG:
        # the caller's generator is the only randomness.
        self.down = nn.Linear(hidden, bottleneck, device="meta")
        self.act = nn.GELU()
        self.up = nn.Linear(bottleneck, hidden, device="meta")
        self.to_empty(device="cpu")
        self.enabled = True
        with torch.no_grad():
            nn.init.trunc_normal_(self.down.weight, std=init_std, a=-2 * init_std, b=2 * init_std, generator=generator)
            self.down.bias.zero_()
            self.up.weight.zero_()
            self.up.bias.zero_()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return h
        return h + self.up(self.act(self.down(h)))

    def _after_dropout(self, module, args, output):
        """Forward hook on the host sub-layer's dropout: its output goes through the adapter."""
        return self(output)


def _sublayers(model: nn.Module) -> list[nn.Module]:
    """The BertSelfOutput and BertOutput of every layer, in order (attention first)."""
    out = []
    for layer in model.bert.encoder.layer:
        out += [layer.attention.output, layer.output]
    return out


def _adapters(model: nn.Module) -> list[BottleneckAdapter]:
    return [m for m in model.modules() if isinstance(m, BottleneckAdapter)]


def attach_adapters(model: nn.Module, bottleneck: int, seed: int, init_std: float = DEFAULT_INIT_STD) -> nn.Module:
    """Insert 2 adapters per layer into a BertForSequenceClassification, in place.

    Everything is frozen except the adapters and `model.classifier`. Adapter weights are drawn
    in layer order (attention's, then the FFN's) from one generator seeded with `seed`.
    """
    if bottleneck < 1:
        raise ValueError(f"bottleneck must be at least 1, not {bottleneck}")
    if _adapters(model):
        raise ValueError("this model already has adapters")
    hidden = model.config.hidden_size
    generator = torch.Generator().manual_seed(seed)
    model.requires_grad_(False)
    for sub in _sublayers(model):
        if not isinstance(getattr(sub, "dropout", None), nn.Dropout):
            raise TypeError(f"{type(sub).__name__} has no dropout module to place the adapter after")
        reference = sub.dense.weight
        adapter = BottleneckAdapter(hidden, bottleneck, generator, init_std)
        adapter.to(device=reference.device, dtype=reference.dtype)
        adapter.train(sub.training)
        sub.adapter = adapter
        sub.dropout.register_forward_hook(adapter._after_dropout)
    for adapter in _adapters(model):
        adapter.requires_grad_(True)
    model.classifier.requires_grad_(True)
    return model


def adapters_enabled(model: nn.Module, enabled: bool) -> None:
    """Switch every adapter on or off; off, each is the exact identity (the base model)."""
    for adapter in _adapters(model):
        adapter.enabled = enabled


@contextlib.contextmanager
def adapters_disabled(model: nn.Module):
    """`with adapters_disabled(model):` runs the base encoder; previous states are restored."""
    adapters = _adapters(model)
    before = [a.enabled for a in adapters]
    try:
        for a in adapters:
            a.enabled = False
        yield model
    finally:
        for a, state in zip(adapters, before):
            a.enabled = state
