"""The server's batching beyond one queue: a group split into runs of similar length (the
cheapest split under the cost model, checked against brute force), groups computed on
several worker threads at once, and the re-scored flag of precision "mixed" answered per
record exactly as predict gives it."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import warnings

import test_serve
from test_predictor import TEXTS
from test_serve import LONG, SERVED_TEXTS, post, running

from modernbert_tasks.serving import load_for_serving
from modernbert_tasks.serving.batching import Batcher
from modernbert_tasks.serving.grouping import split_by_length

calibrated_dir = test_serve.calibrated_dir  # the fixtures: a model with a tuned threshold
model = test_serve.model


def _cost(lengths, runs, overhead):
    return sum(overhead + len(run) * max(lengths[i] for i in run) for run in runs)


def test_split_by_length_is_the_cheapest_split_into_sorted_runs():
    rng = random.Random(3)
    for _ in range(200):
        lengths = [rng.randint(3, 64) for _ in range(rng.randint(1, 8))]
        overhead = rng.choice([0, 10, 48, 500])
        runs = split_by_length(lengths, overhead)
        assert sorted(i for run in runs for i in run) == list(range(len(lengths)))
        flat = [lengths[i] for run in runs for i in run]
        assert flat == sorted(lengths, reverse=True)  # runs are contiguous, longest first
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        brute = min(
            _cost(lengths, [order[a:b] for a, b in itertools.pairwise((0, *cuts, len(order)))], overhead)
            for k in range(len(order))
            for cuts in itertools.combinations(range(1, len(order)), k)
        )
        assert _cost(lengths, runs, overhead) == brute
    # padding is what a split saves: short texts leave a long one's batch when it pays
    assert split_by_length([60, 5, 6, 61, 4], overhead=20) == [[3, 0], [2, 1, 4]]
    assert split_by_length([60, 5, 6, 61, 4], overhead=10_000) == [[3, 0, 2, 1, 4]]
    assert all(len(r) <= 4 for r in split_by_length([10] * 9, overhead=50, max_size=4))
    assert split_by_length([]) == []


def test_two_workers_compute_two_groups_at_once():
    both_running = threading.Barrier(2, timeout=10)  # broken unless two groups run together

    def run_group(inputs, raw):
        both_running.wait()
        return [x.upper() for x in inputs]

    async def main():
        batcher = Batcher(run_group, max_batch_size=2, max_wait_ms=1, workers=2)
        batcher.start()
        answers = await asyncio.gather(batcher.submit(["a", "b"]), batcher.submit(["c", "d"]))
        await batcher.stop()
        return answers

    assert asyncio.run(main()) == [["A", "B"], ["C", "D"]]


def test_a_group_split_by_length_answers_in_input_order(model):
    texts = [LONG, "ok", *TEXTS, "x", LONG[:60], "", "a fine film"]
    expected = model.predict(texts)
    with running(model) as (url, state):
        got = post(url, json={"inputs": texts, "details": True}).json()
        calls = state.metrics.batch_size.n
    assert calls == 1  # one group, computed as several forward passes
    assert [r.get("label") for r in got] == [r.get("label") for r in expected]
    assert [r.get("truncated") for r in got] == [r.get("truncated") for r in expected]
    assert [r.get("skipped") for r in got] == [r.get("skipped") for r in expected]


def test_mixed_precision_records_say_which_were_rescored(calibrated_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a CPU without native bf16 warns
        mixed = load_for_serving(calibrated_dir, precision="mixed", max_length=16)
    expected = mixed.predict(SERVED_TEXTS)
    scored = [r for r in expected if "skipped" not in r]
    assert all(isinstance(r["rescored"], bool) for r in scored)
    assert sum(r["rescored"] for r in scored) == mixed.last_rescored[0] > 0  # an untrained head: close calls
    with running(mixed) as (url, state):
        got = post(url, json={"inputs": SERVED_TEXTS, "details": True}).json()
        metrics = state.metrics.rescored
    assert [r.get("rescored") for r in got] == [r.get("rescored") for r in expected]
    assert [r.get("label") for r in got] == [r.get("label") for r in expected]
    assert metrics == mixed.last_rescored[0]
    fp32 = load_for_serving(calibrated_dir, precision="fp32", max_length=16).predict(SERVED_TEXTS)
    assert all("rescored" not in r for r in fp32)  # nothing is re-scored in fp32
