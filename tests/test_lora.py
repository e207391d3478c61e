"""LoRA through peft (training/lora.py) on the tiny ModernBERT: it learns, the saved model is
merged and reloads with its trained head (the evaluation reproduced exactly), the adapter folder
rebuilds the same model, and it composes with resume, early stopping and seeds' options."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import TrainerCallback

from modernbert_tasks import ConfigError, fine_tune, load_finetuned
from modernbert_tasks.options import LORA_LEARNING_RATE, resolve_options
from modernbert_tasks.testing import FAST, run_cli

pytest.importorskip("peft", reason="the peft extra: pip install 'modernbert-tasks[peft]'")


@pytest.fixture(scope="module")
def lora_run(tiny_model_dir, sentiment_dir, tmp_path_factory):
    """2 epochs of LoRA at its default learning rate, the adapter saved too."""
    out = tmp_path_factory.mktemp("lora")
    args = {k: v for k, v in FAST.items() if k != "learning_rate"}
    result = fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        output_dir=out,
        data_dir=str(sentiment_dir),
        lora=True,
        save_adapter=True,
        eval_steps=10,
        **args,
    )
    return result


def _manifest(model_path):
    return json.loads((model_path / "modernbert_tasks.json").read_text())


def test_lora_learns_with_a_few_percent_of_the_parameters(lora_run, shared_tokenizer_dir):
    # the trainable share is measured against ModernBERT's 50k-token embedding matrix; the
    # fallback tokenizer's 512 tokens leave the adapters a far larger share
    assert lora_run.metrics["accuracy"] >= 0.8  # chance is 0.5
    lora = _manifest(lora_run.model_path)["lora"]
    assert lora["target_modules"] == ["Wi", "Wo", "Wqkv"]  # ModernBERT's default
    assert lora["adapted_modules"] == 8  # 2 layers x (attn Wqkv, Wo; mlp Wi, Wo)
    assert lora["modules_to_save"] == ["head", "classifier"]
    assert lora["merged"] is True and lora["adapter_saved"] is True
    assert 0 < lora["trainable_percent"] < 3
    assert lora["trainable_parameters"] < lora["total_parameters"]
    training = _manifest(lora_run.model_path)["training"]
    assert training["lora"] is True and training["lora_r"] == 8
    assert training["learning_rate"] == LORA_LEARNING_RATE.value  # LoRA's own default


def test_the_saved_model_is_merged_and_reproduces_the_evaluation(lora_run, sentiment_dir):
    """The head-loss trap: a head left out of the save would be random again on reload."""
    files = {p.name for p in lora_run.model_path.iterdir()}
    assert "model.safetensors" in files and "adapter_config.json" not in files
    model = load_finetuned(lora_run.model_path)
    scored = model.evaluate(data_dir=str(sentiment_dir))
    assert scored["accuracy"] == lora_run.metrics["accuracy"]
    assert scored["loss"] == pytest.approx(lora_run.metrics["loss"], rel=1e-6)
    # a plain transformers folder: no peft needed to read it
    from transformers import AutoModelForSequenceClassification

    plain = AutoModelForSequenceClassification.from_pretrained(lora_run.model_path)
    assert not any("lora" in name for name, _ in plain.named_parameters())
    from transformers import pipeline

    texts = ["the film was great", "the plot is dull and boring", "what a superb experience"]
    answers = pipeline("text-classification", model=str(lora_run.model_path))(texts)
    assert [a["label"] for a in answers] == [p["label"] for p in model.predict(texts)]


def test_the_head_and_the_encoder_were_trained(lora_run, tiny_model_dir):
    from safetensors.torch import load_file

    before = load_file(tiny_model_dir / "model.safetensors")
    after = load_file(lora_run.model_path / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert "classifier.weight" in changed and "head.dense.weight" in changed  # in full
    assert "model.layers.0.attn.Wqkv.weight" in changed  # the adapters, merged
    assert "model.embeddings.tok_embeddings.weight" not in changed  # frozen


def test_the_adapter_folder_rebuilds_the_merged_model(lora_run, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    adapter = lora_run.output_dir / "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in adapter.iterdir()}
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    rebuilt = PeftModel.from_pretrained(base, adapter).eval()
    merged = AutoModelForSequenceClassification.from_pretrained(lora_run.model_path).eval()
    batch = AutoTokenizer.from_pretrained(tiny_model_dir)(
        ["the film was great", "the plot is dull and boring"], return_tensors="pt", padding=True
    )
    with torch.no_grad():
        assert torch.allclose(rebuilt(**batch).logits, merged(**batch).logits, atol=1e-5)


def test_the_model_card_names_the_lora_settings(lora_run):
    card = (lora_run.model_path / "README.md").read_text()
    row = next(line for line in card.splitlines() if line.startswith("| LoRA |"))
    assert "rank 8" in row and "`Wqkv`" in row and "merged" in row


# --- composes with resume and early stopping ----------------------------------------------------
class StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def _losses(result) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in result.log_history if "loss" in e}


def test_a_lora_run_resumes_where_it_stopped(tiny_model_dir, sentiment_dir, tmp_path):
    args = dict(
        model_name=str(tiny_model_dir),
        data_dir=str(sentiment_dir),
        lora=True,
        eval_steps=10,
        logging_steps=5,
        **FAST,
    )
    whole = fine_tune("sst2", output_dir=tmp_path / "whole", **args)
    fine_tune("sst2", output_dir=tmp_path / "run", callbacks=[StopAt(30)], **args)
    assert (tmp_path / "run" / "checkpoint-30" / "adapter_model.safetensors").is_file()
    with pytest.raises(ConfigError, match="lora=True"):  # a LoRA checkpoint needs LoRA
        fine_tune(
            "sst2",
            output_dir=tmp_path / "run",
            resume=True,
            **{k: v for k, v in args.items() if k != "lora"},
        )
    with pytest.raises(ConfigError, match="lora_r=8"):
        fine_tune("sst2", output_dir=tmp_path / "run", resume=True, lora_r=4, **args)
    resumed = fine_tune("sst2", output_dir=tmp_path / "run", resume=True, **args)
    assert sorted(_losses(resumed)) == list(range(5, 41, 5))
    assert _losses(resumed) == pytest.approx(_losses(whole), rel=1e-4)
    assert resumed.metrics["accuracy"] == whole.metrics["accuracy"]


def test_early_stopping_keeps_the_best_adapters_and_head(tiny_model_dir, sentiment_dir, tmp_path):
    result = fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        output_dir=tmp_path,
        data_dir=str(sentiment_dir),
        lora=True,
        class_weights="balanced",
        early_stopping_patience=2,
        eval_steps=4,
        **FAST,
    )
    evals = [e for e in result.log_history if "eval_accuracy" in e]
    best = max(e["eval_accuracy"] for e in evals)
    # the final (merged) model is the best checkpoint's, adapters and head both
    assert result.metrics["accuracy"] == best
    assert _manifest(result.model_path)["training"]["class_weight_values"] is not None


# --- options and bad input ----------------------------------------------------------------------
def test_lora_brings_its_own_learning_rate_unless_the_caller_gives_one():
    from modernbert_tasks import get_task

    task = get_task("sst2")  # its hyperparameters say 3e-5: for full fine-tuning
    resolved = resolve_options(task, {"lora": True})
    assert resolved.trainer_kwargs["learning_rate"] == LORA_LEARNING_RATE.value
    assert resolved.sources["learning_rate"] == LORA_LEARNING_RATE.source
    assert (
        resolve_options(task, {"lora": True, "learning_rate": 1e-4}).trainer_kwargs["learning_rate"] == 1e-4
    )
    assert resolve_options(task, {}).trainer_kwargs["learning_rate"] == 3e-5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"lora": True, "lora_r": 0}, "lora_r=0 is not a rank; expected a positive integer"),
        ({"lora": True, "lora_r": -4}, "lora_r=-4 is not a rank"),
        ({"lora": True, "lora_dropout": 1.0}, r"lora_dropout=1.0; expected a number in \[0, 1\)"),
        ({"lora": True, "lora_target_modules": []}, "names no module"),
        ({"lora_r": 16}, "lora_r=16 has no effect without lora=True"),
        ({"save_adapter": True}, "save_adapter=True has no effect without lora=True"),
    ],
)
def test_bad_lora_options_are_refused_before_anything_is_read(args, message):
    from modernbert_tasks import get_task

    with pytest.raises(ConfigError, match=message):
        resolve_options(get_task("sst2"), args)


def test_target_modules_that_match_nothing_list_the_names_that_exist(tiny_model_dir, sentiment_dir, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as info:
        fine_tune(
            "sst2",
            model_name=str(tiny_model_dir),
            output_dir=out,
            data_dir=str(sentiment_dir),
            lora=True,
            lora_target_modules=["Wqkv", "query"],
            **FAST,
        )
    message = str(info.value)
    assert "'query'" in message and "matches no layer" in message
    assert "Wi, Wo, Wqkv" in message  # the names that exist
    assert not out.exists()  # nothing was written
    with pytest.raises(ConfigError, match="in the head, which is trained in full"):
        fine_tune(
            "sst2",
            model_name=str(tiny_model_dir),
            output_dir=out,
            data_dir=str(sentiment_dir),
            lora=True,
            lora_target_modules="classifier",
            **FAST,
        )


def test_without_peft_lora_says_how_to_install_it(monkeypatch):
    import importlib.util

    from modernbert_tasks import get_task

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"pip install 'modernbert-tasks\[peft\]'"):
        resolve_options(get_task("sst2"), {"lora": True})


def test_a_run_without_lora_never_imports_peft(tiny_model_dir, small_sentiment_dir, tmp_path, monkeypatch):
    """peft is the [peft] extra: a plain run must train and save where it is not installed."""
    import sys

    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` now raises ImportError
    result = fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        data_dir=str(small_sentiment_dir),
        output_dir=tmp_path / "run",
        max_steps=2,
        report_to="none",
        disable_tqdm=True,
    )
    assert (result.model_path / "model.safetensors").is_file()
    assert "lora" not in json.loads((result.model_path / "modernbert_tasks.json").read_text())


def test_the_cli_trains_with_lora_flags(tiny_model_dir, small_sentiment_dir, tmp_path):
    result = run_cli(
        *[
            "train",
            "sst2",
            "--model",
            str(tiny_model_dir),
            "--data-dir",
            str(small_sentiment_dir),
            "--output-dir",
            str(tmp_path / "run"),
            "--lora",
            "--lora-r",
            "4",
            "--lora-target-modules",
            "Wqkv",
            "Wo",
            "--max-steps",
            "4",
            "--report-to",
            "none",
        ]
    )
    assert result.returncode == 0, result.stderr
    lora = _manifest(tmp_path / "run" / "model")["lora"]
    assert lora["r"] == 4 and lora["target_modules"] == ["Wo", "Wqkv"]
    assert "(LoRA rank 4, " in result.stdout and "% of the parameters trained, merged)" in result.stdout
    bad = run_cli(
        *[
            "train",
            "sst2",
            "--model",
            str(tiny_model_dir),
            "--data-dir",
            str(small_sentiment_dir),
            "--output-dir",
            str(tmp_path / "bad"),
            "--lora",
            "--lora-target-modules",
            "query",
        ]
    )
    assert bad.returncode != 0 and "Wqkv" in bad.stderr and "--lora-target-modules" in bad.stderr


def test_search_trains_fresh_adapters_per_trial_in_lora_space(tiny_model_dir, sentiment_dir, tmp_path):
    pytest.importorskip("optuna", reason="the search extra: pip install 'modernbert-tasks[search]'")
    from modernbert_tasks import search
    from modernbert_tasks.training.search import LORA_SPACE

    result = search(
        "sst2",
        model_name=tiny_model_dir,
        output_dir=tmp_path,
        data_dir=sentiment_dir,
        n_trials=2,
        lora=True,
        max_steps=6,
        report_to="none",
        disable_tqdm=True,
    )
    saved = json.loads((tmp_path / "search.json").read_text())
    assert saved["space"] == LORA_SPACE  # LoRA's learning rates, not full fine-tuning's
    assert len(result.trials) == 2
    for trial in result.trials:
        assert 1e-4 <= trial["params"]["learning_rate"] <= 2e-3
        assert 0 <= trial["objective"] <= 1
    # every trial started from the pretrained weights with new adapters: a trial's first
    # checkpoint holds an adapter, not a full model
    assert list(tmp_path.glob("run-*/checkpoint-*/adapter_model.safetensors"))
