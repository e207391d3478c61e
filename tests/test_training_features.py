"""Results you can trust: several seeds, early stopping, class weights, calibration and
max_length="auto", on the tiny ModernBERT."""

from __future__ import annotations

import hashlib
import json
import statistics

import pytest

from modernbert_tasks import ConfigError, fine_tune
from modernbert_tasks.testing import FAST, make_sentiment_rows, write_tsv


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- several seeds ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_seeds(tiny_model_dir, sentiment_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds")
    return fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        output_dir=out,
        data_dir=str(sentiment_dir),
        seeds=[1, 2],
        eval_steps=5,
        **FAST,
    )


def test_each_seed_trains_in_its_own_folder_and_learns(two_seeds):
    out = two_seeds.output_dir
    for seed in (1, 2):
        assert (out / f"seed-{seed}" / "model" / "model.safetensors").is_file()
        assert (out / f"seed-{seed}" / "result.json").is_file()
    for metrics in two_seeds.seeds["per_seed"].values():
        assert metrics["accuracy"] >= 0.8  # chance is 0.5


def test_the_summary_is_the_mean_of_the_seeds(two_seeds):
    info = two_seeds.seeds
    per_seed = info["per_seed"]
    for key in ("accuracy", "loss", "test_accuracy", "test_loss"):
        values = [per_seed["1"][key], per_seed["2"][key]]
        stats = info["summary"][key]
        assert stats["mean"] == pytest.approx(statistics.fmean(values))
        assert stats["std"] == pytest.approx(statistics.stdev(values))
        assert (stats["min"], stats["max"]) == (min(values), max(values))
    saved = json.loads((two_seeds.output_dir / "seeds.json").read_text())
    assert saved["summary"]["accuracy"]["mean"] == pytest.approx(info["summary"]["accuracy"]["mean"])


def test_the_better_seed_is_promoted_with_a_manifest_naming_all_seeds(two_seeds):
    per_seed = two_seeds.seeds["per_seed"]
    best = max((1, 2), key=lambda s: per_seed[str(s)]["accuracy"])  # ties: the first
    assert two_seeds.seeds["best_seed"] == best
    out = two_seeds.output_dir
    assert two_seeds.model_path == out / "model"
    assert _sha(out / "model" / "model.safetensors") == _sha(
        out / f"seed-{best}" / "model" / "model.safetensors"
    )
    manifest = json.loads((out / "model" / "modernbert_tasks.json").read_text())
    assert manifest["seeds"]["seeds"] == [1, 2] and manifest["seeds"]["best_seed"] == best
    assert two_seeds.metrics["accuracy"] == per_seed[str(best)]["accuracy"]
    json.dumps(two_seeds.to_dict())


def test_the_seed_table_lists_every_seed(two_seeds):
    from modernbert_tasks.cli.train import format_seed_table

    table = format_seed_table(two_seeds)
    assert "seed 1" in table and "seed 2" in table and "±" in table
    assert any(line.startswith("accuracy") for line in table.splitlines())


def test_resuming_skips_finished_seeds(two_seeds, tiny_model_dir, sentiment_dir):
    out = two_seeds.output_dir
    before = _sha(out / "seed-1" / "model" / "model.safetensors")
    again = fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        output_dir=out,
        data_dir=str(sentiment_dir),
        seeds=[1, 2],
        resume=True,
        eval_steps=5,
        **FAST,
    )
    assert _sha(out / "seed-1" / "model" / "model.safetensors") == before  # not retrained
    assert again.seeds["per_seed"] == two_seeds.seeds["per_seed"]


def test_seeds_refuse_an_earlier_run_before_training(two_seeds, tiny_model_dir, sentiment_dir):
    with pytest.raises(ConfigError, match="resume=True"):
        fine_tune(
            "sst2",
            model_name=str(tiny_model_dir),
            output_dir=two_seeds.output_dir,
            data_dir=str(sentiment_dir),
            seeds=[1, 2],
            **FAST,
        )
    with pytest.raises(ConfigError, match="distinct"):
        fine_tune(
            "sst2",
            model_name=str(tiny_model_dir),
            output_dir=two_seeds.output_dir,
            data_dir=str(sentiment_dir),
            seeds=[1, 1],
            **FAST,
        )


# --- early stopping -----------------------------------------------------------------------------
def test_early_stopping_stops_a_plateauing_run(tiny_model_dir, sentiment_dir, tmp_path):
    # a learning rate of ~0 keeps the model, hence the eval metric, flat from the first evaluation
    result = fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        output_dir=tmp_path,
        data_dir=str(sentiment_dir),
        max_steps=40,
        eval_steps=2,
        early_stopping_patience=2,
        temperature_scaling=False,
        **{**FAST, "learning_rate": 1e-12},
    )
    steps = [e["step"] for e in result.log_history if "eval_accuracy" in e]
    assert max(e["step"] for e in result.log_history) < 40
    assert steps[:3] == [2, 4, 6] and max(steps) <= 8  # best at 2, then 2 without improvement
    manifest = json.loads((result.model_path / "modernbert_tasks.json").read_text())
    assert manifest["training"]["early_stopping_patience"] == 2


def test_early_stopping_without_an_evaluation_split_is_a_clear_error(tiny_model_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_tsv(data / "train.tsv", make_sentiment_rows(40, seed=1))
    with pytest.raises(ConfigError, match="early_stopping_patience=2 needs an evaluation split"):
        fine_tune(
            "sst2",
            model_name=str(tiny_model_dir),
            output_dir=tmp_path / "out",
            data_dir=str(data),
            early_stopping_patience=2,
            validation_fraction=0,
            **FAST,
        )
    assert not (tmp_path / "out" / "model").exists()


# --- class weights ------------------------------------------------------------------------------
def _imbalanced_dir(root, positives: int, negatives: int):
    rows = make_sentiment_rows(4 * (positives + negatives), seed=5)
    pos = [r for r in rows if r[1] == 1][:positives]
    neg = [r for r in rows if r[1] == 0][:negatives]
    root.mkdir(parents=True, exist_ok=True)
    write_tsv(root / "train.tsv", pos + neg)
    write_tsv(root / "validation.tsv", make_sentiment_rows(40, seed=6))
    return root


def test_balanced_class_weights_weight_the_loss(tiny_model_dir, tmp_path, caplog):
    import torch
    import torch.nn.functional as F

    from modernbert_tasks.training.engine import prepare

    data = _imbalanced_dir(tmp_path / "data", positives=5, negatives=55)
    with caplog.at_level("INFO", logger="modernbert_tasks"):
        run = prepare(
            "sst2",
            str(tiny_model_dir),
            tmp_path / "out",
            data_dir=str(data),
            class_weights="balanced",
            per_device_train_batch_size=32,
            **FAST,
        )
    assert "negative 55 (91.7%), positive 5 (8.3%)" in caplog.text
    assert "imbalanced" in caplog.text  # 5 < 10% of 55
    trainer = run.trainer
    batch = next(iter(trainer.get_train_dataloader()))
    labels = batch["labels"]
    assert 0 < int(labels.sum()) < len(labels)  # both classes in the batch
    model = trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch))
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    weights = torch.tensor([60 / (2 * 55), 60 / (2 * 5)])  # n / (classes x count)
    by_hand = (weights[labels] * F.cross_entropy(logits, labels, reduction="none")).sum() / len(labels)
    assert float(loss) == pytest.approx(float(by_hand), rel=1e-5)
    assert abs(float(loss) - float(F.cross_entropy(logits, labels))) > 1e-3  # it changed
    training = run.manifest({})["training"]
    assert training["class_weights"] == "balanced"
    assert training["class_weight_values"] == pytest.approx({"negative": 60 / 110, "positive": 60 / 10})


def test_class_weights_must_name_labels(tiny_model_dir, sentiment_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"\['postive'\].*'negative', 'positive'"):
        fine_tune(
            "sst2",
            model_name=str(tiny_model_dir),
            output_dir=tmp_path,
            data_dir=str(sentiment_dir),
            class_weights={"postive": 5.0},
            **FAST,
        )


# --- calibration --------------------------------------------------------------------------------
def _softmax(z):
    import numpy as np

    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _nll(logits, labels, t):
    import numpy as np

    p = _softmax(logits / t)
    return float(-np.mean(np.log(p[np.arange(len(labels)), labels])))


def test_temperature_recovers_a_known_overconfidence():
    import numpy as np

    from modernbert_tasks import calibration as cal

    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 1.5, size=(4000, 3))
    labels = np.array([rng.choice(3, p=p) for p in _softmax(true_logits)])
    overconfident = 4.0 * true_logits  # what a model that is sure of itself would give
    t = cal.fit_temperature(overconfident, labels, "single_label_classification")
    assert t == pytest.approx(4.0, rel=0.1)
    before = cal.expected_calibration_error(_softmax(overconfident), labels, "single_label_classification")
    after = cal.expected_calibration_error(_softmax(overconfident / t), labels, "single_label_classification")
    assert before > 0.1 and after < 0.03
    brier_before = cal.brier_score(_softmax(overconfident), labels, "single_label_classification")
    assert cal.brier_score(_softmax(overconfident / t), labels, "single_label_classification") < brier_before


@pytest.fixture(scope="module")
def calibrated(tiny_model_dir, sentiment_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("calibrated")
    # one short epoch: a model that learned (~0.9 accuracy) but is not yet sure of everything
    return fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        output_dir=out,
        data_dir=str(sentiment_dir),
        eval_steps=5,
        **{**FAST, "learning_rate": 3e-4, "num_train_epochs": 1},
    )


def _eval_logits(fm, rows):
    import numpy as np

    logits = fm._logits([t for t, _ in rows], None, 64, False)
    return logits.astype(np.float64), np.array([y for _, y in rows])


def test_temperature_scaling_lowers_the_eval_nll_and_predict_applies_it(calibrated):
    import numpy as np

    from modernbert_tasks import load_finetuned

    manifest = json.loads((calibrated.model_path / "modernbert_tasks.json").read_text())
    t = manifest["calibration"]["temperature"]
    # chance is 0.5; one short epoch on purpose (a model that is not yet sure of itself), so
    # the bar is 0.7 (3.5 standard deviations above chance on 80 examples)
    assert calibrated.metrics["accuracy"] >= 0.7
    assert t != 1.0 and calibrated.metrics["temperature"] == t
    fm = load_finetuned(calibrated.model_path, precision="fp32")  # probabilities held to 1e-5
    rows = make_sentiment_rows(80, seed=2)  # validation.tsv: what the temperature was fitted on
    logits, labels = _eval_logits(fm, rows)
    assert _nll(logits, labels, t) < _nll(logits, labels, 1.0) - 1e-4
    got = fm.predict([text for text, _ in rows])
    np.testing.assert_allclose(
        [r["probabilities"]["positive"] for r in got], _softmax(logits / t)[:, 1], atol=1e-5
    )
    assert [r["label"] for r in got] == [fm.labels[k] for k in logits.argmax(1)]  # unchanged
    report = fm.evaluate(make_sentiment_rows(80, seed=3))
    assert {"ece", "ece_calibrated", "brier", "brier_calibrated"} <= set(report)
    assert report["temperature"] == t and 0 <= report["ece_calibrated"] <= 1


def test_a_stored_decision_threshold_changes_binary_decisions(calibrated, tmp_path):
    import shutil

    from modernbert_tasks import load_finetuned

    texts = [text for text, _ in make_sentiment_rows(80, seed=2)]
    before = load_finetuned(calibrated.model_path).predict(texts)
    positive = sorted(r["probabilities"]["positive"] for r in before if r["label"] == "positive")
    threshold = positive[0] + 1e-9  # the least sure positive decision falls below it
    assert 0.5 < threshold < 1
    folder = shutil.copytree(calibrated.model_path, tmp_path / "model")
    path = folder / "modernbert_tasks.json"
    manifest = json.loads(path.read_text())
    manifest["calibration"]["decision_threshold"] = threshold
    path.write_text(json.dumps(manifest))
    got = load_finetuned(folder).predict(texts)
    assert [r["label"] for r in got] == [
        "positive" if r["probabilities"]["positive"] >= threshold else "negative" for r in got
    ]
    flipped = sum(a["label"] != b["label"] for a, b in zip(before, got, strict=True))
    assert flipped == sum(p < threshold for p in positive) >= 1


def test_decision_threshold_tune_is_stored_and_reported(tiny_model_dir, sentiment_dir, tmp_path):
    result = fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        output_dir=tmp_path,
        data_dir=str(sentiment_dir),
        decision_threshold="tune",
        max_train_samples=64,
        **FAST,
    )
    manifest = json.loads((result.model_path / "modernbert_tasks.json").read_text())
    threshold = manifest["calibration"]["decision_threshold"]
    assert 0 < threshold < 1 and result.metrics["decision_threshold"] == threshold
    # the tuned threshold is at least as good as 0.5 on the split it was tuned on
    assert result.metrics["accuracy_at_threshold"] >= result.metrics["accuracy"]


# --- max_length="auto" --------------------------------------------------------------------------
def test_max_length_auto_covers_all_but_the_longest_tenth_of_a_percent(tiny_model_dir, tmp_path, caplog):
    from transformers import AutoTokenizer

    from modernbert_tasks.training.engine import prepare

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    short, mid, long = "great", "the film was " + "really " * 40 + "great", "dull " * 300
    size = {t: len(tokenizer(t)["input_ids"]) for t in (short, mid, long)}
    assert size[short] < size[mid] < size[long] <= 512
    # 1,000 texts: 998 short, 1 mid, 1 long. 999 of 1,000 (99.9%) fit in `mid` tokens.
    rows = [(short, i % 2) for i in range(998)] + [(mid, 1), (long, 0)]
    data = tmp_path / "data"
    data.mkdir()
    write_tsv(data / "train.tsv", rows)
    write_tsv(data / "validation.tsv", make_sentiment_rows(20, seed=2))
    with caplog.at_level("INFO", logger="modernbert_tasks"):
        run = prepare(
            "sst2", str(tiny_model_dir), tmp_path / "out", data_dir=str(data), max_length="auto", **FAST
        )
    expected = -(-size[mid] // 8) * 8  # rounded up to a multiple of 8
    assert run.max_length == expected and expected % 8 == 0
    assert f"max_length='auto': {expected} tokens" in caplog.text
    assert "1 of them (0.10%) are truncated" in caplog.text


def test_max_length_auto_is_capped_at_the_model_positions():
    from modernbert_tasks.training.lengths import choose_max_length

    assert choose_max_length([10] * 999 + [9000], limit=8192) == 16
    assert choose_max_length([9000] * 1000, limit=8192) == 8192
    assert choose_max_length([3, 4], limit=None) == 8


# --- evaluation plots ---------------------------------------------------------------------------
def test_evaluation_plots_are_written(calibrated, tmp_path):
    pytest.importorskip("matplotlib")
    from modernbert_tasks import load_finetuned
    from modernbert_tasks.inference.plots import write_evaluation_plots

    written = write_evaluation_plots(
        load_finetuned(calibrated.model_path), tmp_path / "plots", make_sentiment_rows(80, seed=3)
    )
    assert set(written) == {"confusion_matrix", "reliability"}
    for path in written.values():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_plots_without_matplotlib_fail_with_an_install_hint(calibrated, tmp_path, monkeypatch):
    import sys

    from modernbert_tasks import load_finetuned
    from modernbert_tasks.inference.plots import write_evaluation_plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'modernbert-tasks\[plot\]'"):
        write_evaluation_plots(
            load_finetuned(calibrated.model_path), tmp_path / "plots", make_sentiment_rows(8, seed=3)
        )
    assert not (tmp_path / "plots").exists()
