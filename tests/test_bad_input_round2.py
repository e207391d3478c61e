"""Bad input, round 2 (issue 14): validate before deleting, range checks, config numbers,
hints in the interface's own terms, outputs that line up with inputs, run folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modernbert_tasks import (
    ConfigError,
    DataError,
    ModelLoadError,
    fine_tune,
    get_task,
    load_finetuned,
)
from modernbert_tasks.options import resolve_options
from modernbert_tasks.testing import FAST, make_sentiment_rows, run_cli, write_tsv

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
FAST = {**FAST, "warmup_steps": 0}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("round2-data")
    write_tsv(root / "train.tsv", make_sentiment_rows(64, seed=1))
    write_tsv(root / "validation.tsv", make_sentiment_rows(16, seed=2))
    return root


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory, tiny_model_dir, data_dir) -> Path:
    out = tmp_path_factory.mktemp("round2") / "run"
    fine_tune("sst2", model_name=tiny_model_dir, output_dir=out, data_dir=data_dir,
              max_steps=4, eval_steps=2, **FAST)
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


BAD_VALUES = [
    ("learning_rate", -1e-5, "learning_rate=-1e-05 is out of range; expected a positive number"),
    ("per_device_train_batch_size", 0, "per_device_train_batch_size=0 is out of range"),
    ("num_train_epochs", 0, "num_train_epochs=0 is out of range"),
    ("num_train_epochs", -1, "num_train_epochs=-1 is out of range"),
    ("eval_steps", 0, "eval_steps=0 is out of range"),
    ("warmup_steps", -1, "warmup_steps=-1 is out of range"),
    ("gradient_accumulation_steps", 0, "gradient_accumulation_steps=0 is out of range"),
    ("max_steps", 0, "max_steps=0 would train nothing"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_VALUES,
                         ids=[f"{n}={v}" for n, v, _ in BAD_VALUES])
def test_overwrite_with_a_bad_value_deletes_nothing(earlier_run, tiny_model_dir, data_dir, name,
                                                    value, message):
    before = _snapshot(earlier_run)
    assert any(k.startswith("checkpoint-") for k in before)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fine_tune("sst2", model_name=tiny_model_dir, output_dir=earlier_run, data_dir=data_dir,
                  overwrite=True, **{**FAST, name: value})
    assert _snapshot(earlier_run) == before  # byte-identical: checked before anything is deleted


def test_overwrite_with_a_bad_flag_exits_2_and_deletes_nothing(earlier_run, tiny_model_dir,
                                                               data_dir):
    before = _snapshot(earlier_run)
    proc = run_cli("train", "sst2", "--model", tiny_model_dir, "--data-dir", data_dir,
                   "--output-dir", earlier_run, "--overwrite", "--learning-rate=-1e-5")
    assert proc.returncode == 2, proc.stderr
    assert "--learning-rate -1e-05 is out of range" in proc.stderr  # the flag, as typed
    assert "Nothing was changed on disk" in proc.stderr and "Traceback" not in proc.stderr
    assert _snapshot(earlier_run) == before


def test_config_numbers_read_as_strings_are_coerced_and_examples_come_from_defaults():
    task = get_task("sst2")
    resolved = resolve_options(task, {"learning_rate": "1e-4", "num_train_epochs": "2"})
    assert resolved.trainer_kwargs["learning_rate"] == 1e-4
    assert resolved.trainer_kwargs["num_train_epochs"] == 2
    with pytest.raises(ConfigError, match=r"e\.g\. learning_rate=5e-05") as info:
        resolve_options(task, {"learning_rate": "fast"})
    assert "3.0" not in str(info.value)


def test_yaml_config_with_1e_4_is_accepted(tmp_path):
    pytest.importorskip("yaml")
    from modernbert_tasks.cli import option_names, read_config_file

    config = tmp_path / "run.yaml"
    config.write_text("learning_rate: 1e-4\nper_device_train_batch_size: '8'\n")
    values = read_config_file(config, option_names())
    assert values["learning_rate"] == "1e-4"  # what YAML 1.1 gives ...
    resolved = resolve_options(get_task("sst2"), values)  # ... and what fine_tune makes of it
    assert resolved.trainer_kwargs["learning_rate"] == 1e-4
    assert resolved.trainer_kwargs["per_device_train_batch_size"] == 8


def test_output_dir_that_is_a_file(tmp_path, tiny_model_dir, data_dir):
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="is a file") as info:
        fine_tune("sst2", model_name=tiny_model_dir, output_dir=blocker / "x", data_dir=data_dir)
    assert "output_dir=" in str(info.value)
    proc = run_cli("train", "sst2", "--model", tiny_model_dir, "--data-dir", data_dir,
                   "--output-dir", blocker)
    assert proc.returncode == 2 and "--output-dir" in proc.stderr, proc.stderr
    assert "FileExistsError" not in proc.stderr


def test_model_given_as_its_weights_file(tmp_path, tiny_model_dir, data_dir):
    weights = Path(tiny_model_dir) / "model.safetensors"
    with pytest.raises(ModelLoadError, match="is a file") as info:
        fine_tune("sst2", model_name=weights, output_dir=tmp_path / "run", data_dir=data_dir)
    assert repr(str(tiny_model_dir)) in str(info.value) and "holds no files" not in str(info.value)


def test_a_failed_start_leaves_no_empty_runs_folder(tmp_path, data_dir):
    proc = run_cli("train", "sst2", "--model", tmp_path / "missing-model", "--data-dir", data_dir,
                   cwd=tmp_path)
    assert proc.returncode != 0
    assert not (tmp_path / "runs").exists()


def test_predict_output_that_is_a_folder(earlier_run, tmp_path):
    proc = run_cli("predict", earlier_run / "model", "a text", "--output", tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "is a folder" in proc.stderr and "--output" in proc.stderr
    assert "IsADirectoryError" not in proc.stderr


def test_predict_file_keeps_one_record_per_input_line(earlier_run, tmp_path):
    texts = tmp_path / "in.txt"
    texts.write_text("a great film\n\nan awful film\n   \nfine\n")
    proc = run_cli("predict", earlier_run / "model", "--file", texts)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5]
    assert [r.get("skipped") for r in records] == [None, "blank line", None, "blank line", None]
    assert records[2]["text"] == "an awful film" and "label" in records[2]


def test_piped_input_without_file_dash_says_how(earlier_run):
    proc = run_cli("predict", earlier_run / "model", stdin="a text\n")
    assert proc.returncode == 2
    assert "--file -" in proc.stderr


def test_a_run_folder_is_accepted_where_a_model_folder_is_expected(earlier_run, caplog):
    model = load_finetuned(earlier_run)
    assert model.predict(["a great film"])[0]["label"] in ("negative", "positive")
    proc = run_cli("predict", earlier_run, "a great film")
    assert proc.returncode == 0, proc.stderr
    assert "is a run folder; using its model" in proc.stderr


# --- finding 10 and 11: one figure per model, one TensorBoard record per evaluation ----------
@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory, tiny_model_dir, data_dir) -> tuple[Path, dict]:
    """Trained under bf16 autocast (emulated on CPUs without bf16: slow, but the model is tiny),
    with an evaluation at the last step, so the final evaluation repeats that step."""
    out = tmp_path_factory.mktemp("round2-bf16") / "run"
    result = fine_tune("sst2", model_name=tiny_model_dir, output_dir=out, data_dir=data_dir,
                       max_steps=6, eval_steps=3, precision="bf16", learning_rate=1e-3,
                       disable_tqdm=True, warmup_steps=0, report_to="tensorboard")
    return out, result.metrics


def test_the_training_summary_is_the_figure_evaluate_reproduces(bf16_run, data_dir):
    out, metrics = bf16_run
    manifest = json.loads((out / "model" / "modernbert_tasks.json").read_text())
    assert manifest["training"]["precision"] == "bf16"  # trained under bf16 autocast
    scored = load_finetuned(out / "model").evaluate(data_dir=data_dir)  # fp32, as predict
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


# --- finding 7: offline fails fast and names the model and the data together ----------------
def _offline_env(tmp_path: Path) -> dict[str, str]:
    """A hub endpoint that refuses connections (port 9, discard) and an empty cache, so the
    test behaves the same with or without network; HF_HUB_OFFLINE is deliberately unset."""
    env = {k: v for k, v in ENV.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                                                     "TRANSFORMERS_OFFLINE")}
    return {**env, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")}


def test_offline_train_names_model_and_data_in_one_error_cli(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "modernbert_tasks", "train", "sst2"],
                          capture_output=True, text=True, env=_offline_env(tmp_path), cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert "cannot be used (http://127.0.0.1:9 is unreachable" in err
    assert "model 'lightonai/modernbert-embed-large': pass a local model folder: --model PATH" in err
    assert "dataset 'nyu-mll/glue' (config 'sst2'): use local files: --data-dir PATH" in err
    assert "model_name=" not in err and "data_dir=" not in err  # flags, not Python arguments
    assert not (tmp_path / "runs").exists()


def test_offline_fine_tune_speaks_python(tmp_path):
    code = ("import modernbert_tasks as m\ntry:\n    m.fine_tune('sst2')\n"
            "except m.ModelLoadError as e:\n    print(type(e).__name__, e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_offline_env(tmp_path), cwd=tmp_path, timeout=120)
    assert proc.stdout.startswith("HubUnreachableError"), proc.stdout + proc.stderr
    assert "model_name='path/to/modernbert'" in proc.stdout
    assert "data_dir='path/to/folder'" in proc.stdout and "--data-dir" not in proc.stdout


def test_offline_with_the_model_in_the_cache_trains_from_it(tmp_path, tiny_model_dir, data_dir):
    """A hub id whose files are in the cache is used offline, without waiting on the network."""
    snapshot = tmp_path / "hf" / "hub" / "models--someone--tiny" / "snapshots" / ("0" * 40)
    snapshot.parent.mkdir(parents=True)
    import shutil

    shutil.copytree(tiny_model_dir, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    proc = subprocess.run(
        [sys.executable, "-m", "modernbert_tasks", "train", "sst2", "--model", "someone/tiny",
         "--data-dir", str(data_dir), "--output-dir", str(tmp_path / "run"), "--max-steps", "2",
         "--report-to", "none"], capture_output=True, text=True, env=_offline_env(tmp_path),
        cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "using the cached model 'someone/tiny'" in proc.stderr
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()


# --- finding 4: a pair model given single texts says how, in the interface's terms ----------
@pytest.fixture(scope="module")
def pair_model(tmp_path_factory, tiny_model_dir) -> Path:
    root = tmp_path_factory.mktemp("pairs")
    rows = [(t, t.upper() if i % 2 else "something else", i % 2)
            for i, (t, _) in enumerate(make_sentiment_rows(32, seed=4))]
    write_tsv(root / "train.tsv", rows, header=("first", "second", "label"))
    fine_tune(train_file=root / "train.tsv", text_columns=["first", "second"],
              label_column="label", model_name=tiny_model_dir, output_dir=root / "run",
              max_steps=1, validation_fraction=0, **FAST)
    return root / "run" / "model"


def test_single_texts_for_a_pair_model(pair_model):
    with pytest.raises(DataError) as err:
        load_finetuned(pair_model).predict(["just one text"])
    assert "list of (text_a, text_b) tuples" in str(err.value)
    proc = run_cli("predict", pair_model, "just one text")
    assert proc.returncode == 1
    assert '--pair "first text" "second text"' in proc.stderr and "tuples" not in proc.stderr
