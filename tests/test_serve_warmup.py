"""The startup warm-up: every worker thread predicts one group of the largest size before the
port listens, without counting it in /metrics; warmup_length=0 turns it off."""

from __future__ import annotations

import re
import threading

import httpx
import pytest
import test_serve
from test_serve import TEXTS, post, running

from modernbert_tasks.errors import ConfigError
from modernbert_tasks.serving import load_for_serving
from modernbert_tasks.serving.settings import ServeSettings

calibrated_dir = test_serve.calibrated_dir  # the fixture: a model with a tuned threshold


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
