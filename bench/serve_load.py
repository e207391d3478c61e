"""Server load: `modernbert-tasks serve` under N concurrent clients against in-process predict.

Starts the server on loopback (a subprocess, so clients and server do not share a GIL), runs
N clients (httpx, one text per request) for T seconds or a bounded number of requests, then
prints throughput, p50/p95/p99 latency, mean batch size (from /metrics), errors and the
server's RSS growth, and the ratio to `predict` on the same texts in this process, alone.

    python bench/serve_load.py                                  # MiniLM, 32 clients, 30 s
    python bench/serve_load.py --clients 8 --seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common

COLUMNS = [
    "configuration",
    "texts/s",
    "ratio",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "mean batch",
    "errors",
    "RSS growth %",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=common.MINILM)
    p.add_argument(
        "--texts",
        type=Path,
        default=None,
        help="TSV with a 'sentence' column (default: ../shared SST-2 test.tsv)",
    )
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--clients", type=int, nargs="+", default=[32])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--max-requests", type=int, default=20_000)
    p.add_argument("--max-batch-size", type=int, default=64)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--precision", default="fp32")
    return p.parse_args(argv)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _start_server(model_dir: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modernbert_tasks",
            "serve",
            str(model_dir),
            "--port",
            "0",
            "--max-batch-size",
            str(args.max_batch_size),
            "--max-wait-ms",
            str(args.max_wait_ms),
            "--precision",
            args.precision,
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    while True:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit("FAIL: the server did not start")
        found = re.search(r"at http://[^:]+:(\d+)\s", line)
        if found:
            return proc, f"http://127.0.0.1:{found[1]}"


async def _load(url: str, texts: list[str], clients: int, seconds: float, max_requests: int):
    import httpx

    latencies, errors, sent = [], 0, 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def worker(k: int) -> None:
            nonlocal errors, sent
            i = k
            while time.perf_counter() < stop and sent < max_requests:
                sent += 1
                start = time.perf_counter()
                try:
                    r = await client.post(url + "/predict", json={"inputs": texts[i % len(texts)]})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok
                i += clients

        start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(clients)))
        wall = time.perf_counter() - start
    return latencies, errors, wall


def _batch_mean(url: str) -> float:
    import httpx

    text = httpx.get(url + "/metrics").text
    total = float(re.search(r"^modernbert_tasks_batch_size_sum (\S+)", text, re.M)[1])
    count = float(re.search(r"^modernbert_tasks_batch_size_count (\S+)", text, re.M)[1])
    return total / max(count, 1)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.texts is None:
        common.require_shared("serve_load (default texts)")
    import torch

    from modernbert_tasks import load_finetuned

    print(common.machine_header("server load: modernbert-tasks serve vs in-process predict"))
    print(f"cpu capability: {torch.backends.cpu.get_cpu_capability()}")
    texts = [t for t, _ in common.read_tsv(args.texts or common.SST2_DIR / "test.tsv")]
    texts = texts[: args.limit]
    model_dir = common.prepare_model(args.model, common.scratch_dir(None, "bench-serve-"))
    print(
        f"model: {args.model}; {len(texts)} texts; server --max-batch-size "
        f"{args.max_batch_size} --max-wait-ms {args.max_wait_ms} --precision {args.precision}"
    )

    rows = []
    for clients in args.clients:
        proc, url = _start_server(model_dir, args)
        try:
            asyncio.run(_load(url, texts[:64], 4, 2.0, 200))  # warm-up
            before = _rss_mib(proc.pid)
            lat, errors, wall = asyncio.run(_load(url, texts, clients, args.seconds, args.max_requests))
            growth = 100 * (_rss_mib(proc.pid) - before) / before
            mean_batch = _batch_mean(url)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        q = statistics.quantiles(lat, n=100)
        rows.append(
            {
                "configuration": f"serve, {clients} clients, 1 text/request",
                "texts/s": len(lat) / wall,
                "p50 ms": 1000 * q[49],
                "p95 ms": 1000 * q[94],
                "p99 ms": 1000 * q[98],
                "mean batch": mean_batch,
                "errors": errors,
                "RSS growth %": growth,
                "_n": len(lat),
            }
        )
        print(f"  {clients} clients: {len(lat)} requests in {wall:.1f} s")

    # in-process predict on the same texts, after the server has stopped (alone on the CPU)
    model = load_finetuned(model_dir, device="cpu", precision=args.precision)
    model.predict(texts[:64], show_progress=False)
    seconds, _ = common.elapsed(lambda: model.predict(texts, show_progress=False))
    base = len(texts) / seconds
    table = [{"configuration": "in-process predict (batch_size=64)", "texts/s": base, "ratio": "1.00x"}]
    for row in rows:
        row["ratio"] = f"{row['texts/s'] / base:.2f}x"
        table.append(row)
    print()
    print(common.format_table(table, COLUMNS))
    print(f"end: {common.load_line()}")


if __name__ == "__main__":
    main()
