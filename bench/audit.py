"""Label audit: does `audit` find planted label errors in real SST-2 with real MiniLM, and does
training without them recover the accuracy the errors cost?

A seeded random subset of SST-2 train (3,000 rows by default) gets a seeded 5% of its labels
flipped. `audit` (k folds x 1 epoch by default) flags rows; we report precision and recall of
the flagged rows against the planted flips at cleanlab's own count and at the top 5% (by the
probability of the given label), for each cleanlab filter on the same out-of-fold
probabilities. Both of the audit's `probabilities=` are scored from the same folds: `held_out`
(each row by the fold model that never saw it) and `fold_ensemble` (averaged with the k-1 fold
models that trained on it). The audit also records its data map (`data_map=True`): each
fold predicts its training rows --data-map-points times per epoch, and the rows are ranked by
their training dynamics pooled over the k-1 folds that trained on them: confidence (the mean
probability of the given label), the first epoch's confidence alone, the area under the margin
(aum), and held-out p(given) averaged with the confidence (and with the first epoch's).
Then runs with the same options, scored on GLUE's validation split
(872 rows): trained on the flipped labels, on the flipped labels without the rows flagged by
each (exclude_rows=), and on the true labels.

    python bench/audit.py                          # 3,000 rows, 5 folds, 1 epoch (~10 min on 2 cores)
    python bench/audit.py --rows 1000 --folds 3    # a quick look
    python bench/audit.py --epochs 2 --no-runs     # the rankings only
    python bench/audit.py --repeats 3              # each row ranked by 3 models that never saw it
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
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="audit's repeats: the k-fold split made R times (seeds 42, 43, ...); with R > 1 the "
        "first round alone is scored beside the R rounds' mean, from the same run",
    )
    p.add_argument("--epochs", type=float, default=1.0, help="num_train_epochs (folds and runs)")
    p.add_argument("--seed", type=int, default=0, help="subset and flips")
    p.add_argument(
        "--args", default="", help="extra fine_tune arguments as key=value,... (e.g. learning_rate=5e-5)"
    )
    p.add_argument(
        "--run-seeds",
        default="42",
        help="seeds of the runs on flipped / cleaned / true labels, comma-separated; each "
        "configuration's accuracy is their mean (the audit's folds use seed 42)",
    )
    p.add_argument(
        "--data-map-points", type=int, default=4, help="data map records per epoch (audit's data_map_points)"
    )
    p.add_argument(
        "--no-runs",
        action="store_true",
        help="score the rankings only, without the runs on flipped / cleaned / true labels",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="reuse the finished folds of an earlier run in --output-dir (the same rows and options)",
    )
    p.add_argument(
        "--output-dir", type=Path, default=None, help="kept (default: a temporary folder, removed at the end)"
    )
    return p.parse_args(argv)


# cleanlab's filters that differ on binary data (prune_by_class and both flag what
# prune_by_noise_rate flags; low_* what confident_learning flags: docs/benchmarks.md)
FILTERS_SHOWN = ("prune_by_noise_rate", "confident_learning", "predicted_neq_given")


def precision_recall(flagged: list[int], planted: set[int]) -> tuple[float, float]:
    hits = len(set(flagged) & planted)
    return hits / max(1, len(flagged)), hits / max(1, len(planted))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common.require_shared("audit (the SST-2 data)")
    import torch

    from modernbert_tasks import audit, fine_tune
    from modernbert_tasks.auditing.ensemble import PROBABILITIES, combine, fold_probabilities
    from modernbert_tasks.auditing.folds import PREDICTIONS_FILE, fold_name
    from modernbert_tasks.auditing.issues import find_issues
    from modernbert_tasks.training.exclusion import write_row_file

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
        repeats=args.repeats,
        probabilities="fold_ensemble",  # the fold files then hold both; held_out is their half
        data_map=True,
        data_map_points=args.data_map_points,
        resume=args.resume,
        **options,
    )
    audit_min = (time.perf_counter() - start) / 60
    given = result.given
    n_top = len(planted)
    table = []
    cleaned: dict[str, list[int]] = {}
    sources = {source: combine(result.held_out, result.in_sample, source) for source in PROBABILITIES}
    if args.repeats > 1:  # the first round alone: the audit without repeats, from the same folds
        first = [result.output_dir / fold_name(k, args.folds) / PREDICTIONS_FILE for k in range(args.folds)]
        sources = {
            "held_out, round 1": fold_probabilities(first, len(given), len(result.labels), False)[0],
            **{f"{name}, {args.repeats} rounds": probs for name, probs in sources.items()},
        }
    for source, probs in sources.items():
        p_given = probs[np.arange(len(given)), given]
        for method in FILTERS_SHOWN:
            flagged = find_issues(given, probs, result.labels, False, method).ranked
            if method == FILTERS_SHOWN[0] and "round 1" not in source:
                cleaned[source.split(",")[0]] = flagged
            p, r = precision_recall(flagged, planted)
            table.append(
                {
                    "probabilities": source,
                    "selection": f"cleanlab {method}",
                    "flagged": len(flagged),
                    "precision": p,
                    "recall": r,
                }
            )
        top = np.argsort(p_given, kind="stable")[:n_top].tolist()
        p, r = precision_recall(top, planted)
        table.append(
            {
                "probabilities": source,
                "selection": f"top {args.noise:.0%} by p(given)",
                "flagged": n_top,
                "precision": p,
                "recall": r,
            }
        )
        table[-1]["AP"] = average_precision(p_given, planted)
        table[-1]["R@P>=0.6"] = recall_at_precision(p_given, planted, 0.6)
    table += data_map_rankings(result, given, planted, n_top, f"top {args.noise:.0%}")
    truth = np.array([y for _, y in rows])
    oof_accuracy = float((result.held_out.argmax(axis=1) == truth).mean())
    in_accuracy = float((result.in_sample.argmax(axis=1) == np.array(given)).mean())
    print(
        f"\naudit: {audit_min:.1f} min; out-of-fold accuracy vs the true labels "
        f"{oof_accuracy:.4f}; in-sample agreement with the given labels {in_accuracy:.4f}"
    )
    print(
        common.format_table(
            table, ["probabilities", "selection", "flagged", "precision", "recall", "AP", "R@P>=0.6"]
        )
    )
    print("R@P>=0.6: the most recall any cut of the ranking keeps at precision >= 0.6 (the target)")
    seconds, points = data_map_cost(result)
    print(
        f"data map: {points} points over {args.folds} folds, "
        f"{seconds:.1f} s predicting ({seconds / 60:.1f} min)"
    )
    if args.no_runs:
        print(f"end: {common.load_line()}")
        return

    validation = str(common.SST2_DIR / "validation.tsv")
    runs: list[dict[str, Any]] = []
    plain = {
        **options,
        "validation_file": validation,
        "eval_strategy": "no",
        "load_best_model_at_end": False,
        "overwrite": True,
    }
    texts = [t for t, _ in rows]
    excluded = {
        source: write_row_file(
            out / f"flagged-{source}.csv", [{"row": i, "text": texts[i]} for i in flagged], ("row", "text")
        )
        for source, flagged in cleaned.items()
    }
    plans = [("flipped labels", "flipped", noisy_file, {})]
    plans += [
        (
            f"flipped, {len(cleaned[s])} flagged ({s}) excluded",
            f"cleaned-{s}",
            noisy_file,
            {"exclude_rows": str(excluded[s])},
        )
        for s in PROBABILITIES
    ]
    plans.append(("true labels", "true", clean_file, {}))
    seeds = [int(x) for x in args.run_seeds.split(",")]
    for name, folder, train, extra in plans:
        t0 = time.perf_counter()
        scores = []
        for seed in seeds:
            run = fine_tune(
                "sst2",
                model_name=model,
                output_dir=str(out / folder),
                train_file=str(train),
                **{**plain, "seed": seed},
                **extra,
            )
            scores.append(float(run.metrics["accuracy"]))
        runs.append(
            {
                "training data": name,
                "train rows": run_rows(run),
                "validation accuracy": float(np.mean(scores)),
                "per seed": " ".join(f"{x:.4f}" for x in scores),
                "min": (time.perf_counter() - t0) / 60,
            }
        )
    print(f"\nruns: seeds {seeds}; validation accuracy is their mean")
    print(
        common.format_table(
            runs,
            ["training data", "train rows", "validation accuracy", "per seed", "min"],
            digits={"min": 1},
        )
    )
    accuracy = [r["validation accuracy"] for r in runs]
    flipped_acc, true_acc = accuracy[0], accuracy[-1]
    gap = true_acc - flipped_acc
    for source, cleaned_acc in zip(PROBABILITIES, accuracy[1:-1], strict=True):
        if gap > 0:
            print(
                f"gap recovered by cleaning ({source}): {(cleaned_acc - flipped_acc) / gap:.0%} "
                f"({cleaned_acc - flipped_acc:+.4f} of {gap:+.4f})"
            )
    if gap <= 0:
        print(f"no gap to recover: true labels {true_acc:.4f} vs flipped {flipped_acc:.4f}")
    print(f"end: {common.load_line()}")


def data_map_rankings(result: Any, given: list[int], planted: set[int], n_top: int, top: str) -> list[dict]:
    """Rankings by the training dynamics (lowest first), scored like the probabilities'."""
    from modernbert_tasks.auditing.issues import find_issues

    dm = result.data_map
    at = np.arange(len(given))
    held = result.held_out[at, given]
    early = first_epoch_confidence(result.output_dir, len(given))
    scores = {
        "data map confidence": dm.confidence,
        "data map confidence, epoch 1": early,
        "data map aum": dm.aum,
        "data map correctness": dm.correctness,
        "held_out + confidence": (held + dm.confidence) / 2,
        "held_out + epoch-1 confidence": (held + early) / 2,
        "fold_ensemble + confidence": (held + result.in_sample[at, given] + 2 * dm.confidence) / 4,
    }
    table = []
    for name, score in scores.items():
        order = np.argsort(score, kind="stable")[:n_top].tolist()
        p, r = precision_recall(order, planted)
        table.append(
            {
                "probabilities": name,
                "selection": f"{top} by it",
                "flagged": n_top,
                "precision": p,
                "recall": r,
            }
        )
        table[-1]["AP"] = average_precision(score, planted)
        table[-1]["R@P>=0.6"] = recall_at_precision(score, planted, 0.6)
        if name.startswith("held_out +"):  # binary: a probability of the given label, so cleanlab's count
            probs = np.empty_like(result.held_out)
            probs[at, given] = score
            probs[at, 1 - np.asarray(given)] = 1 - score
            flagged = find_issues(given, probs, result.labels, False, "prune_by_noise_rate").ranked
            p, r = precision_recall(flagged, planted)
            table.append(
                {
                    "probabilities": name,
                    "selection": "cleanlab prune_by_noise_rate",
                    "flagged": len(flagged),
                    "precision": p,
                    "recall": r,
                }
            )
    return table


def first_epoch_confidence(out: Path, rows: int) -> np.ndarray:
    """Each row's mean p(given) over the points of the folds' first epoch."""
    total, count = np.zeros(rows), np.zeros(rows)
    for path in sorted(Path(out).glob("fold-*/training_dynamics.json")):
        saved = json.loads(path.read_text())
        points = [p for p in saved["points"] if p["epoch"] <= 1.0 + 1e-6]
        for p in points:
            total[saved["rows"]] += p["p_given"]
            count[saved["rows"]] += 1
    return total / np.maximum(count, 1)


def data_map_cost(result: Any) -> tuple[float, int]:
    seconds, points = 0.0, 0
    for path in sorted(Path(result.output_dir).glob("fold-*/training_dynamics.json")):
        saved = json.loads(path.read_text())
        seconds += sum(p.get("seconds", 0.0) for p in saved["points"])
        points += len(saved["points"])
    return seconds, points


def average_precision(p_given: np.ndarray, planted: set[int]) -> float:
    """Average precision of the ranking by p(given), lowest first, against the planted flips."""
    order = np.argsort(p_given, kind="stable")
    hits = np.cumsum([i in planted for i in order])
    found = np.flatnonzero([i in planted for i in order])
    return float(np.mean(hits[found] / (found + 1))) if len(found) else 0.0


def recall_at_precision(score: np.ndarray, planted: set[int], precision: float) -> float:
    """The most recall of the planted flips that any cut of the ranking (lowest score first)
    keeps at `precision` or more."""
    order = np.argsort(score, kind="stable")
    hits = np.cumsum([i in planted for i in order])
    ok = hits / np.arange(1, len(order) + 1) >= precision
    return float(hits[ok].max() / len(planted)) if ok.any() else 0.0


def run_rows(run: Any) -> int:
    manifest = json.loads((Path(run.model_path) / "modernbert_tasks.json").read_text())
    return int(manifest["training"]["num_examples"]["train"])


if __name__ == "__main__":
    main()
