"""BitFit for the lab's BERT classifier: train only the bias terms (peft has no such method).

Source: Ben Zaken, Ravfogel & Goldberg 2022, "BitFit: Simple Parameter-efficient Fine-tuning
for Transformer-based Masked Language-models" (ACL). Every bias of the encoder is trained,
together with the task's classifier head; all weight matrices, embeddings and LayerNorm gains
stay frozen.

What trains (parameter names in the lab's classifier, workers/head.py)
    bert.embeddings.LayerNorm.bias                                        d
    per layer i, bert.encoder.layer.{i}.:
        attention.self.{query,key,value}.bias, attention.output.dense.bias   4d
        attention.output.LayerNorm.bias                                    d
        intermediate.dense.bias                                            f
        output.dense.bias                                                  d
        output.LayerNorm.bias                                              d
    classifier.weight, classifier.bias                                    d·labels + labels
    trainable = d + L·(7d + f) + d·labels + labels   (26,498 for d=384, f=1536, L=6, 2 labels)

The lab's encoder has no pooler (its head reads the mean of the token states); a BERT with one
trains its bias too (d more; simulations/params.py bitfit_params counts it where `Dims.pooler`).

Saving and loading: workers/artifacts.py writes the trainable tensors above by their names.
"""

from torch import nn


def apply_bitfit(model: nn.Module) -> nn.Module:
    """Freeze everything but the encoder's biases and the classifier head, in place."""
    model.requires_grad_(False)
    for name, p in model.bert.named_parameters():
        if name.endswith(".bias"):
            p.requires_grad_(True)
    model.classifier.requires_grad_(True)
    return model
