"""Label audit: does `audit` find planted label errors in real SST-2 with real MiniLM, and does
training without them recover the accuracy the errors cost?

A seeded random subset of SST-2 train (3,000 rows by default) gets a seeded 5% of its labels
flipped. `audit` (k folds x 1 epoch by default) flags rows; we report precision and recall of
the flagged rows against the planted flips at cleanlab's own count and at the top 5% (by the
probability of the given label), for each cleanlab filter on the same out-of-fold
probabilities. Then three runs with the same options, scored on GLUE's validation split
(872 rows): trained on the flipped labels, on the flipped labels without the flagged rows
(exclude_rows=label_issues.csv), and on the true labels.

    python bench/audit.py                          # 3,000 rows, 5 folds, 1 epoch (~10 min on 2 cores)
    python bench/audit.py --rows 1000 --folds 3    # a quick look
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import common
import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model", default=common.MINILM, help="'minilm' (real pretrained weights) or a model folder"
    )
    p.add_argument("--rows", type=int, default=3000, help="SST-2 training rows audited")
    p.add_argument("--noise", type=float, default=0.05, help="share of labels flipped")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=float, default=1.0, help="num_train_epochs (folds and runs)")
    p.add_argument("--seed", type=int, default=0, help="subset and flips")
    p.add_argument(
        "--args", default="", help="extra fine_tune arguments as key=value,... (e.g. learning_rate=5e-5)"
    )
    p.add_argument(
        "--output-dir", type=Path, default=None, help="kept (default: a temporary folder, removed at the end)"
    )
    return p.parse_args(argv)


def precision_recall(flagged: list[int], planted: set[int]) -> tuple[float, float]:
    hits = len(set(flagged) & planted)
    return hits / max(1, len(flagged)), hits / max(1, len(planted))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common.require_shared("audit (the SST-2 data)")
    import torch

    from modernbert_tasks import audit, fine_tune
    from modernbert_tasks.auditing.issues import FILTERS, find_issues

    model = str(common.minilm_dir()) if args.model == common.MINILM else args.model
    print(common.machine_header(f"audit: {args.model} on SST-2 with planted label flips"))
    print(f"cpu capability: {torch.backends.cpu.get_cpu_capability()}")
    out = common.scratch_dir(args.output_dir, "bench-audit-")
    rows = common.read_sst2("train", args.rows, seed=args.seed)
    planted = set(random.Random(args.seed + 1).sample(range(len(rows)), round(args.noise * len(rows))))
    noisy = [(t, 1 - y if i in planted else y) for i, (t, y) in enumerate(rows)]
    clean_file = common.write_tsv(out / "true.tsv", rows)
    noisy_file = common.write_tsv(out / "flipped.tsv", noisy)
    options = {
        "num_train_epochs": args.epochs,
        "max_length": 64,
        "report_to": "none",
        "disable_tqdm": True,
        "seed": 42,
        **common.parse_kv(args.args),
    }
    print(
        f"model: {model}; {len(rows)} rows, {len(planted)} flipped (seed {args.seed}); "
        f"{args.folds} folds; fine_tune options: {options}"
    )

    start = time.perf_counter()
    result = audit(
        "sst2",
        model_name=model,
        output_dir=out / "audit",
        train_file=str(noisy_file),
        folds=args.folds,
        **options,
    )
    audit_min = (time.perf_counter() - start) / 60
    given = result.given
    top = np.argsort(result.quality, kind="stable")[: len(planted)].tolist()
    table = []
    for method in FILTERS:
        flagged = find_issues(given, result.probabilities, result.labels, False, method).ranked
        p, r = precision_recall(flagged, planted)
        table.append(
            {"selection": f"cleanlab {method}", "flagged": len(flagged), "precision": p, "recall": r}
        )
    p, r = precision_recall(top, planted)
    table.append(
        {"selection": f"top {args.noise:.0%} by p(given)", "flagged": len(top), "precision": p, "recall": r}
    )
    truth = np.array([y for _, y in rows])
    oof_accuracy = float((result.probabilities.argmax(axis=1) == truth).mean())
    print(
        f"\naudit: {audit_min:.1f} min; out-of-fold accuracy vs the true labels "
        f"{oof_accuracy:.4f}; cleanlab (default filter) flagged {len(result.flagged)}"
    )
    print(common.format_table(table, ["selection", "flagged", "precision", "recall"]))

    validation = str(common.SST2_DIR / "validation.tsv")
    runs: list[dict[str, Any]] = []
    plain = {
        **options,
        "validation_file": validation,
        "eval_strategy": "no",
        "load_best_model_at_end": False,
        "overwrite": True,
    }
    for name, train, extra in (
        ("flipped labels", noisy_file, {}),
        (
            f"flipped, {len(result.flagged)} flagged rows excluded",
            noisy_file,
            {"exclude_rows": str(result.issues_file)},
        ),
        ("true labels", clean_file, {}),
    ):
        t0 = time.perf_counter()
        run = fine_tune(
            "sst2",
            model_name=model,
            output_dir=str(out / name.split(",")[0].replace(" ", "-")),
            train_file=str(train),
            **plain,
            **extra,
        )
        runs.append(
            {
                "training data": name,
                "train rows": run_rows(run),
                "validation accuracy": float(run.metrics["accuracy"]),
                "min": (time.perf_counter() - t0) / 60,
            }
        )
    print()
    print(
        common.format_table(
            runs, ["training data", "train rows", "validation accuracy", "min"], digits={"min": 1}
        )
    )
    flipped_acc, cleaned_acc, true_acc = (r["validation accuracy"] for r in runs)
    gap = true_acc - flipped_acc
    if gap > 0:
        print(
            f"gap recovered by cleaning: {(cleaned_acc - flipped_acc) / gap:.0%} "
            f"({cleaned_acc - flipped_acc:+.4f} of {gap:+.4f})"
        )
    else:
        print(f"no gap to recover: true labels {true_acc:.4f} vs flipped {flipped_acc:.4f}")
    print(f"end: {common.load_line()}")


def run_rows(run: Any) -> int:
    manifest = json.loads((Path(run.model_path) / "modernbert_tasks.json").read_text())
    return int(manifest["training"]["num_examples"]["train"])


if __name__ == "__main__":
    main()
