"""Results you can trust: several seeds, early stopping, class weights, calibration and
max_length="auto", on the tiny ModernBERT."""

from __future__ import annotations

import hashlib
import json
import statistics

import pytest
from conftest import make_sentiment_rows, write_tsv

from modernbert_tasks import ConfigError, fine_tune

FAST = {"learning_rate": 1e-3, "num_train_epochs": 2, "disable_tqdm": True, "report_to": "none"}


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- several seeds ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_seeds(tiny_model_dir, sentiment_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds")
    return fine_tune("sst2", model_name=str(tiny_model_dir), output_dir=out,
                     data_dir=str(sentiment_dir), seeds=[1, 2], eval_steps=5, **FAST)


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
    assert saved["summary"]["accuracy"]["mean"] == pytest.approx(
        info["summary"]["accuracy"]["mean"])


def test_the_better_seed_is_promoted_with_a_manifest_naming_all_seeds(two_seeds):
    per_seed = two_seeds.seeds["per_seed"]
    best = max((1, 2), key=lambda s: per_seed[str(s)]["accuracy"])  # ties: the first
    assert two_seeds.seeds["best_seed"] == best
    out = two_seeds.output_dir
    assert two_seeds.model_path == out / "model"
    assert _sha(out / "model" / "model.safetensors") == _sha(
        out / f"seed-{best}" / "model" / "model.safetensors")
    manifest = json.loads((out / "model" / "modernbert_tasks.json").read_text())
    assert manifest["seeds"]["seeds"] == [1, 2] and manifest["seeds"]["best_seed"] == best
    assert two_seeds.metrics["accuracy"] == per_seed[str(best)]["accuracy"]
    json.dumps(two_seeds.to_dict())


def test_the_seed_table_lists_every_seed(two_seeds):
    from modernbert_tasks.training.seeds import format_seed_table

    table = format_seed_table(two_seeds)
    assert "seed 1" in table and "seed 2" in table and "±" in table
    assert any(line.startswith("accuracy") for line in table.splitlines())


def test_resuming_skips_finished_seeds(two_seeds, tiny_model_dir, sentiment_dir):
    out = two_seeds.output_dir
    before = _sha(out / "seed-1" / "model" / "model.safetensors")
    again = fine_tune("sst2", model_name=str(tiny_model_dir), output_dir=out,
                      data_dir=str(sentiment_dir), seeds=[1, 2], resume=True, eval_steps=5,
                      **FAST)
    assert _sha(out / "seed-1" / "model" / "model.safetensors") == before  # not retrained
    assert again.seeds["per_seed"] == two_seeds.seeds["per_seed"]


def test_seeds_refuse_an_earlier_run_before_training(two_seeds, tiny_model_dir, sentiment_dir):
    with pytest.raises(ConfigError, match="resume=True"):
        fine_tune("sst2", model_name=str(tiny_model_dir), output_dir=two_seeds.output_dir,
                  data_dir=str(sentiment_dir), seeds=[1, 2], **FAST)
    with pytest.raises(ConfigError, match="distinct"):
        fine_tune("sst2", model_name=str(tiny_model_dir), output_dir=two_seeds.output_dir,
                  data_dir=str(sentiment_dir), seeds=[1, 1], **FAST)


# --- early stopping -----------------------------------------------------------------------------
def test_early_stopping_stops_a_plateauing_run(tiny_model_dir, sentiment_dir, tmp_path):
    # a learning rate of ~0 keeps the model, hence the eval metric, flat from the first evaluation
    result = fine_tune("sst2", model_name=str(tiny_model_dir), output_dir=tmp_path,
                       data_dir=str(sentiment_dir), max_steps=40, eval_steps=2,
                       early_stopping_patience=2, temperature_scaling=False,
                       **{**FAST, "learning_rate": 1e-12})
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
        fine_tune("sst2", model_name=str(tiny_model_dir), output_dir=tmp_path / "out",
                  data_dir=str(data), early_stopping_patience=2, **FAST)
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

    from modernbert_tasks.training.engine import _manifest, prepare

    data = _imbalanced_dir(tmp_path / "data", positives=5, negatives=55)
    with caplog.at_level("INFO", logger="modernbert_tasks"):
        run = prepare("sst2", str(tiny_model_dir), tmp_path / "out", data_dir=str(data),
                      class_weights="balanced", per_device_train_batch_size=32, **FAST)
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
    by_hand = (weights[labels] * F.cross_entropy(logits, labels, reduction="none")).sum() / len(
        labels)
    assert float(loss) == pytest.approx(float(by_hand), rel=1e-5)
    assert abs(float(loss) - float(F.cross_entropy(logits, labels))) > 1e-3  # it changed
    training = _manifest(run, {})["training"]
    assert training["class_weights"] == "balanced"
    assert training["class_weight_values"] == pytest.approx({"negative": 60 / 110,
                                                             "positive": 60 / 10})


def test_class_weights_must_name_labels(tiny_model_dir, sentiment_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"\['postive'\].*'negative', 'positive'"):
        fine_tune("sst2", model_name=str(tiny_model_dir), output_dir=tmp_path,
                  data_dir=str(sentiment_dir), class_weights={"postive": 5.0}, **FAST)
