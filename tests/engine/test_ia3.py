"""IA3 where Liu et al. 2022 put its scales (keys, values, the FFN's inner activation), built by
the engine on the real model and counted, against peft's own default for BERT, which finds the
attention output too; and an adapter saved with the lab's earlier placement still loads."""

import re

import torch

from simulations import params as formulas
from workers import artifacts, base_model, builders, classifier
from workers.methods import validate_run

CPU = torch.device("cpu")
HEAD = formulas.classifier_head_params(base_model.dimensions().hidden, 2)


def scaled(model) -> dict[str, tuple[int, bool]]:
    """Each scaled module of layer 0, by its name inside the layer: (scale length, is_feedforward)."""
    out = {}
    for name, module in model.named_modules():
        found = re.fullmatch(r".*\.layer\.0\.(.+)", name)
        if found and hasattr(module, "ia3_l"):
            out[found.group(1)] = (module.ia3_l["default"].numel(), module.is_feedforward)
    return out


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def ia3_model(**params):
    spec = validate_run("ia3", "sentiment", 1, 0, params)
    return builders.BUILDERS["ia3"](classifier.build_classifier(2, 0), spec, CPU), spec


def test_the_engine_scales_keys_values_and_the_ffns_inner_activation_as_the_formula_counts():
    dims = base_model.dimensions()
    d, f = dims.hidden, dims.intermediate
    model, spec = ia3_model()
    assert scaled(model) == {
        "attention.self.key": (d, False),  # the keys (W_K's output)
        "attention.self.value": (d, False),  # the values
        "output.dense": (f, True),  # the FFN's inner activation: the input of its second matrix
    }
    assert trainable(model) == formulas.trainable_params("ia3", spec.params, dims, 2) == 14_594


def test_peft_default_for_bert_also_scales_the_attention_outputs_input():
    from peft import IA3Config, TaskType, get_peft_model

    dims = base_model.dimensions()
    d, f = dims.hidden, dims.intermediate
    model = get_peft_model(classifier.build_classifier(2, 0), IA3Config(task_type=TaskType.SEQ_CLS))
    assert scaled(model) == {
        "attention.self.key": (d, False),
        "attention.self.value": (d, False),
        "attention.output.dense": (d, True),  # "output.dense" matches the end of its name too
        "output.dense": (f, True),
    }
    assert trainable(model) == formulas.ia3_peft_bert_default_params(dims, HEAD) == 16_898


def test_an_adapter_saved_with_the_earlier_placement_still_loads(tmp_path):
    """Until the placement changed the lab also scaled the FFN's input (intermediate.dense): peft
    rebuilds a saved adapter from its own adapter_config.json, so such a run still loads, with
    its scales where they were trained."""
    from peft import IA3Config, TaskType, get_peft_model

    _, spec = ia3_model()
    earlier = r".*\.layer\.\d+\.(attention\.self\.key|attention\.self\.value|intermediate\.dense|output\.dense)"
    model = get_peft_model(
        classifier.build_classifier(2, 0),
        IA3Config(
            task_type=TaskType.SEQ_CLS,
            target_modules=earlier,
            feedforward_modules=r".*\.layer\.\d+\.(intermediate\.dense|output\.dense)",
        ),
    )
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.uniform_(0.5, 1.5)
    artifacts.save(model, spec, ["negative", "positive"], tmp_path)
    loaded = artifacts.load_trained(tmp_path)
    assert "intermediate.dense" in scaled(loaded) and trainable(model) == 16_898
    ids = torch.tensor([[101, 2023, 2003, 2204, 102]])
    model.eval(), loaded.eval()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, loaded(input_ids=ids).logits)
