"""The ``modernbert-tasks`` command line: train, evaluate, predict, options, tasks, plugins.

    modernbert-tasks train sst2 --model ./modernbert-embed-large --data-dir ./glue/sst2
    modernbert-tasks predict runs/sst2/model "a gem of a film"
    modernbert-tasks evaluate runs/sst2/model --data-dir ./glue/sst2
    modernbert-tasks tasks

Exit codes: 0 success, 1 the run failed, 2 bad usage (argparse errors, bad option values,
unknown task). An error prints as one ``error: ...`` line; ``--debug`` adds the traceback.
Importing this module is cheap: torch loads only inside train/evaluate/predict, and the
``train`` flags (built from ``transformers.TrainingArguments``) only when the command is train.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import os
import re
import sys
import time
import traceback
import types
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ConfigError, ModernBertTasksError, UnknownTaskError, speaking_cli, suggest

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
PROG = "modernbert-tasks"
COMMANDS = ("train", "search", "evaluate", "predict", "export", "push", "options", "tasks",
            "plugins")
# errors caused by what the user typed: usage (2), not a failed run (1)
USAGE_ERRORS = (ConfigError, UnknownTaskError)
# TrainingArguments.debug would clash with our --debug (show tracebacks)
RENAMED_FLAGS = {"debug": "trainer-debug"}
# singular spellings that read naturally for one column
FLAG_ALIASES = {"text_columns": ["--text-column", "--text_column"]}
# keys a --config file may hold besides the option fields
CONFIG_EXTRA_KEYS = ("task", "model_name", "output_dir")
# TrainOptions fields that only make sense from Python (objects, not text)
PYTHON_ONLY_OPTIONS = ("callbacks",)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser with our help layout and no prefix matching (unknown flags: `_parse`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        kwargs.setdefault("allow_abbrev", False)  # --epoch must not silently mean --epochs
        super().__init__(*args, **kwargs)


# --- the parser ---------------------------------------------------------------------------
MAIN_EPILOG = """\
examples:
  modernbert-tasks train sst2 --data-dir ./glue/sst2 --max-train-samples 1000
  modernbert-tasks predict runs/sst2/model "a gem of a film"
  modernbert-tasks evaluate runs/sst2/model --data-dir ./glue/sst2

Run `modernbert-tasks COMMAND --help` for a command's options and examples.
Exit codes: 0 success, 1 the run failed, 2 bad usage.
Docs: docs/index.md (quickstart), docs/configuration.md (every option).
"""

TRAIN_USAGE = ("%(prog)s [TASK] [--model MODEL] [--data-dir DIR] [--config FILE] "
               "[--OPTION VALUE ...]")

TRAIN_EPILOG = """\
examples:
  # the recipe on GLUE SST-2 (downloads the model and the data from the Hugging Face Hub)
  modernbert-tasks train sst2

  # offline: a local model folder and local train.tsv / validation.tsv
  modernbert-tasks train sst2 --model ./modernbert-embed-large --data-dir ./glue/sst2

  # a quick run on a subset, then any TrainingArguments field as a flag
  modernbert-tasks train sst2 --max-train-samples 1000 --max-eval-samples 100 \\
      --learning-rate 2e-5 --num-train-epochs 1 --bf16 true --report-to none

  # options from a file (YAML or JSON, keys are the flag names); flags override the file
  modernbert-tasks train --config run.yaml --seed 7

  # continue an interrupted run from the last checkpoint in its output folder
  modernbert-tasks train sst2 --output-dir runs/sst2 --resume

Boolean flags take true/false (a bare --flag means true); list flags take several values;
dict flags take JSON ('{"num_cycles": 2}') or key=value,key=value. Every default and where
it comes from: `modernbert-tasks options --task TASK`, or docs/configuration.md.
"""

EXPORT_EPILOG = """\
examples:
  modernbert-tasks export runs/sst2/model --format onnx
  modernbert-tasks export runs/sst2/model --format onnx --quantize int8

Needs the onnx extra: pip install 'modernbert-tasks[onnx]'. Load the result with
load_finetuned(path, backend="onnx") (or "onnx-int8").
"""

PUSH_EPILOG = """\
examples:
  modernbert-tasks push runs/sst2/model your-name/sst2-modernbert --dry-run
  modernbert-tasks push runs/sst2/model your-name/sst2-modernbert --private
"""

EVALUATE_EPILOG = """\
examples:
  modernbert-tasks evaluate runs/sst2/model --data-dir ./glue/sst2
  modernbert-tasks evaluate runs/sst2/model --data-file ./glue/sst2/validation.tsv --json
  modernbert-tasks evaluate runs/sst2/model --split test --data-dir ./glue/sst2

Without --data-file, the split is read from --data-dir (files named after the split, e.g.
validation.tsv) or, with neither, from the task's Hugging Face Hub dataset.
"""

PREDICT_EPILOG = """\
examples:
  modernbert-tasks predict runs/sst2/model "a gem of a film" "a tedious mess"
  modernbert-tasks predict runs/sst2/model --file reviews.txt --output predictions.jsonl
  modernbert-tasks predict runs/mrpc/model --pair "He left." "He went away."
  modernbert-tasks predict runs/mrpc/model --file pairs.tsv

Output: one JSON object per input, in input order, e.g.
  {"text": "a gem of a film", "label": "positive", "score": 0.98,
   "probabilities": {"negative": 0.02, "positive": 0.98}}
(regression: {"text": ..., "score": 3.7}; pairs add "text_pair").

With --file, every record also has "line": the input's line number (.txt, stdin) or data
row (tables, header excluded). A blank line gives {"line": N, "text": "", "skipped":
"blank line"}, so output line N always matches input line N.
--file formats: .txt (or - for stdin) holds one text per line;
.tsv/.csv/.jsonl/.json/.parquet hold the task's text columns (e.g. sentence, or
sentence1 + sentence2 for pairs) under a header; other columns are ignored.
"""

TASKS_EPILOG = """\
examples:
  modernbert-tasks tasks
  modernbert-tasks tasks --json | jq '.[].name'
"""

OPTIONS_EPILOG = """\
examples:
  modernbert-tasks options                  # the recipe's defaults
  modernbert-tasks options --task sst2      # with the task's own hyperparameters
  modernbert-tasks options --json | jq '.[] | select(.source != "transformers.TrainingArguments")'

Precedence, highest first: your flags > --config file > the task's hyperparameters > the
recipe's defaults > transformers.TrainingArguments defaults. docs/configuration.md has the
same list with each option's help.
"""

PLUGINS_EPILOG = """\
examples:
  modernbert-tasks plugins          # a failed plugin is listed with its error
  modernbert-tasks plugins --json
"""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser. The train flags are only generated when `command` is 'train', because
    they need transformers (and so torch)."""
    parser = _Parser(
        prog=PROG,
        description="Fine-tune a ModernBERT encoder on a text-classification task, then\n"
                    "evaluate it and predict with it. Tasks come from plugins.",
        epilog=MAIN_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_debug_flag(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    train = sub.add_parser("train", help="fine-tune a model on a task", usage=TRAIN_USAGE,
                           description="Fine-tune a model on TASK and save it with its "
                                       "tokenizer and manifest.", epilog=TRAIN_EPILOG)
    if command == "train":
        _add_train_arguments(train)
    else:  # enough for the top-level --help; the real flags are added for `train` itself
        train.add_argument("task", nargs="?", metavar="TASK")

    search = sub.add_parser(
        "search", help="hyperparameter search (Optuna) with the train flags",
        description="Search hyperparameters for TASK with Optuna through "
                    "Trainer.hyperparameter_search. Takes every train flag; the searched "
                    "options vary per trial. Writes search.json (every trial) and "
                    "best_params.json (for train --config) into --output-dir.")
    if command == "search":
        _add_train_arguments(search)
        search.add_argument("--n-trials", "--n_trials", type=int, default=10, dest="n_trials",
                            help="number of trials (default 10)")
        search.add_argument("--space", type=Path, default=None, metavar="FILE",
                            help="JSON or YAML {option: [choices] | [low, high] | [low, high, "
                                 "\"log\"]} (default: the documented space)")
    else:
        search.add_argument("task", nargs="?", metavar="TASK")

    evaluate = sub.add_parser("evaluate", help="metrics of a fine-tuned model on labelled data",
                              description="Evaluate a fine-tuned model: the task's metrics, a "
                                          "confusion matrix and per-class precision/recall/F1.",
                              epilog=EVALUATE_EPILOG)
    _add_evaluate_arguments(evaluate)

    predict = sub.add_parser("predict", help="labels and probabilities for texts",
                             description="Predict with a fine-tuned model: one JSON line per "
                                         "input.", epilog=PREDICT_EPILOG)
    _add_predict_arguments(predict)

    options = sub.add_parser("options", help="list every train option, its default and source",
                             description="List every option `train` accepts (the library's own "
                                         "and every TrainingArguments field) with its default "
                                         "and where that default comes from.",
                             epilog=OPTIONS_EPILOG)
    options.add_argument("--task", metavar="TASK", help="show the defaults for this task")
    options.add_argument("--all", action="store_true",
                         help="also list the TrainingArguments fields left at their defaults")
    options.add_argument("--json", action="store_true", help="print JSON (always every option)")

    tasks = sub.add_parser("tasks", help="list the registered tasks",
                           description="List every task registered by the installed plugins.",
                           epilog=TASKS_EPILOG)
    tasks.add_argument("--json", action="store_true", help="print JSON instead of a table")

    export = sub.add_parser("export", help="export a fine-tuned model to ONNX, with a parity check",
                            description="Export a fine-tuned model to ONNX (dynamic batch and "
                                        "sequence axes), check its logits against PyTorch on a "
                                        "sample of the eval split, and optionally quantize it.",
                            epilog=EXPORT_EPILOG)
    export.add_argument("path", metavar="PATH", help="the model folder (e.g. runs/sst2/model)")
    export.add_argument("--format", default="onnx", choices=["onnx"], help="(default: onnx)")
    export.add_argument("--quantize", choices=["int8"], default=None,
                        help="also write an int8 (dynamic quantization) model and report its "
                             "accuracy change")
    export.add_argument("--output", metavar="DIR", help="where to write (default: PATH/onnx)")
    export.add_argument("--dynamo", action="store_true",
                        help="use the torch.export-based exporter (slower; opset 18)")
    export.add_argument("--sample", type=int, default=None, metavar="N",
                        help="eval rows for the parity check (default: 1000)")

    push = sub.add_parser("push", help="upload a model folder (with its card) to the Hub",
                          description="Upload a fine-tuned model folder, model card included, to "
                                      "a Hugging Face Hub repository.", epilog=PUSH_EPILOG)
    push.add_argument("path", metavar="PATH", help="the model folder (e.g. runs/sst2/model)")
    push.add_argument("repo_id", metavar="REPO_ID", help="e.g. your-name/sst2-modernbert")
    push.add_argument("--dry-run", action="store_true",
                      help="list what would be uploaded, without touching the network")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.add_argument("--token", default=None, help="a Hub token (default: the logged-in one)")

    plugins = sub.add_parser("plugins", help="list the plugins and their load errors",
                             description="List the installed task plugins, the tasks each "
                                         "registered, and the error of any that failed to load.",
                             epilog=PLUGINS_EPILOG)
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")

    for name in COMMANDS:
        _add_debug_flag(sub.choices[name], default=argparse.SUPPRESS)
    return parser


def _add_debug_flag(parser: argparse.ArgumentParser, default: Any) -> None:
    # SUPPRESS on the subcommands, so `train --debug` and `--debug train` both work
    parser.add_argument("--debug", dest="traceback", action="store_true", default=default,
                        help="show the full traceback when an error occurs")


def _add_model_loading_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH",
                        help="the model folder saved by `train` (e.g. runs/sst2/model)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="texts per forward pass (default: 64)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:1, ... (default: CUDA if available, else CPU)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="auto: bf16 on a GPU that supports it, fp32 elsewhere "
                             "(default: auto)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run model code shipped inside the folder (only if you trust it)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="also load pickle weights (pytorch_model.bin); unpickling can run "
                             "arbitrary code, so only for files you trust")


def _add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_loading_arguments(parser)
    parser.add_argument("--task", metavar="TASK",
                        help="the task the model was trained on; only needed for a model "
                             "folder without a modernbert_tasks.json manifest")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--split", default="eval",
                        help="which split of the task's data: train, eval (= validation) or "
                             "test (default: eval)")
    source.add_argument("--data-file", metavar="FILE",
                        help="a labelled TSV/CSV/JSONL/parquet file with the task's columns")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder with the split files (train.tsv, validation.tsv, ...)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--plot", metavar="DIR",
                        help="also write a confusion-matrix PNG and a reliability diagram "
                             "(before/after calibration) to DIR; needs matplotlib "
                             "(pip install 'modernbert-tasks[plot]')")


def _add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_loading_arguments(parser)
    parser.add_argument("texts", nargs="*", default=[], metavar="TEXT",
                        help="texts to classify (put `--` before a text that starts with -)")
    parser.add_argument("--pair", nargs=2, action="append", metavar=("TEXT_A", "TEXT_B"),
                        help="a text pair, for pair tasks (repeat for more pairs)")
    parser.add_argument("--file", "-f", metavar="FILE",
                        help="read the inputs from FILE (see the formats below; - is stdin)")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write the JSON lines to FILE instead of standard output")


# --- train flags, generated from the option dataclasses ---------------------------------------
def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from .options import RENAMED, TrainOptions, trainer_fields

    parser.add_argument("task", nargs="?", metavar="TASK",
                        help="the task to train on (see `modernbert-tasks tasks`); may also come "
                             "from --config")
    parser.add_argument("--model", "--model-name", "--model_name", dest="model_name",
                        default=argparse.SUPPRESS,
                        metavar="MODEL",
                        help="a Hugging Face Hub id or a local model folder (default: "
                             "lightonai/modernbert-embed-large)")
    parser.add_argument("--config", metavar="FILE",
                        help="read options from a YAML or JSON file (keys are the option names, "
                             "e.g. learning_rate); flags given here override it")
    parser.add_argument("--output-dir", "--output_dir", dest="output_dir",
                        default=argparse.SUPPRESS, metavar="DIR",
                        help="the run folder: checkpoints, logs/ (TensorBoard) and model/ "
                             "(default: runs/TASK)")
    library = parser.add_argument_group("library options (modernbert_tasks.options.TrainOptions)")
    hints = typing.get_type_hints(TrainOptions)
    for field in dataclasses.fields(TrainOptions):
        if field.name not in PYTHON_ONLY_OPTIONS:
            _add_field_flag(library, field, hints[field.name])
    trainer = parser.add_argument_group(
        "training arguments (every transformers.TrainingArguments field). The defaults shown "
        "are the recipe's; a task may change some: `modernbert-tasks options --task TASK`")
    for name, (field, hint) in trainer_fields().items():
        if name != "output_dir" and name not in RENAMED:  # e.g. resume_from_checkpoint -> resume
            _add_field_flag(trainer, field, hint, _recipe_default(name, field))


def _recipe_default(name: str, field: dataclasses.Field) -> Any:
    from .options import RECIPE_DEFAULTS

    return RECIPE_DEFAULTS[name].value if name in RECIPE_DEFAULTS else _field_default(field)


def option_names() -> set[str]:
    """Every key `fine_tune` accepts from a config file (imports transformers)."""
    from .options import TrainOptions, trainer_fields

    return ({f.name for f in dataclasses.fields(TrainOptions)} - set(PYTHON_ONLY_OPTIONS)
            | set(trainer_fields()) | set(CONFIG_EXTRA_KEYS))


def _add_field_flag(group: Any, field: dataclasses.Field, hint: Any, default: Any = None) -> None:
    kwargs = _argument_kwargs(hint, dict(field.metadata))
    flag = RENAMED_FLAGS.get(field.name, field.name.replace("_", "-"))
    names = [f"--{flag}"]
    if "_" in field.name and field.name not in RENAMED_FLAGS:
        names.append(f"--{field.name}")  # run_glue.py spelling, so old commands paste in
    names += FLAG_ALIASES.get(field.name, [])
    default = _field_default(field) if default is None else default
    if isinstance(default, str) and kwargs.get("type") in (int, float):
        # a symbolic library default such as eval_steps="auto" can also be typed
        kwargs["type"] = _number_or_word(kwargs["type"], default)
    help_text = " ".join(str(field.metadata.get("help", "")).split())
    if len(kwargs.get("choices", ())) > 8:
        help_text += f" Choices: {', '.join(map(str, kwargs['choices']))}."
    if default is not None and default != "" and default != []:
        help_text += f" (default: {default!r})"
    # argparse %-formats help strings. Defaults are applied by fine_tune, not by argparse, so
    # a flag that was not typed is absent from the namespace (SUPPRESS).
    group.add_argument(*names, dest=field.name, default=argparse.SUPPRESS,
                       help=help_text.replace("%", "%%"), **kwargs)
    if kwargs.get("const") is True and default is True:
        group.add_argument(f"--no-{flag}", dest=field.name, action="store_false",
                           default=argparse.SUPPRESS, help=f"same as --{flag} false")


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default.value if isinstance(field.default, enum.Enum) else field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _members(hint: Any) -> list[Any]:
    """The non-None members of a union (or [hint])."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [m for m in typing.get_args(hint) if m is not type(None)]
    return [hint]


def _argument_kwargs(hint: Any, metadata: dict[str, Any]) -> dict[str, Any]:
    """argparse keywords for a dataclass field's type hint (list > dict > enum > bool > ...)."""
    members = _members(hint)
    bases = [typing.get_origin(m) or m for m in members]
    kwargs: dict[str, Any]
    if list in bases:
        item_args = typing.get_args(members[bases.index(list)])
        item = item_args[0] if item_args else str
        kwargs = {"nargs": "+", "type": item if item in (int, float) else str, "metavar": "VALUE"}
    elif dict in bases or any(b in (typing.Mapping, Mapping) for b in bases):
        accepts_str = str in bases or os.PathLike in bases or typing.Literal in bases
        kwargs = {"type": _parse_dict_or_str if accepts_str else _parse_dict, "metavar": "JSON"}
    elif enums := [b for b in bases if isinstance(b, type) and issubclass(b, enum.Enum)]:
        kwargs = {"choices": [e.value for e in enums[0]]}
    elif bool in bases and str in bases:  # e.g. resume: a bare --resume means True
        kwargs = {"type": _parse_str_or_bool, "nargs": "?", "const": True, "metavar": "VALUE"}
    elif bool in bases:
        kwargs = {"type": _parse_bool, "nargs": "?", "const": True, "metavar": "BOOL"}
    elif typing.Literal in bases and (int in bases or float in bases):  # e.g. 24 or 'auto'
        words = typing.get_args(members[bases.index(typing.Literal)])
        number = int if int in bases else float
        kwargs = {"type": _number_or_word(number, words[0]),
                  "metavar": f"{number.__name__.upper()}|{words[0]}"}
    elif typing.Literal in bases and str not in bases:
        kwargs = {"choices": list(typing.get_args(members[bases.index(typing.Literal)]))}
    elif int in bases:
        kwargs = {"type": int, "metavar": "INT"}
    elif float in bases:
        kwargs = {"type": float, "metavar": "FLOAT"}
    elif os.PathLike in bases:
        kwargs = {"type": str, "metavar": "PATH"}
    elif str in bases:
        kwargs = {"type": str, "metavar": "STR"}
    else:  # a config object such as accelerate's ParallelismConfig: built from JSON
        kwargs = {"type": _json_object_of(bases[0]), "metavar": "JSON"}
    if "choices" in metadata:
        kwargs["choices"] = list(metadata["choices"])
    if len(kwargs.get("choices", ())) > 8:  # long lists go in the help text, not the usage
        kwargs["metavar"] = "NAME"
    if "nargs" in metadata:
        kwargs.update(nargs=metadata["nargs"], const=metadata.get("const"))
    return kwargs


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "y", "1", "on", "t"):
        return True
    if lowered in ("false", "no", "n", "0", "off", "f"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _parse_str_or_bool(value: str) -> str | bool:
    try:
        return _parse_bool(value)
    except argparse.ArgumentTypeError:
        return value


def _parse_dict(value: str) -> dict[str, Any]:
    """JSON object, or key=value[,key=value] (values read as JSON when they parse)."""
    text = value.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"invalid JSON object {value!r}: {exc}") from None
        if not isinstance(parsed, dict):
            raise argparse.ArgumentTypeError(f"expected a JSON object, got {value!r}")
        return parsed
    result: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(
                f"expected a JSON object or key=value pairs, got {value!r}")
        try:
            result[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            result[key.strip()] = raw
    return result


def _number_or_word(number: type, word: str) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        return word if value == word else number(value)

    parse.__name__ = number.__name__  # argparse says "invalid float value: ..."
    return parse


def _parse_dict_or_str(value: str) -> dict[str, Any] | str:
    """A dict as in `_parse_dict`, or else the string itself (e.g. a path)."""
    text = value.strip()
    if text.startswith("{") or "=" in text:
        return _parse_dict(value)
    return value


def _json_object_of(cls: type) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        try:
            return cls(**_parse_dict(value))
        except TypeError as exc:
            raise argparse.ArgumentTypeError(f"invalid {cls.__name__} {value!r}: {exc}") from None

    parse.__name__ = cls.__name__
    return parse


# --- train --------------------------------------------------------------------------------
def read_config_file(path: str | os.PathLike, allowed: set[str] | None) -> dict[str, Any]:
    """A YAML or JSON mapping of option names (dashes or underscores) to values; `allowed`
    None: any keys (a --space file, checked by search itself)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"--config file {str(file)!r} not found. Pass a YAML (.yaml/.yml) or "
                          "JSON (.json) file of option names and values.")
    suffix = file.suffix.lower()
    text = file.read_text(encoding="utf-8")
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"--config {str(file)!r} is YAML, which needs PyYAML: pip install "
                              "pyyaml (or modernbert-tasks[yaml]), or write the file as JSON."
                              ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--config {str(file)!r} is not valid YAML: {exc}") from None
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--config {str(file)!r} is not valid JSON: {exc}") from None
    else:
        raise ConfigError(f"--config {str(file)!r} has extension {file.suffix!r}; expected "
                          ".yaml, .yml or .json.")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {str(file)!r} holds a {type(data).__name__}; expected a "
                          "mapping of option names to values, e.g. `learning_rate: 3.0e-5`.")
    config = {}
    for key, value in data.items():
        name = "model_name" if key == "model" else str(key).replace("-", "_")
        if allowed is not None and name not in allowed:
            raise ConfigError(f"--config {str(file)!r}: unknown option {key!r}."
                              f"{suggest(name, allowed)} Valid keys are the train flags without "
                              "the leading dashes (see `modernbert-tasks train --help`).")
        config[name] = value
    return config


def _run_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    task, options = _train_options(args, parser)
    from .training.engine import fine_tune

    start = time.perf_counter()
    result = fine_tune(task or None, **options)
    if _is_main_process():
        from .training.seeds import format_seed_table

        name = result.model_path.parent.name if task is None else task
        if getattr(result, "seeds", None):
            print(format_seed_table(result))
        print(format_train_summary(result, name, options, time.perf_counter() - start))
    return EXIT_OK


def _run_search(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    task, options = _train_options(args, parser)
    space = read_config_file(args.space, None) if args.space else None
    from .training.search import search

    result = search(task or None, n_trials=args.n_trials, space=space, **options)
    if _is_main_process():
        rows = [{"trial": t["trial"], **t["params"], result.metric: t["objective"]}
                for t in result.trials]
        columns = list(dict.fromkeys(k for row in rows for k in row))
        width = {c: max(len(c), *(len(f"{r.get(c, '')}") for r in rows)) for c in columns}
        print("  ".join(c.ljust(width[c]) for c in columns))
        for row in rows:
            print("  ".join(f"{row.get(c, '')}".ljust(width[c]) for c in columns))
        best = result.output_dir / "best_params.json"
        print(f"\nBest: {result.metric} {result.best_objective:.4f} with "
              f"{json.dumps(result.best_params)}\nAll trials: {result.output_dir / 'search.json'}"
              f"\nTrain with them: {PROG} train ... --config {best}")
    return EXIT_OK


def _train_options(args: argparse.Namespace, parser: argparse.ArgumentParser
                   ) -> tuple[str | None, dict[str, Any]]:
    """The task and the options of a train (or search) command line, checked."""
    from .plugins import get_task
    from .training.task_source import DATA_OPTIONS, is_data_path

    allowed = option_names()
    options = read_config_file(args.config, allowed) if args.config else {}
    options.update({k: v for k, v in vars(args).items() if k in allowed and k != "task"})
    task = args.task or options.get("task")
    options.pop("task", None)
    if task is not None and not isinstance(task, str):
        raise ConfigError(f"the task must be a registered task's name, got a "
                          f"{type(task).__name__}: {task!r}. To describe your data instead, use "
                          "the data keys (train_file, validation_file, text_columns, "
                          "label_column, ...) at the top level of the --config file.")
    has_data = any(options.get(k) is not None for k in DATA_OPTIONS)
    if not task and not has_data:
        parser.error("a TASK is required (e.g. `modernbert-tasks train sst2`) unless you give "
                     "your data (--train-file FILE, --data-dir DIR or --dataset ID); or put a "
                     "`task:` key in the --config file")
    if task and not is_data_path(task):
        get_task(task)  # an unknown task fails here, before torch is imported
    _show_library_logs()
    return task, options


def _show_library_logs() -> None:
    """The engine reports device, precision and resumed checkpoints through logging."""
    import logging

    logger = logging.getLogger("modernbert_tasks")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _is_main_process() -> bool:
    """Under torchrun / accelerate launch only rank 0 prints the summary."""
    return int(os.environ.get("RANK", "0")) == 0


# keys of FineTuneResult.metrics that describe the training run rather than the model
RUN_METRICS = ("train_runtime", "train_samples_per_second", "train_steps_per_second",
               "train_loss", "epoch", "total_flos")
SPEED_SUFFIXES = ("_runtime", "_samples_per_second", "_steps_per_second")


def format_train_summary(result: Any, task: str, options: Mapping[str, Any],
                         seconds: float) -> str:
    """The one-screen summary printed after training."""
    from .training.eta import format_duration

    metrics = dict(result.metrics)
    details = []
    if "train_runtime" in metrics:
        details.append(f"training {format_duration(metrics['train_runtime'])}")
    if metrics.get("train_samples_per_second"):
        details.append(f"{metrics['train_samples_per_second']:,.1f} samples/s")
    if "epoch" in metrics:
        details.append(f"{metrics['epoch']:g} epoch{'' if metrics['epoch'] == 1 else 's'}")
    headline = f"Fine-tuned {task!r} in {format_duration(seconds)}"
    headline += f" ({', '.join(details)})" if details else ""
    lines = ["", headline + "."]
    model_metrics = {k: v for k, v in metrics.items()
                     if k not in RUN_METRICS and not k.endswith(SPEED_SUFFIXES)}
    if model_metrics:
        lines += ["", "Evaluation of the final model (fp32, as predict and evaluate compute it):",
                  *_metric_lines(model_metrics)]
    model_path = str(result.model_path)
    report_to = options.get("report_to", "tensorboard")
    logdir = options.get("logging_dir") or Path(result.output_dir) / "logs"
    tensorboard = (f"tensorboard --logdir {logdir}" if "tensorboard" in str(report_to)
                   else "off (add --report-to tensorboard)")
    data = f" --data-dir {options['data_dir']}" if options.get("data_dir") else ""
    if options.get("validation_file"):
        data = f" --data-file {options['validation_file']}"
    example = '"some text"'
    manifest = Path(model_path) / "modernbert_tasks.json"
    if manifest.is_file() and len(json.loads(manifest.read_text())["task"]["definition"].get(
            "text_columns", [])) == 2:
        example = '--pair "first text" "second text"'  # a pair task takes two texts
    lines += [
        "",
        f"Model saved to    {model_path}",
        *([f"Best checkpoint   {result.best_checkpoint}"] if result.best_checkpoint else []),
        f"TensorBoard       {tensorboard}",
        f"Evaluate          {PROG} evaluate {model_path}{data}",
        f"Predict           {PROG} predict {model_path} {example}",
    ]
    return "\n".join(lines)


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    scalars = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    width = max((len(k) for k in scalars), default=0)
    return [f"  {k:<{width}}  {_number(v)}" for k, v in scalars.items()]


def _number(value: float) -> str:
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    return f"{value:.4f}" if abs(value) < 1e5 else f"{value:.4g}"


# --- evaluate and predict -----------------------------------------------------------------
def _load_model(args: argparse.Namespace) -> Any:
    import datasets
    import transformers

    from .inference.predictor import load_finetuned

    # loading bars ("Loading weights", "Generating split") would bury the output
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    return load_finetuned(args.path, args.device, precision=args.precision,
                          trust_remote_code=args.trust_remote_code,
                          allow_pickle=args.allow_pickle)


def _run_evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.data_file and args.data_dir:
        parser.error("pass either --data-file or --data-dir, not both")
    if args.plot:
        from .inference.plots import require_matplotlib

        require_matplotlib()  # the one-line install hint, before any model is loaded
    model = _load_model(args)
    if args.task:
        _set_task(model, args.task)
    if args.plot:
        from .inference.plots import write_evaluation_plots

        written = write_evaluation_plots(model, args.plot, args.data_file, split=args.split,
                                         data_dir=args.data_dir, batch_size=args.batch_size)
        for path in written.values():
            print(f"wrote {path}", file=sys.stderr)
    if args.data_file:
        results = model.evaluate(args.data_file, batch_size=args.batch_size)
    else:
        results = model.evaluate(split=args.split, data_dir=args.data_dir,
                                 batch_size=args.batch_size)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_evaluation(results, model.labels))
    return EXIT_OK


def _set_task(model: Any, name: str) -> None:
    """--task: give a folder without manifest its task (columns, splits, metrics)."""
    from .plugins import get_task

    task = get_task(name)
    if model.task is not None:
        if model.task.name != name:
            raise ConfigError(f"--task {name!r} does not match the model: its manifest says it "
                              f"was trained on {model.task.name!r}. Drop --task.")
        return
    expected = [task.id2label[i] for i in range(task.num_labels)]
    found = list(model.labels)
    # config.json without label names says LABEL_0, LABEL_1, ...: take the task's names
    generic = found == [f"LABEL_{i}" for i in range(len(found))]
    if task.problem_type != model.problem_type or len(expected) != len(found) or (
            task.problem_type != "regression" and not generic and expected != found):
        raise ConfigError(f"--task {name!r} has labels {expected} ({task.problem_type}) but the "
                          f"model at {model.path!r} predicts {found} ({model.problem_type}). "
                          "Pass the task the model was trained on.")
    model.task, model.labels = task, tuple(expected)


def format_evaluation(results: dict[str, Any], labels: Sequence[str]) -> str:
    """Metrics, then (classification) the confusion matrix and the per-class table."""
    lines = ["Metrics:", *_metric_lines(results)]
    matrix = results.get("confusion_matrix")
    if matrix:
        names = [str(n) for n in labels]
        lines += ["", "Confusion matrix (rows: true label, columns: predicted label):"]
        lines += _table([[n, *row] for n, row in zip(names, matrix, strict=True)],
                        ["", *names], right=True)
    per_class = results.get("per_class")
    if per_class:
        lines += ["", "Per class:"]
        lines += _table([[name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}",
                          m["support"]] for name, m in per_class.items()],
                        ["label", "precision", "recall", "f1", "support"], right=True)
    return "\n".join(lines)


def _run_predict(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    sources = [bool(args.texts), bool(args.pair), args.file is not None]
    if sum(sources) != 1:
        piped = "" if sys.stdin.isatty() else (" Input is being piped in: to read it, pass "
                                                "--file - (one text per line).")
        parser.error("give the inputs one way: TEXT arguments, --pair TEXT_A TEXT_B, or "
                     f"--file FILE (--file - reads standard input).{piped}")
    if args.output and Path(args.output).is_dir():
        raise ConfigError(f"--output {args.output!r} is a folder; expected a file path for the "
                          f"JSON lines, e.g. --output {Path(args.output) / 'predictions.jsonl'}.")
    model = _load_model(args)
    lines: list[int | None]
    if args.texts:
        inputs: list[Any] = list(args.texts)
        lines = [None] * len(inputs)
    elif args.pair:
        inputs = [tuple(pair) for pair in args.pair]
        lines = [None] * len(inputs)
    elif args.file == "-" or args.file.endswith(".txt"):
        # one record per input line, blank ones included, each with its line number
        raw = sys.stdin.read().splitlines() if args.file == "-" else _read_lines(args.file)
        inputs = read_inputs(args.file, model.task, lines=raw)
        lines = [n for n, line in enumerate(raw, start=1) if line.strip()]
    else:
        inputs = read_inputs(args.file, model.task)
        lines = list(range(1, len(inputs) + 1))  # data rows, header excluded
    predictions = model.predict(inputs, batch_size=args.batch_size)
    records = []
    for item, prediction, line in zip(inputs, predictions, lines, strict=True):
        text = {"text": item} if isinstance(item, str) else {"text": item[0],
                                                             "text_pair": item[1]}
        records.append(({"line": line} if line else {}) | text | prediction)
    if args.file == "-" or (args.file or "").endswith(".txt"):
        blanks = [n for n, line in enumerate(raw, start=1) if not line.strip()]
        for n in blanks:
            records.append({"line": n, "text": "", "skipped": "blank line"})
        records.sort(key=lambda r: r["line"])
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.output:
        print(f"Wrote {len(predictions)} predictions to {args.output}", file=sys.stderr)
    return EXIT_OK


def read_inputs(path: str, task: Any, lines: list[str] | None = None) -> list[Any]:
    """Texts (or pairs) from a .txt file / stdin (blank lines left out; `lines` if already read),
    or from a table file with the task's columns."""
    from .errors import DataError

    if path == "-" or path.endswith(".txt"):
        if lines is None:
            lines = sys.stdin.read().splitlines() if path == "-" else _read_lines(path)
        texts = [line for line in lines if line.strip()]
        if not texts:
            raise DataError(f"--file {path!r} holds no text (one text per line expected).")
        if task is not None and task.is_pair:
            raise DataError(f"Task {task.name!r} classifies text pairs, which a .txt file cannot "
                            f"hold. Use a TSV/JSONL file with columns {list(task.text_columns)}, "
                            "or --pair TEXT_A TEXT_B.")
        return texts
    from .data import read_data_file

    if not Path(path).is_file():
        raise DataError(f"--file {path!r} not found.")
    table = read_data_file(path)
    columns = list(task.text_columns) if task is not None else (
        ["text", "text_pair"] if "text_pair" in table.column_names else [table.column_names[0]]
        if "text" not in table.column_names else ["text"])
    for column in columns:
        if column not in table.column_names:
            raise DataError(f"--file {path!r} has no column {column!r} (the model reads "
                            f"{columns}); its columns are {table.column_names}."
                            f"{suggest(column, table.column_names)}")
    if len(columns) == 2:
        return list(zip(table[columns[0]], table[columns[1]], strict=True))
    return list(table[columns[0]])


def _read_lines(path: str) -> list[str]:
    from .errors import DataError

    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"--file {path!r} not found.") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"--file {path!r} is not UTF-8 ({exc}). Re-save it as UTF-8.") from None


# --- tasks and plugins --------------------------------------------------------------------
def _run_tasks(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .plugins import list_tasks

    rows = list_tasks()
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    kinds = {"single_label_classification": "classification",
             "multi_label_classification": "multi-label", "regression": "regression"}
    print("\n".join(_table(
        [[r["name"], kinds.get(r["problem_type"], r["problem_type"]),
          "pair" if len(r["text_columns"]) == 2 else "single",
          _clip(", ".join(r["labels"]) or "-", 30), r["plugin"], _clip(r["description"], 60)]
         for r in rows],
        ["task", "type", "input", "labels", "plugin", "description"])))
    if not rows:
        print("No tasks registered; see `modernbert-tasks plugins` for plugins that failed.")
    return EXIT_OK


def _run_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .options import describe_options
    from .plugins import get_task

    rows = describe_options(get_task(args.task) if args.task else None)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    rows = [r for r in rows if r["name"] not in PYTHON_ONLY_OPTIONS]
    if not args.all:
        rows = [r for r in rows if r["source"] != "transformers.TrainingArguments"]
    print("\n".join(_table(
        [[f"--{r['name'].replace('_', '-')}", _clip(json.dumps(r["default"]), 28),
          _clip(r["source"], 70)] for r in rows],
        ["flag", "default", "default comes from"])))
    if not args.all:
        print("\nEvery other TrainingArguments field keeps its transformers default; --all lists "
              "them, `train --help` explains each.")
    return EXIT_OK


def _run_plugins(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .plugins import list_plugins

    with warnings.catch_warnings():  # failures are shown in the listing itself
        warnings.simplefilter("ignore")
        rows = list_plugins()
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print("\n".join(_table(
        [[r["name"], r["version"] or "-", r["module"], ", ".join(r["tasks"]) or "-",
          "ok" if r["error"] is None else f"FAILED: {r['error']}"] for r in rows],
        ["plugin", "version", "module", "tasks", "status"])))
    return EXIT_OK


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _table(rows: list[list[Any]], headers: list[str], right: bool = False) -> list[str]:
    """Plain-text columns; `right` right-aligns every column but the first (numbers)."""
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [c.rjust(w) if right and i else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(parts).rstrip()

    return [line(cells[0]), line(["-" * w for w in widths]), *map(line, cells[1:])]


# --- entry point --------------------------------------------------------------------------
def _run_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .artifacts.export import DEFAULT_SAMPLE, export_command

    print(export_command(args.path, args.format, args.quantize, dynamo=args.dynamo,
                         output=args.output,
                         sample=DEFAULT_SAMPLE if args.sample is None else args.sample))
    return EXIT_OK


def _run_push(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .artifacts.publish import push_command

    print(push_command(args.path, args.repo_id, dry_run=args.dry_run, private=args.private,
                       token=args.token))
    return EXIT_OK


RUNNERS: dict[str, Callable[[argparse.Namespace, argparse.ArgumentParser], int]] = {
    "export": _run_export,
    "push": _run_push,
    "train": _run_train,
    "search": _run_search,
    "evaluate": _run_evaluate,
    "predict": _run_predict,
    "options": _run_options,
    "tasks": _run_tasks,
    "plugins": _run_plugins,
}


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand, found without parsing (so the train flags are built only for train)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _parse(argv: Sequence[str]) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    parser = build_parser(_command_of(argv))
    args, extras = parser.parse_known_args(argv)
    subparser = _subparsers(parser)[args.command]
    if extras:  # argparse's own message, plus the closest flags
        subparser.error(f"unrecognized arguments: {' '.join(extras)}.{_hints(extras, subparser)}")
    return args, subparser


def _hints(extras: list[str], parser: argparse.ArgumentParser) -> str:
    """'Did you mean' for mistyped flags; the new name for flags of old recipes (run_glue)."""
    from .options import RENAMED

    flags = [s for action in parser._actions for s in action.option_strings]
    hints = []
    for extra in extras:
        if not extra.startswith("--"):
            continue
        name = extra[2:].split("=")[0].replace("-", "_")
        if name in RENAMED:
            # RENAMED speaks Python ("overwrite=True", "warmup_steps (a float ...)")
            new_name = re.match(r"\w+", RENAMED[name]).group()
            rest = RENAMED[name][len(new_name):].strip()
            note = f" ({RENAMED[name]})" if rest.startswith("=") else f" {rest}" if rest else ""
            hints.append(f" {extra.split('=')[0]} is an old name: use "
                         f"--{new_name.replace('_', '-')}{note}.")
        else:
            hints.append(suggest(extra.split("=")[0], flags))
    return "".join(hints)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to sys.exit)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args, subparser = _parse(argv)
    if not args.traceback:
        warnings.showwarning = _show_warning
    try:
        with speaking_cli():  # errors give their fixes as flags
            return RUNNERS[args.command](args, subparser)
    except BrokenPipeError:  # e.g. `... | head`: the reader left, which is not an error
        sys.stdout = open(os.devnull, "w")  # silences the flush at exit
        return EXIT_OK
    except KeyboardInterrupt as exc:
        print("error: interrupted", file=sys.stderr)
        # the shell convention, 128 + the signal number: 130 for Ctrl-C, 143 for SIGTERM
        return 143 if getattr(exc, "signal_name", "SIGINT") == "SIGTERM" else 130
    except Exception as exc:  # every failure becomes one readable line (or a trace with --debug)
        if args.traceback:
            traceback.print_exc()
        code = EXIT_USAGE if isinstance(exc, USAGE_ERRORS) else EXIT_FAILURE
        print(f"error: {_as_flags(_describe(exc), subparser)}", file=sys.stderr)
        if not args.traceback:
            print("(run again with --debug for the full traceback)", file=sys.stderr)
        return code


# `name=value` as the library's messages write a fix: a quoted string, a {...} or [...], `...`,
# or a bare word/number
_ARG_VALUE = r"""'[^']*'|"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\.\.\.|[\w.+-]+"""


def _as_flags(message: str, parser: argparse.ArgumentParser | None) -> str:
    """The library writes fixes as Python arguments (`learning_rate=3e-5`); on the command
    line they read as this command's flags (`--learning-rate 3e-5`)."""
    if parser is None:
        return message
    flags = {a.dest: a for a in parser._actions if a.option_strings}

    def flag(match: re.Match) -> str:
        action = flags.get(match[1])
        if action is None:
            return match[0]  # not an option of this command (e.g. a config.json field)
        option = next(o for o in action.option_strings if o.startswith("--"))
        value = match[2]
        if value == "True" and (action.nargs == 0 or (action.nargs == "?" and action.const)):
            return option  # a switch: --resume, --overwrite
        if value[:1] in "'\"" and value[-1:] == value[:1]:
            value = value[1:-1]
        return f"{option} {value}"

    message = re.sub(rf"(?<![\w.-])([a-z][a-z0-9_]*)=({_ARG_VALUE})", flag, message)

    def redundant(match: re.Match) -> str:  # "(CLI: --resume)" after "--resume" says it twice
        rest = message[:match.start()] + message[match.end():]
        named = re.findall(r"--[\w-]+", match[0])
        return "" if named and all(re.search(rf"{n}(?![\w-])", rest) for n in named) else match[0]

    return re.sub(r" ?\(CLI: [^()]*\)", redundant, message)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ModernBertTasksError):
        return str(exc)
    # someone else's exception: say what it is; the message alone can be cryptic
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main())
