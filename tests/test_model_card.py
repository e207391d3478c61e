"""The model card: generated from the manifest at every save, valid YAML, same numbers."""

from __future__ import annotations

import json

import pytest

from modernbert_tasks import Task, fine_tune
from modernbert_tasks.artifacts.manifest import MANIFEST_NAME, build_manifest
from modernbert_tasks.artifacts.model_card import card_metrics, render_model_card

yaml = pytest.importorskip("yaml", reason="pyyaml (the dev extra) parses the card's metadata")

SST2_LIKE = Task(
    name="reviews",
    labels=("negative", "positive"),
    metrics=("accuracy", "f1"),
    hub_id="nyu-mll/glue",
    hub_config="sst2",
    description="Review sentiment.",
    splits={"train": "train", "eval": "validation", "test": "test"},
)


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def index_values(meta: dict) -> dict[tuple[str, str], float]:
    """{(split, metric): value} from model-index, the single-run entries only."""
    out = {}
    for result in meta["model-index"][0]["results"]:
        for entry in result["metrics"]:
            if "mean of" not in entry["name"]:
                out[(entry["name"].split()[0], entry["type"])] = entry["value"]
    return out


def manifest(**extra):
    m = build_manifest(
        SST2_LIKE,
        plugin="demo",
        plugin_version="1.0",
        max_length=128,
        metrics={
            "accuracy": 0.9312,
            "f1": 0.93,
            "loss": 0.21,
            "test_accuracy": 0.9205,
            "test_f1": 0.921,
            "test_loss": 0.25,
            "eval_runtime": 3.2,
            "train_loss": 0.3,
            "epoch": 3.0,
        },
        base_model="answerdotai/ModernBERT-base",
        training={
            "learning_rate": 3e-5,
            "num_train_epochs": 3,
            "seed": 42,
            "per_device_train_batch_size": 32,
            "num_examples": {"train": 67349},
        },
    )
    m.update(extra)
    return m


def test_front_matter_follows_the_hub_conventions():
    m = manifest()
    meta = front_matter(render_model_card(m))
    assert meta["library_name"] == "transformers" and "modernbert-tasks" in meta["tags"]
    assert meta["pipeline_tag"] == "text-classification"
    assert meta["base_model"] == "answerdotai/ModernBERT-base"
    assert meta["datasets"] == ["nyu-mll/glue"] and meta["metrics"] == ["accuracy", "f1"]
    results = meta["model-index"][0]["results"]
    assert [r["dataset"]["split"] for r in results] == ["validation", "test"]
    assert results[0]["dataset"]["config"] == "sst2"
    # the numbers are the manifest's, exactly; timing entries are not results
    assert index_values(meta) == {
        ("eval", "accuracy"): 0.9312,
        ("eval", "f1"): 0.93,
        ("test", "accuracy"): 0.9205,
        ("test", "f1"): 0.921,
    }


def test_body_has_labels_setup_data_use_and_loading():
    card = render_model_card(manifest())
    for needle in (
        "| 0 | negative |",
        "| 1 | positive |",
        "| learning rate | 3e-05 |",
        "| per device train batch size | 32 |",
        "| max length (tokens) | 128 in training, the model's limit at prediction |",
        "https://huggingface.co/datasets/nyu-mll/glue",
        "train 67349",
        "## Intended use and limits",
        'pipeline("text-classification"',
        "load_finetuned(",
        "| eval (validation) | accuracy | 0.9312 |",
        "| test (test) | accuracy | 0.9205 |",
    ):
        assert needle in card, needle


def test_seed_summary_gives_mean_and_std_and_odd_shapes_are_ignored():
    seeds = {
        "seeds": [1, 2, 3],
        "metrics": {
            "accuracy": {"mean": 0.925, "std": 0.004},
            "test_accuracy": {"mean": 0.918, "std": 0.003},
        },
    }
    card = render_model_card(manifest(seeds=seeds))
    assert "0.925 ± 0.004 (this model: 0.9312)" in card and "Mean ± std over 3 seeds" in card
    meta = front_matter(card)
    means = [
        e for r in meta["model-index"][0]["results"] for e in r["metrics"] if "mean of 3 seeds" in e["name"]
    ]
    assert [e["value"] for e in means] == [0.925, 0.918]
    assert index_values(meta)[("eval", "accuracy")] == 0.9312  # the model's own value stays
    for odd in ([1, 2], {"metrics": "n/a"}, {"accuracy": 0.9}, None):
        assert front_matter(render_model_card(manifest(seeds=odd)))["model-index"]


def test_local_base_model_and_no_hub_dataset_are_left_out_of_the_metadata():
    m = manifest()
    m["base_model"] = "/models/modernbert-base"
    m["task"]["definition"]["hub_id"] = None
    meta = front_matter(render_model_card(m))
    assert "base_model" not in meta and "datasets" not in meta
    assert "`modernbert-base`" in render_model_card(m)  # the folder name, never its path
    assert "/models/" not in render_model_card(m)


def test_every_saved_model_has_a_card_that_matches_its_manifest(tiny_model_dir, sentiment_dir, tmp_path):
    result = fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        output_dir=tmp_path / "run",
        data_dir=str(sentiment_dir),
        max_steps=2,
        disable_tqdm=True,
    )
    saved = json.loads((result.model_path / MANIFEST_NAME).read_text())
    card = (result.model_path / "README.md").read_text()
    assert card == render_model_card(saved)  # generated from the manifest alone
    meta = front_matter(card)
    expected = {
        (split, name): value
        for split, values in card_metrics(saved).items()
        for name, value in values.items()
        if name != "loss"
    }
    assert expected[("eval", "accuracy")] == saved["metrics"]["accuracy"]
    assert expected[("test", "accuracy")] == saved["metrics"]["test_accuracy"]
    assert index_values(meta) == expected


def test_a_local_base_model_and_data_files_appear_by_name_only(tiny_model_dir, tmp_path):
    from modernbert_tasks.model_sources import public_name

    m = manifest(base_model=public_name(str(tiny_model_dir)))
    m["training"] |= {"train_file": "/home/alice/private/tickets.csv", "data_dir": str(tmp_path / "data")}
    card = render_model_card(m)
    assert "/home/alice" not in card and str(tmp_path) not in card
    assert f"`{tiny_model_dir.name}` fine-tuned with" in card
    assert "`tickets.csv`" in card and "`data`" in card
    assert "base_model" not in front_matter(card)  # a folder name is no hub id
    # a folder inside a Hugging Face cache is named by its hub id
    cached = tmp_path / "hub" / "models--org--my-model" / "snapshots" / "abc123"
    cached.mkdir(parents=True)
    assert public_name(str(cached)) == "org/my-model"
    assert public_name("org/other-model") == "org/other-model"


def test_the_card_of_a_model_trained_from_a_file_names_no_local_path(file_trained_model):
    card = (file_trained_model / "README.md").read_text()
    assert str(file_trained_model.parents[1]) not in card  # the data and model folders
    assert "Inferred from 'train.csv'." in card and "Read from train file `train.csv`." in card
