"""Counters and histograms for `GET /metrics`, written in the Prometheus text format (0.0.4)
by hand: a few dozen lines instead of a dependency."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict

__all__ = ["Metrics", "LATENCY_BUCKETS", "BATCH_BUCKETS", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "modernbert_tasks"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        out, running = [], 0
        sep = "," if labels else ""
        for bound, count in zip((*self.buckets, "+Inf"), self.counts, strict=True):
            running += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound}"}} {running}')
        tail = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{tail} {self.total:.6f}", f"{name}_count{tail} {self.n}"]
        return out


class Metrics:
    """What the server counts. Updated from the event loop and the predict thread, so every
    change holds a lock (cheap next to a forward pass)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.batch_seconds = Histogram(LATENCY_BUCKETS)
        self.inputs = 0
        self.truncated = 0
        self.skipped = 0
        self.rescored = 0
        self.errors: dict[str, int] = defaultdict(int)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            self.latency.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def batch(self, texts: int, seconds: float) -> None:
        with self._lock:
            self.batch_size.observe(texts)
            self.batch_seconds.observe(seconds)

    def predicted(self, inputs: int, truncated: int, skipped: int, rescored: int) -> None:
        with self._lock:
            self.inputs += inputs
            self.truncated += truncated
            self.skipped += skipped
            self.rescored += rescored

    def render(self, gauges: dict[str, tuple[str, float]]) -> str:
        """The exposition text; `gauges` ({name: (help, value)}) are read at scrape time."""
        p = PREFIX
        lines: list[str] = []

        def head(name: str, kind: str, text: str) -> None:
            lines.extend([f"# HELP {p}_{name} {text}", f"# TYPE {p}_{name} {kind}"])

        with self._lock:
            head("requests_total", "counter", "HTTP requests by method, route and status code.")
            for (method, route, status), n in sorted(self.requests.items()):
                lines.append(f'{p}_requests_total{{method="{method}",route="{route}",status="{status}"}} {n}')
            head(
                "request_errors_total",
                "counter",
                "Requests answered with an error, by kind (validation, auth, body_too_large, "
                "draining, model, internal).",
            )
            for kind, n in sorted(self.errors.items()):
                lines.append(f'{p}_request_errors_total{{kind="{kind}"}} {n}')
            head(
                "request_duration_seconds",
                "histogram",
                "Time from receiving a request to its answer, by route.",
            )
            for route, hist in sorted(self.latency.items()):
                lines += hist.lines(f"{p}_request_duration_seconds", f'route="{route}"')
            head("batch_size", "histogram", "Inputs per model call (dynamic batching).")
            lines += self.batch_size.lines(f"{p}_batch_size")
            head("batch_duration_seconds", "histogram", "Seconds per model call.")
            lines += self.batch_seconds.lines(f"{p}_batch_duration_seconds")
            for name, value, text in (
                ("inputs_total", self.inputs, "Inputs predicted."),
                (
                    "truncated_inputs_total",
                    self.truncated,
                    "Inputs longer than the model's max_length, read up to it.",
                ),
                ("skipped_inputs_total", self.skipped, "Empty inputs (no label)."),
                (
                    "rescored_inputs_total",
                    self.rescored,
                    "Close calls re-scored in fp32 (precision 'mixed').",
                ),
            ):
                head(name, "counter", text)
                lines.append(f"{p}_{name} {value}")
        for name, (text, reading) in gauges.items():
            head(name, "gauge", text)
            lines.append(f"{p}_{name} {reading:g}")
        return "\n".join(lines) + "\n"
