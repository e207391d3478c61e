"""Bad input, through the Python API and the CLI: each case checks the exception type (API) or
the exit code (CLI: 2 for usage errors, 1 for failed runs), that the message names the offending
value, and that it says how to fix it. Input that only looks odd (CRLF, label names, overlong
texts, a sample cap above the data size) is accepted.

The CLI cases call `modernbert_tasks.cli.main(argv)`, what ``python -m modernbert_tasks`` runs,
in this process; the cases that depend on environment variables (HF_ENDPOINT, HF_HUB_OFFLINE) run
``python -m modernbert_tasks`` in a fresh interpreter with them set.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from modernbert_tasks import (
    ConfigError,
    DataError,
    ModelLoadError,
    UnknownTaskError,
    fine_tune,
    get_task,
    load_finetuned,
    testing,
)
from modernbert_tasks.artifacts.manifest import MANIFEST_NAME, ManifestError
from modernbert_tasks.options import resolve_options
from modernbert_tasks.testing import make_sentiment_rows, run_cli

CLI = [sys.executable, "-m", "modernbert_tasks"]
# one OpenMP thread: tiny models gain nothing from more, and the machine is shared
BASE_ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
}
# the library defaults (learning rate, epochs) but short texts and no reporting
FAST = {
    "report_to": testing.FAST["report_to"],
    "disable_tqdm": testing.FAST["disable_tqdm"],
    "max_length": 24,
}
FAST_FLAGS = ["--report-to", "none", "--max-length", "24", "--disable-tqdm", "true"]
MISSING_MODEL = "no-such-org/no-such-model"
LONG_TAIL = " and then the credits rolled" * 40  # ~200 tokens, far over max_length=24


# --- the world the cases run in ---------------------------------------------------------------
class _NotFound(http.server.BaseHTTPRequestHandler):
    """A Hugging Face Hub stand-in that knows no repository (HTTP 404 for everything)."""

    def _reply(self) -> None:
        self.send_response(404)
        self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = _reply

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class World:
    root: Path
    tiny: Path  # the tiny random-init ModernBERT
    data: Path  # clean sentiment train/validation
    bad: Path  # one bad file per case
    quirky: Path  # odd but valid data: CRLF, label names, overlong texts
    run: Path  # output_dir of the shared trained run (holds checkpoints and model/)
    model: Path  # the trained model folder
    hub: str  # URL of the 404 hub
    logs: list[logging.LogRecord] = field(default_factory=list)
    result: Any = None

    def out(self, name: str) -> Path:
        return self.root / "out" / name


def _write_bad_files(bad: Path) -> None:
    bad.mkdir()
    rows = "sentence\tlabel\ngood film\t1\nbad film\t0\n"
    (bad / "empty.tsv").write_bytes(b"")
    (bad / "no_label.tsv").write_text("sentence\tstars\ngood film\t5\nbad film\t1\n")
    (bad / "unknown_labels.tsv").write_text(rows + "meh\tneutral\nawful\t7\n")
    (bad / "nan_labels.tsv").write_text(rows + "so so\t\nok\t\nfine\t1\n")
    (bad / "nan_labels.jsonl").write_text(
        '{"sentence": "good", "label": 1}\n{"sentence": "so so", "label": null}\n'
    )
    (bad / "empty_texts.tsv").write_text(rows + "\t1\n\t\nfine\t1\n")
    (bad / "latin1.tsv").write_bytes(b"sentence\tlabel\nun caf\xe9 cr\xe8me\t1\n")


def _quirky_rows(n: int, seed: int) -> list[tuple[str, str]]:
    """Label names instead of ids; every 8th text runs far past max_length (at the end, so
    truncation keeps the words that carry the label)."""
    names = ("negative", "positive")
    return [
        (text + (LONG_TAIL if i % 8 == 0 else ""), names[label])
        for i, (text, label) in enumerate(make_sentiment_rows(n, seed))
    ]


def _write_crlf_tsv(path: Path, rows: list[tuple[str, str]]) -> None:
    lines = ["sentence\tlabel"] + [f"{text}\t{label}" for text, label in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())


class _Capture(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model_dir, sentiment_dir):
    root = tmp_path_factory.mktemp("bad-input")
    _write_bad_files(root / "bad")
    quirky = root / "quirky"
    quirky.mkdir()
    _write_crlf_tsv(quirky / "train.tsv", _quirky_rows(192, seed=11))
    shutil.copy(sentiment_dir / "validation.tsv", quirky / "validation.tsv")  # ids, LF

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    w = World(
        root=root,
        tiny=tiny_model_dir,
        data=sentiment_dir,
        bad=root / "bad",
        quirky=quirky,
        run=root / "run",
        model=root / "run" / "model",
        hub=f"http://127.0.0.1:{server.server_address[1]}",
    )

    # the one trained model every loading case damages a copy of; trained on the quirky data
    logger = logging.getLogger("modernbert_tasks")
    handler = _Capture(w.logs)
    logger.addHandler(handler)
    try:
        w.result = fine_tune(
            "sst2",
            str(tiny_model_dir),
            w.run,
            data_dir=str(quirky),
            max_train_samples=10_000,
            learning_rate=1e-3,
            max_steps=36,
            per_device_train_batch_size=16,
            eval_steps=12,
            **FAST,
        )
    finally:
        logger.removeHandler(handler)
    yield w
    server.shutdown()


def _damaged_copy(w: World, name: str, damage: Callable[[Path], None]) -> Path:
    target = w.root / "damaged" / name
    if not target.exists():
        shutil.copytree(w.model, target)
        damage(target)
    return target


def _truncate_weights(folder: Path) -> None:
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 3])


def _edit_manifest(folder: Path, edit: Callable[[dict], None]) -> None:
    path = folder / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def _future_manifest(folder: Path) -> None:
    _edit_manifest(folder, lambda m: m.update(manifest_version=99))


def _relabelled_manifest(folder: Path) -> None:
    _edit_manifest(folder, lambda m: m["task"]["definition"].update(labels=["bad", "good"]))


def _config_without_weights(w: World) -> Path:
    target = w.root / "no-weights"
    if not target.exists():
        shutil.copytree(w.tiny, target, ignore=shutil.ignore_patterns("*.safetensors"))
    return target


# --- the table ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One bad input. `api(w)` must raise `error`; `cli(w)` (argv) must exit with `exit_code`.
    Both messages must contain every string of `needles(w)`: the bad value and the fix."""

    id: str
    api: Callable[[World], Any]
    cli: Callable[[World], list[str]]
    error: type[Exception]
    exit_code: int
    needles: Callable[[World], tuple[str, ...]]
    cli_needles: Callable[[World], tuple[str, ...]] | None = None  # when flags differ
    # environment variables huggingface_hub reads at import: the CLI case runs in a fresh
    # interpreter with them, the API case patches what they set
    env: Callable[[World], dict[str, str]] = lambda w: {}


def _train(w: World, out: str, model: str | Path | None = None, **args: Any) -> Any:
    args = {"data_dir": str(w.data), **FAST, **args}
    return fine_tune("sst2", str(model or w.tiny), w.out(out), **args)


def _train_argv(w: World, out: str, *flags: str, model: str | Path | None = None) -> list[str]:
    flags = flags if any(f.startswith("--data") for f in flags) else (*flags, "--data-dir", str(w.data))
    return [
        "train",
        "sst2",
        "--model",
        str(model or w.tiny),
        "--output-dir",
        str(w.out(out) / "cli"),
        *FAST_FLAGS,
        *flags,
    ]


def _data_case(id: str, file: str, needles: Callable[[World], tuple[str, ...]]) -> Case:
    return Case(
        id=id,
        api=lambda w: _train(w, id, data_files={"train": str(w.bad / file)}),
        cli=lambda w: _train_argv(w, id, "--data-files", f"train={w.bad / file}"),
        error=DataError,
        exit_code=1,
        needles=needles,
    )


CASES = [
    Case(
        "unknown-task",
        api=lambda w: fine_tune("sst3", str(w.tiny), w.out("unknown-task")),
        cli=lambda w: ["train", "sst3", "--model", str(w.tiny)],
        error=UnknownTaskError,
        exit_code=2,
        needles=lambda w: ("'sst3'", "Did you mean: sst2?", "Available tasks:"),
    ),
    Case(
        "unknown-argument",
        api=lambda w: _train(w, "unknown-argument", learning_rat=1e-3),
        cli=lambda w: _train_argv(w, "unknown-argument", "--learning-rat", "1e-3"),
        error=ConfigError,
        exit_code=2,
        needles=lambda w: ("'learning_rat'", "Did you mean: learning_rate"),
        cli_needles=lambda w: ("--learning-rat", "Did you mean: --learning-rate"),
    ),
    Case(
        "wrong-type",
        api=lambda w: _train(w, "wrong-type", num_train_epochs="three"),
        cli=lambda w: _train_argv(w, "wrong-type", "--num-train-epochs", "three"),
        error=ConfigError,
        exit_code=2,
        needles=lambda w: ("num_train_epochs='three'", "expected float", "e.g. num_train_epochs=3."),
        cli_needles=lambda w: ("--num-train-epochs", "invalid float value: 'three'"),
    ),
    Case(
        "model-id-not-on-hub",
        api=lambda w: _train(w, "model-id-not-on-hub", model=MISSING_MODEL),
        cli=lambda w: _train_argv(w, "model-id-not-on-hub", model=MISSING_MODEL),
        error=ModelLoadError,
        exit_code=1,
        needles=lambda w: (f"'{MISSING_MODEL}'", "not a valid model identifier", "pass a local model folder"),
        env=lambda w: {"HF_ENDPOINT": w.hub, "HF_HUB_OFFLINE": "0"},
    ),
    Case(
        "model-id-offline-not-cached",
        api=lambda w: _train(
            w, "model-id-offline", model=MISSING_MODEL, cache_dir=str(w.root / "empty-cache")
        ),
        cli=lambda w: _train_argv(
            w, "model-id-offline", "--cache-dir", str(w.root / "empty-cache"), model=MISSING_MODEL
        ),
        error=ModelLoadError,
        exit_code=1,
        needles=lambda w: (f"'{MISSING_MODEL}'", "HF_HUB_OFFLINE=1 is set", "pass a local model folder"),
        env=lambda w: {"HF_HUB_OFFLINE": "1"},
    ),
    Case(
        "model-folder-missing",
        api=lambda w: _train(w, "model-folder-missing", model=w.root / "no-such-folder"),
        cli=lambda w: _train_argv(w, "model-folder-missing", model=w.root / "no-such-folder"),
        error=ModelLoadError,
        exit_code=1,
        needles=lambda w: (repr(str(w.root / "no-such-folder")), "does not exist", "Check the path"),
    ),
    Case(
        "model-folder-without-weights",
        api=lambda w: _train(w, "no-weights", model=_config_without_weights(w)),
        cli=lambda w: _train_argv(w, "no-weights", model=_config_without_weights(w)),
        error=ModelLoadError,
        exit_code=1,
        needles=lambda w: (
            repr(str(_config_without_weights(w))),
            "no weights",
            "Point model_name at a folder with the weights",
        ),
    ),
    Case(
        "data-file-missing",
        api=lambda w: _train(w, "data-missing", data_files={"train": str(w.bad / "nope.tsv")}),
        cli=lambda w: _train_argv(w, "data-missing", "--data-files", f"train={w.bad / 'nope.tsv'}"),
        error=DataError,
        exit_code=1,
        needles=lambda w: (repr(str(w.bad / "nope.tsv")), "not found", "Check the path"),
    ),
    _data_case(
        "data-no-label-column",
        "no_label.tsv",
        lambda w: (
            "no label column 'label'",
            "['sentence', 'stars']",
            "Add the labels",
            "or rename the column",
        ),
    ),
    _data_case(
        "data-unknown-labels",
        "unknown_labels.tsv",
        lambda w: (
            "'neutral', '7'",
            "2 row(s): 3, 4",
            "expected an id 0..1 or a name in ['negative', 'positive']",
            "Fix those labels",
        ),
    ),
    _data_case(
        "data-empty-labels",
        "nan_labels.tsv",
        lambda w: (
            "label column 'label' is empty or NaN in 2 row(s): 3, 4",
            "Remove those rows or give them a label",
        ),
    ),
    _data_case(
        "data-null-labels-jsonl",
        "nan_labels.jsonl",
        lambda w: (
            "label column 'label' is empty or NaN in 1 row(s): 2",
            "Remove those rows or give them a label",
        ),
    ),
    _data_case(
        "data-empty-texts",
        "empty_texts.tsv",
        lambda w: ("column 'sentence' is empty in 2 row(s): 3, 4", "Remove or fill those rows"),
    ),
    _data_case(
        "data-not-utf8",
        "latin1.tsv",
        lambda w: ("not valid UTF-8", "byte 0xe9 at line 2", "Re-save the file as UTF-8"),
    ),
    _data_case(
        "data-empty-file",
        "empty.tsv",
        lambda w: (repr(str(w.bad / "empty.tsv")), "is empty", "Expected a header line"),
    ),
    Case(
        "max-train-samples-zero",
        api=lambda w: _train(w, "zero-samples", max_train_samples=0),
        cli=lambda w: _train_argv(w, "zero-samples", "--max-train-samples", "0"),
        error=ConfigError,
        exit_code=2,
        needles=lambda w: ("max_train_samples=0", "expected an integer >= 1"),
        cli_needles=lambda w: ("--max-train-samples 0", "expected an integer >= 1"),
    ),
    Case(
        "output-dir-holds-another-run",
        api=lambda w: fine_tune("sst2", str(w.tiny), w.run, data_dir=str(w.data), **FAST),
        cli=lambda w: [
            "train",
            "sst2",
            "--model",
            str(w.tiny),
            "--output-dir",
            str(w.run),
            "--data-dir",
            str(w.data),
            *FAST_FLAGS,
        ],
        error=ConfigError,
        exit_code=2,
        needles=lambda w: (repr(str(w.run)), "earlier run", "resume=True", "overwrite=True"),
        cli_needles=lambda w: (
            repr(str(w.run)),
            "earlier run",
            "Pass --resume to continue it,",
            "--overwrite to delete it",
        ),
    ),
    Case(
        "load-missing-path",
        api=lambda w: load_finetuned(w.root / "no-such-model"),
        cli=lambda w: ["predict", str(w.root / "no-such-model"), "a fine film"],
        error=ModelLoadError,
        exit_code=1,
        needles=lambda w: (
            repr(str(w.root / "no-such-model")),
            "does not exist",
            "Pass the folder fine_tune saved the model to",
        ),
    ),
    Case(
        "load-corrupted-safetensors",
        api=lambda w: load_finetuned(_damaged_copy(w, "truncated", _truncate_weights)),
        cli=lambda w: ["predict", str(_damaged_copy(w, "truncated", _truncate_weights)), "x"],
        error=ModelLoadError,
        exit_code=1,
        needles=lambda w: (
            "model.safetensors",
            "is damaged or not a safetensors file",
            "Re-copy or re-save the model",
        ),
    ),
    Case(
        "load-manifest-unknown-version",
        api=lambda w: load_finetuned(_damaged_copy(w, "future", _future_manifest)),
        cli=lambda w: ["predict", str(_damaged_copy(w, "future", _future_manifest)), "x"],
        error=ManifestError,
        exit_code=1,
        needles=lambda w: ("manifest_version 99", "pip install -U modernbert-tasks"),
    ),
    Case(
        "load-manifest-labels-differ-from-config",
        api=lambda w: load_finetuned(_damaged_copy(w, "relabelled", _relabelled_manifest)),
        cli=lambda w: ["predict", str(_damaged_copy(w, "relabelled", _relabelled_manifest)), "x"],
        error=ManifestError,
        exit_code=1,
        needles=lambda w: ("['bad', 'good']", "['negative', 'positive']", "re-save the model"),
    ),
]
BY_ID = {case.id: case for case in CASES}


# --- running the CLI ----------------------------------------------------------------------------
def run_cli_process(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m modernbert_tasks ARGV`` in a fresh interpreter."""
    return subprocess.run([*CLI, *argv], capture_output=True, text=True, env={**BASE_ENV, **env}, timeout=300)


@pytest.fixture
def cli_main(capsys):
    """`modernbert_tasks.cli.main(argv)` -- what ``python -m modernbert_tasks`` runs -- in this
    process: (exit code, stdout, stderr). A fresh interpreter per case would cost ~4 CPU-seconds
    of imports each; the cases whose outcome depends on the process environment run that way."""
    from modernbert_tasks.cli import main

    logger = logging.getLogger("modernbert_tasks")
    saved = (list(logger.handlers), logger.level, warnings.showwarning)

    def run(argv: list[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    logger.handlers[:], warnings.showwarning = saved[0], saved[2]
    logger.setLevel(saved[1])


def _hub_patches(monkeypatch, env: dict[str, str]) -> None:
    """The process-environment cases, in this process: huggingface_hub reads HF_ENDPOINT and
    HF_HUB_OFFLINE once, at import, into these constants."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", env.get("HF_HUB_OFFLINE") == "1")
    if "HF_ENDPOINT" in env:
        template = constants.HUGGINGFACE_CO_URL_TEMPLATE.replace(constants.ENDPOINT, env["HF_ENDPOINT"])
        monkeypatch.setattr(constants, "ENDPOINT", env["HF_ENDPOINT"])
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)


# --- the tests ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_python_api(case: Case, world: World, monkeypatch):
    _hub_patches(monkeypatch, case.env(world))
    with pytest.raises(case.error) as err:
        case.api(world)
    message = str(err.value)
    for needle in case.needles(world):
        assert needle in message, f"{needle!r} not in: {message}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli(case: Case, world: World, cli_main):
    if case.env(world):
        proc = run_cli_process(case.cli(world), case.env(world))
        code, err = proc.returncode, proc.stderr
    else:
        code, _, err = cli_main(case.cli(world))
    assert code == case.exit_code, err[-3000:]
    assert "Traceback" not in err
    error = err[err.find("error:") :]
    for needle in (case.cli_needles or case.needles)(world):
        assert needle in error, f"{needle!r} not in: {error}"


# --- accepted input ---------------------------------------------------------------------------
def _warnings(world: World, fragment: str) -> list[str]:
    return [r.getMessage() for r in world.logs if fragment in r.getMessage()]


def test_label_names_crlf_and_overlong_texts_are_accepted_and_learned(world: World):
    """The model trained on CRLF lines with "positive"/"negative" labels scores far above chance
    on the id-labelled validation file: the names were mapped to the right ids."""
    assert world.result.metrics["accuracy"] >= 0.9
    assert world.result.model_path.is_dir()


def test_overlong_texts_are_truncated_and_counted(world: World):
    n_long = sum(1 for i in range(192) if i % 8 == 0)
    (message,) = _warnings(world, "were truncated")
    assert message.startswith(
        f"{n_long} of 192 training texts were longer than max_length=24 and were truncated"
    )
    assert "Pass a larger max_length" in message


def test_more_samples_than_data_is_accepted_with_a_warning(world: World):
    (message,) = _warnings(world, "max_train_samples")
    assert "max_train_samples=10000 is more than the 192 examples available" in message
    manifest = json.loads((world.model / MANIFEST_NAME).read_text())
    assert manifest["training"]["num_examples"]["train"] == 192


def test_cli_accepts_the_same_odd_data(world: World, cli_main):
    code, out, err = cli_main(
        [
            "train",
            "sst2",
            "--model",
            str(world.tiny),
            "--data-dir",
            str(world.quirky),
            "--output-dir",
            str(world.out("accepted-cli")),
            "--max-steps",
            "2",
            "--max-train-samples",
            "10000",
            *FAST_FLAGS,
        ]
    )
    assert code == 0, err[-3000:]
    assert "24 of 192 training texts were longer than max_length=24" in err
    assert "max_train_samples=10000 is more than the 192 examples" in err
    assert "Model saved to" in out


@pytest.mark.usefixtures("shared_tokenizer_dir")  # written for the real ModernBERT tokenizer in ../shared
@pytest.mark.parametrize("padding", ["longest", "max_length"])
def test_only_texts_longer_than_max_length_count_as_truncated(tiny_model_dir, tmp_path, padding):
    import datasets
    from transformers import AutoTokenizer

    from modernbert_tasks import get_task
    from modernbert_tasks.training.batching import tokenize_splits
    from modernbert_tasks.training.lengths import count_truncated

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    task = get_task("sst2")
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    exact = " ".join(words[:6])  # 6 words + [CLS] + [SEP] = 8 tokens: fits max_length=8
    assert len(tokenizer(exact)["input_ids"]) == 8
    raw = datasets.Dataset.from_dict({"sentence": ["short", exact, " ".join(words)], "label": [0, 1, 0]})
    tokenized = tokenize_splits(
        datasets.DatasetDict({"train": raw}), task, tokenizer, 8, padding, str(tmp_path)
    )["train"]
    result = count_truncated(raw, tokenized, task, tokenizer, 8)
    assert (result.truncated, result.total, result.longest) == (1, 3, 12)


# --- checked before anything is deleted: range checks, config numbers, output folders ---------
QUICK = {**testing.FAST, "warmup_steps": 0}


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory, tiny_model_dir, small_sentiment_dir) -> Path:
    """A run folder with checkpoints, for the overwrite cases (which must leave it as it is)."""
    out = tmp_path_factory.mktemp("earlier") / "run"
    fine_tune(
        "sst2",
        model_name=tiny_model_dir,
        output_dir=out,
        data_dir=small_sentiment_dir,
        max_steps=4,
        eval_steps=2,
        **QUICK,
    )
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


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


@pytest.mark.parametrize(("name", "value", "message"), BAD_VALUES, ids=[f"{n}={v}" for n, v, _ in BAD_VALUES])
def test_overwrite_with_a_bad_value_deletes_nothing(
    earlier_run, tiny_model_dir, small_sentiment_dir, name, value, message
):
    before = _snapshot(earlier_run)
    assert any(k.startswith("checkpoint-") for k in before)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fine_tune(
            "sst2",
            model_name=tiny_model_dir,
            output_dir=earlier_run,
            data_dir=small_sentiment_dir,
            overwrite=True,
            **{**QUICK, name: value},
        )
    assert _snapshot(earlier_run) == before  # byte-identical: checked before anything is deleted


def test_overwrite_with_a_bad_flag_exits_2_and_deletes_nothing(
    earlier_run, tiny_model_dir, small_sentiment_dir
):
    before = _snapshot(earlier_run)
    proc = run_cli(
        "train",
        "sst2",
        "--model",
        tiny_model_dir,
        "--data-dir",
        small_sentiment_dir,
        "--output-dir",
        earlier_run,
        "--overwrite",
        "--learning-rate=-1e-5",
    )
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


def test_output_dir_that_is_a_file(tmp_path, tiny_model_dir, small_sentiment_dir):
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="is a file") as info:
        fine_tune("sst2", model_name=tiny_model_dir, output_dir=blocker / "x", data_dir=small_sentiment_dir)
    assert "output_dir=" in str(info.value)
    proc = run_cli(
        "train", "sst2", "--model", tiny_model_dir, "--data-dir", small_sentiment_dir, "--output-dir", blocker
    )
    assert proc.returncode == 2 and "--output-dir" in proc.stderr, proc.stderr
    assert "FileExistsError" not in proc.stderr


def test_model_given_as_its_weights_file(tmp_path, tiny_model_dir, small_sentiment_dir):
    weights = Path(tiny_model_dir) / "model.safetensors"
    with pytest.raises(ModelLoadError, match="is a file") as info:
        fine_tune("sst2", model_name=weights, output_dir=tmp_path / "run", data_dir=small_sentiment_dir)
    assert repr(str(tiny_model_dir)) in str(info.value) and "holds no files" not in str(info.value)


def test_a_failed_start_leaves_no_empty_runs_folder(tmp_path, small_sentiment_dir):
    proc = run_cli(
        "train",
        "sst2",
        "--model",
        tmp_path / "missing-model",
        "--data-dir",
        small_sentiment_dir,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert not (tmp_path / "runs").exists()
