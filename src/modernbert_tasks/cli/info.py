"""`tasks`, `plugins` and `options`: what is installed and what `train` accepts. No torch."""

from __future__ import annotations

import argparse
import json
import warnings
from typing import Any

from .common import EXIT_OK, clip, table
from .flags import PYTHON_ONLY_OPTIONS

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

OPTIONS_DESCRIPTION = (
    "List every option `train` accepts (the library's own and every "
    "TrainingArguments field) with its default and where that default "
    "comes from."
)

PLUGINS_EPILOG = """\
examples:
  modernbert-tasks plugins          # a failed plugin is listed with its error
  modernbert-tasks plugins --json
"""


def add_parsers(sub: Any) -> None:
    options = sub.add_parser(
        "options",
        help="list every train option, its default and source",
        description=OPTIONS_DESCRIPTION,
        epilog=OPTIONS_EPILOG,
    )
    options.add_argument("--task", metavar="TASK", help="show the defaults for this task")
    options.add_argument(
        "--all", action="store_true", help="also list the TrainingArguments fields left at their defaults"
    )
    options.add_argument("--json", action="store_true", help="print JSON (always every option)")

    tasks = sub.add_parser(
        "tasks",
        help="list the registered tasks",
        description="List every task registered by the installed plugins.",
        epilog=TASKS_EPILOG,
    )
    tasks.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_plugins_parser(sub: Any) -> None:
    plugins = sub.add_parser(
        "plugins",
        help="list the plugins and their load errors",
        description="List the installed task plugins, the tasks each "
        "registered, and the error of any that failed to load.",
        epilog=PLUGINS_EPILOG,
    )
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run_tasks(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..plugins import list_tasks

    rows = list_tasks()
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    kinds = {
        "single_label_classification": "classification",
        "multi_label_classification": "multi-label",
        "regression": "regression",
    }
    print(
        "\n".join(
            table(
                [
                    [
                        r["name"],
                        kinds.get(r["problem_type"], r["problem_type"]),
                        "pair" if len(r["text_columns"]) == 2 else "single",
                        clip(", ".join(r["labels"]) or "-", 30),
                        r["plugin"],
                        clip(r["description"], 60),
                    ]
                    for r in rows
                ],
                ["task", "type", "input", "labels", "plugin", "description"],
            )
        )
    )
    if not rows:
        print("No tasks registered; see `modernbert-tasks plugins` for plugins that failed.")
    return EXIT_OK


def run_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..options import describe_options
    from ..plugins import get_task

    rows = describe_options(get_task(args.task) if args.task else None)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    rows = [r for r in rows if r["name"] not in PYTHON_ONLY_OPTIONS]
    if not args.all:
        rows = [r for r in rows if r["source"] != "transformers.TrainingArguments"]
    print(
        "\n".join(
            table(
                [
                    [
                        f"--{r['name'].replace('_', '-')}",
                        clip(json.dumps(r["default"]), 28),
                        clip(r["source"], 70),
                    ]
                    for r in rows
                ],
                ["flag", "default", "default comes from"],
            )
        )
    )
    if not args.all:
        print(
            "\nEvery other TrainingArguments field keeps its transformers default; --all lists "
            "them, `train --help` explains each."
        )
    return EXIT_OK


def run_plugins(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..plugins import list_plugins

    with warnings.catch_warnings():  # failures are shown in the listing itself
        warnings.simplefilter("ignore")
        rows = list_plugins()
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(
        "\n".join(
            table(
                [
                    [
                        r["name"],
                        r["version"] or "-",
                        r["module"],
                        ", ".join(r["tasks"]) or "-",
                        "ok" if r["error"] is None else f"FAILED: {r['error']}",
                    ]
                    for r in rows
                ],
                ["plugin", "version", "module", "tasks", "status"],
            )
        )
    )
    return EXIT_OK
