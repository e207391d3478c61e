"""`train`: options from --config and flags to `fine_tune`, then the one-screen summary."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .common import EXIT_OK, PROG, metric_lines, number
from .flags import add_train_arguments, option_names, read_config_file

TRAIN_USAGE = "%(prog)s [TASK] [--model MODEL] [--data-dir DIR] [--config FILE] [--OPTION VALUE ...]"

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


def add_parser(sub: Any, with_flags: bool) -> None:
    """The train subcommand; its option flags (which need transformers) only `with_flags`."""
    train = sub.add_parser(
        "train",
        help="fine-tune a model on a task",
        usage=TRAIN_USAGE,
        description="Fine-tune a model on TASK and save it with its tokenizer and manifest.",
        epilog=TRAIN_EPILOG,
    )
    if with_flags:
        add_train_arguments(train)
    else:  # enough for the top-level --help; the real flags are added for `train` itself
        train.add_argument("task", nargs="?", metavar="TASK")


def add_search_parser(sub: Any, with_flags: bool) -> None:
    """`search`: the train flags, plus the number of trials and the space."""
    search = sub.add_parser(
        "search",
        help="hyperparameter search (Optuna) with the train flags",
        description="Search hyperparameters for TASK with Optuna through "
        "Trainer.hyperparameter_search. Takes every train flag; the searched "
        "options vary per trial. Writes search.json (every trial) and "
        "best_params.json (for train --config) into --output-dir.",
    )
    if with_flags:
        add_train_arguments(search)
        search.add_argument(
            "--n-trials",
            "--n_trials",
            type=int,
            default=10,
            dest="n_trials",
            help="number of trials (default 10)",
        )
        search.add_argument(
            "--space",
            type=Path,
            default=None,
            metavar="FILE",
            help="JSON or YAML {option: [choices] | [low, high] | [low, high, "
            '"log"]} (default: the documented space)',
        )
    else:
        search.add_argument("task", nargs="?", metavar="TASK")


def run_search(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    task, options = train_options(args, parser)
    space = read_config_file(args.space, None) if args.space else None
    from ..training.search import search

    result = search(task or None, n_trials=args.n_trials, space=space, **options)
    if _is_main_process():
        rows = [{"trial": t["trial"], **t["params"], result.metric: t["objective"]} for t in result.trials]
        columns = list(dict.fromkeys(k for row in rows for k in row))
        width = {c: max(len(c), *(len(f"{r.get(c, '')}") for r in rows)) for c in columns}
        print("  ".join(c.ljust(width[c]) for c in columns))
        for row in rows:
            print("  ".join(f"{row.get(c, '')}".ljust(width[c]) for c in columns))
        best = result.output_dir / "best_params.json"
        print(
            f"\nBest: {result.metric} {result.best_objective:.4f} with "
            f"{json.dumps(result.best_params)}\nAll trials: {result.output_dir / 'search.json'}"
            f"\nTrain with them: {PROG} train ... --config {best}"
        )
    return EXIT_OK


def run_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    task, options = train_options(args, parser)
    from ..training.engine import fine_tune

    start = time.perf_counter()
    result = fine_tune(task or None, **options)
    if _is_main_process():
        name = result.model_path.parent.name if task is None else task
        if getattr(result, "seeds", None):
            print(format_seed_table(result))
        print(format_train_summary(result, name, options, time.perf_counter() - start))
    return EXIT_OK


def train_options(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[str | None, dict[str, Any]]:
    """The task and the options of a train (or search, or audit) command line, checked."""
    from ..plugins import get_task
    from ..training.task_source import DATA_OPTIONS, is_data_path

    allowed = option_names()
    options = read_config_file(args.config, allowed) if args.config else {}
    options.update({k: v for k, v in vars(args).items() if k in allowed and k != "task"})
    task = args.task or options.get("task")
    options.pop("task", None)
    if task is not None and not isinstance(task, str):
        raise ConfigError(
            f"the task must be a registered task's name, got a "
            f"{type(task).__name__}: {task!r}. To describe your data instead, use "
            "the data keys (train_file, validation_file, text_columns, "
            "label_column, ...) at the top level of the --config file."
        )
    has_data = any(options.get(k) is not None for k in DATA_OPTIONS)
    if not task and not has_data:
        parser.error(
            "a TASK is required (e.g. `modernbert-tasks train sst2`) unless you give "
            "your data (--train-file FILE, --data-dir DIR or --dataset ID); or put a "
            "`task:` key in the --config file"
        )
    if task and not is_data_path(task):
        get_task(task)  # an unknown task fails here, before torch is imported
    _show_library_logs()
    return task, options


def _show_library_logs() -> None:
    """The engine reports device, precision and resumed checkpoints through logging."""
    import logging

    logger = logging.getLogger("modernbert_tasks")  # the package's root: every module logs under it
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _is_main_process() -> bool:
    """Under torchrun / accelerate launch only rank 0 prints the summary."""
    return int(os.environ.get("RANK", "0")) == 0


def format_train_summary(result: Any, task: str, options: Mapping[str, Any], seconds: float) -> str:
    """The one-screen summary printed after training."""
    from ..training.engine import RUN_METRICS
    from ..training.eta import format_duration
    from ..training.lora import ADAPTER_SUBDIR

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
    model_metrics = {
        k: v for k, v in metrics.items() if k not in RUN_METRICS and not k.endswith(TIMING_SUFFIXES)
    }
    if model_metrics:
        lines += [
            "",
            "Evaluation of the final model (fp32, as predict and evaluate compute it):",
            *metric_lines(model_metrics),
        ]
    model_path = str(result.model_path)
    report_to = options.get("report_to", "tensorboard")
    logdir = options.get("logging_dir") or Path(result.output_dir) / "logs"
    tensorboard = (
        f"tensorboard --logdir {logdir}"
        if "tensorboard" in str(report_to)
        else "off (add --report-to tensorboard)"
    )
    data = f" --data-dir {options['data_dir']}" if options.get("data_dir") else ""
    if options.get("validation_file"):
        data = f" --data-file {options['validation_file']}"
    example = '"some text"'
    manifest_file = Path(model_path) / "modernbert_tasks.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    if len(manifest.get("task", {}).get("definition", {}).get("text_columns", [])) == 2:
        example = '--pair "first text" "second text"'  # a pair task takes two texts
    lora = manifest.get("lora") or {}
    adapter = Path(result.output_dir) / ADAPTER_SUBDIR
    lines += [
        "",
        f"Model saved to    {model_path}"
        + (
            f" (LoRA rank {lora.get('r')}, {lora.get('trainable_percent', 0):.2f}% of the parameters "
            "trained, merged)"
            if lora
            else ""
        ),
        *([f"LoRA adapter      {adapter}"] if lora.get("adapter_saved") and adapter.is_dir() else []),
        *([f"Best checkpoint   {result.best_checkpoint}"] if result.best_checkpoint else []),
        f"TensorBoard       {tensorboard}",
        f"Evaluate          {PROG} evaluate {model_path}{data}",
        f"Predict           {PROG} predict {model_path} {example}",
    ]
    return "\n".join(lines)


_SKIP = ("epoch", "total_flos")
TIMING_SUFFIXES = ("_runtime", "_per_second")  # timings: in seeds.json, left out of the table


def format_seed_table(result: Any) -> str:
    """The per-seed figures and their mean ± std, min and max, as an aligned text table.

    The best seed (copied to the model folder) is marked with '*'."""
    info = result.seeds
    if not info:
        return ""
    seeds = info["seeds"]
    rows = [
        ["metric", "mean ± std", "min", "max"]
        + [f"seed {s}{'*' if s == info['best_seed'] else ''}" for s in seeds]
    ]
    for key, stats in info["summary"].items():
        if key in _SKIP or (key.endswith(TIMING_SUFFIXES) and key != "train_runtime"):
            continue
        rows.append(
            [
                key,
                f"{number(stats['mean'])} ± {number(stats['std'])}",
                number(stats["min"]),
                number(stats["max"]),
            ]
            + [number(info["per_seed"][str(s)][key]) for s in seeds]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.append(
        f"* seed {info['best_seed']}: the best by {info['selected_by']}, saved to {result.model_path}"
    )
    return "\n".join(lines)
