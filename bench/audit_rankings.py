"""Label audit, offline: score the held-out rankings of several `bench/audit.py` folders (the
same rows and flips, other seeds) alone and averaged, without training anything.

Each folder is one audit's --output-dir (its true.tsv, flipped.tsv and audit/ folds). For each
audit's first round, and for the mean of their held-out probabilities (a seed ensemble built
from separate audits, what `audit(repeats=R)` does in one), it prints out-of-fold accuracy
against the true labels, the precision of the top n by p(given) (n: the number of flips, so
precision = recall there), the ranking's average
precision (AP), the most recall any cut keeps at precision >= 0.6, and the precision at recall
0.6. Two rescalings of a single audit are scored too: each fold model's own temperature
(fitted on its held-out rows against the given labels) and ranks within each fold.

    python bench/audit.py --epochs 2 --no-runs --args seed=42 --output-dir /tmp/a-s42   # and seed=1, 2
    python bench/audit_rankings.py /tmp/a-s42 /tmp/a-s1 /tmp/a-s2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import common
import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="bench/audit.py --output-dir folders")
    return p.parse_args(argv)


def first_round(folder: Path, given: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p(given) from the fold model that never saw each row, and each row's fold."""
    from modernbert_tasks.auditing.folds import PREDICTIONS_FILE, fold_name

    plan = json.loads((folder / "audit" / "audit_plan.json").read_text())
    p_given, fold = np.full(len(given), np.nan), np.zeros(len(given), dtype=np.int64)
    for k in range(plan["folds"]):
        saved = json.loads((folder / "audit" / fold_name(k, plan["folds"]) / PREDICTIONS_FILE).read_text())
        rows = np.asarray(saved["rows"])
        p_given[rows] = np.asarray(saved["probabilities"])[np.arange(len(rows)), given[rows]]
        fold[rows] = k
    assert not np.isnan(p_given).any(), f"{folder}: a fold's predictions are missing"
    return p_given, fold


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def per_fold_temperature(p_given: np.ndarray, fold: np.ndarray) -> np.ndarray:
    from scipy.optimize import minimize_scalar

    z, out = logit(p_given), np.empty_like(p_given)
    for k in np.unique(fold):
        m = fold == k

        def nll(t: float, m: np.ndarray = m) -> float:
            return float(np.mean(np.logaddexp(0.0, -z[m] / t)))

        t = minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x
        out[m] = 1 / (1 + np.exp(-z[m] / t))
    return out


def per_fold_rank(p_given: np.ndarray, fold: np.ndarray) -> np.ndarray:
    out = np.empty_like(p_given)
    for k in np.unique(fold):
        m = np.flatnonzero(fold == k)
        out[m] = np.argsort(np.argsort(p_given[m], kind="stable"), kind="stable") / len(m)
    return out


def scores(name: str, p_given: np.ndarray, flips: np.ndarray, truth_agrees: np.ndarray | None) -> dict:
    order = np.argsort(p_given, kind="stable")
    hit = flips[order]
    hits = np.cumsum(hit)
    n = int(flips.sum())
    precision = hits / np.arange(1, len(order) + 1)
    found = np.flatnonzero(hit)
    at_recall = int(found[int(np.ceil(0.6 * n)) - 1]) + 1  # rows down to the flip that makes recall 0.6
    ok = precision >= 0.6
    accuracy = {"out-of-fold accuracy": float(truth_agrees.mean())} if truth_agrees is not None else {}
    return {
        "held-out probabilities": name,
        **accuracy,
        "top-n precision": float(hits[n - 1] / n),
        "AP": float(np.mean(hits[found] / (found + 1))),
        "R@P>=0.6": float(hits[ok].max() / n) if ok.any() else 0.0,
        "P@R=0.6": float(np.ceil(0.6 * n) / at_recall),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(common.machine_header("audit rankings: separate audits alone and averaged (no training)"))
    truth = np.array([y for _, y in common.read_tsv(args.folders[0] / "true.tsv")])
    given = np.array([y for _, y in common.read_tsv(args.folders[0] / "flipped.tsv")])
    for folder in args.folders[1:]:
        same = [y for _, y in common.read_tsv(folder / "flipped.tsv")]
        assert np.array_equal(same, given), f"{folder} audited other rows or flips"
    flips = given != truth

    def agrees(p_given: np.ndarray) -> np.ndarray:  # the prediction is the true label
        return np.where(p_given >= 0.5, given, 1 - given) == truth

    table, held = [], []
    for folder in args.folders:
        p_given, fold = first_round(folder, given)
        held.append(p_given)
        table.append(scores(folder.name, p_given, flips, agrees(p_given)))
        rescaled = per_fold_temperature(p_given, fold)
        table.append(scores(f"{folder.name}, temperature per fold", rescaled, flips, None))
        table.append(scores(f"{folder.name}, rank within fold", per_fold_rank(p_given, fold), flips, None))
    if len(held) > 1:
        mean = np.mean(held, axis=0)
        table.append(scores(f"mean of the {len(held)}", mean, flips, agrees(mean)))
    print(f"{len(given)} rows, {int(flips.sum())} flipped")
    columns = ["held-out probabilities", "out-of-fold accuracy", "top-n precision", "AP"]
    columns += ["R@P>=0.6", "P@R=0.6"]
    print(common.format_table(table, columns))
    print(f"end: {common.load_line()}")


if __name__ == "__main__":
    main()
