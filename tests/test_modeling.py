"""One loader for training and prediction (modeling.py): the same text formatting, device
choice and pickle policy on both sides."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import logging
import shutil
import types

import pytest

import modernbert_tasks as mt
from modernbert_tasks import ModelLoadError, Task, fine_tune, hookimpl, load_finetuned
from modernbert_tasks.plugins import registry


@dataclasses.dataclass(frozen=True)
class Rot13Task(Task):
    """Trains on ROT13-encoded texts: a model fed the plain texts sees words it never saw."""

    def format_text(self, text: str) -> str:
        return codecs.encode(text, "rot13")


def _rot13_plugin() -> types.ModuleType:
    module = types.ModuleType("rot13plugin")

    @hookimpl
    def register_tasks(register):
        register(
            Rot13Task(
                name="rot13-sentiment",
                labels=("negative", "positive"),
                text_columns=("sentence",),
                splits={"train": "train", "eval": "validation"},
            )
        )

    module.register_tasks = register_tasks
    return module


def _rows(path):
    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def _accuracy(model, rows) -> float:
    predictions = model.predict([r["sentence"] for r in rows])
    return sum(
        p["label"] == model.labels[int(r["label"])] for p, r in zip(predictions, rows, strict=True)
    ) / len(rows)


@pytest.fixture(scope="module")
def rot13_run(tiny_model_dir, sentiment_dir, tmp_path_factory):
    registry.register_plugin(_rot13_plugin(), name="rot13plugin")
    registry.reset()
    try:
        out = tmp_path_factory.mktemp("rot13") / "run"
        result = fine_tune(
            "rot13-sentiment",
            model_name=tiny_model_dir,
            output_dir=out,
            data_dir=sentiment_dir,
            learning_rate=1e-3,
            num_train_epochs=2,
            disable_tqdm=True,
            report_to="none",
        )
        model = load_finetuned(result.model_path)
        yield result, model, _rows(sentiment_dir / "validation.tsv")
    finally:
        registry.unregister_plugin("rot13plugin")
        registry.reset()


def test_a_plugins_format_text_applies_in_training_and_prediction(rot13_run, shared_tokenizer_dir):
    # rot13 text is out of the fallback tokenizer's training vocabulary: byte pieces, no learning
    result, model, rows = rot13_run
    assert isinstance(model.task, Rot13Task)  # the installed plugin's own task object
    assert result.metrics["accuracy"] >= 0.85  # chance is 0.5
    assert _accuracy(model, rows) == result.metrics["accuracy"]  # the same texts the model saw
    model.task = Task(
        **{f.name: getattr(model.task, f.name) for f in dataclasses.fields(Task)}
    )  # the default: no ROT13
    assert _accuracy(model, rows) < result.metrics["accuracy"] - 0.2  # unformatted: lost


def test_without_the_plugin_prediction_warns_that_formatting_differs(rot13_run, caplog):
    result, _, _ = rot13_run
    registry.unregister_plugin("rot13plugin")
    registry.reset()
    with caplog.at_level(logging.WARNING, logger="modernbert_tasks"):
        model = load_finetuned(result.model_path)
    assert type(model.task) is Task
    assert any("trained with its plugin's own format_text" in r.getMessage() for r in caplog.records)
    registry.register_plugin(_rot13_plugin(), name="rot13plugin")
    registry.reset()


def test_training_refuses_pickle_weights_unless_allowed(tiny_model_dir, sentiment_dir, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(
        ModelLoadError,
        match=r"only pickle weights \(pytorch_model\.bin\).*"
        r"allow_pickle=True",
    ):
        fine_tune(
            "sst2",
            model_name=folder,
            output_dir=tmp_path / "run",
            data_dir=sentiment_dir,
            max_steps=1,
            report_to="none",
        )
    assert not (tmp_path / "run").exists()
    result = fine_tune(
        "sst2",
        model_name=folder,
        output_dir=tmp_path / "run",
        data_dir=sentiment_dir,
        max_steps=1,
        report_to="none",
        allow_pickle=True,
        disable_tqdm=True,
    )
    assert (result.model_path / "model.safetensors").is_file()  # saved as safetensors


def test_device_choice_is_shared():
    import torch

    from modernbert_tasks.hardware import best_device
    from modernbert_tasks.model_sources import resolve_device

    assert resolve_device(None) == torch.device(best_device())
    with pytest.raises(mt.ConfigError, match="device='tpu9'"):
        resolve_device("tpu9")
