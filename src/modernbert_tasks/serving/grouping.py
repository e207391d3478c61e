"""A group of concurrent requests split into forward passes of texts of similar length.

`predict` pads every batch to its longest text. On a whole file that costs little: it sorts
all the texts by length first, so neighbours in a batch have nearly the same length. A server
group is a handful of requests of random lengths (SST-2 sentences run from 3 to 64 tokens):
padded as one batch, half of its tokens were padding, and MiniLM answered at 0.5x of
predict's speed on the same texts before any HTTP (docs/benchmarks.md). Splitting the
length-sorted group into runs of similar length removes most of the padding, at the price of
one more forward pass per run; `split_by_length` picks the cut points that make the total
cheapest under `cost(run) = FORWARD_COST_TOKENS + texts x longest`.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["split_by_length", "FORWARD_COST_TOKENS"]

# What one more forward pass costs, in padded tokens. MiniLM on a 2-core Xeon: a pass of one
# 8-token text took ~5 ms and each further token ~0.1 ms (bench/serve_load.py --forward-cost),
# and each run is a predict call of its own (tokenize, pad, decode: ~2 ms more). Under load
# 160 answered faster than 48 and than no split at all (docs/benchmarks.md). A larger model
# costs more per token, so for it this over-counts the fixed cost and splits a little less
# than it could: never more padding than one batch would have.
FORWARD_COST_TOKENS = 160


def split_by_length(
    lengths: Sequence[int], overhead: int | None = None, max_size: int | None = None
) -> list[list[int]]:
    """Indices into `lengths` in runs, longest first, each run a forward pass: the partition
    of the length-sorted order into contiguous runs that minimises the padded tokens plus
    `overhead` per run (an exact dynamic programme, O(n^2): a group holds tens of texts).
    `overhead` defaults to FORWARD_COST_TOKENS; `max_size` caps a run's texts."""
    overhead = FORWARD_COST_TOKENS if overhead is None else overhead
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    n = len(order)
    if n == 0:
        return []
    cap = max_size or n
    best = [0.0] + [float("inf")] * n  # best[j]: the cheapest split of order[:j]
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(max(0, j - cap), j):
            # run order[i:j] is padded to its first (longest) text
            cost = best[i] + overhead + (j - i) * lengths[order[i]]
            if cost < best[j]:
                best[j], cut[j] = cost, i
    runs: list[list[int]] = []
    j = n
    while j > 0:
        runs.append(order[cut[j] : j])
        j = cut[j]
    return runs[::-1]
