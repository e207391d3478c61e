"""A training step that reuses its memory instead of asking the kernel for fresh pages.

Every step of a plain Trainer frees the gradients (`zero_grad` sets them to None) and the
activations, and glibc hands large freed blocks straight back to the kernel. The next step
allocates them again, and the kernel zero-fills every new page: on a 2-core CPU, ModernBERT-base
spent more system time than compute time per step (bench/train_throughput.py prints the share).

* `keeping_freed_memory()` tells glibc's malloc (Linux) to keep freed blocks up to 32 MiB for
  reuse while training runs, and returns the memory to the system afterwards.
* `KeepGradientBuffers` keeps the gradient tensors glibc would still hand back (32 MiB or more:
  ModernBERT's token-embedding gradient) alive between steps and gives them back, zeroed,
  before the next step's backward, which then accumulates into them. The update is the same:
  autograd adds into a zero buffer what it would have put in a new one. Smaller gradients are
  left to the allocator, which now reuses their blocks: a kept buffer costs a zeroing and an
  accumulating pass per step, a reused block neither. Only parameters that had a gradient in
  the previous step get a buffer, so a parameter without one is still skipped by the
  optimizer as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Iterator
from typing import Any

from transformers import TrainerCallback

__all__ = ["KeepGradientBuffers", "keeping_freed_memory", "kept_gradient_min_bytes"]

logger = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h) and the values used while training
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for its dynamic threshold (64-bit)
_TRIM_WHILE_TRAINING = 2**31 - 1  # (mallopt takes an int) never trim the heap top in training
_TRIM_AFTER = 2 * _MMAP_THRESHOLD  # where glibc's dynamic rule would leave it


class KeepGradientBuffers(TrainerCallback):
    """Reuse last step's gradient tensors of at least `min_bytes`: hand them back zeroed at
    each step's start."""

    def __init__(self, min_bytes: int = 0) -> None:
        self.min_bytes = min_bytes
        self.buffers: list[tuple[Any, Any]] = []
        self.large: list[Any] | None = None  # the parameters big enough, found once per run

    def on_train_begin(self, args, state, control, **kwargs):
        self.large = None  # a search trial or a new train() may bring another model

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if model is None:
            return
        if self.large is None:
            self.large = [p for p in model.parameters() if p.numel() * p.element_size() >= self.min_bytes]
        self.buffers = [(p, p.grad) for p in self.large if p.grad is not None]

    def on_step_begin(self, args, state, control, **kwargs):
        import torch

        if not self.buffers:
            return
        grads = [grad for param, grad in self.buffers if param.grad is None]
        with torch.no_grad():
            torch._foreach_zero_(grads)
        for param, grad in self.buffers:
            if param.grad is None:
                param.grad = grad

    def on_train_end(self, args, state, control, **kwargs):
        self.buffers = []  # the trained model's gradients are freed as before


def _glibc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:  # musl or no libc found: nothing to tune
        return None


def kept_gradient_min_bytes() -> int:
    """The smallest gradient worth a kept buffer: glibc's largest mmap threshold where
    `keeping_freed_memory` can tune it (smaller blocks are then reused by malloc), else every
    gradient."""
    return _MMAP_THRESHOLD if _glibc() is not None else 0


@contextlib.contextmanager
def keeping_freed_memory(enabled: bool = True) -> Iterator[bool]:
    """Inside the block, glibc keeps freed blocks for reuse; after it, memory goes back to the
    system (malloc_trim). Yields whether the allocator was tuned (False off glibc)."""
    libc = _glibc() if enabled else None
    if libc is None:
        yield False
        return
    tuned = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1
    tuned = libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_WHILE_TRAINING) == 1 and tuned
    try:
        yield tuned
    finally:
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_AFTER)
        libc.malloc_trim(0)
