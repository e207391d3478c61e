"""The command line, run the way a user runs it, reading stdout, stderr and the exit code:
in this process through `modernbert_tasks.testing.run_cli` (what `python -m modernbert_tasks`
runs, without a fresh interpreter's seconds of imports), and in a subprocess where the process
matters (the console script, the light import, plugins found through PYTHONPATH, --debug).
One tiny model is trained once for the module; predict and evaluate use it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from modernbert_tasks import DataError, fine_tune, load_finetuned, testing
from modernbert_tasks.testing import FAST, CliResult, make_sentiment_rows, write_tsv

CLI = [sys.executable, "-m", "modernbert_tasks"]
# offline: a model path that does not exist must fail at once, not retry the hub
IN_PROCESS_ENV = {"HF_HUB_OFFLINE": "1", "MODERNBERT_TASKS_STRICT_PLUGINS": ""}
ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false", **IN_PROCESS_ENV}


def run_cli(*args: object, stdin: str | None = None) -> CliResult:
    """`modernbert-tasks ARGS` in this process."""
    return testing.run_cli(*args, env=IN_PROCESS_ENV, stdin=stdin)


def run_cli_process(
    *args: object, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`python -m modernbert_tasks ARGS` in a fresh interpreter."""
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, env=env or ENV, timeout=timeout
    )


def assert_usage_error(proc: CliResult, *fragments: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir, sentiment_dir) -> SimpleNamespace:
    """`train` with options from a YAML file plus flags; the flag must win over the file."""
    root = tmp_path_factory.mktemp("cli-train")
    config = root / "run.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        task: sst2
        model: {tiny_model_dir}
        data-dir: {sentiment_dir}
        learning_rate: 1.0e-3
        num_train_epochs: 0.1   # the --num-train-epochs flag overrides this
        warmup_steps: 0
        """)
    )
    output_dir = root / "run"
    proc = run_cli(
        "train",
        "--config",
        config,
        "--output-dir",
        output_dir,
        "--num-train-epochs",
        "2",
        "--eval-strategy",
        "epoch",
        "--per-device-train-batch-size",
        "16",
        "--report-to",
        "tensorboard",
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return SimpleNamespace(proc=proc, output_dir=output_dir, model=output_dir / "model")


# --- train, predict, evaluate ----------------------------------------------------------------
def test_train_prints_a_summary_and_saves_the_model(trained):
    out = trained.proc.stdout
    accuracy = float(re.search(r"^\s+accuracy\s+([\d.]+)$", out, re.M).group(1))
    assert accuracy >= 0.85, out  # chance is 0.5
    assert f"Model saved to    {trained.model}" in out
    assert re.search(r"Fine-tuned 'sst2' in [\dms. ]+ \(training .*samples/s, 2 epochs\)", out)
    assert f"tensorboard --logdir {trained.output_dir / 'logs'}" in out
    assert list((trained.output_dir / "logs").glob("events.out.tfevents.*"))
    assert (trained.model / "model.safetensors").is_file()
    manifest = json.loads((trained.model / "modernbert_tasks.json").read_text())
    assert manifest["training"]["num_train_epochs"] == 2  # the flag beat the config file
    assert manifest["training"]["learning_rate"] == pytest.approx(1e-3)  # from the file
    # the Trainer's progress bar went to stderr
    assert re.search(r"\d+/\d+ \[", trained.proc.stderr)


def test_predict_prints_one_json_line_per_text_in_order(trained):
    rows = make_sentiment_rows(40, seed=11)
    proc = run_cli("predict", trained.model, *[text for text, _ in rows])
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["text"] for line in lines] == [text for text, _ in rows]
    for line in lines:
        assert set(line["probabilities"]) == {"negative", "positive"}
        assert sum(line["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert line["score"] == line["probabilities"][line["label"]]
    names = ("negative", "positive")
    correct = sum(line["label"] == names[label] for line, (_, label) in zip(lines, rows, strict=True))
    assert correct / len(rows) >= 0.85


def test_predict_reads_a_file_and_writes_jsonl(trained, tmp_path):
    rows = make_sentiment_rows(12, seed=12)
    table = write_tsv(tmp_path / "in.tsv", rows)
    out = tmp_path / "out.jsonl"
    proc = run_cli("predict", trained.model, "--file", table, "--output", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "Wrote 12 predictions" in proc.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["text"] for line in lines] == [text for text, _ in rows]

    # a .txt file from stdin: one record per line; a blank line is a "skipped" record, so
    # output line N matches input line N
    proc = run_cli(
        "predict", trained.model, "--file", "-", stdin="the film was wonderful\n\nthe plot was dull\n"
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r.get("label") for r in records] == ["positive", None, "negative"]
    assert [r["line"] for r in records] == [1, 2, 3] and records[1]["skipped"] == "blank line"


def test_evaluate_prints_metrics_confusion_matrix_and_per_class(trained, sentiment_dir):
    proc = run_cli("evaluate", trained.model, "--data-dir", sentiment_dir)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    accuracy = float(re.search(r"^\s+accuracy\s+([\d.]+)$", out, re.M).group(1))
    assert accuracy >= 0.85
    assert "Confusion matrix (rows: true label, columns: predicted label):" in out
    matrix = [
        list(map(int, re.findall(r"\d+", line)))
        for line in out.splitlines()
        if re.match(r"^(negative|positive)\s+\d+\s+\d+$", line)
    ]
    assert len(matrix) == 2 and sum(map(sum, matrix)) == 80  # validation.tsv has 80 rows
    assert re.search(r"^label\s+precision\s+recall\s+f1\s+support$", out, re.M)

    proc = run_cli("evaluate", trained.model, "--data-file", sentiment_dir / "test.tsv", "--json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert results["num_examples"] == 80 and results["accuracy"] >= 0.85
    assert sum(map(sum, results["confusion_matrix"])) == 80
    assert set(results["per_class"]) == {"negative", "positive"}


# --- tasks, plugins, options ---------------------------------------------------------------
def test_tasks_and_plugins_json():
    proc = run_cli("tasks", "--json")
    assert proc.returncode == 0, proc.stderr
    sst2 = {t["name"]: t for t in json.loads(proc.stdout)}["sst2"]
    assert sst2["labels"] == ["negative", "positive"] and sst2["plugin"] == "builtin"

    proc = run_cli("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    builtin = {p["name"]: p for p in json.loads(proc.stdout)}["builtin"]
    assert builtin["error"] is None and "sst2" in builtin["tasks"]


def test_a_broken_plugin_is_listed_with_its_error(tmp_path):
    """A distribution whose entry point fails to import, found through PYTHONPATH."""
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[modernbert_tasks]\nbroken = broken_plugin_mod\n")
    (tmp_path / "broken_plugin_mod.py").write_text("raise ImportError('needs libfoo 2.0')\n")
    env = {**ENV, "PYTHONPATH": str(tmp_path)}

    proc = run_cli_process("plugins", env=env)
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("broken "))
    assert "FAILED: ImportError: needs libfoo 2.0" in line
    assert re.search(r"^builtin .* ok$", proc.stdout, re.M)

    proc = run_cli_process("tasks", env=env)  # the other tasks still work; a one-line warning
    assert proc.returncode == 0 and "sst2" in proc.stdout
    assert "warning: modernbert-tasks plugin 'broken'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv", [["tasks"], ["tasks", "--help"], ["plugins"], ["--help"]])
def test_listing_and_help_do_not_import_torch(argv):
    # third-party plugins are off: what they import is their business
    code = (
        f"import sys\nfrom modernbert_tasks.cli import main\ntry:\n    main({argv!r})\n"
        "except SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    env = {**ENV, "MODERNBERT_TASKS_DISABLE_PLUGINS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "sst2" in proc.stdout or "usage:" in proc.stdout


def test_console_script_is_the_same_program():
    script = Path(sys.executable).with_name("modernbert-tasks")
    if not script.is_file():
        pytest.skip(f"console script not installed next to {sys.executable}")
    proc = subprocess.run([script, "tasks", "--json"], capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(run_cli("tasks", "--json").stdout)


def test_options_lists_defaults_and_where_they_come_from():
    proc = run_cli("options", "--task", "sst2")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^--learning-rate\s+3e-05\s+task 'sst2'$", proc.stdout, re.M)
    assert re.search(r"^--save-total-limit\s+2\s+recipe$", proc.stdout, re.M)


def test_train_help_lists_every_trainer_field_and_examples():
    proc = run_cli("train", "--help")
    assert proc.returncode == 0, proc.stderr
    for flag in (
        "--lr-scheduler-type",
        "--gradient-accumulation-steps",
        "--max-train-samples",
        "--eval-strategy",
        "--trainer-debug",
        "--config",
        "examples:",
    ):
        assert flag in proc.stdout


# --- wrong usage: exit 2, a sentence, no traceback -------------------------------------------
def test_unknown_task_suggests_the_closest():
    assert_usage_error(run_cli("train", "sst3"), "error: Unknown task 'sst3'. Did you mean: sst2?")


def test_unknown_flag_suggests_the_closest_and_old_names_point_to_new_ones():
    assert_usage_error(
        run_cli("train", "sst2", "--learning-rat", "1e-3"),
        "unrecognized arguments: --learning-rat",
        "Did you mean: --learning-rate",
    )
    assert_usage_error(
        run_cli("train", "sst2", "--evaluation_strategy", "steps"),
        "--evaluation_strategy is an old name: use --eval-strategy",
    )


def test_bad_values_are_usage_errors(tmp_path):
    assert_usage_error(
        run_cli("train", "sst2", "--num-train-epochs", "three"),
        "argument --num-train-epochs/--num_train_epochs: invalid float value: 'three'",
    )
    assert_usage_error(run_cli("train", "sst2", "--bf16", "maybe"), "expected true or false, got 'maybe'")
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"task": "sst2", "learning_rat": 1e-3}))
    assert_usage_error(
        run_cli("train", "--config", config), "unknown option 'learning_rat'. Did you mean: learning_rate"
    )


def test_missing_arguments_are_usage_errors(trained):
    assert_usage_error(run_cli("train"), "a TASK is required")
    assert_usage_error(run_cli("predict"), "the following arguments are required: PATH")
    assert_usage_error(run_cli("predict", trained.model), "give the inputs one way")
    assert_usage_error(run_cli(), "the following arguments are required: COMMAND")


# --- a failed run: exit 1, one line, the trace only with --debug ----------------------------
def test_predict_on_a_missing_model_is_a_run_failure(tmp_path):
    missing = tmp_path / "no-such-model"
    proc = run_cli("predict", missing, "some text")
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: Model folder {str(missing)!r} does not exist. Pass the folder "
        "fine_tune saved the model to (FineTuneResult.model_path), e.g. "
        "'runs/sst2/model'."
    ]
    assert "Traceback" not in proc.stderr

    proc = run_cli_process("predict", missing, "some text", "--debug")  # a fresh process too
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "ModelLoadError" in proc.stderr


# --- flag parsing and input files, in-process (no model needed) -------------------------------
def test_train_flags_parse_to_the_types_fine_tune_expects():
    from modernbert_tasks.cli import build_parser

    parser = build_parser("train")

    def given(*argv: str) -> dict:
        ns = parser.parse_args(["train", "sst2", *argv])
        return {k: v for k, v in vars(ns).items() if k not in ("command", "traceback", "config", "task")}

    assert given() == {}  # defaults are fine_tune's business, not argparse's
    assert given("--num_train_epochs", "2", "--learning-rate", "2e-5") == {
        "num_train_epochs": 2.0,
        "learning_rate": 2e-5,
    }
    assert given("--bf16") == {"bf16": True} and given("--bf16", "false") == {"bf16": False}
    assert given("--no-group-by-length") == {"group_by_length": False}
    assert given("--resume") == {"resume": True}
    assert given("--resume", "runs/x/checkpoint-5") == {"resume": "runs/x/checkpoint-5"}
    assert given("--report-to", "tensorboard", "wandb") == {"report_to": ["tensorboard", "wandb"]}
    assert given("--lr-scheduler-kwargs", '{"num_cycles": 2}') == {"lr_scheduler_kwargs": {"num_cycles": 2}}
    assert given("--data-files", "train=a.csv,eval=b.csv") == {
        "data_files": {"train": "a.csv", "eval": "b.csv"}
    }
    assert given("--data-files", "a.csv") == {"data_files": "a.csv"}
    assert given("--eval-strategy", "epoch", "--padding", "max_length") == {
        "eval_strategy": "epoch",
        "padding": "max_length",
    }
    assert given("--trainer-debug", "underflow_overflow") == {"debug": ["underflow_overflow"]}
    with pytest.raises(SystemExit):
        given("--eval-strategy", "sometimes")  # not a choice


def test_pair_inputs_come_from_the_task_columns(tmp_path):
    from modernbert_tasks import DataError, Task
    from modernbert_tasks.cli import read_inputs

    task = Task(name="pairs", text_columns=("sentence1", "sentence2"), labels=("no", "yes"))
    table = write_tsv(
        tmp_path / "pairs.tsv",
        [("a cat sat", "a cat was sitting", "x"), ("it rained", "the sun shone", "y")],
        header=("sentence1", "sentence2", "extra"),
    )
    assert read_inputs(str(table), task) == [
        ("a cat sat", "a cat was sitting"),
        ("it rained", "the sun shone"),
    ]
    lines = tmp_path / "texts.txt"
    lines.write_text("one text\n")
    with pytest.raises(DataError, match="classifies text pairs"):
        read_inputs(str(lines), task)
    wrong = write_tsv(tmp_path / "wrong.tsv", [("a", "b")], header=("sentence1", "sentense2"))
    with pytest.raises(DataError, match="no column 'sentence2'.*Did you mean: sentense2"):
        read_inputs(str(wrong), task)


def test_flags_that_take_a_number_or_a_word_and_a_mapping_or_a_word():
    from modernbert_tasks.cli import build_parser

    parser = build_parser("train")
    args = parser.parse_args(
        [
            "train",
            "--max-length",
            "24",
            "--class-weights",
            "balanced",
            "--decision-threshold",
            "tune",
            "--seeds",
            "1",
            "2",
        ]
    )
    assert (args.max_length, args.class_weights, args.decision_threshold, args.seeds) == (
        24,
        "balanced",
        "tune",
        [1, 2],
    )
    args = parser.parse_args(
        [
            "train",
            "--max-length",
            "auto",
            "--class-weights",
            '{"a": 2.0}',
            "--decision-threshold",
            "0.3",
            "--text-column",
            "body",
        ]
    )
    assert (args.max_length, args.class_weights, args.decision_threshold) == ("auto", {"a": 2.0}, 0.3)
    assert args.text_columns == ["body"]


# --- predict: outputs that line up with inputs, run folders, the interface's own terms --------
def test_predict_output_that_is_a_folder(trained, tmp_path):
    proc = run_cli("predict", trained.model, "a text", "--output", tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "is a folder" in proc.stderr and "--output" in proc.stderr
    assert "IsADirectoryError" not in proc.stderr


def test_predict_file_keeps_one_record_per_input_line(trained, tmp_path):
    texts = tmp_path / "in.txt"
    texts.write_text("a great film\n\nan awful film\n   \nfine\n")
    proc = run_cli("predict", trained.model, "--file", texts)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5]
    assert [r.get("skipped") for r in records] == [None, "blank line", None, "blank line", None]
    assert records[2]["text"] == "an awful film" and "label" in records[2]


def test_piped_input_without_file_dash_says_how(trained):
    proc = run_cli("predict", trained.model, stdin="a text\n")
    assert proc.returncode == 2
    assert "--file -" in proc.stderr


def test_a_run_folder_is_accepted_where_a_model_folder_is_expected(trained, caplog):
    model = load_finetuned(trained.output_dir)
    assert model.predict(["a great film"])[0]["label"] in ("negative", "positive")
    proc = run_cli("predict", trained.output_dir, "a great film")
    assert proc.returncode == 0, proc.stderr
    assert "is a run folder; using its model" in proc.stderr


@pytest.fixture(scope="module")
def pair_model(tmp_path_factory, tiny_model_dir) -> Path:
    root = tmp_path_factory.mktemp("pairs")
    rows = [
        (t, t.upper() if i % 2 else "something else", i % 2)
        for i, (t, _) in enumerate(make_sentiment_rows(32, seed=4))
    ]
    write_tsv(root / "train.tsv", rows, header=("first", "second", "label"))
    fine_tune(
        train_file=root / "train.tsv",
        text_columns=["first", "second"],
        label_column="label",
        model_name=tiny_model_dir,
        output_dir=root / "run",
        max_steps=1,
        validation_fraction=0,
        **FAST,
    )
    return root / "run" / "model"


def test_single_texts_for_a_pair_model(pair_model):
    with pytest.raises(DataError) as err:
        load_finetuned(pair_model).predict(["just one text"])
    assert "list of (text_a, text_b) tuples" in str(err.value)
    proc = run_cli("predict", pair_model, "just one text")
    assert proc.returncode == 1
    assert '--pair "first text" "second text"' in proc.stderr and "tuples" not in proc.stderr
