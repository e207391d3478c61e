"""fine_tune end to end on a tiny ModernBERT: it learns, saves, reloads, resumes, and fails
clearly."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import pytest
from transformers import TrainerCallback

from modernbert_tasks import ConfigError, ModelLoadError, Task, fine_tune, load_finetuned
from modernbert_tasks.testing import FAST, NEGATIVE, NEUTRAL, POSITIVE, write_tsv
from modernbert_tasks.training.engine import FineTuneResult


def _read_tsv(path):
    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


# --- the recipe, end to end -----------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(trained_sentiment) -> FineTuneResult:
    """conftest's session run: 40 steps; an evaluation and a checkpoint every 4 (the default
    would be once, at the end)."""
    return trained_sentiment


def test_the_model_learns(trained):
    assert trained.metrics["accuracy"] >= 0.85  # chance is 0.5
    assert trained.metrics["test_accuracy"] >= 0.85  # the labelled test split is scored too
    for key in ("loss", "train_runtime", "train_samples_per_second", "train_loss"):
        assert trained.metrics[key] > 0
    assert not any(key.startswith("eval_accuracy") for key in trained.metrics)
    json.dumps(trained.to_dict())


def test_evaluation_and_checkpoints_happen_during_training(trained):
    evals = [e for e in trained.log_history if "eval_accuracy" in e]
    assert len(evals) >= 10  # every 10% of the run, plus the final evaluation
    checkpoints = sorted(p.name for p in trained.output_dir.glob("checkpoint-*"))
    assert 1 <= len(checkpoints) <= 2  # save_total_limit=2 keeps the best and the last
    assert trained.best_checkpoint is not None and trained.best_checkpoint.name in checkpoints
    best = max(e["eval_accuracy"] for e in evals[:-1])
    assert trained.metrics["accuracy"] == best  # the best checkpoint was loaded at the end


def test_the_saved_folder_is_complete_and_safe(trained, tiny_model_dir):
    folder = trained.model_path
    assert folder == trained.output_dir / "model"
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "modernbert_tasks.json"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert not list(trained.output_dir.glob(".model.*"))  # no staging folder left behind
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}
    assert config["problem_type"] == "single_label_classification"
    base = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["classifier_pooling"] == base["classifier_pooling"] == "mean"  # kept


def test_the_manifest_records_task_metrics_and_settings(trained, tiny_model_dir):
    manifest = json.loads((trained.model_path / "modernbert_tasks.json").read_text())
    assert manifest["task"]["name"] == "sst2" and manifest["task"]["plugin"] == "builtin"
    # the folder's name, not its local path (the card and push show it)
    assert manifest["max_length"] == 128 and manifest["base_model"] == tiny_model_dir.name
    # the tiny model's positions; long texts cut unless trained or asked otherwise
    assert manifest["prediction"] == {"max_length": 512, "long_text": "truncate"}
    assert manifest["metrics"]["accuracy"] == trained.metrics["accuracy"]
    training = manifest["training"]
    assert training["learning_rate"] == 1e-3 and training["per_device_train_batch_size"] == 16
    assert training["precision"] in ("bf16", "fp32") and training["world_size"] == 1


def test_tensorboard_logs_go_to_output_dir_logs(trained):
    assert list((trained.output_dir / "logs").glob("events.out.tfevents.*"))


def test_the_reloaded_model_reproduces_the_evaluation(trained, sentiment_dir):
    from modernbert_tasks import load_finetuned

    model = load_finetuned(trained.model_path)
    rows = _read_tsv(sentiment_dir / "validation.tsv")
    predictions = model.predict([r["sentence"] for r in rows])
    labels = ["negative", "positive"]
    accuracy = sum(
        p["label"] == labels[int(r["label"])] for p, r in zip(predictions, rows, strict=True)
    ) / len(rows)
    assert accuracy == trained.metrics["accuracy"]
    scored = model.evaluate(data_dir=str(sentiment_dir))
    assert scored["accuracy"] == trained.metrics["accuracy"]
    assert scored["loss"] == pytest.approx(trained.metrics["loss"], rel=1e-2, abs=1e-3)


def test_auto_interval_follows_the_run_length(tiny_model_dir, sentiment_dir, tmp_path):
    from modernbert_tasks.training.engine import prepare

    common = dict(model_name=str(tiny_model_dir), data_dir=str(sentiment_dir), report_to="none")
    short = prepare("sst2", output_dir=tmp_path / "a", **common)  # 3 epochs x 20 = 60 steps
    assert short.trainer.args.eval_steps == short.trainer.args.save_steps == 50
    long = prepare("sst2", output_dir=tmp_path / "b", max_steps=3000, **common)
    assert long.trainer.args.eval_steps == long.trainer.args.save_steps == 300


# --- resume ---------------------------------------------------------------------------------
class StopAt(TrainerCallback):
    """Simulates a crash right after the checkpoint at `step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


class CountSteps(TrainerCallback):
    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def _losses(result: FineTuneResult) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in result.log_history if "loss" in e}


def test_resume_continues_where_training_stopped(tiny_model_dir, sentiment_dir, tmp_path):
    # 320 rows / 16 = 20 steps an epoch, 40 in all; checkpoints every 10; stop mid-epoch 2
    args = dict(
        model_name=str(tiny_model_dir), data_dir=str(sentiment_dir), eval_steps=10, logging_steps=5, **FAST
    )
    whole = fine_tune("sst2", output_dir=tmp_path / "whole", **args)

    stopped = fine_tune("sst2", output_dir=tmp_path / "run", callbacks=[StopAt(30)], **args)
    assert max(_losses(stopped)) == 30
    with pytest.raises(ConfigError, match="resume=True"):  # no silent clobbering
        fine_tune("sst2", output_dir=tmp_path / "run", **args)

    counter = CountSteps()
    resumed = fine_tune("sst2", output_dir=tmp_path / "run", resume=True, callbacks=[counter], **args)
    assert counter.steps == list(range(31, 41))  # only the missing steps ran
    losses = _losses(resumed)
    assert sorted(losses) == list(range(5, 41, 5))  # each logged step once, none redone
    # optimizer, scheduler, RNG and data order restored: the same run as without the stop
    assert losses == pytest.approx(_losses(whole), rel=1e-4)
    assert resumed.metrics["accuracy"] == whole.metrics["accuracy"]


def test_overwrite_starts_over(tiny_model_dir, sentiment_dir, tmp_path):
    args = dict(
        model_name=str(tiny_model_dir),
        data_dir=str(sentiment_dir),
        output_dir=tmp_path,
        disable_tqdm=True,
        learning_rate=1e-3,
    )
    fine_tune("sst2", max_steps=6, eval_steps=3, **args)
    assert {p.name for p in tmp_path.glob("checkpoint-*")} == {"checkpoint-3", "checkpoint-6"}
    old_logs = set((tmp_path / "logs").iterdir())
    result = fine_tune("sst2", max_steps=4, eval_steps=2, overwrite=True, **args)
    assert {p.name for p in tmp_path.glob("checkpoint-*")} <= {"checkpoint-2", "checkpoint-4"}
    assert not old_logs & set((tmp_path / "logs").iterdir())
    assert result.log_history[-1]["step"] == 4


# --- other problem types --------------------------------------------------------------------
def _graded_rows(n: int, seed: int):
    """Two adjectives; the score counts the positive ones (0, 2.5 or 5)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(0, 1), rng.randint(0, 1)
        words = [rng.choice(POSITIVE if x else NEGATIVE) for x in (a, b)]
        rows.append((f"{rng.choice(NEUTRAL)} was {words[0]} but {words[1]}", 2.5 * (a + b)))
    return rows


def test_regression(tiny_model_dir, tmp_path):
    for split, n, seed in (("train", 320, 1), ("validation", 80, 2)):
        write_tsv(tmp_path / f"{split}.tsv", _graded_rows(n, seed), header=("sentence", "score"))
    task = Task(
        name="toy-sts",
        problem_type="regression",
        label_column="score",
        metrics=("pearson", "mse"),
        main_metric="pearson",
    )
    result = fine_tune(
        task,
        model_name=str(tiny_model_dir),
        output_dir=tmp_path / "run",
        data_dir=str(tmp_path),
        num_train_epochs=3,
        learning_rate=1e-3,
        disable_tqdm=True,
        report_to="none",
    )
    assert result.metrics["pearson"] > 0.8
    config = json.loads((result.model_path / "config.json").read_text())
    assert config["problem_type"] == "regression" and len(config["id2label"]) == 1


def _nli_rows(n: int, seed: int):
    """Pairs; the label follows the hypothesis: positive, negative, or no opinion."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 2)
        word = [rng.choice(POSITIVE), rng.choice(NEGATIVE), "long"][label]
        premise = f"{rng.choice(NEUTRAL)} was {rng.choice(POSITIVE + NEGATIVE)}"
        rows.append((premise, f"{rng.choice(NEUTRAL)} was {word}", label))
    return rows


def test_three_labels_on_sentence_pairs(tiny_model_dir, tmp_path):
    for split, n, seed in (("train", 320, 1), ("validation", 90, 2)):
        write_tsv(tmp_path / f"{split}.tsv", _nli_rows(n, seed), header=("premise", "hypothesis", "label"))
    task = Task(
        name="toy-nli",
        labels=("good", "bad", "neutral"),
        text_columns=("premise", "hypothesis"),
        metrics=("accuracy", "macro_f1"),
        main_metric="macro_f1",
    )
    result = fine_tune(
        task,
        model_name=str(tiny_model_dir),
        output_dir=tmp_path / "run",
        data_dir=str(tmp_path),
        disable_tqdm=True,
        report_to="none",
        learning_rate=1e-3,
        num_train_epochs=3,
    )
    assert result.metrics["accuracy"] > 0.8  # chance is 1/3
    config = json.loads((result.model_path / "config.json").read_text())
    assert config["id2label"] == {"0": "good", "1": "bad", "2": "neutral"}
    manifest = json.loads((result.model_path / "modernbert_tasks.json").read_text())
    assert manifest["task"]["plugin"] is None  # a Task object nobody registered


def test_without_an_eval_split_it_trains_and_saves_the_last_model(tiny_model_dir, sentiment_dir, tmp_path):
    shutil.copy(sentiment_dir / "train.tsv", tmp_path / "train.tsv")
    args = dict(
        model_name=str(tiny_model_dir),
        data_dir=str(tmp_path),
        max_steps=3,
        disable_tqdm=True,
        report_to="none",
    )
    result = fine_tune("sst2", output_dir=tmp_path / "run", validation_fraction=0, **args)
    assert "accuracy" not in result.metrics and result.best_checkpoint is None
    assert (result.model_path / "model.safetensors").is_file()
    # by default, 10% of the training rows are held out and the model is evaluated on them
    held = fine_tune("sst2", output_dir=tmp_path / "held", **args)
    assert "accuracy" in held.metrics
    assert held.to_dict()["metrics"]["accuracy"] == held.metrics["accuracy"]


# --- errors ---------------------------------------------------------------------------------
def test_a_folder_without_weights_is_explained(tiny_model_dir, sentiment_dir, tmp_path):
    shutil.copytree(tiny_model_dir, tmp_path / "m", ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(ModelLoadError, match="no weights"):
        fine_tune(
            "sst2", model_name=str(tmp_path / "m"), output_dir=tmp_path / "run", data_dir=str(sentiment_dir)
        )


def test_a_folder_that_is_no_model_is_explained(sentiment_dir, tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(ModelLoadError, match="not a model folder"):
        fine_tune("sst2", model_name=str(tmp_path / "m"), data_dir=str(sentiment_dir))


def test_offline_without_cache_says_to_pass_a_local_folder(monkeypatch, sentiment_dir, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match="pass a local model folder: model_name="):
        fine_tune(
            "sst2",
            model_name="lightonai/not-cached-anywhere",
            cache_dir=str(tmp_path),
            data_dir=str(sentiment_dir),
        )


def test_max_length_beyond_the_model_is_refused(tiny_model_dir, sentiment_dir, tmp_path):
    with pytest.raises(ConfigError, match="max_length=1024 exceeds"):
        fine_tune(
            "sst2",
            model_name=str(tiny_model_dir),
            output_dir=tmp_path,
            data_dir=str(sentiment_dir),
            max_length=1024,
        )


# --- the final save -------------------------------------------------------------------------
def test_the_new_model_replaces_the_old_one_only_when_complete(tmp_path):
    from modernbert_tasks.artifacts.saving import swap_into_place

    target, staged = tmp_path / "model", tmp_path / ".model.partial"
    target.mkdir()
    (target / "model.safetensors").write_text("old")
    staged.mkdir()
    (staged / "model.safetensors").write_text("new")
    swap_into_place(staged, target)
    assert (target / "model.safetensors").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # nothing left beside it


# --- one figure per model, one TensorBoard record per evaluation --------------------------------
@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory, tiny_model_dir, small_sentiment_dir) -> tuple[Path, dict]:
    """Trained under bf16 autocast (emulated on CPUs without bf16: slow, but the model is tiny),
    with an evaluation at the last step, so the final evaluation repeats that step."""
    out = tmp_path_factory.mktemp("round2-bf16") / "run"
    result = fine_tune(
        "sst2",
        model_name=tiny_model_dir,
        output_dir=out,
        data_dir=small_sentiment_dir,
        max_steps=6,
        eval_steps=3,
        precision="bf16",
        learning_rate=1e-3,
        disable_tqdm=True,
        warmup_steps=0,
        report_to="tensorboard",
    )
    return out, result.metrics


def test_the_training_summary_is_the_figure_evaluate_reproduces(bf16_run, small_sentiment_dir):
    out, metrics = bf16_run
    manifest = json.loads((out / "model" / "modernbert_tasks.json").read_text())
    assert manifest["training"]["precision"] == "bf16"  # trained under bf16 autocast
    scored = load_finetuned(out / "model").evaluate(data_dir=small_sentiment_dir)  # fp32, as predict
    assert scored["accuracy"] == metrics["accuracy"]
    assert scored["loss"] == pytest.approx(metrics["loss"], rel=1e-5)


def test_tensorboard_records_each_evaluation_once_in_one_event_file(bf16_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _ = bf16_run
    files = list((out / "logs").rglob("events.out.tfevents.*"))
    assert len(files) == 1, files
    events = EventAccumulator(str(files[0])).Reload()
    steps = [e.step for e in events.Scalars("eval/accuracy")]
    assert steps == [3, 6]  # the two periodic evaluations; the final one is not repeated
