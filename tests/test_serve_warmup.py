"""Group formation under load and the startup warm-up: a backlog runs as one group at once
(no max_wait while the model was busy), a request at an idle server still waits for
company, and every worker thread predicts one group of the largest size before the port
listens, without counting it in /metrics."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import httpx
import pytest
import test_serve
from test_serve import TEXTS, post, running

from modernbert_tasks.errors import ConfigError
from modernbert_tasks.serving import load_for_serving
from modernbert_tasks.serving.batching import Batcher
from modernbert_tasks.serving.settings import ServeSettings

calibrated_dir = test_serve.calibrated_dir  # the fixture: a model with a tuned threshold


def test_a_backlog_runs_at_once_and_a_lone_request_waits_for_company():
    groups: list[list[str]] = []

    def run_group(inputs, raw):
        groups.append(list(inputs))
        if len(groups) == 1:
            time.sleep(0.5)  # the model is busy: the next requests queue
        return [s.upper() for s in inputs]

    async def main() -> tuple[float, float]:
        # 10 s: the longest wait ServeSettings allows; a group that waited it would show
        batcher = Batcher(run_group, max_batch_size=8, max_wait_ms=10_000)
        batcher.start()
        full = [f"a{i}" for i in range(8)]  # a full group goes without waiting
        first = asyncio.ensure_future(batcher.submit(full))
        await asyncio.sleep(0.1)  # it computes now
        start = time.monotonic()
        queued = await asyncio.gather(batcher.submit(["b"]), batcher.submit(["c"]))
        backlog_seconds = time.monotonic() - start
        assert await first == [s.upper() for s in full] and queued == [["B"], ["C"]]
        # an idle server: the first request waits for the second, 0.2 s later
        start = time.monotonic()
        lone = asyncio.ensure_future(batcher.submit(["d"]))
        await asyncio.sleep(0.2)
        company = await asyncio.gather(lone, batcher.submit(["e"]))
        lone_seconds = time.monotonic() - start
        await batcher.stop()
        assert company == [["D"], ["E"]]
        return backlog_seconds, lone_seconds

    backlog_seconds, lone_seconds = asyncio.run(main())
    assert groups == [[f"a{i}" for i in range(8)], ["b", "c"], ["d", "e"]]
    # b and c queued behind the busy model and went as soon as it was free (0.4 s), not
    # after max_wait (10 s); d and e could only meet because d waited
    assert backlog_seconds < 5, backlog_seconds
    assert lone_seconds >= 0.2


def _recording(model):
    """`model`, whose predict calls (thread, number of texts, first text) are recorded; the
    worker threads' views of the model are shallow copies, so they record too."""
    calls: list[tuple[str, int, object]] = []
    plain = model.predict

    def predict(texts, *args, **kwargs):
        calls.append((threading.current_thread().name, len(texts), texts[0]))
        return plain(texts, *args, **kwargs)

    model.predict = predict
    return calls


def _batches_counted(url: str) -> float:
    text = httpx.get(url + "/metrics").text
    return float(re.search(r"^modernbert_tasks_batch_size_count (\S+)", text, re.M)[1])


def test_every_worker_warms_up_before_the_port_listens(calibrated_dir):
    model = load_for_serving(calibrated_dir, precision="fp32", max_length=16)
    calls = _recording(model)
    with running(model, batch_workers=2, max_batch_size=8, warmup_length=12) as (url, _):
        # the server is started: the warm-up is done, one group of 8 on each worker thread
        assert len(calls) == 2, calls
        assert {name for name, _, _ in calls} == {"predict_0", "predict_1"}
        for _, texts, first in calls:
            assert texts == 8 and isinstance(first, str) and len(first.split()) == 12
        assert _batches_counted(url) == 0  # not a request: /metrics counts none
        answer = post(url, json={"inputs": TEXTS[:2], "details": True})
        assert answer.status_code == 200
        assert [r["label"] for r in answer.json()] == [r["label"] for r in model.predict(TEXTS[:2])]
        assert _batches_counted(url) == 1

    # longer than the model reads: the warm-up texts are cut to max_length (16 words)
    model = load_for_serving(calibrated_dir, precision="fp32", max_length=16)
    calls = _recording(model)
    with running(model, max_batch_size=4, warmup_length=500):
        pass
    assert [(texts, len(first.split())) for _, texts, first in calls] == [(4, 16)]


def test_warmup_length_0_turns_it_off_and_bad_values_are_refused(calibrated_dir):
    model = load_for_serving(calibrated_dir, precision="fp32", max_length=16)
    calls = _recording(model)
    with running(model, warmup_length=0) as (url, _):
        assert calls == []
        assert post(url, json={"inputs": TEXTS[0]}).status_code == 200
    assert len(calls) == 1
    for bad in (-1, 1.5, True, "128"):
        with pytest.raises(ConfigError, match=r"warmup_length=.*expected a number of tokens, 0 or more"):
            ServeSettings(warmup_length=bad)
