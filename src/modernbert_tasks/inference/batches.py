"""Forward passes over tokenized texts: longest first, each batch padded to its own longest
text and holding fewer texts when they are long, outputs put back in row order. Shared by
truncated prediction and the windows of long_text="chunks"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["bf16_copy", "forward", "length_batches", "TOKENS_PER_BATCH"]

# padded tokens in one forward pass: 64 texts of 512 tokens, or 4 of 8,192 (ModernBERT's limit)
TOKENS_PER_BATCH = 64 * 512


def bf16_copy(model: Any) -> Any:
    """`model` with its parameters stored in bf16 (buffers, such as rotary frequencies, kept as
    they are), built without a second fp32 copy. Its bf16 pass runs without autocast's casts
    around every op. On a 2-core AMD EPYC with AVX512-BF16, default predict went from 5.40x to
    5.88x the pipeline with it (bench/predict_throughput.py, MiniLM; docs/benchmarks-speed.md)."""
    import copy

    import torch

    memo = {id(p): torch.nn.Parameter(p.detach().bfloat16(), requires_grad=False) for p in model.parameters()}
    return copy.deepcopy(model, memo)


def forward(
    model: Any,
    tokenizer: Any,
    device: torch.device,
    encoded: dict[str, list[list[int]]],
    batch_size: int,
    *,
    bf16: bool,
    bar: Any = None,
) -> np.ndarray:
    """The model's outputs (float32) for every row of `encoded` (token lists per model input),
    in row order; under bf16 autocast with `bf16`. `bar` (tqdm) advances by rows."""
    import numpy as np
    import torch

    from ..errors import ConfigError

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r}; expected a positive integer.")
    out = np.empty((len(encoded["input_ids"]), model.config.num_labels), dtype=np.float32)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    with torch.inference_mode(), autocast:
        for idx in length_batches([len(ids) for ids in encoded["input_ids"]], batch_size):
            batch = tokenizer.pad(
                {key: [values[i] for i in idx] for key, values in encoded.items()}, return_tensors="pt"
            )
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            out[idx] = model(**batch).logits.float().cpu().numpy()
            if bar is not None:
                bar.update(len(idx))
    return out


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Row indices in batches, longest first: each batch pads only to its own longest text, an
    out-of-memory error shows on the first batch rather than the last, and a batch of long
    texts holds fewer of them (at most TOKENS_PER_BATCH padded tokens, one text at least)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, at = [], 0
    while at < len(order):
        size = max(1, min(batch_size, TOKENS_PER_BATCH // max(lengths[order[at]], 1)))
        batches.append(order[at : at + size])
        at += size
    return batches
