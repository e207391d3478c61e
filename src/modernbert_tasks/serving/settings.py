"""`ServeSettings`: the server's limits and batching, checked when they are made."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = ["ServeSettings", "DEFAULTS"]


@dataclass(frozen=True)
class ServeSettings:
    """The server's limits and batching; each default is documented in docs/deploying.md."""

    max_batch_size: int = 64  # inputs grouped into one model call
    max_wait_ms: float = 5.0  # how long the first request of a group waits for company
    max_inputs: int = 256  # inputs in one request
    max_chars: int = 50_000  # characters in one text (ModernBERT reads 8,192 tokens, ~40k chars)
    max_body_bytes: int = 2 * 1024 * 1024  # request body, before parsing
    api_key: str | None = field(default=None, repr=False)  # never printed
    # groups computed at once, each on its own thread with a share of torch's threads (the
    # weights are shared; predicting.py). 2 helps only at steady high load (docs/benchmarks.md)
    batch_workers: int = 1
    # tokens of each text in the startup warm-up group of max_batch_size texts (0: none); the
    # allocator then holds part of what serving needs (RSS +2 to +15% under load, not +38%)
    warmup_length: int = 128

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_inputs", "max_chars", "max_body_bytes", "batch_workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r}; expected a positive integer.")
        warm = self.warmup_length
        if isinstance(warm, bool) or not isinstance(warm, int) or warm < 0:
            raise ConfigError(
                f"warmup_length={warm!r}; expected a number of tokens, 0 or more (0: no "
                "warm-up; default 128)."
            )
        wait = self.max_wait_ms
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= 10_000:
            raise ConfigError(
                f"max_wait_ms={wait!r}; expected a number of milliseconds from 0 to 10000 (default 5)."
            )
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError(
                "The API key is empty; set the environment variable to a "
                "non-empty secret, or serve without api_key_env."
            )


DEFAULTS = ServeSettings()
