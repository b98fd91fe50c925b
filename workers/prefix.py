"""Prefix tuning (Li & Liang 2021) for the BERT encoder: trained key/value prefixes per layer.

peft has prefix tuning, but it feeds the prefixes in as a past-key-value cache, which the BERT
of transformers 5 no longer accepts as an encoder input (peft raises "Model does not support past
key values"). So the lab writes it: every self-attention layer gets two trained matrices P_k and
P_v of shape n×d (n virtual tokens, d hidden size). The layer's keys and values become
[P_k; K] and [P_v; V], so every real token can attend to n extra positions whose content is
learned; the queries, the sequence length of the output and the position ids are unchanged.

Trainable: n·2·d per layer (the count without peft's optional reparametrisation MLP), plus the
classifier head. Saved as `trained.safetensors` (every tensor that trained) by workers/artifacts.py.
"""

import torch
from torch import nn
from transformers.models.bert.modeling_bert import (
    ALL_ATTENTION_FUNCTIONS,
    BertSelfAttention,
    eager_attention_forward,
)

INIT_STD = 0.02


class PrefixSelfAttention(BertSelfAttention):
    """BertSelfAttention with learned key/value prefixes. Instances are made by `attach_prefixes`
    (which swaps the class of an existing, pretrained module), never constructed directly."""

    prefix_key: nn.Parameter
    prefix_value: nn.Parameter

    def _heads(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        return x.view(batch, x.shape[-2], -1, self.attention_head_size).transpose(1, 2)

    def forward(self, hidden_states, attention_mask=None, cache=None, **kwargs):
        batch, length = hidden_states.shape[:2]
        query = self._heads(self.query(hidden_states), batch)
        key = self._heads(self.key(hidden_states), batch)
        value = self._heads(self.value(hidden_states), batch)
        n = self.prefix_key.shape[0]
        key = torch.cat([self._heads(self.prefix_key, 1).expand(batch, -1, -1, -1), key], dim=2)
        value = torch.cat([self._heads(self.prefix_value, 1).expand(batch, -1, -1, -1), value], dim=2)
        if attention_mask is not None:
            # Every query may attend to every prefix position: True in a boolean mask, 0 in an
            # additive one.
            fill = True if attention_mask.dtype == torch.bool else 0.0
            pad = attention_mask.new_full((*attention_mask.shape[:-1], n), fill)
            attention_mask = torch.cat([pad, attention_mask], dim=-1)
        attend = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        output, weights = attend(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.dropout.p if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )
        return output.reshape(batch, length, -1).contiguous(), weights


def attach_prefixes(model: nn.Module, virtual_tokens: int, seed: int) -> nn.Module:
    """Freeze the model, give every self-attention layer n trained key/value prefixes, and train
    them with the classifier head."""
    model.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    hidden = model.config.hidden_size
    for layer in model.bert.encoder.layer:
        attention = layer.attention.self
        attention.__class__ = PrefixSelfAttention
        for name in ("prefix_key", "prefix_value"):
            weight = torch.empty(virtual_tokens, hidden).normal_(0.0, INIT_STD, generator=generator)
            attention.register_parameter(name, nn.Parameter(weight))
    model.classifier.requires_grad_(True)
    return model
