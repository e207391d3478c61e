"""Accuracy: fine-tune the real pretrained all-MiniLM-L6-v2 on SST-2 through `fine_tune`.

Two modes:

  full    the whole SST-2 train split (67,349 rows), one epoch; validation and test
          accuracy, wall time and training samples/s
  seeds   several seeds on a random subset (5,000 rows by default); mean +- std

Validation is GLUE's validation split (872 rows, the one everybody reports); test is the
labelled SST binary test set (1,821 rows) from ../shared, scored with
`load_finetuned(...).evaluate`.

    python bench/accuracy.py --mode full --max-train-samples 2000   # estimate the full run
    python bench/accuracy.py --mode full                            # ~10 min on 2 CPU cores
    python bench/accuracy.py --mode seeds --seeds 1,2,3 --subset 5000
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import common

COLUMNS = [
    "run",
    "train rows",
    "epochs",
    "validation accuracy",
    "test accuracy",
    "train samples/s",
    "train min",
    "wall min",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("full", "seeds"), default="full")
    p.add_argument(
        "--model", default=common.MINILM, help="'minilm' (real pretrained weights) or a model folder"
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with train/validation/test TSVs (default: ../shared SST-2)",
    )
    p.add_argument("--epochs", type=float, default=1.0, help="num_train_epochs")
    p.add_argument(
        "--max-train-samples",
        type=int,
        default=None,
        help="full mode: train on a random subset (for estimating the full run)",
    )
    p.add_argument("--subset", type=int, default=5000, help="seeds mode: training rows")
    p.add_argument("--seeds", default="1,2,3", help="seeds mode: comma-separated seeds")
    p.add_argument(
        "--args", default="", help="extra fine_tune arguments as key=value,... (e.g. learning_rate=5e-5)"
    )
    p.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where fine_tune writes, kept (default: a temporary folder, removed at the end)",
    )
    return p.parse_args(argv)


def run_once(
    model: str,
    data_dir: Path,
    output_dir: Path,
    seed: int,
    epochs: float,
    max_train_samples: int | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """One fine_tune run and the test-set evaluation of the model it saved."""
    from modernbert_tasks import fine_tune, load_finetuned

    start = time.perf_counter()
    result = fine_tune(
        "sst2",
        model_name=model,
        output_dir=str(output_dir),
        data_dir=str(data_dir),
        num_train_epochs=epochs,
        seed=seed,
        max_train_samples=max_train_samples,
        overwrite=True,
        **extra,
    )
    wall = time.perf_counter() - start
    test = load_finetuned(result.model_path).evaluate(split="test", data_dir=str(data_dir))
    metrics = result.metrics
    train_seconds = _train_runtime(result)
    rows = max_train_samples or len(common.read_tsv(data_dir / "train.tsv"))
    return {
        "train rows": rows,
        "epochs": epochs,
        "validation accuracy": float(metrics["accuracy"]),
        "test accuracy": float(test["accuracy"]),
        "train samples/s": rows * epochs / train_seconds,
        "train min": train_seconds / 60,
        "wall min": wall / 60,
    }


def _train_runtime(result: Any) -> float:
    """The Trainer's own train_runtime (training loop incl. evaluations), from the log."""
    for entry in reversed(result.log_history):
        if "train_runtime" in entry:
            return float(entry["train_runtime"])
    raise RuntimeError("fine_tune's log_history has no train_runtime entry")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.data_dir is None:
        common.require_shared("accuracy (the SST-2 data)")
    data_dir = args.data_dir or common.SST2_DIR
    model = str(common.minilm_dir()) if args.model == common.MINILM else args.model
    extra = common.parse_kv(args.args)
    print(common.machine_header(f"accuracy: {args.model} on SST-2 through fine_tune"))
    print(f"model: {model}; data: {data_dir}; extra fine_tune args: {extra or 'none'}")
    out_root = common.scratch_dir(args.output_dir, "bench-accuracy-")

    table = []
    if args.mode == "full":
        row = run_once(model, data_dir, out_root / "full", 42, args.epochs, args.max_train_samples, extra)
        table.append({"run": "seed 42", **row})
    else:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        runs = []
        for seed in seeds:
            row = run_once(model, data_dir, out_root / f"seed{seed}", seed, args.epochs, args.subset, extra)
            print(f"  seed {seed}: {row}")
            runs.append(row)
            table.append({"run": f"seed {seed}", **row})
        table.append(_mean_std(runs))
    print()
    print(common.format_table(table, COLUMNS, digits={"train min": 2, "wall min": 2}))
    print(f"end: {common.load_line()}")


def _mean_std(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"run": f"mean +- std ({len(runs)} seeds)"}
    for key in COLUMNS[1:]:
        values = [r[key] for r in runs]
        if len(set(values)) == 1:  # the same in every run (rows, epochs)
            out[key] = values[0]
            continue
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        digits = 4 if "accuracy" in key else 2
        out[key] = f"{statistics.mean(values):.{digits}f} +- {spread:.{digits}f}"
    return out


if __name__ == "__main__":
    main()
