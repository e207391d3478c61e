"""long_text="chunks" at prediction: every text cut into windows by the fast tokenizer, every
window scored, and the windows' outputs aggregated per text (`long_text.py` does the cutting
and the maths, shared with training), re-scored in fp32 where a mixed-precision decision is
close.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .. import calibration
from ..long_text import (
    LongText,
    aggregate_windows,
    as_logits,
    encode_windows,
    require_fast_tokenizer,
    resolve_long_text,
    window_counts,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["reading", "chunk_logits", "temperature_applied", "windows_summary"]

# scores a tokenized batch of windows: (encoded, bf16) -> float32 logits in row order
Run = Callable[[dict[str, list[list[int]]], bool], "np.ndarray"]


def reading(
    tokenizer: Any,
    max_length: int,
    problem_type: str,
    is_pair: bool | None,
    long_text: str | None = None,
    stride: int | None = None,
    aggregate: str | None = None,
    defaults: LongText | None = None,
    given_length: bool = True,
) -> LongText:
    """The policy a predict/evaluate call reads with: what it passed over `defaults` (the
    model's), checked against max_length (`given_length`: the caller chose it, rather than
    the model's manifest or limit); chunks need a fast tokenizer."""
    policy = resolve_long_text(
        long_text,
        stride,
        aggregate,
        max_length=max_length,
        special_tokens=tokenizer.num_special_tokens_to_add(pair=bool(is_pair)),
        problem_type=problem_type,
        defaults=defaults,
        length_name=None if given_length else f"max_length={max_length} (the model's)",
    )
    if policy.chunks:
        require_fast_tokenizer(tokenizer)
    return policy


def temperature_applied(manifest: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The manifest as decisions on aggregated probabilities read it: the temperature was
    applied to every window already, so it is left out here (1); the decision threshold stays."""
    if not manifest or not manifest.get("calibration"):
        return dict(manifest) if manifest else None
    entry = {k: v for k, v in manifest["calibration"].items() if k != "temperature"}
    return {**manifest, "calibration": entry}


def chunk_logits(
    first: list[str],
    second: list[str] | None,
    *,
    tokenizer: Any,
    max_length: int,
    policy: LongText,
    run: Run,
    problem_type: str,
    manifest: Mapping[str, Any] | None,
    precision: str,
    chunk_size: int,
    margin: float,
    num_labels: int,
    numbers: list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(per text: the aggregated probabilities as logits at temperature 1 (`as_logits`), the
    windows each text was read in, the positions of the texts re-scored in fp32). `numbers` name the
    texts in errors (default: their positions).

    With precision "mixed" the windows run in bf16, and every text whose aggregated decision
    is within `margin` of going the other way has all its windows scored again in fp32."""
    import numpy as np

    assert policy.stride is not None  # resolved for chunks
    numbers = numbers if numbers is not None else list(range(len(first)))
    temperature = float(((manifest or {}).get("calibration") or {}).get("temperature", 1.0))
    parts, counts = [], []
    for start in range(0, len(first), chunk_size):
        stop = min(start + chunk_size, len(first))
        encoded, owners = encode_windows(
            tokenizer,
            first[start:stop],
            second[start:stop] if second is not None else None,
            max_length,
            policy.stride,
            numbers[start:stop],
        )
        logits = run(encoded, precision in ("bf16", "mixed"))
        probs = aggregate_windows(logits, owners, stop - start, problem_type, temperature, policy.aggregate)
        parts.append(as_logits(probs, problem_type))
        counts.append(window_counts(owners, stop - start))
    out = np.concatenate(parts) if parts else np.empty((0, num_labels), dtype=np.float32)
    windows = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    if precision != "mixed" or not len(first):
        return out, windows, []
    close = np.flatnonzero(calibration.close_calls(out, temperature_applied(manifest), problem_type, margin))
    if len(close):
        again, _, _ = chunk_logits(
            [first[i] for i in close],
            [second[i] for i in close] if second is not None else None,
            tokenizer=tokenizer,
            max_length=max_length,
            policy=policy,
            run=run,
            problem_type=problem_type,
            manifest=manifest,
            precision="fp32",
            chunk_size=chunk_size,
            margin=margin,
            num_labels=num_labels,
        )
        out[close] = again
    return out, windows, close.tolist()


def windows_summary(windows: int, texts: int, max_length: int, policy: LongText) -> str:
    """One line on how the last call read its texts in windows."""
    return (
        f"Read {texts:,} text{'s' if texts != 1 else ''} in {windows:,} window{'s' if windows != 1 else ''} "
        f"of up to {max_length} tokens (stride "
        f"{policy.stride}), aggregated by the {policy.aggregate} of their probabilities."
    )
