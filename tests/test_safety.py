"""Untrusted files and environments: pickles and shipped model code never run, manifests are
JSON checked against a schema, offline means no network at all, and broken plugins are isolated.

Code-execution attempts are real: each payload creates a marker file when it runs, and every
test asserts that the marker does not exist afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from modernbert_tasks import ModelLoadError, fine_tune, load_finetuned
from modernbert_tasks.artifacts.manifest import MANIFEST_NAME, ManifestError
from modernbert_tasks.testing import FAST, make_sentiment_rows, run_cli, write_tsv

CLI = [sys.executable, "-m", "modernbert_tasks"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
FAST = {**FAST, "max_length": 24, "per_device_train_batch_size": 16}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("safety-data")
    write_tsv(root / "train.tsv", make_sentiment_rows(96, seed=31))
    write_tsv(root / "validation.tsv", make_sentiment_rows(32, seed=32))
    return root


@pytest.fixture(scope="module")
def run(tiny_model_dir, data_dir, tmp_path_factory):
    """A short fine_tune with checkpoints; its folder is copied, never modified."""
    return fine_tune(
        "sst2",
        str(tiny_model_dir),
        tmp_path_factory.mktemp("safety") / "run",
        data_dir=str(data_dir),
        max_steps=4,
        save_steps=2,
        eval_steps=2,
        **FAST,
    )


class Payload:
    """Unpickling this creates `marker`: what a malicious pickle would do, harmlessly."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def _plant_pickle(path: Path, marker: Path) -> None:
    torch.save({"state": Payload(marker)}, path)


def test_the_payloads_run_when_loaded_unsafely(tmp_path):
    """Guards every test below: their markers stay absent because nothing ran, not because the
    payloads are duds."""
    import runpy

    marker = tmp_path / "pickle-ran"
    _plant_pickle(tmp_path / "state.pt", marker)
    torch.load(tmp_path / "state.pt", weights_only=False)
    assert marker.exists()
    marker = tmp_path / "code-ran"
    (tmp_path / "modeling_evil.py").write_text(EVIL_CODE.format(marker=str(marker)))
    runpy.run_path(str(tmp_path / "modeling_evil.py"))
    assert marker.exists()


# --- weights: safetensors only -------------------------------------------------------------------
def test_the_final_model_holds_no_pickle_and_its_weights_are_safetensors(run):
    from safetensors import safe_open

    files = [p.name for p in run.model_path.iterdir()]
    assert not [n for n in files if n.endswith(PICKLE_SUFFIXES)], files
    with safe_open(str(run.model_path / "model.safetensors"), framework="pt") as fh:
        assert any(k.startswith("classifier") for k in fh.keys())


def test_a_malicious_pickle_beside_safetensors_is_never_read(run, tmp_path):
    folder = shutil.copytree(run.model_path, tmp_path / "m")
    marker = tmp_path / "pwned"
    _plant_pickle(folder / "pytorch_model.bin", marker)
    for allow_pickle in (False, True):  # safetensors wins even when pickle is allowed
        load_finetuned(folder, allow_pickle=allow_pickle).predict("a fine film")
    assert not marker.exists()


def test_a_pickle_only_folder_is_refused_and_nothing_runs(run, tmp_path):
    folder = shutil.copytree(run.model_path, tmp_path / "m", ignore=shutil.ignore_patterns("*.safetensors"))
    marker = tmp_path / "pwned"
    _plant_pickle(folder / "pytorch_model.bin", marker)
    with pytest.raises(ModelLoadError) as err:
        load_finetuned(folder)
    assert "pytorch_model.bin" in str(err.value) and "allow_pickle=True" in str(err.value)
    assert "arbitrary code" in str(err.value)
    # even with the flag, transformers unpickles with torch.load(weights_only=True), which
    # refuses anything but tensors: the payload still does not run
    with pytest.raises(ModelLoadError):
        load_finetuned(folder, allow_pickle=True)
    assert not marker.exists()


def test_resume_unpickles_checkpoint_state_without_running_code(run, tiny_model_dir, data_dir, tmp_path):
    """Checkpoints hold the Trainer's pickles (optimizer, scheduler, RNG). A tampered
    checkpoint must fail to resume, not execute code: torch.load(weights_only=True)."""
    out = tmp_path / "run"
    shutil.copytree(run.output_dir, out, ignore=shutil.ignore_patterns("model", "logs"))
    marker = tmp_path / "pwned"
    last = max(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        _plant_pickle(last / name, marker)
    with pytest.raises(ModelLoadError) as err:
        fine_tune(
            "sst2",
            str(tiny_model_dir),
            out,
            data_dir=str(data_dir),
            resume=True,
            max_steps=6,
            save_steps=2,
            eval_steps=2,
            **FAST,
        )
    message = str(err.value)
    assert f"Checkpoint {str(last)!r} holds pickled objects other than tensors" in message
    assert "os.makedirs" in message and "could run arbitrary code" in message
    assert "weights_only" not in message  # torch's "retry with weights_only=False" is dropped
    assert not marker.exists()


# --- shipped model code: trust_remote_code is off -------------------------------------------------
EVIL_CODE = """\
import pathlib
pathlib.Path({marker!r}).touch()  # runs on import: what a malicious model file could do
from transformers import ModernBertConfig, ModernBertForSequenceClassification

class EvilConfig(ModernBertConfig):
    model_type = "evil_bert"

class EvilModel(ModernBertForSequenceClassification):
    config_class = EvilConfig
"""


def _folder_with_custom_code(src: Path, dst: Path, marker: Path, model_type: str) -> Path:
    """A model folder whose config (and tokenizer config) point at code shipped beside it."""
    shutil.copytree(src, dst)
    for module in ("modeling_evil.py", "configuration_evil.py", "tokenization_evil.py"):
        (dst / module).write_text(EVIL_CODE.format(marker=str(marker)))
    config = json.loads((dst / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {
        "AutoConfig": "configuration_evil.EvilConfig",
        "AutoModelForSequenceClassification": "modeling_evil.EvilModel",
    }
    (dst / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((dst / "tokenizer_config.json").read_text())
    tokenizer_config["auto_map"] = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}
    (dst / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return dst


def test_custom_code_of_an_unknown_architecture_is_refused(run, tiny_model_dir, data_dir, tmp_path):
    marker = tmp_path / "pwned"
    trained = _folder_with_custom_code(run.model_path, tmp_path / "trained", marker, "evil_bert")
    with pytest.raises(ModelLoadError) as err:
        load_finetuned(trained)
    assert "trust_remote_code=True" in str(err.value) and "trust" in str(err.value)

    base = _folder_with_custom_code(tiny_model_dir, tmp_path / "base", marker, "evil_bert")
    with pytest.raises(ModelLoadError) as err:
        fine_tune("sst2", str(base), tmp_path / "out", data_dir=str(data_dir), **FAST)
    assert repr(str(base)) in str(err.value)
    assert "ships its own model code" in str(err.value)
    assert "trust_remote_code=True only if you trust" in str(err.value)
    assert not marker.exists()


def test_custom_code_beside_a_known_architecture_is_ignored(run, tiny_model_dir, data_dir, tmp_path):
    """auto_map next to model_type 'modernbert': the built-in class is used, the code is not."""
    marker = tmp_path / "pwned"
    trained = _folder_with_custom_code(run.model_path, tmp_path / "trained", marker, "modernbert")
    model = load_finetuned(trained)
    assert type(model.model).__name__ == "ModernBertForSequenceClassification"
    assert model.predict("a wonderful film")[0]["label"] in ("negative", "positive")

    base = _folder_with_custom_code(tiny_model_dir, tmp_path / "base", marker, "modernbert")
    result = fine_tune(
        "sst2", str(base), tmp_path / "out", data_dir=str(data_dir), max_steps=1, eval_strategy="no", **FAST
    )
    assert (result.model_path / "model.safetensors").is_file()
    assert not marker.exists()


# --- the manifest: JSON, checked against its schema -----------------------------------------------
def test_a_pickled_manifest_is_refused_unread(run, tmp_path):
    import pickle

    folder = shutil.copytree(run.model_path, tmp_path / "m")
    marker = tmp_path / "pwned"
    (folder / MANIFEST_NAME).write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ManifestError, match="not (UTF-8 text|valid JSON)"):
        load_finetuned(folder)
    assert not marker.exists()


def test_a_manifest_with_wrong_fields_names_them_through_api_and_cli(run, tmp_path):
    folder = shutil.copytree(run.model_path, tmp_path / "m")
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["max_length"] = "128"  # a string
    manifest["task"]["definition"]["labels"] = {"0": "negative"}  # not a list
    del manifest["base_model"]
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ManifestError) as err:
        load_finetuned(folder)
    assert set(err.value.fields) == {"max_length", "task.definition.labels", "base_model"}
    for needle in (
        "'max_length' is \"128\"; expected an integer",
        '\'task.definition.labels\' is {"0": "negative"}; expected a list of strings',
        "'base_model' missing",
        "re-save the model",
    ):
        assert needle in str(err.value)
    proc = run_cli("predict", folder, "a fine film")
    assert proc.returncode == 1
    assert "'max_length' is \"128\"; expected an integer" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- offline: no network at all -------------------------------------------------------------------
OFFLINE = textwrap.dedent("""
    import json, socket, sys
    attempts = []

    def refuse(kind):
        def blocked(*args, **kwargs):
            attempts.append([kind, repr(args)[:200]])
            raise OSError("network blocked by the test")
        return blocked

    real_connect = socket.socket.connect
    def connect(self, address):  # local (AF_UNIX) sockets are not network
        if self.family in (socket.AF_INET, socket.AF_INET6):
            return refuse("connect")(address)
        return real_connect(self, address)
    socket.socket.connect = connect
    socket.socket.connect_ex = refuse("connect_ex")
    socket.create_connection = refuse("create_connection")
    socket.getaddrinfo = refuse("getaddrinfo")  # not even a DNS lookup

    import torch
    torch.set_num_threads(1)
    from modernbert_tasks import fine_tune, load_finetuned
    model, data, out = sys.argv[1:4]
    result = fine_tune("sst2", model, out, data_dir=data, max_steps=2, report_to="tensorboard",
                       max_length=24, disable_tqdm=True)
    predictions = load_finetuned(result.model_path).predict(["a wonderful film", "dull"])
    print(json.dumps({"attempts": attempts, "labels": [p["label"] for p in predictions]}))
""")


def test_offline_mode_makes_no_network_call(tiny_model_dir, data_dir, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", OFFLINE, str(tiny_model_dir), str(data_dir), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env={k: v for k, v in ENV.items() if k != "HF_DATASETS_OFFLINE"},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(result["labels"]) == 2  # it really trained, saved, loaded and predicted
    assert result["attempts"] == []


# --- offline: fails fast and names the model and the data together ------------------------------
def _offline_env(tmp_path: Path) -> dict[str, str]:
    """A hub endpoint that refuses connections (port 9, discard) and an empty cache, so the
    test behaves the same with or without network; HF_HUB_OFFLINE is deliberately unset."""
    env = {
        k: v
        for k, v in ENV.items()
        if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    return {**env, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")}


def test_offline_train_names_model_and_data_in_one_error_cli(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "modernbert_tasks", "train", "sst2"],
        capture_output=True,
        text=True,
        env=_offline_env(tmp_path),
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert "cannot be used (http://127.0.0.1:9 is unreachable" in err
    assert "model 'lightonai/modernbert-embed-large': pass a local model folder: --model PATH" in err
    assert "dataset 'nyu-mll/glue' (config 'sst2'): use local files: --data-dir PATH" in err
    assert "model_name=" not in err and "data_dir=" not in err  # flags, not Python arguments
    assert not (tmp_path / "runs").exists()


def test_offline_fine_tune_speaks_python(tmp_path):
    code = (
        "import modernbert_tasks as m\ntry:\n    m.fine_tune('sst2')\n"
        "except m.ModelLoadError as e:\n    print(type(e).__name__, e)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_offline_env(tmp_path),
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.stdout.startswith("HubUnreachableError"), proc.stdout + proc.stderr
    assert "model_name='path/to/modernbert'" in proc.stdout
    assert "data_dir='path/to/folder'" in proc.stdout and "--data-dir" not in proc.stdout


def test_offline_with_the_model_in_the_cache_trains_from_it(tmp_path, tiny_model_dir, small_sentiment_dir):
    """A hub id whose files are in the cache is used offline, without waiting on the network."""
    snapshot = tmp_path / "hf" / "hub" / "models--someone--tiny" / "snapshots" / ("0" * 40)
    snapshot.parent.mkdir(parents=True)
    shutil.copytree(tiny_model_dir, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "modernbert_tasks",
            "train",
            "sst2",
            "--model",
            "someone/tiny",
            "--data-dir",
            str(small_sentiment_dir),
            "--output-dir",
            str(tmp_path / "run"),
            "--max-steps",
            "2",
            "--report-to",
            "none",
        ],
        capture_output=True,
        text=True,
        env=_offline_env(tmp_path),
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "using the cached model 'someone/tiny'" in proc.stderr
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()


# --- plugins: a broken one is reported and skipped ------------------------------------------------
def _write_dist(site: Path, name: str, module: str, source: str) -> None:
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[modernbert_tasks]\n{module} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


def test_cli_lists_broken_plugins_with_their_errors_and_keeps_working(tmp_path):
    _write_dist(tmp_path, "mt-raises", "mt_raises", "raise RuntimeError('no GPU driver')\n")
    _write_dist(
        tmp_path,
        "mt-malformed",
        "mt_malformed",
        """
        from modernbert_tasks import hookimpl

        @hookimpl
        def register_tasks(register):
            register({"name": "dict-not-task", "labels": ["a", "b"]})
    """,
    )
    env = {**ENV, "PYTHONPATH": str(tmp_path), "MODERNBERT_TASKS_STRICT_PLUGINS": ""}
    proc = subprocess.run([*CLI, "plugins", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    plugins = {p["name"]: p for p in json.loads(proc.stdout)}
    assert "RuntimeError: no GPU driver" in plugins["mt_raises"]["error"]
    assert "expects a modernbert_tasks.Task" in plugins["mt_malformed"]["error"]
    assert plugins["builtin"]["error"] is None and "sst2" in plugins["builtin"]["tasks"]

    proc = subprocess.run([*CLI, "tasks", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "sst2" in {t["name"] for t in json.loads(proc.stdout)}
    assert "dict-not-task" not in proc.stdout
    for name in ("mt_raises", "mt_malformed"):
        assert f"plugin {name!r}" in proc.stderr  # one warning each, no traceback
    assert "Traceback" not in proc.stderr
