"""Texts longer than the model's window (issue 22, part 1): long_text="chunks" reads them whole in
windows from the fast tokenizer and aggregates the windows' calibrated probabilities; the policy
is checked before anything runs, recorded in the manifest and used by default; training on
chunks reports metrics per text."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from modernbert_tasks import ConfigError, DataError, Task, fine_tune, load_finetuned
from modernbert_tasks.artifacts.manifest import ManifestError, build_manifest, write_manifest
from modernbert_tasks.calibration import probabilities
from modernbert_tasks.long_text import LongText, aggregate_windows, as_logits, resolve_long_text
from modernbert_tasks.testing import FAST, make_sentiment_rows, run_cli, write_tsv

LONG = "the invoice was wrong and the refund never came . " * 12  # ~130 tokens
TEMPERATURE = 2.0  # a stored temperature far from 1, so applying it per window shows


def _with_manifest_edit(src: Path, dst: Path, **changes) -> Path:
    """A copy of a saved model whose manifest has `changes` merged in (one level deep)."""
    shutil.copytree(src, dst)
    path = dst / "modernbert_tasks.json"
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        manifest[key] = {**(manifest.get(key) or {}), **value}
    path.write_text(json.dumps(manifest))
    return dst


@pytest.fixture(scope="module")
def hot_model(file_trained_model, tmp_path_factory) -> Path:
    """The tickets model (billing/tech) with a stored temperature of 2."""
    return _with_manifest_edit(
        file_trained_model,
        tmp_path_factory.mktemp("hot") / "model",
        calibration={"temperature": TEMPERATURE, "decision_threshold": None},
    )


def _chunks_manifest(task: Task) -> dict:
    """A manifest for `task` that reads 32 tokens at a time: chunks, stride 4, mean."""
    return build_manifest(
        task,
        plugin=None,
        plugin_version=None,
        max_length=32,
        metrics={},
        base_model="tiny",
        training={},
        prediction={"max_length": 32, "long_text": "chunks", "stride": 4, "aggregate": "mean"},
    )


def _manual_windows(fm, text: str, stride: int) -> tuple[list[list[int]], np.ndarray]:
    """The windows the fast tokenizer makes of `text` and the model's logits for each, one at
    a time (no batching, no padding)."""
    enc = fm.tokenizer(
        fm.text_prefix + text,
        truncation=True,
        max_length=fm.max_length,
        stride=stride,
        return_overflowing_tokens=True,
    )
    rows = []
    with torch.inference_mode():
        for ids in enc["input_ids"]:
            rows.append(fm.model(input_ids=torch.tensor([ids])).logits[0].numpy())
    return enc["input_ids"], np.stack(rows)


# --- reading in windows ---------------------------------------------------------------------
def test_a_long_text_is_read_in_windows_and_the_mean_is_of_calibrated_probabilities(hot_model):
    fm = load_finetuned(hot_model, precision="fp32", max_length=32)
    stride = 8
    full = len(fm.tokenizer(LONG)["input_ids"])
    room = 32 - fm.tokenizer.num_special_tokens_to_add()
    expected = 1 + -(-(full - 2 - room) // (room - stride))  # windows that step room - stride
    windows, logits = _manual_windows(fm, LONG, stride)
    assert len(windows) == expected >= 4
    assert all(len(w) <= 32 for w in windows)
    records = fm.predict([LONG, "refund please"], long_text="chunks", stride=stride)
    assert [r["windows"] for r in records] == [expected, 1] and fm.last_windows == [expected, 1]
    assert "truncated" not in records[0] and fm.last_truncation == (0, 2, 0)
    # the mean of softmax(window logits / T): the temperature is applied to each window
    mean = probabilities(logits, "single_label_classification", TEMPERATURE).mean(axis=0)
    got = [records[0]["probabilities"][name] for name in fm.labels]
    np.testing.assert_allclose(got, mean, atol=1e-5)
    assert records[0]["label"] == fm.labels[int(mean.argmax())]
    # not the mean of raw probabilities, nor the temperature applied after averaging
    raw = probabilities(logits, "single_label_classification").mean(axis=0)
    assert not np.allclose(got, raw, atol=1e-4)

    (top,) = fm.predict([LONG], long_text="chunks", stride=stride, aggregate="max")
    peak = probabilities(logits, "single_label_classification", TEMPERATURE).max(axis=0)
    np.testing.assert_allclose([top["probabilities"][n] for n in fm.labels], peak / peak.sum(), atol=1e-5)
    assert top["windows"] == expected


def test_chunks_by_default_from_load_and_per_call_override(hot_model):
    fm = load_finetuned(hot_model, precision="fp32", max_length=32, long_text="chunks")
    assert fm.long_text == LongText("chunks", 32 // 8, "mean")  # default stride: max_length // 8
    (record,) = fm.predict([LONG])
    assert record["windows"] > 1
    (cut,) = fm.predict([LONG], long_text="truncate")
    assert cut["truncated"] == {"tokens_read": 32, "tokens": len(fm.tokenizer(LONG)["input_ids"])}
    assert "windows" not in cut
    assert fm.predict([]) == [] and fm.predict(["", " "]) == [{"skipped": "empty text"}] * 2


def test_evaluate_with_chunks_scores_each_text_once_from_its_windows(hot_model):
    fm = load_finetuned(hot_model, precision="fp32", max_length=32)
    data = [(LONG, "billing"), ("crash login " * 30, "tech"), ("refund", "billing")]
    results = fm.evaluate(data, long_text="chunks", stride=4)
    assert results["num_examples"] == 3 and results["windows"] == sum(fm.last_windows) > 3
    predicted = fm.predict([t for t, _ in data], long_text="chunks", stride=4)
    truth = [fm.labels.index(label) for _, label in data]
    accuracy = np.mean([fm.labels.index(r["label"]) == y for r, y in zip(predicted, truth, strict=True)])
    assert results["accuracy"] == pytest.approx(accuracy)
    # the temperature is inside the aggregate, so there is no separate calibrated figure
    assert "temperature" not in results and "ece_calibrated" not in results
    assert "ece" in results


@pytest.mark.filterwarnings("ignore:precision='mixed' on this cpu")
def test_mixed_precision_windows_keep_fp32_decisions(hot_model, monkeypatch):
    texts = [LONG, "crash login " * 40, "refund", "invoice crash " * 25]
    fp32 = load_finetuned(hot_model, precision="fp32", max_length=32, long_text="chunks")
    mixed = load_finetuned(hot_model, precision="mixed", max_length=32, long_text="chunks")
    a, b = fp32.predict(texts), mixed.predict(texts)
    assert [r["label"] for r in a] == [r["label"] for r in b]
    assert [r["windows"] for r in a] == [r["windows"] for r in b]
    for x, y in zip(a, b, strict=True):
        assert x["score"] == pytest.approx(y["score"], abs=0.02)
    # each text says whether its windows were scored again in fp32 (a close aggregate)
    assert [r["rescored"] for r in b] == [i in mixed.last_rescored_rows for i in range(len(texts))]
    assert mixed.last_rescored == (len(mixed.last_rescored_rows), len(texts))
    # every decision "close": every text's windows scored again in fp32, so fp32's figures
    from modernbert_tasks.inference import predictor

    monkeypatch.setattr(predictor, "RESCORE_MARGIN", 1.0)
    again = mixed.predict(texts)
    assert all(r["rescored"] for r in again) and mixed.last_rescored == (4, 4)
    assert [r["probabilities"] for r in again] == [r["probabilities"] for r in a]


def test_pairs_keep_the_first_text_whole_and_refuse_a_first_text_too_long(tiny_model_dir, tmp_path):
    task = Task(name="pairs-demo", text_columns=("premise", "hypothesis"), labels=("no", "yes"))
    folder = tmp_path / "pairs"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "no", "1": "yes"}, {"no": 0, "yes": 1}
    (folder / "config.json").write_text(json.dumps(config))
    manifest = _chunks_manifest(task)
    write_manifest(folder, manifest)
    fm = load_finetuned(folder, precision="fp32")
    assert fm.long_text == LongText("chunks", 4, "mean")
    (record,) = fm.predict([("is it late?", LONG)])
    first = fm.tokenizer("is it late?", add_special_tokens=False)["input_ids"]
    windows = fm.tokenizer(
        "is it late?", LONG, truncation="only_second", max_length=32, stride=4, return_overflowing_tokens=True
    )["input_ids"]
    assert record["windows"] == len(windows) > 1
    assert all(w[1 : 1 + len(first)] == first for w in windows)  # [CLS] first [SEP] second...
    with pytest.raises(DataError, match=r"Input 1: its first text has \d+ tokens.*shorten the first text"):
        fm.predict([("short", "fine"), (LONG, "and a second text that is long " * 5)])


def test_multi_label_aggregates_each_label_then_applies_the_threshold(tiny_model_dir, tmp_path):
    from modernbert_tasks.testing import build_tiny_modernbert

    folder = build_tiny_modernbert(
        tmp_path / "multi",
        num_labels=3,
        tokenizer=tiny_model_dir,
        problem_type="multi_label_classification",
        id2label={0: "a", 1: "b", 2: "c"},
        label2id={"a": 0, "b": 1, "c": 2},
    )
    task = Task(name="tags", labels=("a", "b", "c"), problem_type="multi_label_classification")
    manifest = _chunks_manifest(task)
    manifest["calibration"] = {"temperature": TEMPERATURE, "decision_threshold": 0.5}
    write_manifest(folder, manifest)
    fm = load_finetuned(folder, precision="fp32")
    windows, logits = _manual_windows(fm, LONG, 4)
    (record,) = fm.predict([LONG])
    assert record["windows"] == len(windows) > 1
    mean = (1 / (1 + np.exp(-logits / TEMPERATURE))).mean(axis=0)  # per label
    np.testing.assert_allclose([record["probabilities"][n] for n in "abc"], mean, atol=1e-5)
    assert record["labels"] == [n for n, p in zip("abc", mean, strict=True) if p >= 0.5]


# --- the policy, checked before anything runs ------------------------------------------------
def test_a_stride_not_below_the_window_is_refused_before_any_text_is_read(hot_model):
    with pytest.raises(ConfigError) as err:
        load_finetuned(hot_model, max_length=32, long_text="chunks", stride=32)
    message = str(err.value)
    assert "stride=32 with max_length=32" in message
    assert "(32 minus 2 special tokens = 30); expected 0 to 29" in message
    assert "stride=4, or leave it out" in message
    fm = load_finetuned(hot_model, max_length=32)
    with pytest.raises(ConfigError, match="stride=40 with max_length=32"):
        fm.predict([LONG], long_text="chunks", stride=40)
    with pytest.raises(ConfigError, match=r"stride=4 only applies to reading long texts in windows"):
        fm.predict([LONG], stride=4)
    with pytest.raises(ConfigError, match="long_text='whole' is not supported"):
        fm.predict([LONG], long_text="whole")

    code, _, err_text = _cli(
        ["predict", "--max-length", "32", "--long-text", "chunks", "--stride", "32", str(hot_model), LONG]
    )
    assert code == 2 and "--stride 32 with --max-length 32" in err_text and "Traceback" not in err_text
    assert "expected 0 to 29" in err_text


def test_training_refuses_a_stride_not_below_max_length_before_writing(
    tiny_model_dir, small_sentiment_dir, tmp_path
):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"stride=24 with max_length=24.*expected 0 to 23"):
        fine_tune(
            "sst2",
            model_name=str(tiny_model_dir),
            output_dir=out,
            data_dir=str(small_sentiment_dir),
            max_length=24,
            train_long_text="chunks",
            stride=24,
            **FAST,
        )
    with pytest.raises(ConfigError, match=r"stride=8 only applies.*train_long_text='chunks' too"):
        fine_tune("sst2", model_name=str(tiny_model_dir), output_dir=out, stride=8, **FAST)
    assert not out.exists()
    code, _, err = _cli(
        [
            "train",
            "sst2",
            "--model",
            str(tiny_model_dir),
            "--output-dir",
            str(out),
            "--data-dir",
            str(small_sentiment_dir),
            "--max-length",
            "24",
            "--train-long-text",
            "chunks",
            "--stride",
            "30",
        ]
    )
    assert code == 2 and "--stride 30 with --max-length 24" in err and not out.exists()


def test_a_bad_long_text_entry_in_the_manifest_names_the_field(hot_model, tmp_path):
    bad = _with_manifest_edit(hot_model, tmp_path / "bad", prediction={"long_text": "whole", "stride": -1})
    with pytest.raises(ManifestError) as err:
        load_finetuned(bad)
    assert err.value.fields == ["prediction.long_text", "prediction.stride"]
    assert "'prediction.long_text' is 'whole', expected one of ['truncate', 'chunks']" in str(err.value)


def test_the_truncation_message_names_the_option(hot_model, caplog):
    fm = load_finetuned(hot_model, max_length=32)
    with caplog.at_level("WARNING", logger="modernbert_tasks"):
        fm.predict([LONG])
    assert "To read them whole, pass long_text='chunks'." in caplog.text
    code, _, err = _cli(["predict", "--max-length", "32", str(hot_model), LONG])
    assert code == 0 and "To read them whole, pass --long-text chunks." in err


def test_cli_predict_with_chunks_says_how_many_windows(hot_model):
    code, out, err = _cli(
        ["predict", "--max-length", "32", "--long-text", "chunks", "--aggregate", "max", str(hot_model), LONG]
    )
    assert code == 0, err
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["windows"] > 1 and "truncated" not in record
    assert f"Read 1 text in {record['windows']} windows of up to 32 tokens (stride 4)" in err
    assert "aggregated by the max" in err


# --- the maths --------------------------------------------------------------------------------
def test_aggregation_per_label_and_for_regression():
    logits = np.array([[2.0, -1.0, 0.0], [0.0, 1.0, -3.0], [1.0, 1.0, 1.0]])
    owners = [0, 0, 1]
    multi = aggregate_windows(logits, owners, 2, "multi_label_classification", 2.0, "mean")
    sig = 1 / (1 + np.exp(-logits / 2.0))
    np.testing.assert_allclose(multi, [sig[:2].mean(axis=0), sig[2]])
    top = aggregate_windows(logits, owners, 2, "multi_label_classification", 2.0, "max")
    np.testing.assert_allclose(top, [sig[:2].max(axis=0), sig[2]])  # per label, not renormalised
    # as_logits gives the aggregate back through the model's own function at temperature 1
    np.testing.assert_allclose(
        1 / (1 + np.exp(-as_logits(multi, "multi_label_classification"))), multi, atol=1e-6
    )
    values = aggregate_windows(np.array([[1.0], [3.0], [7.0]]), owners, 2, "regression")
    np.testing.assert_allclose(values, [[2.0], [7.0]])
    with pytest.raises(ConfigError, match="aggregate='max' on a regression model"):
        resolve_long_text("chunks", None, "max", max_length=64, special_tokens=2, problem_type="regression")


# --- training on windows ----------------------------------------------------------------------
def _documents(n: int, seed: int) -> list[tuple[str, int]]:
    """Texts of 4-8 synthetic sentences, 75% of them carrying the text's label, shuffled."""
    rng = random.Random(seed)
    rows = make_sentiment_rows(n * 8, seed)
    by_label = {0: [t for t, y in rows if not y], 1: [t for t, y in rows if y]}
    docs = []
    for _ in range(n):
        label = rng.randint(0, 1)
        picked = [
            rng.choice(by_label[label if rng.random() < 0.75 else 1 - label])
            for _ in range(rng.randint(4, 8))
        ]
        docs.append((" . ".join(picked), label))
    return docs


@pytest.fixture(scope="module")
def chunk_trained(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("docs")
    write_tsv(root / "train.tsv", _documents(200, 1))
    write_tsv(root / "validation.tsv", _documents(60, 2))
    result = fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        output_dir=root / "run",
        data_dir=str(root),
        max_length=32,
        train_long_text="chunks",
        stride=4,
        eval_steps=10,
        **FAST,
    )
    return root, result


def test_training_on_chunks_reports_per_text_metrics_that_evaluate_reproduces(chunk_trained):
    root, result = chunk_trained
    metrics = result.metrics
    assert metrics["documents"] == 60 and metrics["windows"] > 60  # one row per window
    assert metrics["accuracy"] >= 0.75  # learned (half of the texts are either label)
    manifest = json.loads((result.model_path / "modernbert_tasks.json").read_text())
    assert manifest["prediction"] == {
        "max_length": 32,
        "long_text": "chunks",
        "stride": 4,
        "aggregate": "mean",
    }
    assert manifest["calibration"]["num_examples"] == 60  # fitted per text
    fm = load_finetuned(result.model_path, precision="fp32")
    assert fm.long_text == LongText("chunks", 4, "mean") and fm.max_length == 32
    again = fm.evaluate(str(root / "validation.tsv"))  # the manifest's policy, by default
    assert again["num_examples"] == 60 and again["windows"] == metrics["windows"]
    assert again["accuracy"] == metrics["accuracy"]
    assert again["loss"] == pytest.approx(metrics["loss"], abs=1e-5)
    # the periodic evaluations were per text too: the logged eval accuracies are of 60 texts
    logged = [e["eval_accuracy"] for e in result.log_history if "eval_accuracy" in e]
    assert logged and all(round(a * 60) == pytest.approx(a * 60, abs=1e-6) for a in logged)


def test_a_chunk_trained_model_predicts_in_windows_by_default(chunk_trained):
    root, result = chunk_trained
    fm = load_finetuned(result.model_path, precision="fp32")
    long_positive = " . ".join(["what a wonderful experience"] * 12)
    (record,) = fm.predict([long_positive])
    assert record["windows"] > 1 and record["label"] == "positive"


def test_onnx_reads_chunks_as_torch_does(chunk_trained, tmp_path):
    pytest.importorskip("onnxruntime")
    from modernbert_tasks import export_onnx

    _, result = chunk_trained
    export_onnx(result.model_path, tmp_path / "onnx", sample=8, verbose=False)
    onnx = load_finetuned(tmp_path / "onnx", backend="onnx")
    torch_model = load_finetuned(result.model_path, precision="fp32")
    assert onnx.long_text == torch_model.long_text == LongText("chunks", 4, "mean")  # the manifest's
    texts = [" . ".join(["what a wonderful experience", "the plot was dull"] * 6), "boring"]
    a, b = onnx.predict(texts), torch_model.predict(texts)
    assert [r["windows"] for r in a] == [r["windows"] for r in b] and a[0]["windows"] > 1
    for x, y in zip(a, b, strict=True):
        assert x["label"] == y["label"] and x["score"] == pytest.approx(y["score"], abs=1e-4)


def test_serve_reads_as_the_manifest_says_and_answers_the_windows(chunk_trained):
    pytest.importorskip("uvicorn")
    import httpx
    from test_serve import running

    from modernbert_tasks.serving import load_for_serving

    _, result = chunk_trained
    model = load_for_serving(result.model_path, precision="fp32")
    texts = [" . ".join(["what a wonderful experience", "the plot was dull"] * 6), "boring"]
    with running(model, max_inputs=8, max_chars=5000, max_body_bytes=50_000) as (url, _):
        got = httpx.post(url + "/predict", json={"inputs": texts, "details": True}, timeout=60).json()
        info = httpx.get(url + "/info", timeout=60).json()
    assert got == model.predict(texts) and got[0]["windows"] > 1
    assert info["long_text"] == {"long_text": "chunks", "stride": 4, "aggregate": "mean"}
    truncating = load_for_serving(result.model_path, precision="fp32", long_text="truncate")
    assert truncating.long_text == LongText() and "truncated" in truncating.predict(texts)[0]


def _cli(argv: list[str]) -> tuple[int, str, str]:
    result = run_cli(*argv)
    return result.returncode, result.stdout, result.stderr
