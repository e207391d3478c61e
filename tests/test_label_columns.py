"""Multi-label data as one 0/1 column per label, and a decision threshold per label: columns
named or inferred, cells checked with their rows, the manifest, and the per-label thresholds
(tuned on the evaluation split) applied alike by predict, evaluate, ONNX and the server."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from modernbert_tasks import ConfigError, DataError, Task, calibration, fine_tune, load_finetuned
from modernbert_tasks.artifacts.manifest import ManifestError, build_manifest, task_from_manifest
from modernbert_tasks.label_columns import cell_flag
from modernbert_tasks.testing import FAST, TOPICS, make_topic_rows, run_cli

NAMES = list(TOPICS)  # the cue design is in modernbert_tasks.testing: why the thresholds matter
topic_rows = make_topic_rows


def write_csv(path: Path, rows, header=("text", *NAMES)) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def multi_hot(rows) -> np.ndarray:
    return np.array([row[1:] for row in rows], dtype=np.int64)


# --- cells and columns (no training) ----------------------------------------------------------
def test_cells_read_as_0_1_true_false_or_yes_no_in_any_case():
    for cell in (1, 1.0, True, "1", " yes", "YES", "True", "true ", "1.0"):
        assert cell_flag(cell) == 1.0, cell
    for cell in (0, 0.0, False, "0", "no", "No", "FALSE", "0.0"):
        assert cell_flag(cell) == 0.0, cell
    for cell in (2, -1, 0.5, "maybe", "", "  ", None, float("nan"), "y", "on"):
        assert cell_flag(cell) is None, cell


def test_multi_label_is_inferred_when_every_other_column_holds_0_1(tmp_path, caplog):
    path = write_csv(tmp_path / "topics.csv", topic_rows(40, seed=1))
    with caplog.at_level(logging.INFO, logger="modernbert_tasks"):
        task = Task.from_data({"train": path})
    assert task.problem_type == "multi_label_classification"
    assert task.label_columns == task.labels == tuple(NAMES) and task.text_columns == ("text",)
    said = [r.getMessage() for r in caplog.records if "hold only 0/1" in r.getMessage()]
    assert said == [
        f"{str(path)!r}: columns {NAMES} hold only 0/1 besides the text column 'text': multi-label, "
        "one label per column (pass label_columns=[...] / --label-columns to choose them)."
    ]
    split = task.load_dataset(data_files={"train": path})["train"]
    assert split["label"] == [[float(x) for x in row[1:]] for row in topic_rows(40, seed=1)]


def test_no_inference_beside_a_column_that_is_not_0_1(tmp_path):
    """An id column is not a label: the error names the 0/1 columns and --label-columns."""
    rows = [(f"text {i}", 100 + i, i % 2, (i + 1) % 2) for i in range(6)]
    path = write_csv(tmp_path / "t.csv", rows, header=("text", "id", "toxic", "insult"))
    with pytest.raises(DataError) as info:
        Task.from_data({"train": path})
    assert "Columns ['toxic', 'insult'] hold only 0/1" in str(info.value)
    assert "label_columns=['toxic', 'insult'] (CLI: --label-columns toxic insult)" in str(info.value)
    task = Task.from_data({"train": path}, label_columns=["toxic", "insult"])
    assert task.labels == ("toxic", "insult") and task.text_columns == ("text",)


def test_a_binary_label_column_stays_single_label(tmp_path):
    path = write_csv(tmp_path / "b.csv", [("good", 1), ("bad", 0), ("fine", 1)], header=("text", "label"))
    task = Task.from_data({"train": path})
    assert task.problem_type == "single_label_classification" and task.label_columns == ()


def test_named_label_columns_accept_yes_no_and_true_false(tmp_path):
    rows = [("a", "yes", "TRUE", 1), ("b", "No", "false", 0), ("c", "YES", "False", 1)]
    path = write_csv(tmp_path / "t.csv", rows, header=("comment", "toxic", "insult", "threat"))
    task = Task.from_data({"train": path}, label_columns=["toxic", "threat"])
    assert task.labels == ("toxic", "threat") and task.text_columns == ("comment",)
    split = task.load_dataset(data_files={"train": path})["train"]
    assert split["label"] == [[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]]


def test_bad_cells_are_named_with_their_column_value_and_rows(tmp_path, tiny_model_dir):
    rows = [("a", 1, 0), ("b", "maybe", 0), ("c", 0, ""), ("d", 2, 1), ("e", "maybe", 1)]
    path = write_csv(tmp_path / "bad.csv", rows, header=("text", "toxic", "insult"))
    with pytest.raises(DataError) as info:
        fine_tune(
            train_file=path,
            label_columns=["toxic", "insult"],
            model_name=tiny_model_dir,
            output_dir=tmp_path / "run",
        )
    message = str(info.value)
    assert "label columns hold values other than 0/1, true/false or yes/no" in message
    assert "column 'toxic' holds 'maybe', '2' in 3 row(s): 2, 4, 5 (data rows counted from 1" in message
    assert "column 'insult' holds an empty cell in 1 row(s): 3 (" in message
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_missing_label_column_lists_the_columns_there_are(tmp_path):
    path = write_csv(tmp_path / "t.csv", topic_rows(20, seed=1))
    with pytest.raises(DataError) as info:
        Task.from_data({"train": path}, label_columns=["sports", "sprots", "chess"])
    message = str(info.value)
    assert "has no label column(s) ['sprots', 'chess']" in message
    assert f"its columns are {['text', *NAMES]}" in message and "Did you mean: sports?" in message
    # a validation file that lacks one of the training file's columns
    task = Task.from_data({"train": path})
    other = write_csv(
        tmp_path / "val.csv", [(r[0], *r[1:4]) for r in topic_rows(10, seed=2)], ("text", *NAMES[:3])
    )
    with pytest.raises(DataError, match=r"has no label column\(s\) \['music', 'cooking'\]"):
        task.load_dataset(data_files={"train": path, "validation": other})


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"label_column": "sports"}, "label_columns and label_column were both given; pass only one"),
        ({"label_separator": ","}, "drop label_separator"),
        ({"labels": ["a", "b"]}, "drop labels: the labels are the columns' names"),
        ({"problem_type": "regression"}, "drop problem_type='regression'"),
        ({"text_columns": "sports"}, "'sports' is both a text column and a label column"),
    ],
)
def test_label_columns_refuse_contradicting_options(tmp_path, extra, words):
    path = write_csv(tmp_path / "t.csv", topic_rows(10, seed=1))
    with pytest.raises(ConfigError, match=words):
        Task.from_data({"train": path}, label_columns=["sports", "music"], **extra)


def test_label_columns_with_a_registered_task_are_refused():
    with pytest.raises(ConfigError, match="label_columns describe data without a registered task"):
        fine_tune("sst2", label_columns=["a", "b"])


def test_the_manifest_keeps_the_label_columns(tmp_path):
    task = Task.from_data({"train": write_csv(tmp_path / "t.csv", topic_rows(30, seed=1))})
    manifest = build_manifest(
        task, plugin=None, plugin_version=None, max_length=32, metrics={}, base_model="m", training={}
    )
    assert manifest["task"]["definition"]["label_columns"] == NAMES
    back = task_from_manifest(json.loads(json.dumps(manifest)))
    assert back == task and back.label_columns == tuple(NAMES)
    # a manifest from before label_columns reads as a task without them (list cells)
    del manifest["task"]["definition"]["label_columns"]
    assert task_from_manifest(manifest).label_columns == ()


def test_label_thresholds_in_a_manifest_are_checked(tmp_path):
    task = Task.from_data({"train": write_csv(tmp_path / "t.csv", topic_rows(30, seed=1))})
    manifest = build_manifest(
        task, plugin=None, plugin_version=None, max_length=32, metrics={}, base_model="m", training={}
    )
    manifest["calibration"] = {"temperature": 1.0, "decision_threshold": 0.4, "label_thresholds": [0.3, 0.2]}
    with pytest.raises(ManifestError, match=r"'calibration.label_thresholds' is \[0.3, 0.2\]; expected 5"):
        task_from_manifest(manifest)


# --- per-label thresholds (no training) -------------------------------------------------------
def test_each_label_gets_the_threshold_that_maximises_its_f1():
    rng = np.random.default_rng(0)
    y = np.zeros((200, 3), dtype=np.int64)
    y[:40, 0], y[:12, 1], y[:3, 2] = 1, 1, 1
    probs = rng.uniform(0.0, 0.2, size=y.shape)
    probs[:40, 0] = rng.uniform(0.6, 0.9, 40)  # label 0: positives well above 0.5
    probs[:12, 1] = rng.uniform(0.25, 0.35, 12)  # label 1: positives just above 0.2
    thresholds, kept = calibration.tune_label_thresholds(probs, y, fallback=0.45, min_positives=5)
    assert kept == [2] and thresholds[2] == 0.45  # 3 positives < 5: the global threshold
    # any threshold between the negatives (< 0.2) and the positives separates; ties go to the
    # one nearest 0.5: 0.5 itself for label 0, the lowest positive (rounded down) for label 1
    assert thresholds[0] == 0.5 and 0.2 < thresholds[1] <= probs[:12, 1].min()
    assert thresholds[1] == np.floor(probs[:12, 1].min() * 100) / 100
    chosen = calibration.decisions(probs, "multi_label_classification", np.asarray(thresholds))
    assert (chosen[:, :2] == y[:, :2]).all()  # both tunable labels now perfect
    assert calibration.decisions(probs, "multi_label_classification", 0.5)[:, 1].sum() == 0


def test_tune_per_label_is_refused_where_it_cannot_apply(tmp_path, tiny_model_dir, sentiment_dir):
    with pytest.raises(ConfigError, match="binary, with one threshold: pass decision_threshold='tune'"):
        fine_tune(
            "sst2",
            model_name=tiny_model_dir,
            data_dir=sentiment_dir,
            output_dir=tmp_path / "a",
            decision_threshold="tune-per-label",
        )
    with pytest.raises(ConfigError, match="threshold_min_positives=0; expected an integer >= 1"):
        fine_tune("sst2", threshold_min_positives=0)
    path = write_csv(tmp_path / "t.csv", topic_rows(40, seed=1))
    with pytest.raises(ConfigError, match="'tune-per-label' picks the threshold on the evaluation split"):
        fine_tune(
            train_file=path,
            model_name=tiny_model_dir,
            output_dir=tmp_path / "b",
            validation_fraction=0,
            decision_threshold="tune-per-label",
        )


# --- a real training on the imbalanced topics -------------------------------------------------
@pytest.fixture(scope="module")
def topics_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("topics")
    write_csv(root / "train.csv", topic_rows(800, seed=1))
    write_csv(root / "validation.csv", topic_rows(300, seed=2))
    write_csv(root / "test.csv", topic_rows(300, seed=3))
    return root


@pytest.fixture(scope="module")
def per_label(topics_dir, tiny_model_dir, tmp_path_factory):
    return fine_tune(
        data_dir=topics_dir,
        model_name=tiny_model_dir,
        output_dir=tmp_path_factory.mktemp("per-label") / "run",
        decision_threshold="tune-per-label",
        **{**FAST, "num_train_epochs": 5, "warmup_steps": 0},
    )


def _manifest(result) -> dict:
    return json.loads((result.model_path / "modernbert_tasks.json").read_text())


def test_the_model_learns_the_topics(per_label, topics_dir):
    report = load_finetuned(per_label.model_path).evaluate(topics_dir / "test.csv")
    # the cue is in 85% of sports rows and 8% of the others: F1 near 0.85 means it was learned
    # (always answering "sports" scores 0.57)
    assert report["per_class"]["sports"]["f1"] >= 0.75
    assert report["per_class"]["politics"]["f1"] >= 0.6


def test_per_label_thresholds_beat_one_half_on_held_out_data(per_label):
    calib = _manifest(per_label)["calibration"]
    thresholds = dict(zip(NAMES, calib["label_thresholds"], strict=True))
    assert calib["labels_kept_global"] == ["cooking"] and calib["threshold_min_positives"] == 5
    assert thresholds["cooking"] == calib["decision_threshold"]  # the global (tuned) one
    assert thresholds["music"] < 0.5 and thresholds["science"] < 0.5  # the rare topics go lower
    m = per_label.metrics
    # test.csv was never seen by training nor by the threshold fit
    assert m["test_macro_f1_at_threshold"] >= m["test_macro_f1"] + 0.02, m


def test_the_run_says_which_labels_kept_the_global_threshold(topics_dir, tiny_model_dir, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="modernbert_tasks"):
        result = fine_tune(
            data_dir=topics_dir,
            model_name=tiny_model_dir,
            output_dir=tmp_path / "run",
            decision_threshold="tune-per-label",
            threshold_min_positives=20,  # music (15) and cooking (4) have fewer in validation.csv
            max_train_samples=200,
            **{**FAST, "num_train_epochs": 1},
        )
    calib = _manifest(result)["calibration"]
    assert calib["labels_kept_global"] == ["music", "cooking"]
    assert (
        f"music, cooking kept the global threshold {calib['decision_threshold']:.2f}: fewer than 20 "
        "positive examples in the evaluation split (threshold_min_positives)." in caplog.text
    )
    assert "Per-label decision thresholds (each label's F1 on the evaluation split): sports " in caplog.text


def test_predict_and_evaluate_apply_the_same_per_label_thresholds(per_label, topics_dir):
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    model = load_finetuned(per_label.model_path)
    rows = topic_rows(300, seed=3)
    records = model.predict([r[0] for r in rows])
    thresholds = np.asarray(_manifest(per_label)["calibration"]["label_thresholds"])
    probs = np.array([[r["probabilities"][n] for n in NAMES] for r in records])
    predicted = np.array([[int(n in r["labels"]) for n in NAMES] for r in records])
    assert (predicted == (probs >= thresholds)).all()  # each label at its own threshold
    assert (predicted != (probs >= 0.5)).any()  # ... which really differs from 0.5
    report = model.evaluate(topics_dir / "test.csv")
    truth = multi_hot(rows)
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, zero_division=0)
    for k, name in enumerate(NAMES):
        got = report["per_class"][name]
        assert got["threshold"] == thresholds[k] and got["support"] == support[k]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((precision[k], recall[k], f1[k]))
    assert report["macro_f1_at_threshold"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert report["macro"]["f1"] == pytest.approx(report["macro_f1_at_threshold"])
    assert report["micro"]["f1"] == pytest.approx(f1_score(truth, predicted, average="micro"))
    assert report["micro"]["support"] == truth.sum()
    # the training run's held-out figure is the same computation
    assert report["macro_f1_at_threshold"] == pytest.approx(per_label.metrics["test_macro_f1_at_threshold"])


def test_the_server_answers_with_the_per_label_thresholds(per_label):
    pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
    from fastapi.testclient import TestClient

    from modernbert_tasks.serving import load_for_serving
    from modernbert_tasks.serving.app import ServeSettings, create_app

    model = load_for_serving(per_label.model_path, precision="fp32")
    texts = [r[0] for r in topic_rows(40, seed=4)]
    with TestClient(create_app(model, ServeSettings())) as client:
        answer = client.post("/predict", json={"inputs": texts, "details": True})
    assert answer.status_code == 200
    expected = load_finetuned(per_label.model_path, precision="fp32").predict(texts)
    assert [r["labels"] for r in answer.json()] == [r["labels"] for r in expected]


def test_the_onnx_backend_applies_the_per_label_thresholds(per_label, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the [onnx] extra)")
    pytest.importorskip("onnx", reason="onnx is not installed (the [onnx] extra)")
    from modernbert_tasks import export_onnx

    folder = Path(shutil.copytree(per_label.model_path, tmp_path / "model"))
    export_onnx(folder, verbose=False)  # its parity check reads validation.csv's label columns
    held_out = write_csv(tmp_path / "held-out.csv", topic_rows(120, seed=5))
    texts = [r[0] for r in topic_rows(120, seed=5)]
    torch_model, onnx_model = load_finetuned(folder), load_finetuned(folder, backend="onnx")
    assert [r["labels"] for r in onnx_model.predict(texts)] == [
        r["labels"] for r in torch_model.predict(texts)
    ]
    expected, got = torch_model.evaluate(held_out)["per_class"], onnx_model.evaluate(held_out)["per_class"]
    for name in NAMES:
        assert got[name] == pytest.approx(expected[name])


# --- the command line ---------------------------------------------------------------------------
def test_train_evaluate_and_predict_one_hot_columns_from_the_command_line(tiny_model_dir, tmp_path):
    rows = [(r[0], *("yes" if x else "no" for x in r[1:3])) for r in topic_rows(240, seed=6)]
    train = write_csv(tmp_path / "train.csv", rows, header=("text", "sports", "politics"))
    out = tmp_path / "run"
    trained = run_cli(
        "train",
        "--train-file",
        train,
        "--label-columns",
        "sports",
        "politics",
        "--decision-threshold",
        "tune-per-label",
        "--model",
        tiny_model_dir,
        "--output-dir",
        out,
        "--learning-rate",
        "1e-3",
        "--num-train-epochs",
        "3",
        "--report-to",
        "none",
        "--disable-tqdm",
        "true",
    )
    assert trained.returncode == 0, trained.stderr
    assert "label columns ['sports', 'politics'], multi_label_classification" in trained.stderr
    assert (
        "Per-label decision thresholds (each label's F1 on the evaluation split): sports " in trained.stderr
    )
    assert "macro_f1_at_threshold" in trained.stdout
    manifest = json.loads((out / "model" / "modernbert_tasks.json").read_text())
    assert manifest["task"]["definition"]["label_columns"] == ["sports", "politics"]
    assert len(manifest["calibration"]["label_thresholds"]) == 2

    held_out = write_csv(
        tmp_path / "held.csv",
        [(r[0], *("yes" if x else "no" for x in r[1:3])) for r in topic_rows(60, seed=7)],
        header=("text", "sports", "politics"),
    )
    evaluated = run_cli("evaluate", out / "model", "--data-file", held_out)
    assert evaluated.returncode == 0, evaluated.stderr
    lines = evaluated.stdout.splitlines()
    assert "Per label:" in lines
    header = lines[lines.index("Per label:") + 1].split()
    assert header == ["label", "precision", "recall", "f1", "support", "threshold"]
    assert any(line.startswith("micro avg") for line in lines)
    assert any(line.startswith("macro avg") for line in lines)
    as_json = json.loads(run_cli("evaluate", out / "model", "--data-file", held_out, "--json").stdout)
    assert as_json["per_class"]["sports"]["support"] == sum(r[1] for r in topic_rows(60, seed=7))

    predicted = run_cli("predict", out / "model", "the coach and the team", "today the news")
    assert predicted.returncode == 0, predicted.stderr
    records = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert all(set(r["labels"]) <= {"sports", "politics"} for r in records)


def test_bad_label_columns_from_the_command_line(tmp_path):
    path = write_csv(tmp_path / "t.csv", topic_rows(20, seed=1))
    result = run_cli(
        "train", "--train-file", path, "--label-columns", "sports", "chess", "--output-dir", tmp_path / "r"
    )
    assert result.returncode != 0
    assert "has no label column(s) ['chess'] (--label-columns sports chess)" in result.stderr
    assert (
        "its columns are ['text', 'sports'" in result.stderr and "(--label-columns NAME ...)" in result.stderr
    )
    assert not (tmp_path / "r").exists()
