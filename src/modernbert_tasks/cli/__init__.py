"""The ``modernbert-tasks`` command line: train, search, audit, evaluate, predict, serve, export,
push, options, tasks, plugins.

    modernbert-tasks train sst2 --model ./modernbert-embed-large --data-dir ./glue/sst2
    modernbert-tasks predict runs/sst2/model "a gem of a film"
    modernbert-tasks evaluate runs/sst2/model --data-dir ./glue/sst2
    modernbert-tasks tasks

Exit codes: 0 success, 1 the run failed, 2 bad usage (argparse errors, bad option values,
unknown task). An error prints as one ``error: ...`` line; ``--debug`` adds the traceback.
Importing this package is cheap: torch loads only inside train/evaluate/predict, and the
``train`` flags (built by ``transformers.HfArgumentParser``) only when the command is train.

One module per group of commands: `train`, `audit`, `predict` (evaluate, predict), `serve`, `ship` (export,
push), `info` (tasks, plugins, options); `flags` turns the option dataclasses into the train
flags; `common` holds the exit codes, the parser class and tables.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence

from .. import __version__
from ..errors import ConfigError, ModernBertTasksError, UnknownTaskError, speaking_cli, suggest
from . import audit, info, predict, serve, ship, train
from .audit import AUDIT_EPILOG, format_audit  # noqa: F401
from .common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, PROG, Parser, add_debug_flag
from .flags import FLAG_ALIASES, RENAMED_FLAGS, option_names, read_config_file  # noqa: F401
from .info import OPTIONS_EPILOG, PLUGINS_EPILOG, TASKS_EPILOG  # noqa: F401
from .inputs import read_inputs  # noqa: F401  (re-exported, see below)
from .predict import EVALUATE_EPILOG, PREDICT_EPILOG, format_evaluation  # noqa: F401
from .serve import SERVE_EPILOG  # noqa: F401
from .ship import EXPORT_EPILOG, PUSH_EPILOG  # noqa: F401
from .train import TRAIN_EPILOG, format_train_summary  # noqa: F401

# The F401 names stay readable here as before the split: each command's *_EPILOG (the docs
# tests run their examples), the flag tables, and helpers imported from `modernbert_tasks.cli`.
__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE"]

COMMANDS = (
    "train",
    "search",
    "audit",
    "evaluate",
    "predict",
    "serve",
    "export",
    "push",
    "options",
    "tasks",
    "plugins",
)
# errors caused by what the user typed: usage (2), not a failed run (1)
USAGE_ERRORS = (ConfigError, UnknownTaskError)

MAIN_EPILOG = """\
examples:
  modernbert-tasks train sst2 --data-dir ./glue/sst2 --max-train-samples 1000
  modernbert-tasks predict runs/sst2/model "a gem of a film"
  modernbert-tasks evaluate runs/sst2/model --data-dir ./glue/sst2
  modernbert-tasks serve runs/sst2/model

Run `modernbert-tasks COMMAND --help` for a command's options and examples.
Exit codes: 0 success, 1 the run failed, 2 bad usage.
Docs: docs/index.md (quickstart), docs/configuration.md (every option).
"""

RUNNERS: dict[str, Callable[[argparse.Namespace, argparse.ArgumentParser], int]] = {
    "export": ship.run_export,
    "push": ship.run_push,
    "train": train.run_train,
    "search": train.run_search,
    "audit": audit.run_audit,
    "evaluate": predict.run_evaluate,
    "predict": predict.run_predict,
    "serve": serve.run_serve,
    "options": info.run_options,
    "tasks": info.run_tasks,
    "plugins": info.run_plugins,
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser. The train flags are only generated when `command` is 'train',
    'search' or 'audit', because they need transformers (and so torch)."""
    parser = Parser(
        prog=PROG,
        description="Fine-tune a ModernBERT encoder on a text-classification task, then\n"
        "evaluate it and predict with it. Tasks come from plugins.",
        epilog=MAIN_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_debug_flag(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    train.add_parser(sub, with_flags=command == "train")
    train.add_search_parser(sub, with_flags=command == "search")
    audit.add_parser(sub, with_flags=command == "audit")
    predict.add_parsers(sub)  # evaluate, predict
    serve.add_parser(sub)
    info.add_parsers(sub)  # options, tasks
    ship.add_parsers(sub)  # export, push
    info.add_plugins_parser(sub)
    for name in COMMANDS:
        add_debug_flag(sub.choices[name], default=argparse.SUPPRESS)
    return parser


# --- entry point --------------------------------------------------------------------------
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
    from ..options import RENAMED

    flags = [s for action in parser._actions for s in action.option_strings]
    hints = []
    for extra in extras:
        if not extra.startswith("--"):
            continue
        name = extra[2:].split("=")[0].replace("-", "_")
        if name in RENAMED:
            # RENAMED speaks Python ("overwrite=True", "warmup_steps (a float ...)")
            match = re.match(r"\w+", RENAMED[name])
            assert match is not None  # every RENAMED entry starts with the new name
            new_name = match.group()
            rest = RENAMED[name][len(new_name) :].strip()
            note = f" ({RENAMED[name]})" if rest.startswith("=") else f" {rest}" if rest else ""
            hints.append(f" {extra.split('=')[0]} is an old name: use --{new_name.replace('_', '-')}{note}.")
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


def _list_items(text: str) -> list[str]:
    """The items of a list as the library writes one, ['a', 'b'] (or ["a"]), unquoted."""
    return [a or b for a, b in re.findall(r"'([^']*)'|\"([^\"]*)\"", text)]


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
        elif value[:1] == "[" and action.nargs in ("+", "*"):  # ['a', 'b'] -> a b
            value = " ".join(_list_items(value)) or value
        return f"{option} {value}"

    message = re.sub(rf"(?<![\w.-])([a-z][a-z0-9_]*)=({_ARG_VALUE})", flag, message)

    def redundant(match: re.Match) -> str:  # "(CLI: --resume)" after "--resume" says it twice
        rest = message[: match.start()] + message[match.end() :]
        named = re.findall(r"--[\w-]+", match[0])
        return "" if named and all(re.search(rf"{n}(?![\w-])", rest) for n in named) else match[0]

    return re.sub(r" ?\(CLI: [^()]*\)", redundant, message)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ModernBertTasksError):
        return str(exc)
    # someone else's exception: say what it is; the message alone can be cryptic
    return f"{type(exc).__name__}: {exc}"
