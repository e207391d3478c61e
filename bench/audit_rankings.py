"""Label audit, offline: score the held-out rankings of several `bench/audit.py` folders (the
same rows and flips, other seeds) alone and averaged, without training anything.

Each folder is one audit's --output-dir (its true.tsv, flipped.tsv and audit/ folds). It scores
each audit's first round, each audit's mean over its rounds (--repeats), and the mean of every
round's held-out probabilities (a seed ensemble built from separate audits, what
`audit(repeats=R)` does in one). The columns: out-of-fold accuracy against the true labels, the
precision of the top n by p(given) (n: the number of flips, so precision = recall there), the
ranking's average precision (AP), the most recall any cut keeps at precision >= 0.6, and the
precision at recall 0.6. Two rescalings of a single round are scored too: each fold model's own
temperature (fitted on its held-out rows against the given labels) and ranks within each fold.
--false-positives lists the rows in the last ranking's top n that are not planted flips (given
label: 0 negative, 1 positive), to read what the model gets wrong: a misread text, a phrase with
no sentiment of its own, or a label SST-2 itself has wrong.

    python bench/audit.py --epochs 2 --no-runs --args seed=42 --output-dir /tmp/a-s42   # and seed=1, 2
    python bench/audit_rankings.py /tmp/a-s42 /tmp/a-s1 /tmp/a-s2 --false-positives
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
    p.add_argument(
        "--false-positives",
        action="store_true",
        help="list the rows in the last ranking's top n that are not planted flips",
    )
    return p.parse_args(argv)


def rounds(folder: Path, given: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per round of the audit (--repeats): p(given) from the fold model that never saw each
    row, and each row's fold."""
    from modernbert_tasks.auditing.folds import PREDICTIONS_FILE, fold_name

    plan = json.loads((folder / "audit" / "audit_plan.json").read_text())
    folds, out = plan["folds"], []
    for r in range(plan.get("repeats", 1)):
        p_given, fold = np.full(len(given), np.nan), np.zeros(len(given), dtype=np.int64)
        for k in range(folds):
            unit = r * folds + k
            saved = json.loads((folder / "audit" / fold_name(unit, folds) / PREDICTIONS_FILE).read_text())
            rows = np.asarray(saved["rows"])
            p_given[rows] = np.asarray(saved["probabilities"])[np.arange(len(rows)), given[rows]]
            fold[rows] = k
        assert not np.isnan(p_given).any(), f"{folder}: a fold's predictions are missing (round {r + 1})"
        out.append((p_given, fold))
    return out


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

    table, held, last = [], [], np.empty(0)
    for folder in args.folders:
        each = rounds(folder, given)
        (p_given, fold), name = each[0], folder.name + (", round 1" if len(each) > 1 else "")
        table.append(scores(name, p_given, flips, agrees(p_given)))
        rescaled = per_fold_temperature(p_given, fold)
        table.append(scores(f"{name}, temperature per fold", rescaled, flips, None))
        table.append(scores(f"{name}, rank within fold", per_fold_rank(p_given, fold), flips, None))
        last = p_given
        if len(each) > 1:
            last = np.mean([p for p, _ in each], axis=0)
            table.append(scores(f"{folder.name}, {len(each)} rounds", last, flips, agrees(last)))
        held += [p for p, _ in each]
    if len(args.folders) > 1:
        last = np.mean(held, axis=0)
        table.append(scores(f"mean of all {len(held)} rounds", last, flips, agrees(last)))
    print(f"{len(given)} rows, {int(flips.sum())} flipped")
    columns = ["held-out probabilities", "out-of-fold accuracy", "top-n precision", "AP"]
    columns += ["R@P>=0.6", "P@R=0.6"]
    print(common.format_table(table, columns))
    if args.false_positives:
        texts = [t for t, _ in common.read_tsv(args.folders[0] / "flipped.tsv")]
        top = np.argsort(last, kind="stable")[: int(flips.sum())]
        wrong = [int(i) for i in top if not flips[i]]
        print(
            f"\n{len(wrong)} of the top {len(top)} rows are not planted flips (p(given), given label, text):"
        )
        for i in wrong:
            print(f"{last[i]:.3f}  {given[i]}  {texts[i].strip()}")  # SST-2: 0 negative, 1 positive
    print(f"end: {common.load_line()}")


if __name__ == "__main__":
    main()
