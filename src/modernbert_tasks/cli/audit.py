"""`audit`: the train flags plus --folds; prints the per-label noise table and the worst rows."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import EXIT_OK, PROG, clip, table
from .flags import add_train_arguments

AUDIT_USAGE = "%(prog)s [TASK] --train-file FILE [--folds K] [--output-dir DIR] [--OPTION VALUE ...]"

AUDIT_EPILOG = """\
examples:
  # 5 fold models on your CSV; likely wrong labels go to runs/audit/label_issues.csv
  modernbert-tasks audit --train-file tickets.csv --label-column team --model ./minilm \\
      --num-train-epochs 1 --output-dir runs/audit

  # also write each row's training dynamics (confidence, variability, aum) to data_map.csv
  modernbert-tasks audit --train-file tickets.csv --output-dir runs/audit --data-map

  # continue an interrupted audit (finished folds are skipped)
  modernbert-tasks audit --train-file tickets.csv --output-dir runs/audit --resume

  # add two more rounds of 5 folds with new seeds: each row ranked by 3 unseen models
  modernbert-tasks audit --train-file tickets.csv --output-dir runs/audit --resume --repeats 3

  # then train without the 50 likeliest errors ...
  modernbert-tasks train --train-file tickets.csv --exclude-rows runs/audit/label_issues.csv \\
      --exclude-top 50
  # ... or write a cleaned copy of the file (runs/audit/tickets.cleaned.csv)
  modernbert-tasks audit --train-file tickets.csv --output-dir runs/audit --resume --write-cleaned

Takes every train flag (see `modernbert-tasks train --help`); each fold trains with them.
Needs cleanlab: pip install 'modernbert-tasks[audit]'.
"""

SHOWN_ROWS = 10


def add_parser(sub: Any, with_flags: bool) -> None:
    audit = sub.add_parser(
        "audit",
        help="find likely wrong labels in the training data (cleanlab)",
        usage=AUDIT_USAGE,
        epilog=AUDIT_EPILOG,
        description="Train K fold models with the train flags, predict every training row "
        "out of sample, and rank the rows whose label is likely wrong (cleanlab). "
        "Writes label_issues.csv (worst first), audit.json and noise_matrix.png "
        "into --output-dir (default runs/audit).",
    )
    if not with_flags:
        audit.add_argument("task", nargs="?", metavar="TASK")
        return
    add_train_arguments(audit)
    group = audit.add_argument_group("audit options")
    group.add_argument(
        "--folds",
        type=int,
        default=5,
        metavar="K",
        help="number of folds; each fold's model trains on the others "
        "(default 5; every label needs at least K rows)",
    )
    group.add_argument(
        "--repeats",
        type=int,
        default=1,
        metavar="R",
        help="make the K-fold split R times, each with its own seed, and average each row's "
        "R out-of-sample predictions (default 1; R times the training; with --resume, more "
        "repeats add rounds to a finished audit)",
    )
    group.add_argument(
        "--write-cleaned",
        "--write_cleaned",
        dest="write_cleaned",
        action="store_true",
        help="also write the training file without the flagged rows into --output-dir",
    )
    group.add_argument(
        "--filter-by",
        "--filter_by",
        dest="filter_by",
        default="prune_by_noise_rate",
        metavar="METHOD",
        help="cleanlab.filter.find_label_issues' filter_by (default prune_by_noise_rate)",
    )
    group.add_argument(
        "--probabilities",
        dest="probabilities",
        default=None,
        metavar="{held_out,fold_ensemble}",
        help="what cleanlab ranks: held_out (default), each row's probabilities from the "
        "fold model that never saw it; fold_ensemble averages them with those of the fold "
        "models that trained on it (flags fewer rows; see docs/benchmarks.md#label-audit)",
    )
    group.add_argument(
        "--data-map",
        "--data_map",
        dest="data_map",
        action="store_true",
        help="also record each fold's training dynamics and write each row's confidence, "
        "variability and area under the margin to data_map.csv (costs one prediction of the "
        "training rows per point)",
    )
    group.add_argument(
        "--data-map-points",
        "--data_map_points",
        dest="data_map_points",
        type=int,
        default=None,
        metavar="N",
        help="data map records per epoch (default 4)",
    )


def run_audit(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .train import train_options

    task, options = train_options(args, parser)
    from ..auditing import audit

    if args.data_map:
        options["data_map"] = True
    if args.data_map_points is not None:
        options["data_map_points"] = args.data_map_points

    result = audit(
        task or None,
        folds=args.folds,
        repeats=args.repeats,
        write_cleaned=args.write_cleaned,
        filter_by=args.filter_by,
        **({"probabilities": args.probabilities} if args.probabilities else {}),
        **options,
    )
    print(format_audit(result))
    return EXIT_OK


def format_audit(result: Any) -> str:
    """The summary printed after an audit: per-label table, worst rows, files, next step."""
    summary = json.loads(result.summary_file.read_text(encoding="utf-8"))
    multi = summary["problem_type"] == "multi_label_classification"
    joint = summary["confident_joint"]
    labels = summary["labels"]
    if multi:
        counts = [sum(cell[1]) for cell in joint]  # rows given the label
    else:
        counts = [sum(row) for row in joint]
    flagged = {name: 0 for name in labels}
    with open(result.issues_file, encoding="utf-8") as fh:
        import csv

        issues = list(csv.DictReader(fh))
    for issue in issues:
        for name in issue["given_label"].split(",") if multi else [issue["given_label"]]:
            if name in flagged:
                flagged[name] += 1
    lines = [
        "",
        f"Audited {summary['rows']:,} rows with {summary['folds']} folds"
        + (f" x {summary['repeats']} repeats" if summary.get("repeats", 1) > 1 else "")
        + ": "
        f"{summary['flagged']:,} likely label errors "
        f"({summary['flagged'] / max(1, summary['rows']):.1%}).",
        "",
    ]
    lines += table(
        [
            [name, f"{n:,}", f"{flagged[name]:,}", f"{summary['noise_rate'][name]:.1%}"]
            for name, n in zip(labels, counts, strict=True)
        ],
        ["label", "rows" if not multi else "rows with it", "flagged", "est. noise rate"],
        right=True,
    )
    if not multi:
        lines += ["", "Confident joint (rows: given label, columns: likely true label):"]
        lines += table(
            [[name, *map(str, row)] for name, row in zip(labels, joint, strict=True)],
            ["given \\ true", *labels],
            right=True,
        )
    if issues:
        lines += ["", f"Worst {min(SHOWN_ROWS, len(issues))} of {len(issues)}:"]
        lines += table(
            [
                [
                    i["row"],
                    clip(i["text"].replace("\n", " "), 50),
                    i["given_label"],
                    i["suggested_label"],
                    i["given_label_probability"],
                ]
                for i in issues[:SHOWN_ROWS]
            ],
            ["row", "text", "given", "suggested", "p(given)"],
        )
    out = result.output_dir
    lines += ["", f"Label issues      {result.issues_file}", f"Summary           {result.summary_file}"]
    if result.plot_file:
        lines.append(f"Noise matrix      {result.plot_file}")
    if result.cleaned_file:
        lines.append(f"Cleaned data      {result.cleaned_file}")
    if result.data_map_file:
        lines.append(f"Data map          {result.data_map_file}")
    lines.append(
        f"Train without     {PROG} train ... --exclude-rows {out / 'label_issues.csv'} [--exclude-top N]"
    )
    return "\n".join(lines)
