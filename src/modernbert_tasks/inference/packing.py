"""Packed forward passes: several texts laid end to end in one row, each seeing only itself.

A server group holds the texts of requests that arrived together, of random lengths. Padded
as one batch, half its tokens were padding; split into runs of similar length, each run paid
a forward pass's fixed cost. Packed, a group of 16 SST-2 test sentences is one pass over
rows of at most 64 tokens with almost no padding: MiniLM answered at 0.87x of `predict`'s
sorted batches per text, where the split answered at 0.64x (bench/serve_groups.py, 2-core AMD
EPYC, docs/benchmarks.md).

The answers are each text's own: a block-diagonal attention mask keeps every text to its
own tokens (ModernBERT's sliding-window layers keep their window inside it), positions
restart at 0 for each text, and each text is pooled from its own tokens, as the model's head
pools a row. Its logits equal those of the text run alone up to float rounding (1.4e-6 on
MiniLM's). Only models whose encoder and head are known here are packed (BERT and ModernBERT
sequence classifiers, with sdpa or eager attention); others take `batches.forward`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .batches import length_batches

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["ROW_TOKENS", "can_pack", "forward", "pack_rows"]

# The width of a packed row (a longer text has a row of its own). Attention over a row grows with its
# square, and CPU attention under a mask is slow: for MiniLM on SST-2, rows of 64 tokens
# answered at 0.87x of predict's batches, of 96 at 0.77x, of 128 at 0.73x (bench/serve_groups.py).
ROW_TOKENS = 64


def can_pack(model: Any) -> bool:
    """Whether `forward` knows `model`'s encoder and head (and its attention takes a mask)."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) not in ("sdpa", "eager"):
        return False
    kind = type(model).__name__
    if kind == "BertForSequenceClassification":
        return getattr(model.bert, "pooler", None) is not None and getattr(
            config, "position_embedding_type", "absolute"
        ) in ("absolute", None)
    if kind == "ModernBertForSequenceClassification":
        return config.classifier_pooling in ("cls", "mean")
    return False


def pack_rows(lengths: Sequence[int], width: int) -> list[list[int]]:
    """Indices into `lengths` in rows of at most `width` tokens (a longer text fills a row of
    its own): first fit, longest first, which leaves little room unused."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        row = next((r for r, free in enumerate(room) if free >= lengths[i]), None)
        if row is None:
            rows.append([])
            room.append(max(width, lengths[i]))
            row = len(rows) - 1
        rows[row].append(i)
        room[row] -= lengths[i]
    return rows


def forward(
    model: Any, encoded: dict[str, list[list[int]]], device: torch.device, row_tokens: int = ROW_TOKENS
) -> np.ndarray:
    """The model's outputs (float32) for every row of `encoded`, in row order, from packed
    passes: rows of at most `row_tokens` tokens, as many a pass as `batches.TOKENS_PER_BATCH`
    allows. A longer text takes a row of its own, in passes of their own, so short rows are
    never padded (nor their masks widened) to a long text."""
    import numpy as np
    import torch

    lengths = [len(ids) for ids in encoded["input_ids"]]
    out = np.empty((len(lengths), model.config.num_labels), dtype=np.float32)
    if not lengths:
        return out
    rows = pack_rows(lengths, row_tokens)
    used = [sum(lengths[i] for i in row) for row in rows]
    packed = [r for r, n in enumerate(used) if n <= row_tokens]
    alone = [r for r, n in enumerate(used) if n > row_tokens]
    with torch.inference_mode():
        for part in (packed, alone):
            for batch in length_batches([used[r] for r in part], max(len(part), 1)):
                members = [rows[part[b]] for b in batch]
                logits = _packed_pass(model, encoded, members, device)
                out[[i for row in members for i in row]] = logits.float().cpu().numpy()
    return out


def _packed_pass(
    model: Any, encoded: dict[str, list[list[int]]], rows: list[list[int]], device: torch.device
) -> torch.Tensor:
    """Logits for the texts of `rows`, in the order the rows list them."""
    import torch

    width = max(sum(len(encoded["input_ids"][i]) for i in row) for row in rows)
    shape = (len(rows), width)
    keys = [key for key in encoded if key != "attention_mask"]  # the mask is made here
    inputs = {key: torch.zeros(shape, dtype=torch.long) for key in keys}
    positions = torch.zeros(shape, dtype=torch.long)
    text = torch.full(shape, -1, dtype=torch.long)  # which text a token belongs to; -1: padding
    spans: list[tuple[int, int, int]] = []  # (row, start, end) of each text, in row order
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            n = len(encoded["input_ids"][i])
            for key in keys:
                inputs[key][r, at : at + n] = torch.tensor(encoded[key][i])
            positions[r, at : at + n] = torch.arange(n)
            text[r, at : at + n] = i
            spans.append((r, at, at + n))
            at += n
    # a padding token attends to itself only, so no row of the mask is empty
    pad_self = torch.eye(width, dtype=torch.bool) & (text[:, :, None] < 0)
    same = (text[:, :, None] == text[:, None, :]) & (text[:, :, None] >= 0) | pad_self
    dtype = next(model.parameters()).dtype
    inputs = {key: value.to(device) for key, value in inputs.items()}
    positions = positions.to(device)
    if type(model).__name__ == "BertForSequenceClassification":
        hidden = model.bert(
            **inputs, attention_mask=_additive(same, dtype, device), position_ids=positions
        ).last_hidden_state
        first = torch.stack([hidden[r, start] for r, start, _ in spans])
        return model.classifier(model.dropout(model.bert.pooler(first[:, None, :])))
    # ModernBERT: its sliding-window layers see at most config.sliding_window tokens either side
    index = torch.arange(width)
    near = (index[:, None] - index[None, :]).abs() <= model.config.sliding_window
    masks = {
        "full_attention": _additive(same, dtype, device),
        "sliding_attention": _additive(same & near | pad_self, dtype, device),
    }
    hidden = model.model(**inputs, attention_mask=masks, position_ids=positions).last_hidden_state
    if model.config.classifier_pooling == "cls":
        pooled = torch.stack([hidden[r, start] for r, start, _ in spans])
    else:
        pooled = torch.stack([hidden[r, start:end].mean(dim=0) for r, start, end in spans])
    return model.classifier(model.drop(model.head(pooled)))


def _additive(allowed: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A (rows, 1, width, width) mask to add to the attention scores, as eager and sdpa take it."""
    import torch

    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None].to(device)
