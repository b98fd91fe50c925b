"""The base model, read once per process, and the classifier a run builds around a copy of it.

The pretrained encoder is cached and never trained: every run deep-copies it, puts a head drawn
from its seed on top and applies its method (workers/builders.py).
"""

import copy
import threading
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn

from workers import base_model, builders, packing
from workers.methods import RunSpec


@dataclass
class BaseModel:
    tokenizer: object
    encoder: nn.Module  # the pretrained BertModel, never trained: each run works on a copy
    config: object


# How many times this process read the base weights from disk (a test checks it stays at 1).
disk_loads = 0
_loading = threading.Lock()


def load_base() -> BaseModel:
    """The tokenizer and the pretrained encoder, read from disk once per process; a thread that
    asks while another reads them (warm_up's) waits for that read."""
    with _loading:
        return _read_base()


def warm_up() -> None:
    """What a fresh training process needs before its first run, read while it waits for one (a
    thread of each pool process, peftlab/celery_app.py): the base model, and peft, whose import
    (bitsandbytes' with it) takes seconds. A run that arrives meanwhile waits in load_base() until
    both are done (two threads importing one package at once can see it half-initialised)."""
    with _loading:
        _read_base()
        import peft  # noqa: F401


@cache
def _read_base() -> BaseModel:
    global disk_loads
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    path = base_model.model_path()
    disk_loads += 1
    tokenizer = AutoTokenizer.from_pretrained(path)
    # No pooler: the head reads the mean of the token states (workers/head.py).
    encoder = AutoModel.from_pretrained(path, add_pooling_layer=False)
    encoder.eval().requires_grad_(False)
    return BaseModel(tokenizer=tokenizer, encoder=encoder, config=AutoConfig.from_pretrained(path))


def build_classifier(num_labels: int, seed: int) -> nn.Module:
    """A fresh classifier (workers/head.py: the mean of the token states, then a linear head)
    around a copy of the cached encoder.

    The head is initialised from the seed, so the same seed gives the same run.
    """
    from workers.head import MeanPoolClassifier

    base = load_base()
    config = copy.deepcopy(base.config)
    config.num_labels = num_labels
    # Build the skeleton on the meta device (no 22M random numbers drawn), then put the cached
    # weights and a seeded head in.
    with torch.device("meta"):
        model = MeanPoolClassifier(config)
    model.bert = copy.deepcopy(base.encoder).requires_grad_(True)
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(config.hidden_size, num_labels)
    with torch.no_grad():
        head.weight.normal_(0.0, config.initializer_range, generator=generator)
        head.bias.zero_()
    model.classifier = head
    model.dropout = nn.Dropout(config.hidden_dropout_prob)
    return model


def share_frozen_weights(model: nn.Module, encoder: nn.Module) -> None:
    """Make `model`'s frozen encoder weights `encoder`'s own tensors (the same numbers: both come
    from the cached base), so that many runs hold one copy (workers/runpack.py). Its trained
    parameters stay its own. peft puts a wrapped layer's frozen weight under `base_layer`."""
    shared = dict(encoder.named_modules())
    for name, module in packing.classifier_of(model).bert.named_modules():
        for key, param in list(module._parameters.items()):
            if param is not None and not param.requires_grad:
                twin = shared[name.replace(".base_layer", "")]._parameters[key]
                if twin.shape != param.shape:
                    raise ValueError(f"{name}.{key}: {tuple(param.shape)} is not the pack's {tuple(twin.shape)}")
                module._parameters[key] = twin


def own_frozen_weights(model: nn.Module) -> None:
    """Undo share_frozen_weights: `model` gets copies of its frozen weights (before merging an
    update into them, which must not touch the weights other runs share)."""
    for module in packing.classifier_of(model).bert.modules():
        for key, param in list(module._parameters.items()):
            if param is not None and not param.requires_grad:
                module._parameters[key] = nn.Parameter(param.detach().clone(), requires_grad=False)


def apply_method(model: nn.Module, spec: RunSpec, device: torch.device | None = None) -> nn.Module:
    """Wrap the model for the method; afterwards only the method's parameters require grad."""
    return builders.BUILDERS[spec.method](model, spec, device or torch.device("cpu"))


def build_model(spec: RunSpec, num_labels: int, device: torch.device) -> nn.Module:
    """The base classifier with the method applied, on the device."""
    return apply_method(build_classifier(num_labels, spec.seed), spec, device).to(device)
