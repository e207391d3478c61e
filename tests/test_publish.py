"""push_to_hub: the dry run lists exactly what would be uploaded; offline fails fast."""

from __future__ import annotations

import socket
import time

import pytest

# reuse the predictor tests' folder builder: a tiny model with labels and a manifest
from test_predictor import SENTIMENT, save_with_manifest

from modernbert_tasks import ConfigError, ModelLoadError
from modernbert_tasks.artifacts.manifest import read_manifest
from modernbert_tasks.artifacts.model_card import write_model_card
from modernbert_tasks.artifacts.publish import PublishError, push_to_hub
from modernbert_tasks.cli.ship import push_command


@pytest.fixture
def model_folder(tiny_model_dir, tmp_path):
    folder = save_with_manifest(tiny_model_dir, tmp_path / "model", SENTIMENT)
    write_model_card(folder, read_manifest(folder))
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"x" * 1234)
    # never uploaded: a pickle, a hidden staging folder, a hidden file
    (folder / "training_args.bin").write_bytes(b"pickle")
    (folder / ".onnx.partial").mkdir()
    (folder / ".onnx.partial" / "model.onnx").write_bytes(b"half")
    (folder / ".DS_Store").write_bytes(b"")
    return folder


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the dry run touched the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_dry_run_lists_exactly_the_files_and_sizes(model_folder, no_network):
    plan = push_to_hub(model_folder, "someone/tiny-sentiment", dry_run=True)
    expected = sorted(
        p.relative_to(model_folder).as_posix()
        for p in model_folder.rglob("*")
        if p.is_file()
        and not p.name.endswith(".bin")
        and not any(part.startswith(".") for part in p.relative_to(model_folder).parts)
    )
    assert [name for name, _ in plan.files] == expected
    assert "README.md" in expected and "onnx/model.onnx" in expected
    assert dict(plan.files)["onnx/model.onnx"] == 1234
    assert plan.total_bytes == sum((model_folder / n).stat().st_size for n in expected)
    summary = push_command(str(model_folder), "someone/tiny-sentiment", dry_run=True)
    assert summary.startswith(f"Dry run: would upload {len(expected)} files")
    assert "training_args.bin" not in summary and ".partial" not in summary


def test_dry_run_of_a_folder_without_card_lists_the_card_it_would_generate(model_folder, no_network):
    (model_folder / "README.md").unlink()
    plan = push_to_hub(model_folder, "someone/tiny", dry_run=True)
    assert plan.card_generated and "README.md" in dict(plan.files)
    assert not (model_folder / "README.md").exists()  # a dry run changes nothing


def test_offline_push_fails_fast_and_names_the_fix(model_folder):
    started = time.monotonic()
    with pytest.raises(PublishError, match=r"Cannot reach the Hugging Face Hub.*--dry-run"):
        # port 9 on localhost: refused at once, on any machine
        push_to_hub(model_folder, "someone/tiny", token="hf_test", endpoint="http://127.0.0.1:9")
    assert time.monotonic() - started < 10


def test_hf_hub_offline_and_missing_token_fail_before_any_network(model_folder, monkeypatch, no_network):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PublishError, match="HF_HUB_OFFLINE is set"):
        push_to_hub(model_folder, "someone/tiny", token="hf_test")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(PublishError, match="hf auth login"):
        push_to_hub(model_folder, "someone/tiny")


def test_bad_folder_and_repo_id_are_named(model_folder, tiny_model_dir, tmp_path):
    with pytest.raises(ConfigError, match="repo_id='not a repo'"):
        push_to_hub(model_folder, "not a repo", dry_run=True)
    with pytest.raises(ModelLoadError, match="does not exist"):
        push_to_hub(tmp_path / "nope", "someone/x", dry_run=True)
    with pytest.raises(ModelLoadError, match="lacks modernbert_tasks.json"):
        push_to_hub(tiny_model_dir, "someone/x", dry_run=True)


# --- fine_tune(push_to_hub=True): checked before training, pushed by us after saving ---------
def test_fine_tune_push_needs_a_repo_id_before_training(tiny_model_dir, sentiment_dir, tmp_path):
    from modernbert_tasks import fine_tune

    with pytest.raises(ConfigError, match=r"push_to_hub=True needs .*hub_model_id='user/name'"):
        fine_tune(
            "sst2",
            model_name=tiny_model_dir,
            data_dir=sentiment_dir,
            output_dir=tmp_path / "run",
            push_to_hub=True,
        )
    with pytest.raises(ConfigError, match=r"hub_model_id='not a repo'"):
        fine_tune(
            "sst2",
            model_name=tiny_model_dir,
            data_dir=sentiment_dir,
            output_dir=tmp_path / "run",
            push_to_hub=True,
            hub_model_id="not a repo",
        )
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written


def test_fine_tune_push_without_token_or_hub_fails_before_training(
    tiny_model_dir, sentiment_dir, tmp_path, monkeypatch, no_network
):
    from modernbert_tasks import fine_tune

    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(PublishError, match="no Hugging Face token.*before training"):
        fine_tune(
            "sst2",
            model_name=tiny_model_dir,
            data_dir=sentiment_dir,
            output_dir=tmp_path / "run",
            push_to_hub=True,
            hub_model_id="someone/tiny",
        )
    monkeypatch.setattr("huggingface_hub.get_token", lambda: "hf_test")
    # unreachable whatever an earlier test left in the probe's per-process cache
    monkeypatch.setattr("modernbert_tasks.hub.probe", lambda endpoint: (False, "no network"))
    with pytest.raises(PublishError, match="Cannot reach the Hugging Face Hub"):
        fine_tune(
            "sst2",
            model_name=tiny_model_dir,
            data_dir=sentiment_dir,
            output_dir=tmp_path / "run",
            push_to_hub=True,
            hub_model_id="someone/tiny",
        )
    assert not (tmp_path / "run").exists()


def test_what_push_uploads_names_no_local_path(model_folder, monkeypatch, tmp_path):
    """The manifest on disk keeps the data paths (export's parity check reads them); the copy
    that is uploaded, like the card, names files and folders only."""
    import json

    import huggingface_hub

    from modernbert_tasks.artifacts.manifest import MANIFEST_NAME, write_manifest

    manifest = read_manifest(model_folder)
    data = tmp_path / "private" / "alice" / "tickets.csv"
    manifest["training"].update(
        train_file=str(data), data_files={"train": str(data)}, output_dir=str(tmp_path / "runs" / "x"), seed=3
    )
    manifest["base_model"] = "answerdotai/ModernBERT-base"
    write_manifest(model_folder, manifest)
    write_model_card(model_folder, manifest)
    sent = {}
    monkeypatch.setattr("modernbert_tasks.hub.probe", lambda endpoint: (True, "test"))
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, *a, **k: None)

    def create_commit(self, repo_id, operations, **kwargs):
        for op in operations:
            source = op.path_or_fileobj
            sent[op.path_in_repo] = source if isinstance(source, bytes) else open(source, "rb").read()
        return type("Info", (), {"commit_url": f"https://hub/{repo_id}/commit/1"})()

    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)
    plan = push_to_hub(model_folder, "me/model", token="hf_test")
    assert plan.url == "https://hub/me/model/commit/1"
    assert sorted(sent) == sorted(name for name, _ in plan.files)
    text = b"".join(sent.values()).decode("utf-8", "replace")
    assert str(tmp_path) not in text  # no local path in any uploaded file
    uploaded = json.loads(sent[MANIFEST_NAME])
    assert uploaded["training"]["train_file"] == "tickets.csv"
    assert uploaded["training"]["data_files"] == {"train": "tickets.csv"}
    assert uploaded["training"]["seed"] == 3
    assert "tickets.csv" in sent["README.md"].decode()
    assert read_manifest(model_folder)["training"]["train_file"] == str(data)  # kept locally
