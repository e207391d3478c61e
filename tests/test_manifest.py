"""The manifest: round trip, schema errors that name the fields, version checks, atomic write."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from enum import Enum

import pytest

from modernbert_tasks import Task
from modernbert_tasks.artifacts.manifest import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    ManifestError,
    build_manifest,
    read_manifest,
    task_from_manifest,
    validate_manifest,
    write_manifest,
)
from modernbert_tasks.errors import ModelLoadError
from modernbert_tasks.tasks.sst2 import SST2

PAIR_TASK = Task(
    name="nli-demo",
    description="pairs",
    version="2.1.0",
    hub_id="me/nli",
    hub_config="x",
    hub_revision="abc123",
    splits={"train": "train", "eval": "dev", "test": None},
    text_columns=("premise", "hypothesis"),
    label_column="gold",
    labels=("entailment", "neutral", "contradiction"),
    metrics=("accuracy", "macro_f1"),
    main_metric="macro_f1",
    hyperparameters={"learning_rate": 2e-5, "num_train_epochs": 2},
    max_length=256,
    text_prefix="nli: ",
)


class Scheduler(Enum):  # like transformers' SchedulerType
    LINEAR = "linear"


REGRESSION_TASK = Task(
    name="sts-demo",
    text_columns=("a", "b"),
    problem_type="regression",
    metrics=("pearson", "spearman"),
    main_metric="pearson",
)


def make(task: Task = SST2, **overrides):
    kwargs = dict(
        plugin="builtin",
        plugin_version="0.1.0",
        max_length=64,
        metrics={"accuracy": 0.91, "loss": 0.25},
        base_model="answerdotai/ModernBERT-base",
        training={"learning_rate": 3e-5, "num_train_epochs": 3, "precision": "bf16"},
    )
    kwargs.update(overrides)
    return build_manifest(task, **kwargs)


@pytest.mark.parametrize("task", [SST2, PAIR_TASK, REGRESSION_TASK], ids=lambda t: t.name)
def test_round_trip_rebuilds_the_task(tmp_path, task):
    path = write_manifest(tmp_path, make(task))
    assert path == tmp_path / MANIFEST_NAME
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]  # no temporary file left
    manifest = read_manifest(tmp_path)
    rebuilt = task_from_manifest(manifest)
    for f in fields(Task):
        assert getattr(rebuilt, f.name) == getattr(task, f.name), f.name
    assert rebuilt == task
    assert manifest["manifest_version"] == MANIFEST_VERSION
    assert manifest["task"]["plugin"] == "builtin"
    assert manifest["max_length"] == 64 and manifest["text_prefix"] == task.text_prefix
    assert manifest["training"]["precision"] == "bf16"
    assert manifest["versions"]["transformers"] and manifest["versions"]["modernbert-tasks"]


def test_build_makes_training_values_and_metrics_json(tmp_path):
    import numpy as np

    manifest = make(
        metrics={"accuracy": np.float32(0.5), "pearson": float("nan")},
        training={"output_dir": tmp_path, "lr_scheduler_type": Scheduler.LINEAR, "seeds": (1, 2)},
    )
    assert manifest["metrics"] == {"accuracy": 0.5, "pearson": None}  # NaN is not JSON
    assert manifest["training"] == {
        "output_dir": str(tmp_path),
        "lr_scheduler_type": "linear",
        "seeds": [1, 2],
    }
    text = write_manifest(tmp_path, manifest).read_text()
    assert "NaN" not in text and json.loads(text)["metrics"]["pearson"] is None


def test_read_returns_none_without_a_manifest(tmp_path):
    assert read_manifest(tmp_path) is None


def test_schema_errors_name_every_bad_field(tmp_path):
    manifest = make()
    del manifest["max_length"]
    manifest["metrics"] = {"accuracy": "high"}
    manifest["task"]["definition"]["labels"] = "negative,positive"
    del manifest["task"]["plugin_version"]
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ManifestError) as info:
        read_manifest(tmp_path)
    assert set(info.value.fields) == {
        "max_length",
        "metrics",
        "task.definition.labels",
        "task.plugin_version",
    }
    message = str(info.value)
    for name in info.value.fields:
        assert repr(name) in message
    assert "missing" in message and "a list of strings" in message
    assert isinstance(info.value, ModelLoadError)  # callers catching load errors see it


def test_unknown_manifest_version_is_refused_with_upgrade_hint(tmp_path):
    manifest = make()
    manifest["manifest_version"] = MANIFEST_VERSION + 1
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match=r"reads manifest_version 1.*pip install -U"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", r"not valid JSON: .* \(line 1, column 2\)"),
        ('{"task": "cut', r"Unterminated string starting at \(line 1, column 10\)"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"manifest_version": 0}', "manifest_version 0"),
        ('{"manifest_version": "1"}', "'manifest_version' is \"1\"; expected an integer"),
    ],
)
def test_unreadable_manifests(tmp_path, content, match):
    (tmp_path / MANIFEST_NAME).write_text(content)
    with pytest.raises(ManifestError, match=match):
        read_manifest(tmp_path)


def test_write_refuses_an_invalid_manifest_and_writes_nothing(tmp_path):
    manifest = make()
    manifest["base_model"] = None
    with pytest.raises(ManifestError, match="'base_model'"):
        write_manifest(tmp_path / "model", manifest)
    assert not (tmp_path / "model" / MANIFEST_NAME).exists()


def test_write_replaces_an_existing_manifest(tmp_path):
    write_manifest(tmp_path, make(max_length=32))
    write_manifest(tmp_path, make(max_length=48))
    assert read_manifest(tmp_path)["max_length"] == 48
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]


def test_invalid_task_definition_is_a_manifest_error():
    manifest = make()
    manifest["task"]["definition"]["problem_type"] = "single_label"
    with pytest.raises(ManifestError, match="problem_type") as info:
        task_from_manifest(manifest)
    assert info.value.fields == ["task.definition"]


def test_fields_from_a_newer_task_are_ignored():
    manifest = make()
    manifest["task"]["definition"]["label_smoothing"] = 0.1  # a field this version lacks
    assert task_from_manifest(validate_manifest(manifest)) == SST2


def test_importing_manifest_and_predictor_does_not_import_torch():
    code = (
        "import sys, modernbert_tasks.artifacts.manifest, modernbert_tasks.inference.predictor; "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
