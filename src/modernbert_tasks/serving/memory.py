"""The server's memory under traffic: oneDNN's primitive cache, off when serving in fp32.

torch runs some operators through oneDNN (in fp32 on CPU: GELU; under bf16 autocast the
matmuls too), and oneDNN keeps every primitive it creates in a cache keyed by the exact tensor
shapes, up to 1,024 of them. A server sees a new shape with almost every group (texts x padded
tokens: hundreds under load), so that cache grew for minutes, and its long-lived entries,
scattered among the forward pass's short-lived buffers, kept glibc from reusing the freed
memory around them. Measured with `bench/serve_memory.py` (MiniLM, SST-2 test sentences, the
server's group runner without HTTP; docs/benchmarks.md, round 3): RSS grew with every block
of groups that brought new shapes (+28% over 400 groups, 354 shapes) and not at all when the
same groups were run again; with the cache off it stayed flat after the first 100 groups, for
the same time per group.

What the cache saves is a primitive's creation, which each pass then pays: a GELU primitive
took 0.06 ms to create (six a pass for MiniLM, against passes of 5 to 80 ms), but a bf16
matmul 0.2 to 0.3 ms, and under bf16 every linear layer is one (37 a pass for MiniLM). So
the cache is turned off only for a model served in fp32. Under precision "mixed" it stays on,
and memory grows: ideep's own per-shape cache (LRU_CACHE_CAPACITY) and oneDNN's together added
about 16 MiB per new shape for MiniLM (+91% RSS in 2 minutes at 32 clients, docs/benchmarks.md,
round 4). That is why `auto` serves fp32 on a CPU; with both variables set, mixed stays flat at
about fp32's speed.

oneDNN reads ONEDNN_PRIMITIVE_CACHE_CAPACITY once, when it creates its first primitive, so
`serve` sets it after loading the model (loading runs no forward pass) and before the
warm-up, unless the environment sets it already (a user's value wins). In a process that has
already run a model (`create_app` in a notebook, the tests), setting it has no effect:
oneDNN's cache is made by then.
"""

from __future__ import annotations

import os

__all__ = ["PRIMITIVE_CACHE_ENV", "SERVE_PRIMITIVE_CACHE", "bound_primitive_cache"]

PRIMITIVE_CACHE_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
# 0: no cache. A small cache (64) still grew (+11% over 400 groups): evicted and new entries
# land among the pass's buffers all the same.
SERVE_PRIMITIVE_CACHE = 0


def bound_primitive_cache(precision: str, capacity: int = SERVE_PRIMITIVE_CACHE) -> str | None:
    """For a model served in `precision` "fp32": set ONEDNN_PRIMITIVE_CACHE_CAPACITY to
    `capacity` in this process's environment unless it is set. The value in force (None: not
    set, oneDNN's default). Call it before the process's first forward pass."""
    if precision != "fp32":
        return os.environ.get(PRIMITIVE_CACHE_ENV)
    return os.environ.setdefault(PRIMITIVE_CACHE_ENV, str(capacity))
