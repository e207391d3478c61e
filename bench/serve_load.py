"""Server load: `modernbert-tasks serve` under N concurrent clients against in-process predict.

Starts the server on loopback (a subprocess), drives it from a second subprocess with N
concurrent clients, one text per request, for T seconds or a bounded number of requests, then
prints throughput, p50/p95/p99 latency, the mean group size (from /metrics), errors, requests
never answered, the server's RSS growth, where the CPU went (the server's event-loop thread,
its model threads, the client), and the ratio to `FineTunedModel.predict` on the same texts
at the same precision in this process, alone (the best of three passes).

The default client is a plain asyncio HTTP/1.1 client with one keep-alive connection per
simulated user: it costs ~0.1 ms of CPU a request, where httpx costs ~3 ms, which on a
2-core machine is CPU the server then lacks (`--client httpx` measures with it).

    python bench/serve_load.py                                  # MiniLM, 32 and 8 clients, 30 s
    python bench/serve_load.py --batch-workers 1 2              # one model thread vs two
    python bench/serve_load.py --clients 32 --seconds 120 --rss-every 10   # memory over 2 min
    python bench/serve_load.py --forward-cost                   # the cost model grouping.py uses
    git archive v1 src | tar -x -C /tmp/old                      # before/after in one run:
    python bench/serve_load.py --variant before src=/tmp/old --variant after
    python bench/serve_load.py --variant plain --variant no-warm-up args=--warmup-length,0
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
    "p99/p50",
    "mean group",
    "errors",
    "dropped",
    "loop ms/req",
    "model ms/req",
    "client ms/req",
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
    p.add_argument("--clients", type=int, nargs="+", default=[32, 8])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--max-requests", type=int, default=100_000)
    p.add_argument("--max-batch-size", type=int, default=64)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--batch-workers", type=int, nargs="+", default=[1])
    p.add_argument("--client", choices=["raw", "httpx"], nargs="+", default=["raw"])
    p.add_argument("--precision", default="fp32")
    p.add_argument(
        "--variant",
        nargs="+",
        action="append",
        metavar="LABEL [NAME=VALUE ...]",
        help="a server configuration to compare (repeatable): its label, then environment "
        "variables for the server process, 'src=DIR' to serve the code of another checkout "
        "(e.g. a worktree of the previous release: before/after in one run) and "
        "'args=--flag,value,...' for extra serve options (default: one plain configuration)",
    )
    p.add_argument("--rss-every", type=float, default=0, help="also print the server's RSS every S seconds")
    p.add_argument("--forward-cost", action="store_true", help="only time forward passes by shape")
    p.add_argument("--client-process", help=argparse.SUPPRESS)  # internal: run as the client
    return p.parse_args(argv)


# --- the client (its own process) -----------------------------------------------------------
async def _raw_user(port: int, bodies: list[bytes], k: int, users: int, state: dict) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = k
    try:
        while time.perf_counter() < state["stop"] and state["sent"] < state["max"]:
            state["sent"] += 1
            body = bodies[i % len(bodies)]
            head = b"POST /predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            start = time.perf_counter()
            try:
                writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                answer = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", answer)
                await reader.readexactly(int(length[1]) if length else 0)
                ok = answer[9:12] == b"200"
            except (OSError, asyncio.IncompleteReadError):
                state["dropped"] += 1
                return
            state["latencies"].append(time.perf_counter() - start)
            state["errors"] += not ok
            i += users
    finally:
        writer.close()


async def _httpx_user(client, url: str, texts: list[str], k: int, users: int, state: dict) -> None:
    import httpx

    i = k
    while time.perf_counter() < state["stop"] and state["sent"] < state["max"]:
        state["sent"] += 1
        start = time.perf_counter()
        try:
            r = await client.post(url + "/predict", json={"inputs": texts[i % len(texts)]})
        except httpx.HTTPError:
            state["dropped"] += 1
            continue
        state["latencies"].append(time.perf_counter() - start)
        state["errors"] += r.status_code != 200
        i += users


async def _drive(kind: str, port: int, texts: list[str], users: int, seconds: float, most: int) -> dict:
    state = {"stop": time.perf_counter() + seconds, "max": most, "sent": 0, "errors": 0, "dropped": 0}
    state["latencies"] = []
    start = time.perf_counter()
    if kind == "raw":
        bodies = [json.dumps({"inputs": t}).encode() for t in texts]
        await asyncio.gather(*(_raw_user(port, bodies, k, users, state) for k in range(users)))
    else:
        import httpx

        limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            url = f"http://127.0.0.1:{port}"
            await asyncio.gather(*(_httpx_user(client, url, texts, k, users, state) for k in range(users)))
    state["wall"] = time.perf_counter() - start
    return state


def client_main(spec: str) -> None:
    job = json.loads(spec)
    texts = json.loads(Path(job["texts"]).read_text())
    cpu = time.process_time()
    state = asyncio.run(_drive(job["kind"], job["port"], texts, job["users"], job["seconds"], job["max"]))
    state["cpu"] = time.process_time() - cpu  # the load itself, not the imports
    del state["stop"]
    print(json.dumps(state))


def _load(kind: str, port: int, texts_file: Path, users: int, seconds: float, most: int) -> dict:
    job = {"kind": kind, "port": port, "texts": str(texts_file), "users": users}
    job.update(seconds=seconds, max=most)
    done = subprocess.run(
        [sys.executable, __file__, "--client-process", json.dumps(job)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"FAIL: the load client failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the server -----------------------------------------------------------------------------
def _rss_mib(pid: int) -> float:
    try:
        import psutil
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0
    return psutil.Process(pid).memory_info().rss / 2**20


def _thread_cpu(pid: int) -> tuple[float, float]:
    """(CPU seconds of the main thread: the event loop, of all the other threads: the model)."""
    tick = os.sysconf("SC_CLK_TCK")
    main = other = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if int(tid) == pid:
            main += seconds
        else:
            other += seconds
    return main, other


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all processes, all cores), /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _variants(args: argparse.Namespace) -> list[tuple[str, dict[str, str]]]:
    """(label, settings) for each --variant: NAME=VALUE pairs (src, args or environment)."""
    out = []
    for label, *pairs in args.variant or [[""]]:
        settings = {}
        for pair in pairs:
            name, eq, value = pair.partition("=")
            if not eq:
                raise SystemExit(f"--variant {label}: {pair!r} is not NAME=VALUE (e.g. src=../old-checkout)")
            settings[name] = value
        out.append((label, settings))
    return out


def _start_server(
    model_dir: Path, args: argparse.Namespace, workers: int, variant: dict[str, str]
) -> tuple[subprocess.Popen, int]:
    variant = dict(variant)
    root = Path(variant.pop("src", None) or Path(__file__).resolve().parents[1])
    extra = [a for a in variant.pop("args", "").split(",") if a]
    env = {**os.environ, **variant}
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "modernbert_tasks", "serve", str(model_dir), "--port", "0"]
    command += ["--max-batch-size", str(args.max_batch_size), "--max-wait-ms", str(args.max_wait_ms)]
    command += ["--precision", args.precision]
    command += ["--batch-workers", str(workers)] if workers else []
    command += extra
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    while True:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit("FAIL: the server did not start")
        found = re.search(r"at http://[^:]+:(\d+)\s", line)
        if found:
            _wait_ready(proc, int(found[1]))
            return proc, int(found[1])


def _wait_ready(proc: subprocess.Popen, port: int) -> None:
    """Until /health answers: the port listens once the server's startup warm-up is done."""
    import httpx

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("FAIL: the server exited during startup")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("FAIL: the server did not answer /health within 600 s")


def _metrics(port: int) -> tuple[float, float]:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text

    def value(name: str) -> float:
        found = re.search(rf"^modernbert_tasks_{name} (\S+)", text, re.M)
        return float(found[1]) if found else 0.0

    return value("batch_size_sum"), value("batch_size_count")


def _one_config(model_dir, args, texts_file, clients, workers, kind, variant=("", {})) -> dict:
    proc, port = _start_server(model_dir, args, workers, variant[1])
    samples: list[tuple[float, float]] = []
    try:
        _load("raw", port, texts_file, 4, 3.0, 400)  # warm-up: first batches allocate
        before_sum, before_count = _metrics(port)
        main0, other0 = _thread_cpu(proc.pid)
        rss0 = _rss_mib(proc.pid)
        samples.append((0.0, rss0))
        if args.rss_every:
            import threading

            stop, t0 = threading.Event(), time.perf_counter()

            def sample() -> None:
                while not stop.wait(args.rss_every):
                    samples.append((time.perf_counter() - t0, _rss_mib(proc.pid)))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
        busy0 = _busy_seconds()
        result = _load(kind, port, texts_file, clients, args.seconds, args.max_requests)
        busy = _busy_seconds() - busy0
        if args.rss_every:
            stop.set()
            sampler.join()
        rss1 = _rss_mib(proc.pid)
        main1, other1 = _thread_cpu(proc.pid)
        after_sum, after_count = _metrics(port)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    n = len(result["latencies"])
    q = statistics.quantiles(result["latencies"], n=100)
    label = f"serve, {clients} clients ({kind}), batch workers {workers or 'auto'}"
    label += f", {variant[0]}" if variant[0] else ""
    if args.rss_every:
        print(f"  RSS MiB over time ({label}): " + ", ".join(f"{t:.0f}s {m:.1f}" for t, m in samples))
        print(f"  RSS at start {rss0:.1f} MiB, at end {rss1:.1f} MiB, after {result['wall']:.0f} s")
    ours = (main1 - main0) + (other1 - other0) + result["cpu"]
    print(
        f"  {label}: {n} requests in {result['wall']:.1f} s; cores busy: server and client "
        f"{ours / result['wall']:.2f}, other processes {max(busy - ours, 0) / result['wall']:.2f} "
        f"(of {os.cpu_count()})"
    )
    return {
        "configuration": label,
        "texts/s": n / result["wall"],
        "p50 ms": 1000 * q[49],
        "p95 ms": 1000 * q[94],
        "p99 ms": 1000 * q[98],
        "p99/p50": f"{q[98] / q[49]:.1f}x",
        "mean group": (after_sum - before_sum) / max(after_count - before_count, 1),
        "errors": result["errors"],
        "dropped": result["sent"] - n,  # sent and never answered (connection lost)
        "loop ms/req": 1000 * (main1 - main0) / n,
        "model ms/req": 1000 * (other1 - other0) / n,
        "client ms/req": 1000 * result["cpu"] / n,
        "RSS growth %": 100 * (rss1 - rss0) / rss0,
    }


def _forward_cost(model_dir: Path, precision: str) -> None:
    """Forward passes by (texts, tokens): the fixed cost of one pass in token equivalents."""
    import numpy as np
    import torch

    from modernbert_tasks import load_finetuned

    model = load_finetuned(model_dir, device="cpu", precision=precision).model
    rows = []

    def passes(ids: torch.Tensor, reps: int) -> None:
        for _ in range(reps):
            model(input_ids=ids, attention_mask=torch.ones_like(ids))

    with torch.inference_mode():
        for length in (8, 16, 32, 64):
            for n in (1, 2, 4, 8, 16, 32):
                ids = torch.full((n, length), 1000)
                passes(ids, 1)
                reps = max(3, 400 // (n * length))
                seconds, _ = common.elapsed(lambda ids=ids, reps=reps: passes(ids, reps))
                rows.append({"texts": n, "tokens": length, "ms": 1000 * seconds / reps})
    design = np.array([[1.0, r["texts"] * r["tokens"]] for r in rows])
    fit, *_ = np.linalg.lstsq(design, np.array([r["ms"] for r in rows]), rcond=None)
    print(common.format_table(rows, ["texts", "tokens", "ms"]))
    print(f"ms = {fit[0]:.2f} + {fit[1]:.4f} x padded tokens: one pass costs {fit[0] / fit[1]:.0f} tokens")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.client_process:
        client_main(args.client_process)
        return
    if args.texts is None:
        common.require_shared("serve_load (default texts)")
    import torch

    from modernbert_tasks import load_finetuned

    print(common.machine_header("server load: modernbert-tasks serve vs in-process predict"))
    print(
        f"cpu capability: {torch.backends.cpu.get_cpu_capability()}; torch threads {torch.get_num_threads()}"
    )
    work = common.scratch_dir(None, "bench-serve-")
    model_dir = common.prepare_model(args.model, work)
    if args.forward_cost:
        _forward_cost(model_dir, args.precision)
        return
    texts = [t for t, _ in common.read_tsv(args.texts or common.SST2_DIR / "test.tsv")]
    texts = texts[: args.limit]
    texts_file = work / "texts.json"
    texts_file.write_text(json.dumps(texts))
    print(
        f"model: {args.model}; {len(texts)} texts; server --max-batch-size "
        f"{args.max_batch_size} --max-wait-ms {args.max_wait_ms} --precision {args.precision}"
    )

    rows = []
    for clients in args.clients:
        for workers in args.batch_workers:
            for kind in args.client:
                for variant in _variants(args):
                    rows.append(_one_config(model_dir, args, texts_file, clients, workers, kind, variant))

    # in-process predict on the same texts, after the servers have stopped (alone on the CPU)
    model = load_finetuned(model_dir, device="cpu", precision=args.precision)
    model.predict(texts[:64], show_progress=False)
    passes = []
    for _ in range(3):
        busy0, cpu0 = _busy_seconds(), time.process_time()
        seconds, _ = common.elapsed(lambda: model.predict(texts, show_progress=False))
        others = max(_busy_seconds() - busy0 - (time.process_time() - cpu0), 0) / seconds
        passes.append((seconds, others))
    best, others = min(passes)
    base = len(texts) / best
    print(f"  in-process predict: best of 3 in {best:.2f} s; cores busy with other processes {others:.2f}")
    table = [{"configuration": "in-process predict (batch_size=64)", "texts/s": base, "ratio": "1.00x"}]
    for row in rows:
        row["ratio"] = f"{row['texts/s'] / base:.2f}x"
        table.append(row)
    print()
    print(common.format_table(table, COLUMNS))
    print(f"end: {common.load_line()}")


if __name__ == "__main__":
    main()
