"""Packed (unpadded) training batches: the same examples, in the same batch, without padding.

encoding.collate pads every sequence of a batch to the batch's longest; on the `sentiment` task a
third of the tokens the model computes are then padding. Grouping batches by length pads less but
changes which examples share a batch (and learned worse here). Packing keeps each batch as it is
and removes the padding instead:

- the real tokens of the batch's sequences are laid end to end in rows of at most ROW_TOKENS
  tokens (or the batch's longest sequence, if longer; see `fit_rows`), a row's tail padded only
  up to the widest row;
- position ids restart at 0 for every sequence, so each token gets the position embedding it
  gets in the padded batch;
- the attention mask is block-diagonal (4D, rows x 1 x width x width): a token attends only to
  the tokens of its own sequence, as in the padded batch, where it attends to its own row's real
  tokens. transformers passes a 4D mask to the attention as it is (masking_utils'
  `_preprocess_mask_arguments`);
- the classifier reads each sequence's own mean token state (the sum of its tokens' states over
  its length), dropout and head, as the padded batch's mean over its attention mask does
  (workers/head.py).

So logits, loss and gradients are those of the padded batch up to float rounding (summation order
inside the attention's softmax and matmuls); tests/engine/test_packing.py checks it for each method.
What differs in training mode is only which random numbers dropout draws (its masks have another
shape), a different draw from the same distribution.

Methods that add positions of their own to every sequence stay padded (their record in
simulations/methods.py says packable=False, so they are not in PACKABLE): prompt
tuning puts its virtual tokens in front of each row's input (one packed row would get one prompt
for several sequences); prefix tuning (workers/prefix.py) adds its key/value positions to each
row's attention and widens the mask itself (it might pack, as every query may see the prefix, but
that is neither done nor tested). The others change only weights or add per-token modules (LoRA,
DoRA, QLoRA, IA3, the bottleneck adapters, BitFit's biases), which act on each token alone and so
pack unchanged.

The engine packs training steps only; evaluation stays padded (sorted by length, it pads little).
"""

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from simulations.methods import names_where

# The methods whose model sees each token independently of the row it sits in (the records'
# `packable`).
PACKABLE = names_where(packable=True)
# How wide a packed row may be (or the batch's longest sequence, if longer). Wider rows leave less
# padding at their ends but cost attention quadratic in their width. Measured on `sentiment`
# (sequences of 4 to 25 tokens, batch 16, one CPU thread, steps interleaved): steps/s over padded
# batches 1.20x with rows as wide as the longest sequence (rows of one or two sequences: 21 % of
# the computed tokens still padding), 1.23x at 32, 1.26x at 48, and about 1.0x with the whole
# batch in one row (224 tokens wide). At 48 tokens a row's attention is still ~2 % of its linear
# layers' work (width / 6·hidden).
ROW_TOKENS = 48


class PackedBatch(NamedTuple):
    """One training batch, packed. (A NamedTuple, not a dataclass: workers/notebook.py copies this
    module's definitions into the reproduce script as source text, without decorators.)"""

    input_ids: torch.Tensor  # rows x width
    position_ids: torch.Tensor  # rows x width, 0 at every sequence's first token
    sequence_ids: torch.Tensor  # rows x width: which sequence of the batch each token is of
    lengths: torch.Tensor  # (sequences,) real tokens of each sequence
    labels: torch.Tensor  # (sequences,)
    tokens: int  # real tokens (what the padded batch's attention_mask sums to)

    @property
    def width(self) -> int:
        return self.input_ids.shape[1]


def fit_rows(lengths: list[int], row_tokens: int) -> list[list[int]]:
    """The sequences' indices put in rows of at most `row_tokens` tokens (raised to the longest
    sequence), first-fit decreasing: each sequence, longest first, into the first row with room.

    Rows as wide as the longest sequence keep every row's attention (quadratic in its width) no
    dearer than a padded row's, but short rows leave room unused; one row of the whole batch makes
    attention quadratic in all its tokens (see ROW_TOKENS).
    """
    width = max(row_tokens, max(lengths))
    rows: list[list[int]] = []
    used: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        row = next((r for r, n in enumerate(used) if n + lengths[i] <= width), len(rows))
        if row == len(rows):
            rows.append([])
            used.append(0)
        rows[row].append(i)
        used[row] += lengths[i]
    return rows


def pack(ids: list[list[int]], labels: list[int], device, pad_id: int, row_tokens: int = ROW_TOKENS) -> PackedBatch:
    """The batch `ids` (token ids of each sequence) packed into rows of at most
    max(row_tokens, longest sequence) tokens (see fit_rows and the module doc)."""
    runs = fit_rows([len(s) for s in ids], row_tokens)
    width = max(sum(len(ids[i]) for i in run) for run in runs)
    input_ids = torch.full((len(runs), width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(runs), width), dtype=torch.long)
    # Padding at a row's end gets its own id (-1 - row): it attends only to itself and no real
    # token attends to it (a query row with nothing to attend to would give NaN in the softmax).
    sequence_ids = -1 - torch.arange(len(runs)).unsqueeze(1).expand(-1, width).clone()
    for row, run in enumerate(runs):
        column = 0
        for i in run:
            n = len(ids[i])
            input_ids[row, column : column + n] = torch.tensor(ids[i])
            position_ids[row, column : column + n] = torch.arange(n)
            sequence_ids[row, column : column + n] = i
            column += n
    return PackedBatch(
        input_ids=input_ids.to(device),
        position_ids=position_ids.to(device),
        sequence_ids=sequence_ids.to(device),
        lengths=torch.tensor([len(s) for s in ids], dtype=torch.long, device=device),
        labels=torch.tensor(labels, dtype=torch.long, device=device),
        tokens=sum(len(s) for s in ids),
    )


def attention_mask(batch: PackedBatch, attn_implementation: str | None, dtype: torch.dtype) -> torch.Tensor:
    """The block-diagonal 4D mask (rows x 1 x width x width) in the form the attention takes:
    boolean (True: attend) for SDPA, additive (0 or the dtype's minimum) for the eager path."""
    same = batch.sequence_ids.unsqueeze(2) == batch.sequence_ids.unsqueeze(1)
    same = same.unsqueeze(1)
    if attn_implementation == "eager":
        return torch.zeros(same.shape, dtype=dtype, device=same.device).masked_fill(~same, torch.finfo(dtype).min)
    return same


def classifier_of(model: nn.Module) -> nn.Module:
    """The BertForSequenceClassification inside the method's wrapping. peft injects its layers
    (LoRA, IA3, the trained copy of the head) into the model's own modules, so calling the inner
    model's modules runs them; the lab's adapters are hooks on those modules too."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def forward(model: nn.Module, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, logits) of the packed batch: what `model(**collate(...))` gives for the padded one."""
    inner = classifier_of(model)
    bert = inner.bert
    mask = attention_mask(batch, bert.config._attn_implementation, bert.embeddings.word_embeddings.weight.dtype)
    hidden = bert(input_ids=batch.input_ids, position_ids=batch.position_ids, attention_mask=mask).last_hidden_state
    return classify(inner, hidden, batch)


def classify(inner: nn.Module, hidden: torch.Tensor, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, logits) from the packed batch's last token states (rows x width x hidden, or its
    rows x width tokens flat): the head reads each sequence's mean token state (workers/head.py),
    the sum of its tokens' states over its length."""
    owner = batch.sequence_ids.reshape(-1)
    real = owner >= 0
    states = hidden.reshape(-1, hidden.shape[-1])[real]
    sums = states.new_zeros(len(batch.labels), states.shape[-1]).index_add_(0, owner[real], states)
    pooled = sums / batch.lengths.unsqueeze(1).to(sums.dtype)
    logits = inner.classifier(inner.dropout(pooled))
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), batch.labels.view(-1)), logits
