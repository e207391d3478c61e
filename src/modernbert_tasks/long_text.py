"""Texts longer than the model's window: the policy (`long_text`, `stride`, `aggregate`) checked
once, and the windows' outputs put back together per text. numpy only, imported lazily.

"truncate" reads a text up to max_length tokens. "chunks" reads all of it: the fast tokenizer
cuts it into windows of max_length tokens, consecutive windows sharing `stride` tokens
(`return_overflowing_tokens`), the model scores each window, and the text's output is

* classification: the mean (or, with aggregate="max", the per-label maximum) of the windows'
  *calibrated* probabilities: the stored temperature divides each window's logits before the
  softmax/sigmoid. The per-label maximum of a single-label task is renormalised to sum to 1;
  multi-label labels are aggregated each on its own.
* regression: the mean of the windows' values (aggregate="max" is refused).

Training (`train_long_text="chunks"`) and prediction share these functions, so a model's
reported metrics are the ones `evaluate` reproduces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, DataError, hint

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "LONG_TEXT_MODES",
    "AGGREGATES",
    "STRIDE_DIVISOR",
    "LongText",
    "resolve_long_text",
    "default_stride",
    "encode_windows",
    "require_fast_tokenizer",
    "aggregate_windows",
    "window_counts",
    "as_logits",
    "document_labels",
    "fit_window_temperature",
]

LONG_TEXT_MODES = ("truncate", "chunks")
AGGREGATES = ("mean", "max")
# default stride: an eighth of a window, so a sentence cut at a window's edge is read whole,
# in context, by the next window (16 tokens of 128; 1,024 of ModernBERT's 8,192)
STRIDE_DIVISOR = 8
EPS = 1e-12  # probabilities are kept in [EPS, 1 - EPS] before log/logit


@dataclass(frozen=True)
class LongText:
    """How prediction reads a text longer than max_length: mode 'truncate', or 'chunks' with a
    resolved `stride` (tokens shared by consecutive windows) and `aggregate` ('mean'/'max')."""

    mode: str = "truncate"
    stride: int | None = None
    aggregate: str = "mean"

    @property
    def chunks(self) -> bool:
        return self.mode == "chunks"

    def to_dict(self) -> dict[str, Any]:
        """The manifest's "prediction" keys: long_text, plus stride and aggregate for chunks."""
        if not self.chunks:
            return {"long_text": self.mode}
        return {"long_text": self.mode, "stride": self.stride, "aggregate": self.aggregate}


def default_stride(max_length: int) -> int:
    return max_length // STRIDE_DIVISOR


def _name(python: str, cli: str, value: Any) -> str:
    return hint(f"{python}={value!r}", f"{cli} {value}")


def resolve_long_text(
    long_text: str | None,
    stride: int | None,
    aggregate: str | None,
    *,
    max_length: int,
    special_tokens: int,
    problem_type: str | None = None,
    defaults: LongText | None = None,
    length_name: str | None = None,
    mode_name: tuple[str, str] = ("long_text", "--long-text"),
) -> LongText:
    """The policy from what the caller passed (None: not passed) over `defaults` (a model's
    manifest; truncate without one), checked against `max_length` before any text is read.

    A stride is the overlap of consecutive windows, so it must leave each window something new:
    0 <= stride < max_length - special_tokens. `stride` or `aggregate` with 'truncate' is
    refused (they would be ignored). `special_tokens` 0: not known yet (no tokenizer).
    `length_name`: how errors name max_length (default: as an argument, max_length=N or
    --max-length N); `mode_name`: how they name long_text (Python, CLI)."""
    base = defaults or LongText()
    mode = base.mode if long_text is None else long_text
    if mode not in LONG_TEXT_MODES:
        raise ConfigError(
            f"{_name(*mode_name, mode)} is not supported; expected 'truncate' (read "
            "a text up to max_length tokens) or 'chunks' (read it whole, in windows, and aggregate)."
        )
    if mode == "truncate":
        given = [
            _name(py, cli, v)
            for py, cli, v in (("stride", "--stride", stride), ("aggregate", "--aggregate", aggregate))
            if v is not None
        ]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} only appl{'y' if len(given) > 1 else 'ies'} to reading "
                "long texts in windows, and "
                f"{_name(*mode_name, 'truncate')} reads each text once, up to max_length. "
                f"Pass {_name(*mode_name, 'chunks')} too, or drop them."
            )
        return LongText()
    how = aggregate if aggregate is not None else (base.aggregate if base.chunks else "mean")
    if how not in AGGREGATES:
        raise ConfigError(
            f"{_name('aggregate', '--aggregate', how)} is not supported; expected 'mean' (the "
            "mean of the windows' calibrated probabilities) or 'max' (per label, the largest)."
        )
    if problem_type == "regression" and how == "max":
        raise ConfigError(
            f"{_name('aggregate', '--aggregate', how)} on a regression model: its windows' values "
            f"are averaged. Drop {hint('aggregate', '--aggregate')} (or pass 'mean')."
        )
    step = stride if stride is not None else base.stride if base.chunks else None
    room = max_length - special_tokens  # the text tokens one window holds
    if step is None:
        step = min(default_stride(max_length), max(room - 1, 0))
    length = length_name or hint(f"max_length={max_length}", f"--max-length {max_length}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ConfigError(
            f"{_name('stride', '--stride', step)}; expected an integer >= 0: how many tokens "
            f"consecutive windows share (default: max_length // {STRIDE_DIVISOR})."
        )
    if step >= room:
        holds = f"{max_length} minus {special_tokens} special tokens = {room}" if special_tokens else length
        raise ConfigError(
            f"{_name('stride', '--stride', step)} with {length}: consecutive windows share "
            f"`stride` tokens, so the stride must be smaller than what a window holds "
            f"({holds}); expected 0 to {max(room - 1, 0)}. Pass "
            f"{_name('stride', '--stride', default_stride(max_length))}, or leave it out "
            f"(default: max_length // {STRIDE_DIVISOR})."
        )
    return LongText("chunks", step, how)


def require_fast_tokenizer(tokenizer: Any, mode_name: tuple[str, str] = ("long_text", "--long-text")) -> None:
    """Chunks need the fast (Rust) tokenizer's overflowing windows."""
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            f"{_name(*mode_name, 'chunks')} needs a fast (Rust) tokenizer to cut texts into "
            f"windows, and this model's is {type(tokenizer).__name__}. Save the model with its "
            f"tokenizer.json, or read long texts with {_name(*mode_name, 'truncate')}."
        )


# --- texts into windows ----------------------------------------------------------------
def _check_pair_room(
    tokenizer: Any,
    first: list[str],
    second: list[str],
    max_length: int,
    stride: int,
    numbers: list[int],
    what: str,
) -> None:
    """Refuse a pair whose first text leaves its second no window longer than the stride."""
    a = tokenizer(first, add_special_tokens=False, return_attention_mask=False, verbose=False)["input_ids"]
    b = tokenizer(second, add_special_tokens=False, return_attention_mask=False, verbose=False)["input_ids"]
    special = tokenizer.num_special_tokens_to_add(pair=True)
    for i, (ids_a, ids_b) in enumerate(zip(a, b, strict=True)):
        room = max_length - special - len(ids_a)
        if len(ids_a) + len(ids_b) + special > max_length and room <= stride:
            raise DataError(
                f"{what} {numbers[i]}: its first text has {len(ids_a):,} tokens, which leaves "
                f"{max(room, 0)} of max_length={max_length} for windows of its second text, "
                f"and a window must hold more than stride={stride}. Chunks keep a pair's first "
                "text whole and cut only the second: shorten the first text, lower the stride, "
                f"or pass {hint('long_text=' + repr('truncate'), '--long-text truncate')}."
            )


def encode_windows(
    tokenizer: Any,
    first: list[str],
    second: list[str] | None,
    max_length: int,
    stride: int,
    numbers: list[int] | None = None,
    what: str = "Input",
) -> tuple[dict[str, list[list[int]]], list[int]]:
    """(the windows as the model takes them, the text each window belongs to), from the fast
    tokenizer (`return_overflowing_tokens`, `stride`, `overflow_to_sample_mapping`).

    A pair keeps its first text whole in every window and cuts only the second ("only_second",
    as question answering reads a question against a long context); a first text that leaves
    the second no window longer than the stride is refused, naming the pair as
    f"{what} {numbers[i]}" (numbers default to positions)."""
    if second is not None:
        numbers = numbers if numbers is not None else list(range(len(first)))
        _check_pair_room(tokenizer, first, second, max_length, stride, numbers, what)
    enc = tokenizer(
        first,
        second,
        truncation="only_second" if second is not None else True,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        padding=False,
        return_attention_mask=False,
    )
    owners = [int(i) for i in enc["overflow_to_sample_mapping"]]
    # only what the model takes, as in training (ModernBERT: no token_type_ids)
    return {k: enc[k] for k in tokenizer.model_input_names if k in enc}, owners


# --- windows back to texts ----------------------------------------------------------------
def window_counts(owners: Any, n: int) -> np.ndarray:
    """How many windows each of `n` texts was read in."""
    import numpy as np

    return np.bincount(np.asarray(owners, dtype=np.int64), minlength=n)


def aggregate_windows(
    window_logits: np.ndarray,
    owners: Any,
    n: int,
    problem_type: str,
    temperature: float = 1.0,
    how: str = "mean",
) -> np.ndarray:
    """Per text (rows 0..n-1), from its windows' outputs (`owners[i]`: the text of window i):
    classification the mean or per-label max of the calibrated probabilities (float64, a
    single-label max renormalised), regression the mean value. A text with no window gets a
    row of NaN."""
    import numpy as np

    from .calibration import probabilities

    owners = np.asarray(owners, dtype=np.int64)
    logits = np.asarray(window_logits, dtype=np.float64)
    values = logits if problem_type == "regression" else probabilities(logits, problem_type, temperature)
    out = np.full((n, values.shape[1]), np.nan)
    counts = window_counts(owners, n)
    seen = counts > 0
    if how == "max" and problem_type != "regression":
        best = np.full_like(out, -np.inf)
        np.maximum.at(best, owners, values)
        out[seen] = best[seen]
        if problem_type == "single_label_classification":
            out[seen] /= out[seen].sum(axis=1, keepdims=True)
        return out
    sums = np.zeros_like(out)
    np.add.at(sums, owners, values)
    out[seen] = sums[seen] / counts[seen, None]
    return out


def as_logits(aggregated: np.ndarray, problem_type: str) -> np.ndarray:
    """Aggregated probabilities as logits that give them back at temperature 1 (log p for
    softmax, logit p for sigmoid), so decisions, metrics and losses read them as they read a
    model's outputs; regression values pass through. float32, as model outputs are."""
    import numpy as np

    if problem_type == "regression":
        return np.asarray(aggregated, dtype=np.float32)
    p = np.clip(aggregated, EPS, 1 - EPS)
    z = np.log(p) if problem_type != "multi_label_classification" else np.log(p) - np.log1p(-p)
    return z.astype(np.float32)


def document_labels(window_labels: np.ndarray, owners: Any, n: int) -> np.ndarray:
    """Each text's label, from its windows' (every window carries its text's label)."""
    import numpy as np

    owners = np.asarray(owners, dtype=np.int64)
    first = np.full(n, -1, dtype=np.int64)
    order = np.arange(len(owners))[::-1]
    first[owners[order]] = order  # the last write per text is its first window
    return np.asarray(window_labels)[first]


def fit_window_temperature(
    window_logits: np.ndarray, owners: Any, n: int, labels: np.ndarray, problem_type: str, how: str
) -> float:
    """The temperature that minimises the texts' negative log-likelihood when each window is
    divided by it before aggregation (a bounded 1-D search on log T, as
    `calibration.fit_temperature`), never worse than T = 1."""
    import math

    from scipy.optimize import minimize_scalar

    from .calibration import TEMPERATURE_RANGE, nll

    def loss(t: float) -> float:
        probs = aggregate_windows(window_logits, owners, n, problem_type, t, how)
        return nll(as_logits(probs, problem_type).astype("float64"), labels, problem_type)

    lo, hi = (math.log(t) for t in TEMPERATURE_RANGE)
    found = minimize_scalar(
        lambda log_t: loss(math.exp(log_t)), bounds=(lo, hi), method="bounded", options={"xatol": 1e-4}
    )
    best = math.exp(found.x)
    return best if loss(best) <= loss(1.0) else 1.0
