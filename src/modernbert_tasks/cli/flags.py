"""The `train` flags: every `TrainOptions` and `transformers.TrainingArguments` field, added by
`transformers.HfArgumentParser` (so `--flag-name` and `--flag_name`, `--no-flag` for booleans
that default to true), then a few fixes:

* every flag's default is SUPPRESS: a flag the user did not type is absent from the namespace,
  so `fine_tune` applies the task's and the recipe's defaults, not argparse's;
* booleans read true/false/yes/no/1/0 and a bare `--flag` means true (`_parse_bool`);
* the field types HfArgumentParser refuses or reads as something else (a number or a word,
  a mapping or a word, a boolean or a path, a list in a union, a path, a config object) get
  explicit arguments with the parse functions below;
* `RENAMED_FLAGS` and `FLAG_ALIASES`; the help shows the recipe's default.

Building them imports transformers (and so torch): only for the `train` command.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, suggest

# TrainingArguments.debug would clash with our --debug (show tracebacks)
RENAMED_FLAGS = {"debug": "trainer-debug"}
# singular spellings that read naturally for one column
FLAG_ALIASES = {"text_columns": ["--text-column", "--text_column"]}
# keys a --config file may hold besides the option fields
CONFIG_EXTRA_KEYS = ("task", "model_name", "output_dir")
# TrainOptions fields that only make sense from Python (objects, not text)
PYTHON_ONLY_OPTIONS = ("callbacks",)
TRAINER_GROUP = (
    "training arguments (every transformers.TrainingArguments field). The defaults "
    "shown are the recipe's; a task may change some: `modernbert-tasks options "
    "--task TASK`"
)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """TASK, --model, --config, --output-dir, then one flag per option field."""
    from ..options import DEFAULT_MODEL, RECIPE_DEFAULTS, RENAMED, TrainOptions, trainer_fields

    parser.add_argument(
        "task",
        nargs="?",
        metavar="TASK",
        help="the task to train on (see `modernbert-tasks tasks`); may also come from --config",
    )
    parser.add_argument(
        "--model",
        "--model-name",
        "--model_name",
        dest="model_name",
        default=argparse.SUPPRESS,
        metavar="MODEL",
        help=f"a Hugging Face Hub id or a local model folder (default: {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="read options from a YAML or JSON file (keys are the option names, "
        "e.g. learning_rate); flags given here override it",
    )
    parser.add_argument(
        "--output-dir",
        "--output_dir",
        dest="output_dir",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="the run folder: checkpoints, logs/ (TensorBoard) and model/ (default: runs/TASK)",
    )
    hints = typing.get_type_hints(TrainOptions)
    library = [
        (f, hints[f.name], _field_default(f))
        for f in dataclasses.fields(TrainOptions)
        if f.name not in PYTHON_ONLY_OPTIONS
    ]
    trainer = [
        (f, hint, RECIPE_DEFAULTS[name].value if name in RECIPE_DEFAULTS else _field_default(f))
        for name, (f, hint) in trainer_fields().items()
        if name != "output_dir" and name not in RENAMED
    ]  # resume_from_checkpoint: resume
    _add_fields(parser.add_argument_group("library options (modernbert_tasks.options.TrainOptions)"), library)
    _add_fields(parser.add_argument_group(TRAINER_GROUP), trainer)


def option_names() -> set[str]:
    """Every key `fine_tune` accepts from a config file (imports transformers)."""
    from ..options import TrainOptions, trainer_fields

    return (
        {f.name for f in dataclasses.fields(TrainOptions)} - set(PYTHON_ONLY_OPTIONS)
        | set(trainer_fields())
        | set(CONFIG_EXTRA_KEYS)
    )


# --- fields to flags ----------------------------------------------------------------------
Fields = list[tuple[dataclasses.Field, Any, Any]]  # (field, resolved type hint, default shown)


def _add_fields(group: Any, fields: Fields) -> None:
    """HfArgumentParser's arguments for `fields`, fixed as the module docstring says, added to
    `group` in field order."""
    from transformers.hf_argparser import string_to_bool

    generated = _hf_arguments([item for item in fields if _explicit_kwargs(item[1]) is None])
    for field, hint, default in fields:
        flag = RENAMED_FLAGS.get(field.name, field.name.replace("_", "-"))
        help_text = " ".join(str(field.metadata.get("help", "")).split())
        explicit = _explicit_kwargs(hint)
        if explicit is None:
            main, *negations = generated[field.name]
        else:
            for key in ("choices", "nargs", "const"):  # as HfArgumentParser passes metadata on
                if key in field.metadata:
                    explicit[key] = field.metadata[key]
            main, negations = _detached(f"--{flag}", dest=field.name, **explicit), []
        main.option_strings = _option_strings(field.name, flag)
        main.default = argparse.SUPPRESS  # unset unless typed: fine_tune applies the defaults
        if main.type is string_to_bool:  # our words, our message; a bare --flag means true
            main.type, main.nargs, main.const, main.metavar = _parse_bool, "?", True, "BOOL"
        if main.metavar is None:
            main.metavar = _metavar(main)
        if isinstance(default, str) and main.type in (int, float):
            # a symbolic library default such as eval_steps="auto" can also be typed
            main.type = _number_or_word(main.type, default)
        choices = list(main.choices or ())
        if len(choices) > 8:  # long lists go in the help text, not the usage
            help_text += f" Choices: {', '.join(map(str, choices))}."
            main.metavar = "NAME"
        if default is not None and default != "" and default != []:
            help_text += f" (default: {default!r})"
        main.help = help_text.replace("%", "%%")  # argparse %-formats help strings
        group._add_action(main)
        if main.const is True and default is True and not negations:
            # HfArgumentParser adds --no-x when the *field* defaults to true; the recipe's
            # defaults (load_best_model_at_end) count too
            negations = [_detached(f"--no-{flag}", dest=field.name, action="store_false")]
        for negation in negations:
            negation.option_strings = [f"--no-{flag}"]
            negation.default, negation.help = argparse.SUPPRESS, f"same as --{flag} false"
            group._add_action(negation)


def _detached(*names: str, **kwargs: Any) -> argparse.Action:
    """An argparse action made but not yet added (`_add_fields` adds it to its group)."""
    return argparse.ArgumentParser(add_help=False).add_argument(*names, **kwargs)


def _option_strings(name: str, flag: str) -> list[str]:
    names = [f"--{flag}"]
    if "_" in name and name not in RENAMED_FLAGS:
        names.append(f"--{name}")  # run_glue.py spelling, so old commands paste in
    return names + FLAG_ALIASES.get(name, [])


def _hf_arguments(fields: Fields) -> dict[str, list[argparse.Action]]:
    """field name -> the actions HfArgumentParser makes for it (the flag, then --no-flag)."""
    from transformers import HfArgumentParser
    from transformers.hf_argparser import DataClassType

    specs = []
    for field, hint, default in fields:
        kwargs: dict[str, Any] = {"metadata": dict(field.metadata)}
        if isinstance(default, list | dict | set):
            kwargs["default_factory"] = lambda value=default: value
        else:
            kwargs["default"] = default
        specs.append((field.name, hint, dataclasses.field(**kwargs)))
    # a throwaway dataclass: HfArgumentParser rewrites the `type` of the fields it reads
    parser = HfArgumentParser(DataClassType(dataclasses.make_dataclass("TrainFlags", specs)), add_help=False)
    actions: dict[str, list[argparse.Action]] = {}
    for action in parser._actions:
        actions.setdefault(action.dest, []).append(action)
    return actions


def _members(hint: Any) -> list[Any]:
    """The non-None members of a union (or [hint])."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [m for m in typing.get_args(hint) if m is not type(None)]
    return [hint]


def _explicit_kwargs(hint: Any) -> dict[str, Any] | None:
    """argparse keywords for the types HfArgumentParser refuses (a union of two types besides
    str and None) or reads as something else; None for the types it reads right."""
    members = _members(hint)
    bases = [typing.get_origin(m) or m for m in members]
    if bool in bases and str in bases:  # e.g. resume: a bare --resume means True
        return {"type": _parse_str_or_bool, "nargs": "?", "const": True, "metavar": "VALUE"}
    if dict in bases or any(b in (typing.Mapping, Mapping) for b in bases):
        accepts_str = str in bases or os.PathLike in bases or typing.Literal in bases
        return {"type": _parse_dict_or_str if accepts_str else _parse_dict, "metavar": "JSON"}
    if typing.Literal in bases and (int in bases or float in bases):  # e.g. 24 or 'auto'
        words = typing.get_args(members[bases.index(typing.Literal)])
        number = int if int in bases else float
        return {
            "type": _number_or_word(number, *words),
            "metavar": f"{number.__name__.upper()}|{'|'.join(words)}",
        }
    if list in bases and len(bases) > 1:  # e.g. report_to: 'all' or a list of names
        item_args = typing.get_args(members[bases.index(list)])
        item = item_args[0] if item_args else str
        return {"nargs": "+", "type": item if item in (int, float) else str, "metavar": "VALUE"}
    if os.PathLike in bases:
        return {"type": str, "metavar": "PATH"}
    if len(bases) == 1 and isinstance(bases[0], type) and dataclasses.is_dataclass(bases[0]):
        # a config object such as accelerate's ParallelismConfig: built from JSON
        return {"type": _json_object_of(bases[0]), "metavar": "JSON"}
    if len(bases) > 1 and str not in bases:
        return {"type": str, "metavar": "STR"}  # HfArgumentParser refuses such unions
    return None


def _metavar(action: argparse.Action) -> str | None:
    if action.nargs in ("+", "*"):
        return "VALUE"
    if action.type in (int, float, str, None):
        return "INT" if action.type is int else "FLOAT" if action.type is float else "STR"
    return None  # a Literal or an Enum: argparse shows the choices, {a,b,c}


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default.value if isinstance(field.default, enum.Enum) else field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


# --- parse functions for the explicit arguments --------------------------------------------
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
            raise argparse.ArgumentTypeError(f"expected a JSON object or key=value pairs, got {value!r}")
        try:
            result[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            result[key.strip()] = raw
    return result


def _number_or_word(number: type, *words: str) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        return value if value in words else number(value)

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


# --- --config FILE -------------------------------------------------------------------------
def read_config_file(path: str | os.PathLike, allowed: set[str] | None) -> dict[str, Any]:
    """A YAML or JSON mapping of option names (dashes or underscores) to values; `allowed`
    None: any keys (a --space file, checked by search itself)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(
            f"--config file {str(file)!r} not found. Pass a YAML (.yaml/.yml) or "
            "JSON (.json) file of option names and values."
        )
    suffix = file.suffix.lower()
    text = file.read_text(encoding="utf-8")
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(
                f"--config {str(file)!r} is YAML, which needs PyYAML: pip install "
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
        raise ConfigError(
            f"--config {str(file)!r} has extension {file.suffix!r}; expected .yaml, .yml or .json."
        )
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"--config {str(file)!r} holds a {type(data).__name__}; expected a "
            "mapping of option names to values, e.g. `learning_rate: 3.0e-5`."
        )
    config = {}
    for key, value in data.items():
        name = "model_name" if key == "model" else str(key).replace("-", "_")
        if allowed is not None and name not in allowed:
            raise ConfigError(
                f"--config {str(file)!r}: unknown option {key!r}."
                f"{suggest(name, allowed)} Valid keys are the train flags without "
                "the leading dashes (see `modernbert-tasks train --help`)."
            )
        config[name] = value
    return config
