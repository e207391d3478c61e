"""The HTTP server: its answers are predict's, it batches, it refuses bad requests with the
right status and keeps serving, it checks the API key, and SIGTERM drains it.

Servers run in-process (uvicorn in a thread) on a free loopback port; only the SIGTERM test
starts the real command in a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from test_predictor import PAIRS, SENTIMENT, TEXTS, save_with_manifest

from modernbert_tasks import calibration, load_finetuned
from modernbert_tasks.errors import ConfigError
from modernbert_tasks.serving import load_for_serving, require_serve_deps, settings_from
from modernbert_tasks.serving.app import ServeSettings, create_app
from modernbert_tasks.serving.batching import Batcher
from modernbert_tasks.testing import build_tiny_modernbert

ROOT = Path(__file__).resolve().parents[1]
LONG = " ".join(["the film was long and dull ,"] * 30)  # over max_length=16 tokens
SERVED_TEXTS = [*TEXTS, "", "   ", LONG]


def _free_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def running(model, **settings):
    """A server for `model` in this process; yields (base URL, the app's state)."""
    import uvicorn

    app = create_app(model, ServeSettings(**settings))
    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app.state
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def calibrated_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A sentiment model whose manifest has a temperature and a decision threshold chosen so
    that some labels differ from the most probable one (the threshold really decides)."""
    folder = save_with_manifest(tiny_model_dir, tmp_path_factory.mktemp("serve") / "model", SENTIMENT)
    plain = load_finetuned(folder, precision="fp32")
    logits = plain.logits([t for t in SERVED_TEXTS if t.strip()])
    positive = calibration.probabilities(logits, "single_label_classification", 2.0)[:, 1]
    below, above = sorted(p for p in positive if p < 0.5), sorted(p for p in positive if p >= 0.5)
    # a threshold between two texts on the same side of 0.5 moves one of them across
    threshold = (below[0] + below[1]) / 2 if len(below) >= 2 else (above[-2] + above[-1]) / 2
    path = folder / "modernbert_tasks.json"
    manifest = json.loads(path.read_text())
    manifest["calibration"] = {"temperature": 2.0, "decision_threshold": float(threshold)}
    path.write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def model(calibrated_dir):
    return load_for_serving(calibrated_dir, precision="fp32", max_length=16)


@pytest.fixture(scope="module")
def server(model):
    with running(model, max_inputs=20, max_chars=2000, max_body_bytes=20_000) as (url, state):
        yield url, state


def post(url: str, path: str = "/predict", **kwargs) -> httpx.Response:
    return httpx.post(url + path, timeout=60, **kwargs)


# --- answers equal predict ------------------------------------------------------------------
def test_answers_equal_predict(server, model):
    url, _ = server
    expected = model.predict(SERVED_TEXTS)
    # the fixture's threshold and long text really are exercised
    assert any(
        r.get("label") != max(r["probabilities"], key=r["probabilities"].get)
        for r in expected
        if "probabilities" in r
    )
    assert "truncated" in expected[-1] and expected[-3] == {"skipped": "empty text"}

    details = post(url, json={"inputs": SERVED_TEXTS, "details": True})
    assert details.status_code == 200, details.text
    got = details.json()
    assert [r.get("label") for r in got] == [r.get("label") for r in expected]
    for ours, theirs in zip(got, expected, strict=True):
        assert set(ours) == set(theirs)
        assert ours.get("truncated") == theirs.get("truncated")
        assert ours.get("skipped") == theirs.get("skipped")
        if "probabilities" in theirs:
            np.testing.assert_allclose(
                list(ours["probabilities"].values()), list(theirs["probabilities"].values()), atol=1e-6
            )
            assert list(ours["probabilities"]) == list(theirs["probabilities"])

    tei = post(url, json={"inputs": SERVED_TEXTS}).json()
    for entries, record in zip(tei, expected, strict=True):
        if "skipped" in record:
            assert entries == []
            continue
        assert entries[0]["label"] == record["label"]  # predict's label first, threshold or not
        assert {e["label"] for e in entries} == set(model.labels)
        for entry in entries:
            assert entry["score"] == pytest.approx(record["probabilities"][entry["label"]], abs=1e-6)
        rest = [e["score"] for e in entries[1:]]
        assert rest == sorted(rest, reverse=True)

    single = post(url, json={"inputs": TEXTS[0]}).json()  # one text: one flat list, as TEI
    assert single[0]["label"] == expected[0]["label"] and len(single) == len(model.labels)


def test_raw_scores_are_the_logits(server, model):
    url, _ = server
    got = post(url, json={"inputs": TEXTS[:3], "raw_scores": True}).json()
    logits = model.logits(TEXTS[:3])
    for entries, row in zip(got, logits, strict=True):
        assert {e["label"]: e["score"] for e in entries} == pytest.approx(
            dict(zip(model.labels, row.tolist(), strict=True)), abs=1e-6
        )


def test_inference_client_text_classification(server, model):
    from huggingface_hub import InferenceClient

    url, _ = server
    client = InferenceClient(url)
    (expected,) = model.predict([TEXTS[1]])
    got = client.text_classification(TEXTS[1])
    assert got[0].label == expected["label"]
    assert {e.label: e.score for e in got} == pytest.approx(expected["probabilities"], abs=1e-6)
    (top,) = client.text_classification(TEXTS[1], top_k=1)
    assert top.label == expected["label"]
    bad = post(url, "/", json={"inputs": "x", "parameters": {"function_to_apply": "sigmoid"}})
    assert bad.status_code == 422 and "softmax" in bad.json()["error"]


def test_pairs_multi_label_and_regression(tiny_model_dir, tmp_path):
    pairs_dir = save_with_manifest(tiny_model_dir, tmp_path / "pairs", PAIRS)
    pair_inputs = [["a man is playing", "someone plays"], ["it rains", "the sun is out"]]
    pair_model = load_for_serving(pairs_dir, precision="fp32")
    multi = load_for_serving(
        build_tiny_modernbert(tmp_path / "multi", num_labels=3, problem_type="multi_label_classification"),
        precision="fp32",
    )
    regression = load_for_serving(
        build_tiny_modernbert(tmp_path / "reg", num_labels=1, problem_type="regression"), precision="fp32"
    )
    for fm, inputs in ((pair_model, pair_inputs), (multi, TEXTS), (regression, TEXTS)):
        expected = fm.predict([tuple(x) for x in inputs] if fm is pair_model else inputs)
        with running(fm) as (url, _):
            got = post(url, json={"inputs": inputs, "details": True}).json()
            tei = post(url, json={"inputs": inputs}).json()
            wrong = ["one text", "another"] if fm is pair_model else [["a", "b"]]
            refused = post(url, json={"inputs": wrong})
        for ours, theirs, entries in zip(got, expected, tei, strict=True):
            assert ours.get("label") == theirs.get("label")
            assert ours.get("labels") == theirs.get("labels")  # multi-label: every label over 0.5
            assert ours["score"] == pytest.approx(theirs["score"], abs=1e-6)
            assert entries[0]["score"] == pytest.approx(theirs["score"], abs=1e-6)
        if fm is regression:
            assert all(set(r) == {"score"} for r in got) and len(tei[0]) == 1
        if fm is multi:  # sigmoid: independent probabilities, not a softmax summing to 1
            assert any(abs(sum(r["probabilities"].values()) - 1) > 0.01 for r in got)
        if fm is pair_model:
            assert refused.status_code == 422 and "pairs of texts" in refused.json()["error"]
        else:  # a model without manifest takes either kind: the pair is predicted
            assert refused.status_code == 200


def test_single_text_model_refuses_pairs(server):
    url, _ = server
    response = post(url, json={"inputs": [["a", "b"]]})
    assert response.status_code == 422
    assert "single texts" in response.json()["error"]


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body,status,says",
    [
        (b'{"inputs": ["unclosed"', 400, "not valid JSON"),
        (b"[1, 2]", 422, "must be a JSON object"),
        (b'{"inputs": 3}', 422, "got 3"),
        (b'{"inputs": ["fine", 3]}', 422, "inputs must be a text"),
        (b'{"inputs": [["a", "b", "c"]]}', 422, "inputs must be a text"),
        (b'{"text": "wrong field"}', 422, "got nothing"),
        (b'{"inputs": []}', 422, "empty list"),
        (json.dumps({"inputs": ["x"] * 21}).encode(), 413, "at most 20 (server option max_inputs"),
        (json.dumps({"inputs": ["x" * 2001]}).encode(), 413, "2,001 characters"),
        (json.dumps({"inputs": [LONG], "truncate": False}).encode(), 413, "truncate=true"),
        (json.dumps({"inputs": ["x" * 1900] * 11}).encode(), 413, "at most 20,000"),
    ],
)
def test_bad_requests_get_json_errors_and_the_server_keeps_serving(server, body, status, says):
    url, _ = server
    response = post(url, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()
    assert says in error["error"] and error["error_type"]
    assert post(url, json={"inputs": "still serving"}).status_code == 200


def test_a_chunked_body_over_the_limit_is_413(server):
    url, _ = server

    def chunks():
        yield b'{"inputs": ["'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"]}'

    response = post(url, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "more than" in response.json()["error"]
    assert httpx.get(url + "/health").json() == {"status": "ok"}


def test_unknown_route_and_method(server):
    url, _ = server
    assert httpx.get(url + "/nope").status_code == 404
    response = httpx.get(url + "/predict")
    assert response.status_code == 405 and "POST" not in response.json()["error"][:3]


def test_api_key(model, monkeypatch):
    monkeypatch.setenv("MBT_TEST_KEY", "s3cret-key")
    settings = settings_from(api_key_env="MBT_TEST_KEY")
    assert "s3cret" not in repr(settings)
    with running(model, api_key=settings.api_key) as (url, _):
        missing = post(url, json={"inputs": "x"})
        wrong = post(url, json={"inputs": "x"}, headers={"authorization": "Bearer nope"})
        right = post(url, json={"inputs": "x"}, headers={"authorization": "Bearer s3cret-key"})
        assert missing.status_code == 401 and "needs an API key" in missing.json()["error"]
        assert missing.headers["www-authenticate"] == "Bearer"
        assert wrong.status_code == 401 and "not this server's key" in wrong.json()["error"]
        assert right.status_code == 200
        assert httpx.get(url + "/info").status_code == 401
        assert httpx.get(url + "/health").status_code == 200  # for load balancers
        page = httpx.get(url + "/")
        assert page.status_code == 200 and 'id="k"' in page.text  # the page asks for the key
    monkeypatch.setenv("MBT_TEST_KEY", "")
    with pytest.raises(ConfigError, match="MBT_TEST_KEY.*empty"):
        settings_from(api_key_env="MBT_TEST_KEY")
    with pytest.raises(ConfigError, match="NOT_THERE.*not set"):
        settings_from(api_key_env="NOT_THERE")


# --- info, metrics, page --------------------------------------------------------------------
def test_health_info_metrics_and_page(server, model):
    url, _ = server
    post(url, json={"inputs": TEXTS})
    info = httpx.get(url + "/info").json()
    assert info["task"] == SENTIMENT.name and info["labels"] == list(model.labels)
    assert info["precision"] == "fp32" and info["max_length"] == 16
    assert info["training"]["calibration"]["temperature"] == 2.0
    assert info["limits"]["max_inputs"] == 20 and "api_key" not in info["limits"]
    from modernbert_tasks import __version__

    assert info["version"] == __version__

    text = httpx.get(url + "/metrics").text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    assert samples['modernbert_tasks_requests_total{method="POST",route="/predict",status="200"}'] >= 1
    assert samples["modernbert_tasks_batch_size_count"] >= 1
    assert samples['modernbert_tasks_request_duration_seconds_bucket{route="/predict",le="+Inf"}'] >= 1
    assert samples["modernbert_tasks_inputs_total"] >= len(TEXTS)
    assert "# TYPE modernbert_tasks_batch_size histogram" in text

    page = httpx.get(url + "/")
    assert page.headers["content-type"].startswith("text/html")
    assert "<textarea" in page.text and "probabilities" in page.text
    docs = httpx.get(url + "/openapi.json").json()
    assert "PredictRequest" in docs["components"]["schemas"]


# --- batching -------------------------------------------------------------------------------
def test_concurrent_requests_share_model_calls(model):
    texts = [f"{t} {i}" for i, t in enumerate(TEXTS * 4)]
    expected = model.predict(texts)

    async def send_all(url: str) -> list[dict]:
        async with httpx.AsyncClient(timeout=60) as client:
            responses = await asyncio.gather(
                *(client.post(url + "/predict", json={"inputs": [t], "details": True}) for t in texts)
            )
        return [r.json()[0] for r in responses]

    with running(model, max_wait_ms=200, max_batch_size=64) as (url, state):
        got = asyncio.run(send_all(url))
        calls = state.metrics.batch_size.n
    assert [r["label"] for r in got] == [r["label"] for r in expected]
    assert calls < len(texts) / 2, f"{len(texts)} concurrent requests took {calls} model calls"


def test_one_failing_request_does_not_fail_its_batch():
    def run_group(inputs, raw):
        if "bad" in inputs:
            raise ValueError("bad input")
        return [s.upper() for s in inputs]

    async def main():
        batcher = Batcher(run_group, max_batch_size=8, max_wait_ms=50)
        batcher.start()
        results = await asyncio.gather(
            batcher.submit(["a", "b"]), batcher.submit(["bad"]), batcher.submit(["c"]), return_exceptions=True
        )
        await batcher.stop()
        return results

    ok1, failed, ok2 = asyncio.run(main())
    assert ok1 == ["A", "B"] and ok2 == ["C"]
    assert isinstance(failed, ValueError)


def test_missing_fastapi_gives_the_install_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(ConfigError, match=r"pip install 'modernbert-tasks\[serve\]'"):
        require_serve_deps()


def test_serve_refuses_plain_bf16(calibrated_dir):
    with pytest.raises(ConfigError, match="precision='bf16' is not served"):
        load_for_serving(calibrated_dir, precision="bf16")


def test_auto_serves_fp32_on_a_cpu_even_where_bf16_is_fast(calibrated_dir, monkeypatch):
    from modernbert_tasks.hardware import FORCE_BF16_ENV

    monkeypatch.setenv(FORCE_BF16_ENV, "1")  # a CPU with fast bf16: predict's auto is mixed
    assert load_for_serving(calibrated_dir, device="cpu").precision == "fp32"  # memory stays flat
    assert load_for_serving(calibrated_dir, device="cpu", precision="mixed").precision == "mixed"


# --- the command, SIGTERM -------------------------------------------------------------------
@pytest.mark.slow
def test_sigterm_drains_in_flight_requests_and_exits_0(calibrated_dir, tmp_path):
    env = {
        **os.environ,
        "MBT_TEST_KEY": "k3y",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    # a long max wait keeps the first request in flight while SIGTERM arrives
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modernbert_tasks",
            "serve",
            str(calibrated_dir),
            "--port",
            "0",
            "--host",
            "0.0.0.0",
            "--api-key-env",
            "MBT_TEST_KEY",
            "--max-wait-ms",
            "1500",
            "--precision",
            "fp32",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while not any("at http://" in line for line in lines):
            line = proc.stderr.readline()
            assert line, f"the server exited: {''.join(lines)}"
            lines.append(line)
        port = int(re.search(r":(\d+)\s", next(x for x in lines if "at http://" in x))[1])
        network = proc.stderr.readline()
        assert "reachable from the network; an API key is required" in network
        url, key = f"http://127.0.0.1:{port}", {"authorization": "Bearer k3y"}
        answers = {}
        first = threading.Thread(
            target=lambda: answers.update(first=post(url, json={"inputs": ["a wonderful film"]}, headers=key))
        )
        first.start()
        time.sleep(0.5)  # the request waits in the batcher (max wait 1.5 s)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        late = post(url, json={"inputs": ["too late"]}, headers=key)
        first.join(timeout=30)
        assert late.status_code == 503 and "shutting down" in late.json()["error"]
        assert answers["first"].status_code == 200
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
