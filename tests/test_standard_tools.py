"""The saved folder is a standard Hugging Face classification folder: transformers.pipeline and
sentence-transformers' CrossEncoder load it and give our labels and probabilities."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from modernbert_tasks import fine_tune, load_finetuned
from modernbert_tasks.testing import make_sentiment_rows

TEXTS = [t for t, _ in make_sentiment_rows(200, seed=11)]


@pytest.fixture(scope="module")
def trained_with_temperature(tiny_model_dir, sentiment_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("standard") / "run"
    result = fine_tune(
        "sst2",
        model_name=tiny_model_dir,
        output_dir=out,
        data_dir=sentiment_dir,
        learning_rate=1e-3,
        num_train_epochs=2,
        report_to="none",
        disable_tqdm=True,
        temperature_scaling=True,
    )
    return result.model_path


@pytest.fixture(scope="module", params=[False, True], ids=["raw", "temperature"])
def trained(request, trained_with_temperature, tmp_path_factory):
    """One training; the "raw" folder is the same weights with the fitted temperature taken out
    of the manifest (the only thing temperature_scaling changes)."""
    path = trained_with_temperature
    if not request.param:
        path = shutil.copytree(path, tmp_path_factory.mktemp("raw") / "model")
        manifest_file = path / "modernbert_tasks.json"
        manifest = json.loads(manifest_file.read_text())
        manifest.pop("calibration")
        manifest_file.write_text(json.dumps(manifest))
    # fp32: the tools below compute in fp32, and so must the probabilities they are held to
    model = load_finetuned(path, precision="fp32")
    ours = model.predict(TEXTS)
    manifest = json.loads((path / "modernbert_tasks.json").read_text())
    temperature = (manifest.get("calibration") or {}).get("temperature", 1.0)
    assert (temperature != 1.0) is request.param
    return path, model.labels, ours, temperature


def _expected(raw: np.ndarray, temperature: float) -> np.ndarray:
    """Our probabilities from a tool's raw softmax: softmax(log(p) / T)."""
    z = np.log(raw) / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def test_transformers_pipeline_gives_the_same_labels_and_probabilities(trained):
    from transformers import pipeline

    path, labels, ours, temperature = trained
    classify = pipeline("text-classification", model=str(path), device="cpu", top_k=None)
    theirs = classify(TEXTS, batch_size=32)
    raw = np.array(
        [[next(s["score"] for s in row if s["label"] == name) for name in labels] for row in theirs]
    )
    assert [labels[i] for i in raw.argmax(axis=1)] == [o["label"] for o in ours]  # 200/200
    ours_probs = np.array([[o["probabilities"][name] for name in labels] for o in ours])
    # the pipeline knows nothing of the manifest's temperature: its softmax is uncalibrated
    assert np.abs(_expected(raw, temperature) - ours_probs).max() < 1e-5
    if temperature == 1.0:
        assert np.abs(raw - ours_probs).max() < 1e-5


def test_sentence_transformers_cross_encoder_loads_it(trained):
    st = pytest.importorskip(
        "sentence_transformers", reason="sentence-transformers is not installed (it is in the dev extra)"
    )
    import torch

    path, labels, ours, temperature = trained
    encoder = st.CrossEncoder(str(path), device="cpu", activation_fn=torch.nn.Identity())
    # sentence-transformers 6 reads a list of two strings as one pair: single texts go one by one
    logits = np.stack([np.asarray(encoder.predict(text, convert_to_numpy=True)) for text in TEXTS])
    assert logits.shape == (len(TEXTS), len(labels))
    raw = np.exp(logits - logits.max(axis=1, keepdims=True))
    raw /= raw.sum(axis=1, keepdims=True)
    assert [labels[i] for i in raw.argmax(axis=1)] == [o["label"] for o in ours]
    ours_probs = np.array([[o["probabilities"][name] for name in labels] for o in ours])
    assert np.abs(_expected(raw, temperature) - ours_probs).max() < 1e-5
