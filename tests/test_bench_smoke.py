"""Smoke runs of the benchmark scripts with tiny sizes: they run, and their tables are well
formed (headers, a ratio column, numbers that parse). Speed itself is measured by the scripts,
never asserted here.

Every run uses the session's tiny model and synthetic data, so nothing here needs ../shared;
the scripts' default data paths are checked to skip cleanly when ../shared is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RATIO = re.compile(r"^\d+(\.\d+)?x$")


def run_script(*argv: str, env: dict[str, str] | None = None, timeout: int = 240) -> str:
    """Run a bench script's `main(argv)` in this process, as `python bench/x.py ARGV` would
    (bench/ first on sys.path, the repository as the working directory); return its stdout.
    A fresh interpreter would spend seconds importing torch again for each script. gpu.sh,
    and any run with `env` (read at import by bench/common.py), run as a subprocess."""
    if argv[0].endswith(".sh") or env:
        return run_script_process(*argv, env=env, timeout=timeout)
    import contextlib
    import importlib
    import io

    import torch
    from transformers.utils import logging as hf_logging

    script = ROOT / argv[0]
    threads, cwd, path = torch.get_num_threads(), os.getcwd(), list(sys.path)
    # the scripts quieten transformers (set_verbosity_error), which would also turn off the
    # Trainer's progress bar (disable_tqdm defaults to "transformers logs above WARNING")
    verbosity = hf_logging.get_verbosity()
    before = set(sys.modules)
    out = io.StringIO()
    try:
        sys.path.insert(0, str(script.parent))
        os.chdir(ROOT)
        module = importlib.import_module(script.stem)
        with contextlib.redirect_stdout(out):
            try:
                module.main(list(argv[1:]))
            except SystemExit as exc:  # common.skip exits 0
                assert not exc.code, f"{argv[0]} exited {exc.code}:\n{out.getvalue()[-3000:]}"
    finally:
        torch.set_num_threads(threads)
        hf_logging.set_verbosity(verbosity)
        os.chdir(cwd)
        sys.path[:] = path
        for name in set(sys.modules) - before:  # bench's `common`, `flops` and the script
            if (
                getattr(sys.modules[name], "__file__", "")
                and Path(sys.modules[name].__file__).parent == script.parent
            ):
                del sys.modules[name]
    return out.getvalue()


def run_script_process(*argv: str, env: dict[str, str] | None = None, timeout: int = 240) -> str:
    """Run a bench script (or gpu.sh) as a user would, in a new process; return its stdout."""
    cmd = ["bash", *argv] if argv[0].endswith(".sh") else [sys.executable, *argv]
    # one thread, like the in-process tests: tiny models gain nothing from more, and two
    # OpenMP threads on a busy 2-core machine make every step several times slower
    full_env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every Markdown table in `text`, as rows keyed by header."""
    found, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("|-"):
            header = [c.strip() for c in lines[i].strip("|").split("|")]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("| "):
                cells = [c.strip() for c in lines[i].strip("|").split("|")]
                rows.append(dict(zip(header, cells, strict=True)))
                i += 1
            found.append(rows)
        else:
            i += 1
    return found


def number(cell: str) -> float:
    return float(cell.replace(",", ""))


def check_table(rows: list[dict[str, str]], numeric: list[str], ratio: str | None = None) -> None:
    assert rows, "empty table"
    for row in rows:
        for column in numeric:
            assert number(row[column]) >= 0, (column, row)
        if ratio:
            assert RATIO.match(row[ratio]), (ratio, row)
    if ratio:
        assert rows[0][ratio] == "1.00x"


@pytest.fixture(scope="module")
def config_only_model(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model's config and tokenizer without weights, like ../shared/models/*."""
    folder = tmp_path_factory.mktemp("config-only")
    for path in tiny_model_dir.glob("*.json"):
        shutil.copy(path, folder / path.name)
    return folder


def test_train_throughput_table(tiny_model_dir):
    out = run_script(
        "bench/train_throughput.py",
        "--model",
        str(tiny_model_dir),
        "--synthetic",
        "--samples",
        "64",
        "--batch-size",
        "4",
        "--steps",
        "2",
        "--recipe-steps",
        "1",
        "--warmup",
        "1",
        "--rounds",
        "1",
        "--configs",
        "recipe,dynamic,v01,ours,loop",
    )
    (table,) = tables(out)
    assert [r["configuration"].split(":")[0].split(" ")[0] for r in table] == [
        "recipe",
        "dynamic",
        "v0.1",
        "fine_tune",
        "plain",
    ]
    assert "reuse_memory=False" in table[2]["configuration"]
    check_table(
        table,
        [
            "samples/s",
            "real tokens/s",
            "padding efficiency",
            "model TFLOP/s",
            "peak RSS MiB",
            "system time %",
        ],
        ratio="ratio",
    )
    recipe, dynamic, _, ours, loop = (number(r["padding efficiency"]) for r in table)
    # padding every row to 128 wastes most of it; padding to each batch's longest far less
    assert 0 < recipe < 0.5 and recipe < dynamic <= 1 and recipe < ours <= 1
    assert loop == ours  # the reference loop trains on the very batches fine_tune builds
    assert "load average" in out.splitlines()[-1]


def test_predict_throughput_table(tiny_model_dir, sentiment_dir):
    out = run_script(
        "bench/predict_throughput.py",
        "--model",
        str(tiny_model_dir),
        "--texts",
        str(sentiment_dir / "test.tsv"),
        "--limit",
        "48",
        "--rounds",
        "1",
        "--batch-size",
        "16",
    )
    (table,) = tables(out)
    assert table[0]["configuration"].startswith("pipeline (default")
    assert any(r["configuration"].startswith("load_finetuned().predict") for r in table)
    check_table(table, ["sentences/s", "RSS growth MiB"], ratio="ratio")
    assert "identical on 48/48 texts" in out


@pytest.mark.usefixtures("shared_tokenizer_dir")  # written for the real ModernBERT tokenizer in ../shared
def test_accuracy_seeds_table(tiny_model_dir, sentiment_dir):
    out = run_script(
        "bench/accuracy.py",
        "--mode",
        "seeds",
        "--model",
        str(tiny_model_dir),
        "--data-dir",
        str(sentiment_dir),
        "--seeds",
        "1,2",
        "--subset",
        "64",
        "--args",
        "eval_strategy=no,save_strategy=no,report_to=none",
    )
    (table,) = tables(out)
    assert [r["run"] for r in table] == ["seed 1", "seed 2", "mean +- std (2 seeds)"]
    for row in table[:2]:
        assert 0 <= number(row["validation accuracy"]) <= 1
        assert 0 <= number(row["test accuracy"]) <= 1
        assert number(row["train rows"]) == 64
    mean, _, std = table[2]["validation accuracy"].partition(" +- ")
    assert 0 <= number(mean) <= 1 and number(std) >= 0


def test_scaling_tables(tiny_model_dir, sentiment_dir):
    out = run_script(
        "bench/scaling.py",
        "--model",
        str(tiny_model_dir),
        "--layers",
        "0",
        "--data-dir",
        str(sentiment_dir),
        "--lengths",
        "16,128",
        "--batch-tokens",
        "128",
        "--steps",
        "1",
        "--rounds",
        "1",
        "--predict-tokens",
        "512",
        "--sizes",
        "64",
        "--no-plot",
    )
    lengths, sizes = tables(out)
    assert [number(r["tokens"]) for r in lengths] == [16, 128]
    check_table(lengths, ["train tokens/s", "predict sentences/s", "predict tokens/s"])
    assert all(RATIO.match(r["train vs 128"]) for r in lengths)
    assert lengths[1]["train vs 128"] == "1.00x"
    check_table(sizes, ["train rows", "train min", "wall min", "train samples/s"])
    assert number(sizes[0]["train rows"]) == 64


def test_padding_table(tiny_model_dir, sentiment_dir):
    out = run_script(
        "bench/padding.py",
        "--tokenizer",
        str(tiny_model_dir),
        "--data",
        str(sentiment_dir / "train.tsv"),
        "--batch-size",
        "8",
        "--mega",
        "4,0",
    )
    (table,) = tables(out)
    check_table(table, ["padding efficiency", "padded tokens/sample"], ratio="ratio")
    eff = {r["batching"].split(",")[0].split(":")[0]: number(r["padding efficiency"]) for r in table}
    grouped = [number(r["padding efficiency"]) for r in table if "length-grouped" in r["batching"]]
    assert len(grouped) == 2
    # padding to max_length wastes the most; sorted consecutive batches waste the least
    assert eff["recipe"] <= eff["dynamic padding"] <= max(grouped) <= grouped[-1] <= 1


def test_gpu_script_on_cpu(config_only_model):
    """gpu.sh's whole code path on the CPU: package check, random init from a config-only
    folder, synthetic sentences, the table."""
    out = run_script(
        "bench/gpu.sh",
        env={
            "PYTHON": sys.executable,  # the suite's interpreter, not whichever `python` PATH has
            "DEVICE": "cpu",
            "SKIP_INSTALL": "1",
            "MODEL_DIR": str(config_only_model),
            "DATA_DIR": "/nonexistent",
            "BATCH_SIZES": "4",
            "SAMPLES": "48",
            "STEPS": "2",
            "RECIPE_STEPS": "1",
            "WARMUP": "1",
            "ROUNDS": "1",
            "ABLATE_ROUNDS": "1",  # the ablation's code path once; its default is 3 rounds
            "CONFIGS": "recipe,ours",
        },
    )
    assert "found: torch" in out
    assert "synthetic sentences" in out
    table, ablation = tables(out)
    assert len(table) == 2
    check_table(table, ["samples/s", "real tokens/s", "padding efficiency"], ratio="ratio")
    # the ablation: defaults, then one lever per row (the CPU smoke default: fp32)
    assert [r["configuration"] for r in ablation] == ["fine_tune defaults", "fine_tune + precision=fp32"]
    check_table(ablation, ["samples/s", "real tokens/s"], ratio="ratio")


def test_long_docs_table(tiny_model_dir, sentiment_dir):
    out = run_script(
        "bench/long_docs.py",
        "--model",
        str(tiny_model_dir),
        "--data-dir",
        str(sentiment_dir),
        "--train-rows",
        "64",
        "--calibration-rows",
        "32",
        "--documents",
        "6",
        "--sentences",
        "4,8",
        "--max-length",
        "24",
        "--train-documents",
        "16",
        "--calibration-documents",
        "8",
        "--min-words",
        "3",
        "--args",
        "eval_strategy=no,save_strategy=no",
    )
    (table,) = tables(out)
    readings = ["truncate", "chunks (mean)", "chunks (max)"]
    assert [(r["trained on"], r["reading"]) for r in table] == [
        (kind, reading) for kind in ("sentences", "documents") for reading in readings
    ]
    for rows in (table[:3], table[3:]):
        check_table(rows, ["accuracy", "windows/doc", "seconds"], ratio="time ratio")
        assert number(rows[0]["windows/doc"]) == 1 < number(rows[1]["windows/doc"])
        assert rows[0]["vs truncate"] == "+0.0 pts"


@pytest.mark.parametrize(
    "script",
    [
        "train_throughput.py",
        "predict_throughput.py",
        "accuracy.py",
        "scaling.py",
        "padding.py",
        "long_docs.py",
        "lora.py",
        "serve_memory.py",
        "audit_recipes.py",
    ],
)
def test_scripts_skip_without_shared(script, tmp_path):
    out = run_script(f"bench/{script}", env={"MODERNBERT_TASKS_SHARED": str(tmp_path)}, timeout=60)
    assert out.startswith("SKIP:") and str(tmp_path) in out


def test_lora_tables(tiny_model_dir, sentiment_dir, shared_tokenizer_dir):
    # the < 3% trainable figure needs the real tokenizer's vocabulary (see test_lora)
    pytest.importorskip("peft", reason="the peft extra: pip install 'modernbert-tasks[peft]'")
    out = run_script(
        "bench/lora.py",
        "--model",
        str(tiny_model_dir),
        "--base-model",
        str(tiny_model_dir),
        "--data-dir",
        str(sentiment_dir),
        "--subset",
        "64",
        "--epochs",
        "1",
        "--steps",
        "4",
        "--lora-variants",
        "lora_dropout=0.1",
    )
    accuracy, speed = tables(out)
    assert [r["configuration"] for r in accuracy] == [
        "full fine-tuning",
        "LoRA (its default learning rate)",
        "LoRA, lora_dropout=0.1",
    ]
    check_table(
        accuracy, ["validation accuracy", "trainable %", "peak RSS MiB", "samples/s"], ratio="samples/s ratio"
    )
    assert number(accuracy[0]["trainable %"]) == 100 and 0 < number(accuracy[1]["trainable %"]) < 3
    assert [r["configuration"] for r in speed] == ["full fine-tuning", "LoRA", "LoRA, lora_dropout=0.1"]
    check_table(speed, ["peak RSS MiB", "samples/s"], ratio="RSS ratio")
    assert "LoRA - full fine-tuning:" in out


def test_audit_tables(tiny_model_dir, sst2_dir, tmp_path):
    """bench/audit.py end to end on a few real SST-2 rows with the tiny model, with 2 repeats;
    then bench/audit_rankings.py on its folder."""
    out = run_script(
        "bench/audit.py",
        "--model",
        str(tiny_model_dir),
        "--rows",
        "120",
        "--noise",
        "0.1",
        "--folds",
        "2",
        "--repeats",
        "2",
        "--output-dir",
        str(tmp_path / "audit"),
        "--args",
        "learning_rate=1e-3,per_device_eval_batch_size=128",
    )
    selection, runs = tables(out)
    rankings = {r["probabilities"] for r in selection}
    assert {
        "held_out, round 1",
        "held_out, 2 rounds",
        "fold_ensemble, 2 rounds",
        "data map confidence",
        "data map aum",
        "held_out + confidence",
    } <= rankings
    tops = [r for r in selection if r["selection"].startswith("top 10% by")]
    assert {r["probabilities"] for r in tops} == rankings  # every ranking scored at the top 10%
    for row in selection:
        assert 0 <= number(row["precision"]) <= 1 and 0 <= number(row["recall"]) <= 1
    for row in tops:
        assert 0 <= number(row["AP"]) <= 1 and 0 <= number(row["R@P>=0.6"]) <= 1
    assert "points over 2 folds" in out  # the data map's cost line
    names = [r["training data"] for r in runs]
    assert names[0] == "flipped labels" and names[-1] == "true labels"
    assert "(held_out) excluded" in names[1] and "(fold_ensemble) excluded" in names[2]
    assert number(runs[1]["train rows"]) < 120 <= number(runs[-1]["train rows"])
    assert "cpu capability:" in out
    # the rankings bench (no training) scores round 1 alone and the 2 rounds' mean: its figures
    # are the audit's own rows; the same folder twice averages to the 2 rounds' mean
    audit_dir = str(tmp_path / "audit")
    ranked = run_script("bench/audit_rankings.py", audit_dir, audit_dir, "--false-positives")
    (table,) = tables(ranked)
    assert [r["held-out probabilities"] for r in table[:4]] == [
        "audit, round 1",
        "audit, round 1, temperature per fold",
        "audit, round 1, rank within fold",
        "audit, 2 rounds",
    ]
    assert table[-1]["held-out probabilities"] == "mean of all 4 rounds"
    pairs = [
        (table[0], "held_out, round 1"),
        (table[3], "held_out, 2 rounds"),
        (table[-1], "held_out, 2 rounds"),
    ]
    for ours, theirs in pairs:
        audited = next(r for r in tops if r["probabilities"] == theirs)
        assert number(ours["top-n precision"]) == pytest.approx(number(audited["precision"]), abs=1e-4)
        assert number(ours["AP"]) == pytest.approx(number(audited["AP"]), abs=1e-4)
        assert number(ours["R@P>=0.6"]) == pytest.approx(number(audited["R@P>=0.6"]), abs=1e-4)
        assert 0 <= number(ours["P@R=0.6"]) <= 1 and 0 <= number(ours["out-of-fold accuracy"]) <= 1
    # the rows of the mean's top n that are not flips: as many as its precision leaves
    flips = round(120 * 0.1)
    listed = re.search(r"(\d+) of the top (\d+) rows are not planted flips.*\n", ranked)
    assert listed and int(listed[2]) == flips
    assert int(listed[1]) == round(flips * (1 - number(table[-1]["top-n precision"])))
    assert len(ranked[listed.end() :].strip().splitlines()) == int(listed[1]) + 1  # the rows, then "end:"


def test_audit_recipes_table(tiny_model_dir, sst2_dir):
    out = run_script(
        "bench/audit_recipes.py",
        "--model",
        str(tiny_model_dir),
        "--rows",
        "100",
        "--held-out",
        "40",
        "--recipe",
        "a:num_train_epochs=1,learning_rate=1e-3",
        "--recipe",
        "b:num_train_epochs=1,learning_rate=1e-3,seed=1",
    )
    (table,) = tables(out)
    assert [r["recipe"] for r in table] == ["a", "b", "mean of the 2"]
    for row in table:
        assert 0 <= number(row["held-out accuracy"]) <= 1
    assert "60 training rows (" in out and "40 held out" in out


def test_per_label_table(tiny_model_dir):
    out = run_script(
        "bench/per_label.py",
        "--model",
        str(tiny_model_dir),
        "--train",
        "200",
        "--eval",
        "120",
        "--test",
        "120",
        "--epochs",
        "1",
        "--args",
        "learning_rate=1e-3",
    )
    (table,) = tables(out)
    assert [r["F1 of"].split(" (")[0] for r in table] == [
        *("sports", "politics", "science", "music", "cooking"),
        *("macro-F1", "micro-F1"),
    ]
    assert "kept the global" in table[4]["F1 of"]  # cooking: 1 positive in 120 validation rows
    for row in table:
        values = [number(v) for k, v in row.items() if k not in ("F1 of", "per-label / 0.5")]
        assert len(values) == 3 and all(0 <= v <= 1 for v in values)
        assert RATIO.match(row["per-label / 0.5"]) or row["per-label / 0.5"] == "n/a (0 at 0.5)"


def test_profile_step_counts_ops_per_step(shared_tokenizer_dir, tmp_path):
    """The v0.1 row and today's defaults through the real engine, on the 2-layer proxy; each
    row counts the operators and kernels its profiled step dispatched."""
    out = run_script(
        "bench/profile_step.py",
        *("--steps", "2", "--warmup", "1", "--rounds", "1", "--samples", "64"),
        *("--configs", "v01,trainer", "--workdir", str(tmp_path)),
    )
    (rows,) = tables(out)
    assert [r["configuration"].split(" (")[0] for r in rows] == [
        "Trainer, v0.1 defaults",
        "fine_tune's Trainer, defaults",
    ]
    check_table(rows, ["step ms", "samples/s", "ops/step", "kernels/step"], ratio="ratio")
    for row in rows:  # an eager 2-layer step dispatches hundreds of operators
        assert 100 < number(row["ops/step"]) < 5000 and 0 < number(row["kernels/step"]), row
