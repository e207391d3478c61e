"""`evaluate` and `predict`: a saved model folder back to metrics and predictions."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..hardware import EVALUATE_PRECISIONS, PREDICT_PRECISIONS
from ..long_text import AGGREGATES, LONG_TEXT_MODES
from .common import EXIT_OK, metric_lines, table

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
  modernbert-tasks predict runs/sst2/model --file reviews.txt --long-text chunks --stride 32

Output: one JSON object per input, in input order, e.g.
  {"text": "a gem of a film", "label": "positive", "score": 0.98,
   "probabilities": {"negative": 0.02, "positive": 0.98}}
(regression: {"text": ..., "score": 3.7}; pairs add "text_pair"; --long-text chunks adds
"windows": how many windows of --max-length tokens the text was read in).

With --file, every record also has "line": the input's line number (.txt, stdin) or data
row (tables, header excluded). A blank line gives {"line": N, "text": "", "skipped":
"blank line"}, so output line N always matches input line N.
--file formats: .txt (or - for stdin) holds one text per line;
.tsv/.csv/.jsonl/.json/.parquet hold the task's text columns (e.g. sentence, or
sentence1 + sentence2 for pairs) under a header; other columns are ignored.
"""


def add_parsers(sub: Any) -> None:
    evaluate = sub.add_parser(
        "evaluate",
        help="metrics of a fine-tuned model on labelled data",
        description="Evaluate a fine-tuned model: the task's metrics, a "
        "confusion matrix and per-class precision/recall/F1.",
        epilog=EVALUATE_EPILOG,
    )
    _add_evaluate_arguments(evaluate)

    predict = sub.add_parser(
        "predict",
        help="labels and probabilities for texts",
        description="Predict with a fine-tuned model: one JSON line per input.",
        epilog=PREDICT_EPILOG,
    )
    _add_predict_arguments(predict)


def _add_model_loading_arguments(parser: argparse.ArgumentParser, evaluate: bool) -> None:
    parser.add_argument(
        "path", metavar="PATH", help="the model folder saved by `train` (e.g. runs/sst2/model)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=64, metavar="N", help="texts per forward pass (default: 64)"
    )
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA if available, else CPU)"
    )
    if evaluate:
        parser.add_argument(
            "--precision",
            choices=EVALUATE_PRECISIONS,
            default="fp32",
            help="fp32: the figures training printed, on every machine; mixed "
            "or bf16: faster, with bf16 probabilities and loss "
            "(default: fp32)",
        )
    else:
        parser.add_argument(
            "--precision",
            choices=PREDICT_PRECISIONS,
            default="auto",
            help="auto: mixed where bf16 is fast (bf16 GPUs, CPUs with "
            "AMX or a fast AVX512-BF16), else fp32; mixed keeps fp32's labels; fp32 "
            "for fp32 probabilities (default: auto)",
        )
    parser.add_argument(
        "--max-length",
        type=int,
        default=None,
        metavar="N",
        help="the most tokens read of a text; a longer one is truncated and its "
        "record says so (default: the model's position limit)",
    )
    add_long_text_arguments(parser)
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run model code shipped inside the folder (only if you trust it)",
    )
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="also load pickle weights (pytorch_model.bin); unpickling can run "
        "arbitrary code, so only for files you trust",
    )


def add_long_text_arguments(parser: argparse.ArgumentParser) -> None:
    """--long-text, --stride, --aggregate (predict, evaluate, serve)."""
    parser.add_argument(
        "--long-text",
        choices=LONG_TEXT_MODES,
        default=None,
        help="a text longer than --max-length: truncate (read its beginning) or chunks "
        "(read it whole in windows of --max-length tokens and aggregate their calibrated "
        "probabilities; each record says how many windows) (default: the model's manifest, "
        "else truncate)",
    )
    parser.add_argument(
        "--stride",
        type=int,
        default=None,
        metavar="N",
        help="with --long-text chunks: tokens consecutive windows share, below --max-length "
        "(default: the manifest's, else max_length // 8)",
    )
    parser.add_argument(
        "--aggregate",
        choices=AGGREGATES,
        default=None,
        help="with --long-text chunks: mean (default) or max of the windows' probabilities, "
        "per label; regression always averages",
    )


def _add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_loading_arguments(parser, evaluate=True)
    parser.add_argument(
        "--task",
        metavar="TASK",
        help="the task the model was trained on; only needed for a model "
        "folder without a modernbert_tasks.json manifest",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--split",
        default="eval",
        help="which split of the task's data: train, eval (= validation) or test (default: eval)",
    )
    source.add_argument(
        "--data-file", metavar="FILE", help="a labelled TSV/CSV/JSONL/parquet file with the task's columns"
    )
    parser.add_argument(
        "--data-dir", metavar="DIR", help="folder with the split files (train.tsv, validation.tsv, ...)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--plot",
        metavar="DIR",
        help="also write a confusion-matrix PNG and a reliability diagram "
        "(before/after calibration) to DIR; needs matplotlib "
        "(pip install 'modernbert-tasks[plot]')",
    )


def _add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_loading_arguments(parser, evaluate=False)
    parser.add_argument(
        "texts",
        nargs="*",
        default=[],
        metavar="TEXT",
        help="texts to classify (put `--` before a text that starts with -)",
    )
    parser.add_argument(
        "--pair",
        nargs=2,
        action="append",
        metavar=("TEXT_A", "TEXT_B"),
        help="a text pair, for pair tasks (repeat for more pairs)",
    )
    parser.add_argument(
        "--file", "-f", metavar="FILE", help="read the inputs from FILE (see the formats below; - is stdin)"
    )
    parser.add_argument(
        "--output", "-o", metavar="FILE", help="write the JSON lines to FILE instead of standard output"
    )


def _load_model(args: argparse.Namespace) -> Any:
    import datasets
    import transformers

    from ..inference.loading import load_finetuned

    # loading bars ("Loading weights", "Generating split") would bury the output
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    # evaluate computes in --precision whatever the model loads with
    precision = "auto" if args.command == "evaluate" else args.precision
    model = load_finetuned(
        args.path,
        args.device,
        precision=precision,
        trust_remote_code=args.trust_remote_code,
        allow_pickle=args.allow_pickle,
        max_length=args.max_length,
        long_text=args.long_text,
        stride=args.stride,
        aggregate=args.aggregate,
    )
    model.warn_truncation = False  # said once by _say_truncation, whatever logging is set up
    return model


def _say_truncation(model: Any) -> None:
    """The truncation summary line, or with chunks how many windows were read."""
    from ..inference.chunks import windows_summary

    summary = model.truncation_summary()
    if model.long_text.chunks and model.last_windows:
        summary = windows_summary(
            sum(model.last_windows), len(model.last_windows), model.max_length, model.long_text
        )
    if summary:
        print(summary, file=sys.stderr)


def run_evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.data_file and args.data_dir:
        parser.error("pass either --data-file or --data-dir, not both")
    if args.plot:
        from ..inference.plots import require_matplotlib

        require_matplotlib()  # the one-line install hint, before any model is loaded
    model = _load_model(args)
    if args.task:
        model.set_task(args.task)
    if args.plot:
        from ..inference.plots import write_evaluation_plots

        written = write_evaluation_plots(
            model,
            args.plot,
            args.data_file,
            split=args.split,
            data_dir=args.data_dir,
            batch_size=args.batch_size,
        )
        for path in written.values():
            print(f"wrote {path}", file=sys.stderr)
    if args.data_file:
        results = model.evaluate(
            data_file=args.data_file, batch_size=args.batch_size, precision=args.precision
        )
    else:
        results = model.evaluate(
            split=args.split, data_dir=args.data_dir, batch_size=args.batch_size, precision=args.precision
        )
    _say_truncation(model)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_evaluation(results, model.labels))
    return EXIT_OK


def format_evaluation(results: dict[str, Any], labels: Sequence[str]) -> str:
    """Metrics, then (classification) the confusion matrix and the per-class table."""
    lines = ["Metrics:", *metric_lines(results)]
    matrix = results.get("confusion_matrix")
    if matrix:
        names = [str(n) for n in labels]
        lines += ["", "Confusion matrix (rows: true label, columns: predicted label):"]
        lines += table([[n, *row] for n, row in zip(names, matrix, strict=True)], ["", *names], right=True)
    per_class = results.get("per_class")
    if per_class:
        # multi-label: each label's threshold, then the micro and macro averages
        thresholds = all("threshold" in m for m in per_class.values())
        rows = list(per_class.items())
        rows += [(f"{k} avg", results[k]) for k in ("micro", "macro") if k in results]
        lines += ["", "Per label:" if thresholds else "Per class:"]
        lines += table(
            [
                [name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", m["support"]]
                + ([f"{m['threshold']:.2f}" if "threshold" in m else ""] if thresholds else [])
                for name, m in rows
            ],
            ["label", "precision", "recall", "f1", "support"] + (["threshold"] if thresholds else []),
            right=True,
        )
    return "\n".join(lines)


def run_predict(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .inputs import prediction_records, read_numbered_inputs

    sources = [bool(args.texts), bool(args.pair), args.file is not None]
    if sum(sources) != 1:
        piped = (
            ""
            if sys.stdin.isatty()
            else (" Input is being piped in: to read it, pass --file - (one text per line).")
        )
        parser.error(
            "give the inputs one way: TEXT arguments, --pair TEXT_A TEXT_B, or "
            f"--file FILE (--file - reads standard input).{piped}"
        )
    if args.output and Path(args.output).is_dir():
        raise ConfigError(
            f"--output {args.output!r} is a folder; expected a file path for the "
            f"JSON lines, e.g. --output {Path(args.output) / 'predictions.jsonl'}."
        )
    model = _load_model(args)
    lines: list[int] | None = None
    blanks: list[int] = []
    if args.texts:
        inputs: list[Any] = list(args.texts)
    elif args.pair:
        inputs = [tuple(pair) for pair in args.pair]
    else:
        inputs, lines, blanks = read_numbered_inputs(args.file, model.task)
    predictions = model.predict(inputs, batch_size=args.batch_size)
    _say_truncation(model)
    records = prediction_records(inputs, predictions, lines, blanks)
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
