"""How each method of the registry (simulations/methods.py) turns the base classifier into what it trains.

Every builder takes the fresh classifier from classifier.build_classifier, the validated RunSpec and
the device, and returns the model with exactly the method's parameters requiring grad. peft
builds the methods it has and that work on this encoder; the lab's own modules build the others
(adapters.py, bitfit.py, prefix.py).
"""

import torch

from simulations.methods import names_where
from workers import base_model
from workers.methods import RunSpec


def _peft(model, config):
    from peft import get_peft_model

    return get_peft_model(model, config)


def _lora_config(spec: RunSpec, dora: bool = False):
    from peft import LoraConfig, TaskType

    p = spec.params
    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=p["rank"],
        lora_alpha=p["alpha"],
        lora_dropout=p["dropout"],
        use_dora=dora,
        target_modules=base_model.module_regex(p["target_modules"]),
    )


def full(model, spec, device):
    return model.requires_grad_(True)


def lora(model, spec, device):
    return _peft(model, _lora_config(spec))


def dora(model, spec, device):
    return _peft(model, _lora_config(spec, dora=True))


def qlora(model, spec, device):
    from workers import quantize

    # bf16 compute where the GPU has it (QLoRA's setting); the CPU computes in fp32.
    compute = torch.bfloat16 if device.type == "cuda" else torch.float32
    return _peft(quantize.quantize_4bit(model, compute, device), _lora_config(spec))


def adapter(model, spec, device):
    from workers import adapters

    return adapters.attach_adapters(model, spec.params["bottleneck"], spec.seed)


def prompt(model, spec, device):
    from peft import PromptTuningConfig, PromptTuningInit, TaskType

    # Start the soft prompt from embeddings of real vocabulary tokens (Lester et al. 2021 found
    # this beats random vectors, which sit far off the scale of BERT's word embeddings).
    torch.manual_seed(spec.seed)
    return _peft(
        model,
        PromptTuningConfig(
            task_type=TaskType.SEQ_CLS,
            num_virtual_tokens=spec.params["virtual_tokens"],
            prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB,
        ),
    )


def prefix(model, spec, device):
    from workers import prefix as prefixes

    return prefixes.attach_prefixes(model, spec.params["virtual_tokens"], spec.seed)


def ia3(model, spec, device):
    from peft import IA3Config, TaskType

    # Scales on the attention projections' outputs and the FFN's inner activation (Liu et al. 2022).
    targets, feedforward = base_model.ia3_regexes(spec.params["target_modules"])
    return _peft(
        model,
        IA3Config(task_type=TaskType.SEQ_CLS, target_modules=targets, feedforward_modules=feedforward or []),
    )


def bitfit(model, spec, device):
    from workers import bitfit as bias_terms

    return bias_terms.apply_bitfit(model)


# One builder per method of the registry, by its name.
BUILDERS = {
    "full": full,
    "lora": lora,
    "dora": dora,
    "qlora": qlora,
    "adapter": adapter,
    "prompt": prompt,
    "prefix": prefix,
    "ia3": ia3,
    "bitfit": bitfit,
}
# Methods whose update the engine merges into the base weights after training (zero added
# latency): the records' `mergeable`.
MERGEABLE = names_where(mergeable=True)
