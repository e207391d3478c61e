"""Results you can trust, measured: real pretrained all-MiniLM-L6-v2 on real SST-2 (../shared).

Parts (run one at a time; each trains MiniLM a few times on a CPU):

  seeds          fine_tune(seeds=[1, 2, 3]) on a random subset: mean +- std of validation and
                 test accuracy, and calibration (ECE, Brier) before/after temperature scaling
  imbalance      a training subset with 10% positives: macro-F1 and positive-class recall on
                 the test split, with and without class_weights="balanced"
  max_length     max_length="auto" against 128: the value, accuracy and training time
  early_stopping several epochs with and without early_stopping_patience: steps and accuracy

    python bench/trust.py --part seeds --subset 5000
    python bench/trust.py --part imbalance --subset 3000
    python bench/trust.py --part max_length --subset 5000
    python bench/trust.py --part early_stopping --subset 2000 --epochs 4

Note: max_train_samples draws its subset with the run's seed, so the seeds part measures the
spread over seeds *and* subsets (what a user with 5,000 labelled rows would see).
"""

from __future__ import annotations

import argparse
import random
import statistics
from pathlib import Path
from typing import Any

import common

PARTS = ("seeds", "imbalance", "max_length", "early_stopping")
RESUME = False  # --resume
LEARNING_RATE = None  # --learning-rate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=PARTS, required=True)
    p.add_argument(
        "--model", default=common.MINILM, help="'minilm' (real pretrained weights) or a model folder"
    )
    p.add_argument("--subset", type=int, default=5000, help="training rows")
    p.add_argument("--seeds", default="1,2,3", help="seeds part: comma-separated seeds")
    p.add_argument("--epochs", type=float, default=1.0, help="num_train_epochs")
    p.add_argument("--positive-share", type=float, default=0.1, help="imbalance part")
    p.add_argument("--patience", type=int, default=2, help="early_stopping part")
    p.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="default: the task's (3e-5 for sst2, tuned for the 396M ModernBERT-large; "
        "the 22.7M MiniLM learns little from a short run at that rate)",
    )
    p.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where fine_tune writes, kept (default: a temporary folder)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the runs in --output-dir (finished seeds are kept) instead "
        "of starting over: a long part can run in several sittings",
    )
    return p.parse_args(argv)


def _fine_tune(model: str, data_dir: Path, out: Path, **kwargs: Any):
    from modernbert_tasks import fine_tune

    kwargs.setdefault("resume" if RESUME else "overwrite", True)
    if LEARNING_RATE is not None:
        kwargs["learning_rate"] = LEARNING_RATE
    return fine_tune(
        "sst2",
        model_name=model,
        output_dir=str(out),
        data_dir=str(data_dir),
        disable_tqdm=True,
        report_to="none",
        **kwargs,
    )


def _ratios(new: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """new / base for every number (a base of 0 has no ratio)."""
    return {
        k: (new[k] / v if v else "n/a")
        for k, v in base.items()
        if isinstance(v, int | float) and isinstance(new.get(k), int | float)
    }


def _steps(result: Any) -> int:
    return max(int(e.get("step", 0)) for e in result.log_history)


def part_seeds(args, model: str, out: Path) -> None:
    from modernbert_tasks.cli.train import format_seed_table

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    result = _fine_tune(
        model, common.SST2_DIR, out, seeds=seeds, max_train_samples=args.subset, num_train_epochs=args.epochs
    )
    print(f"\n{len(seeds)} seeds x {args.subset} training rows, {args.epochs} epoch(s):\n")
    print(format_seed_table(result))
    summary = result.seeds["summary"]
    rows = []
    for split, prefix in (("validation (fitted on)", ""), ("test (held out)", "test_")):
        row: dict[str, Any] = {"split": split}
        for name in ("ece", "brier"):
            before = summary[f"{prefix}{name}"]["mean"]
            after = summary[f"{prefix}{name}_calibrated"]["mean"]
            row |= {f"{name} before": before, f"{name} after": after, f"{name} after/before": after / before}
        rows.append(row)
    temps = [m["temperature"] for m in result.seeds["per_seed"].values()]
    print(f"\nCalibration (mean over seeds; temperatures {', '.join(f'{t:.3f}' for t in temps)}):")
    print(
        common.format_table(
            rows,
            [
                "split",
                "ece before",
                "ece after",
                "ece after/before",
                "brier before",
                "brier after",
                "brier after/before",
            ],
        )
    )


def _imbalanced_dir(root: Path, n: int, share: float, seed: int = 0) -> Path:
    rows = common.read_sst2("train")
    rng = random.Random(seed)
    positives = [r for r in rows if r[1] == 1]
    negatives = [r for r in rows if r[1] == 0]
    n_pos = round(n * share)
    train = rng.sample(positives, n_pos) + rng.sample(negatives, n - n_pos)
    rng.shuffle(train)
    root.mkdir(parents=True, exist_ok=True)
    common.write_tsv(root / "train.tsv", train)
    for split in ("validation", "test"):
        common.write_tsv(root / f"{split}.tsv", common.read_sst2(split))
    return root


def part_imbalance(args, model: str, out: Path) -> None:
    from modernbert_tasks import load_finetuned

    data = _imbalanced_dir(out / "data", args.subset, args.positive_share)
    rows = []
    for name, weights in (("unweighted", None), ("class_weights='balanced'", "balanced")):
        result = _fine_tune(
            model, data, out / name.split("=")[0], class_weights=weights, num_train_epochs=args.epochs
        )
        test = load_finetuned(result.model_path).evaluate(split="test", data_dir=str(data))
        per_class = test["per_class"]
        rows.append(
            {
                "run": name,
                "test accuracy": test["accuracy"],
                "test macro-F1": statistics.fmean(c["f1"] for c in per_class.values()),
                "positive recall": per_class["positive"]["recall"],
                "negative recall": per_class["negative"]["recall"],
            }
        )
    rows.append({"run": "ratio balanced/unweighted", **_ratios(rows[1], rows[0])})
    print(
        f"\n{args.subset} training rows, {args.positive_share:.0%} positive; test split "
        "(1,821 rows, balanced):"
    )
    print(
        common.format_table(
            rows, ["run", "test accuracy", "test macro-F1", "positive recall", "negative recall"]
        )
    )


def part_max_length(args, model: str, out: Path) -> None:
    rows = []
    for value in ("auto", 128):
        result = _fine_tune(
            model,
            common.SST2_DIR,
            out / str(value),
            max_length=value,
            max_train_samples=args.subset,
            num_train_epochs=args.epochs,
            temperature_scaling=False,
        )
        manifest = (result.model_path / "modernbert_tasks.json").read_text()
        import json

        rows.append(
            {
                "max_length": str(value),
                "value used": json.loads(manifest)["max_length"],
                "validation accuracy": result.metrics["accuracy"],
                "test accuracy": result.metrics["test_accuracy"],
                "train s": result.metrics["train_runtime"],
            }
        )
    rows.append({"max_length": "ratio auto/128", **_ratios(rows[0], rows[1])})
    print(f"\n{args.subset} training rows, {args.epochs} epoch(s):")
    print(
        common.format_table(
            rows, ["max_length", "value used", "validation accuracy", "test accuracy", "train s"]
        )
    )


def part_early_stopping(args, model: str, out: Path) -> None:
    rows = []
    for name, patience in (("full run", None), (f"patience {args.patience}", args.patience)):
        result = _fine_tune(
            model,
            common.SST2_DIR,
            out / str(patience),
            early_stopping_patience=patience,
            max_train_samples=args.subset,
            num_train_epochs=args.epochs,
            temperature_scaling=False,
        )
        evals = [e for e in result.log_history if "eval_accuracy" in e]
        rows.append(
            {
                "run": name,
                "steps": _steps(result),
                "evaluations": len(evals),
                "validation accuracy": result.metrics["accuracy"],
                "test accuracy": result.metrics["test_accuracy"],
                "train s": result.metrics["train_runtime"],
            }
        )
    rows.append({"run": "ratio early/full", **_ratios(rows[1], rows[0])})
    print(f"\n{args.subset} training rows, up to {args.epochs} epoch(s), evaluation every 10% of the run:")
    print(
        common.format_table(
            rows, ["run", "steps", "evaluations", "validation accuracy", "test accuracy", "train s"]
        )
    )


def main(argv: list[str] | None = None) -> None:
    global RESUME, LEARNING_RATE
    args = parse_args(argv)
    RESUME, LEARNING_RATE = args.resume, args.learning_rate
    common.require_shared("trust (the SST-2 data)")
    model = str(common.minilm_dir()) if args.model == common.MINILM else args.model
    print(common.machine_header(f"trust/{args.part}: {args.model} on SST-2 through fine_tune"))
    out = common.scratch_dir(args.output_dir, "bench-trust-")
    globals()[f"part_{args.part}"](args, model, out)
    print(f"end: {common.load_line()}")


if __name__ == "__main__":
    main()
