"""What makes the server's memory grow: its group runner in-process, no HTTP, RSS against the
number of distinct forward-pass shapes seen.

Runs `serving.GroupRunner` (what the server runs for each group) on a worker thread, as the
server does, over random groups of SST-2 test sentences in phases, and prints after every
block of groups: RSS, glibc's heap (in use, free but kept, mmapped: mallinfo2), Python's own
allocations (tracemalloc, with --trace) and how many distinct (texts, padded tokens) shapes the
forward passes have had. The phases tell apart a cache that grows with new shapes from an
allocator that grows with time:

    new       random groups (new shapes keep coming for a while)
    replay    the groups of the first phase again, in the same order (no new shape)
    fresh     random groups from another seed (new shapes, if any are left)

    python bench/serve_memory.py --groups 600 --group-size 8 24
    ONEDNN_PRIMITIVE_CACHE_CAPACITY=0 python bench/serve_memory.py   # one setting per process
"""

from __future__ import annotations

import argparse
import ctypes
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import common


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def heap_mib() -> dict[str, float]:
    """glibc's heap, all arenas: in use, free but kept, and mmapped blocks, in MiB."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    mib = 2**20
    return {"in use": info.uordblks / mib, "free kept": info.fordblks / mib, "mmapped": info.hblkhd / mib}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=common.MINILM)
    p.add_argument(
        "--texts", type=Path, default=None, help="TSV with a 'sentence' column (default: SST-2 test.tsv)"
    )
    p.add_argument("--groups", type=int, default=600, help="groups per phase")
    p.add_argument("--every", type=int, default=100, help="print every N groups")
    p.add_argument("--group-size", type=int, nargs=2, default=[8, 24], metavar=("MIN", "MAX"))
    p.add_argument("--phases", nargs="+", default=["new", "replay", "fresh"])
    p.add_argument("--warmup-length", type=int, default=128, help="the server's warm-up (0: none)")
    p.add_argument("--trace", action="store_true", help="tracemalloc: Python's allocations")
    p.add_argument("--precision", choices=["fp32", "mixed"], default="fp32", help="the served precision")
    p.add_argument(
        "--onednn-cache",
        type=int,
        default=None,
        help="set ONEDNN_PRIMITIVE_CACHE_CAPACITY after importing torch, before the first pass",
    )
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args.texts is None:
        common.require_shared("serve_memory (default texts)")
    import os

    import torch

    if args.onednn_cache is not None:  # as the server does: read by oneDNN at its first primitive
        os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(args.onednn_cache)
    from modernbert_tasks import load_finetuned
    from modernbert_tasks.serving.metrics import Metrics
    from modernbert_tasks.serving.predicting import GroupRunner

    print(common.machine_header("server memory: GroupRunner in-process, by shapes seen"))
    capability = torch.backends.cpu.get_cpu_capability()
    print(f"cpu capability: {capability}; torch threads {torch.get_num_threads()}")
    work = common.scratch_dir(None, "bench-servemem-")
    model = load_finetuned(common.prepare_model(args.model, work), device="cpu", precision=args.precision)
    texts = [t for t, _ in common.read_tsv(args.texts or common.SST2_DIR / "test.tsv")]
    runner = GroupRunner(model, Metrics(), 64, 1)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
    shapes: set[tuple[int, int]] = set()

    def counted(module, a, kw):  # every encoder pass's (rows, padded tokens), packed or not
        ids = kw.get("input_ids", a[0] if a else None)
        shapes.add(tuple(ids.shape))

    # the encoder, not the whole model: a packed pass (inference/packing.py) calls it directly
    model.model.base_model.register_forward_pre_hook(counted, with_kwargs=True)
    if args.warmup_length:
        pool.submit(runner.warm_up, args.warmup_length).result()
    if args.trace:
        import tracemalloc

        tracemalloc.start()

    def groups(seed: int) -> list[list[str]]:
        rng = random.Random(seed)
        sizes = [min(rng.randint(*args.group_size), len(texts)) for _ in range(args.groups)]
        return [rng.sample(texts, k) for k in sizes]

    first = groups(1)
    plan = {"new": first, "replay": first, "fresh": groups(2)}
    start = common.rss_mib()
    print(f"after load and warm-up: RSS {start:.1f} MiB, {len(shapes)} shapes, heap {heap_mib()}")
    header = "phase    groups  shapes  RSS MiB  growth  " + "  ".join(f"{k:>9}" for k in heap_mib())
    print(header + ("  python MiB" if args.trace else "") + "  s")
    t0 = last = time.perf_counter()
    for phase in args.phases:
        for i, group in enumerate(plan[phase], 1):
            pool.submit(runner, group, False).result()
            if i % args.every == 0:
                rss = common.rss_mib()
                heap = "  ".join(f"{v:9.1f}" for v in heap_mib().values())
                growth = 100 * (rss - start) / start
                line = f"{phase:8} {i:6}  {len(shapes):6}  {rss:7.1f}  {growth:+5.1f}%  {heap}"
                if args.trace:
                    line += f"  {tracemalloc.get_traced_memory()[0] / 2**20:10.1f}"
                now = time.perf_counter()
                line += f"  {now - t0:.0f} ({1000 * (now - last) / args.every:.1f} ms/group)"
                print(line, flush=True)
                last = now
    print(f"end: {common.load_line()}")


if __name__ == "__main__":
    main()
