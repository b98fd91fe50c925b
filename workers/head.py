"""The classifier's head: the mean of the token states, then a linear layer.

all-MiniLM-L6-v2 was trained (as a sentence-transformers model) to give a sentence's meaning as the
mean of its token states over the real tokens; its pooler (a dense layer and tanh on the [CLS]
state) was never shaped by that training. Reading [CLS] through that frozen pooler, as
BertForSequenceClassification does, the adapter and LoRA needed 45 to more than 60 steps to reach
80 % on the race's task; from the mean, at their tuned learning rates, 25 to 50
(bench/race_levers.py, docs/measurements.md "Race levers").

So every run's model is a BertForSequenceClassification whose encoder has no pooler and whose
forward pools by the mean. Everything else (dropout, the linear head, the loss, peft's wrapping
with its trained copy of `classifier`) is the parent's. workers/notebook.py copies this module's
definitions into the reproduce script as source text.
"""

import torch
from torch import nn
from transformers import BertForSequenceClassification, BertModel
from transformers.modeling_outputs import SequenceClassifierOutput


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """(batch, hidden) the mean of each row's token states over its real tokens. A mask wider
    than the states (positions added in front, as prompt tuning's virtual tokens are when peft
    extends the mask) is read at its last `hidden.shape[1]` columns."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask[:, -hidden.shape[1] :].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class MeanPoolClassifier(BertForSequenceClassification):
    """BertForSequenceClassification reading the mean of the token states instead of the pooled
    [CLS] state; its encoder has no pooler."""

    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        kwargs.pop("return_dict", None)
        hidden = self.bert(input_ids, attention_mask=attention_mask, return_dict=True, **kwargs).last_hidden_state
        logits = self.classifier(self.dropout(mean_pool(hidden, attention_mask)))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)
