"""An audit's folds and its folder: which fold each row is in, the plan an audit is made
from, and the checks that let resume=True continue only the same audit."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ..task import Task
from ..training.exclusion import AUDIT_SUMMARY

__all__ = [
    "PLAN_FILE",
    "PLOT_FILE",
    "DATA_MAP_FILE",
    "ISSUES_FILE",
    "PREDICTIONS_FILE",
    "assign_folds",
    "fold_name",
    "fold_count",
    "fingerprint",
    "model_id",
    "plain_options",
    "check_folder",
    "read_json",
    "write_json",
]

logger = logging.getLogger(__name__)

ISSUES_FILE = "label_issues.csv"
PLAN_FILE = "audit_plan.json"  # what the folder's folds were made from (resume checks it)
PLOT_FILE = "noise_matrix.png"
DATA_MAP_FILE = "data_map.csv"  # with data_map=True (auditing/data_map.py)
PREDICTIONS_FILE = "held_out_predictions.json"  # a fold's output: its presence = fold done


def assign_folds(given: list[Any], task: Task, folds: int, seed: int, multi_label: bool) -> np.ndarray:
    """Each row's fold: stratified by label (single-label), shuffled and seeded."""
    from sklearn.model_selection import KFold, StratifiedKFold

    names = list(task.labels)
    if multi_label:
        counts = Counter(k for row in given for k, v in enumerate(row) if v > 0.5)
    else:
        counts = Counter(given)
    if len(counts) < 2:
        only = names[next(iter(counts))] if counts else None
        raise DataError(
            f"The training data has a single label ({only!r}, all {len(given)} "
            "rows): there is nothing to tell apart, so no label can be doubted. "
            "Audit data with at least two labels."
        )
    few = {names[k]: n for k, n in sorted(counts.items()) if n < folds}
    if few:
        shown = ", ".join(f"{name!r} has {n} row{'s' * (n != 1)}" for name, n in few.items())
        fewest = min(few.values())
        fewer = f"Pass fewer folds (folds={fewest}), add" if fewest >= 2 else "Add"
        raise DataError(
            f"Too few rows per label for {folds} folds: {shown}; every label needs "
            f"at least {folds} (one per fold). {fewer} rows, or merge the rare labels."
        )
    assignment = np.empty(len(given), dtype=np.int64)
    splitter = (
        KFold(folds, shuffle=True, random_state=seed)
        if multi_label
        else StratifiedKFold(folds, shuffle=True, random_state=seed)
    )
    stratify = None if multi_label else given
    for k, (_, held) in enumerate(splitter.split(np.zeros(len(given)), stratify)):
        assignment[held] = k
    return assignment


def fold_name(unit: int, folds: int) -> str:
    """The folder of fold run `unit` (0-based over rounds): fold-<i> in the first round, so an
    audit with one round reads as before, and fold-<i>-round-<r> in round r >= 2."""
    fold, round_ = unit % folds + 1, unit // folds + 1
    return f"fold-{fold}" if round_ == 1 else f"fold-{fold}-round-{round_}"


def fold_count(plan: dict[str, Any]) -> int:
    """Fold runs an audit plan makes: folds x repeats (plans before repeats had one round)."""
    return int(plan.get("folds") or 0) * int(plan.get("repeats") or 1)


def fingerprint(texts: list[str], given: list[Any]) -> str:
    digest = hashlib.sha256()
    for text, label in zip(texts, given, strict=True):
        digest.update(f"{text}\x00{label}\x01".encode())
    return digest.hexdigest()[:16]


# options that change how a run reports, not what its model learns, and where the training
# data lies (its content is compared through the plan's "data" fingerprint; the seed through
# the plan's "seed"): free to differ
# when resuming
_NOT_LEARNING = (
    "seed",
    "train_file",
    "data_dir",
    "data_files",
    "report_to",
    "disable_tqdm",
    "logging_dir",
    "logging_steps",
    "logging_strategy",
    "logging_first_step",
    "callbacks",
    "cache_dir",
    "save_total_limit",
    "dataloader_num_workers",
    "use_cpu",
)


def model_id(model_name: Any) -> str:
    """A local model folder by its real path (so ./model and /abs/model are the same)."""
    path = Path(model_name).expanduser()
    return str(path.resolve()) if path.exists() else os.fspath(model_name)


def plain_options(args: dict[str, Any]) -> dict[str, Any]:
    """The options that shape what the folds learn, as JSON, for comparing an earlier audit's
    plan (a one-item list reads as its item: --report-to none is ['none'])."""
    kept = {
        k: v[0] if isinstance(v, list | tuple) and len(v) == 1 else v
        for k, v in sorted(args.items())
        if k not in _NOT_LEARNING
    }
    return json.loads(json.dumps(kept, default=str))


def check_folder(out: Path, plan: dict[str, Any], resume: bool, overwrite: bool) -> set[int]:
    """The folds already done; refuses a folder holding something else, as `train` does."""
    from ..training.checkpoints import checkpoint_folders

    where = os.fspath(out)
    foreign = [p.name for p in checkpoint_folders(out)][-2:]
    foreign += ["model/"] if (out / "model").is_dir() else []
    if foreign:
        raise ConfigError(
            f"output_dir {where!r} holds a training run ({', '.join(foreign)}), "
            "not an audit. Pass another output_dir for the audit, e.g. "
            "output_dir='runs/audit' (CLI: --output-dir runs/audit)."
        )
    earlier_plan = out / PLAN_FILE
    fold_dirs = sorted(out.glob("fold-*"))
    if earlier_plan.is_file() or fold_dirs:
        if overwrite:
            for path in fold_dirs:
                shutil.rmtree(path)
            for name in (PLAN_FILE, ISSUES_FILE, AUDIT_SUMMARY, PLOT_FILE, DATA_MAP_FILE):
                (out / name).unlink(missing_ok=True)
            for cleaned in out.glob("*.cleaned.*"):  # write_cleaned's copies of the old result
                cleaned.unlink()
            logger.info("overwrite=True: removed the earlier audit in %s.", out)
        else:
            earlier = read_json(earlier_plan)
            if not earlier:
                raise ConfigError(
                    f"output_dir {where!r} holds audit folds ({', '.join(p.name for p in fold_dirs[:3])}"
                    f"{', ...' if len(fold_dirs) > 3 else ''}) but {PLAN_FILE} is missing or "
                    "unreadable, so they cannot be matched to this audit. Pass overwrite=True to "
                    "delete them and start over (CLI: --overwrite), or another output_dir."
                )
            # more (or fewer) repeats add (or leave out) whole rounds: the same audit, resumable
            differs = [k for k in plan if k not in ("options", "repeats") and earlier.get(k) != plan[k]]
            before, now = plain_options(earlier.get("options") or {}), plan["options"]
            differs += [
                f"{k} ({before.get(k)!r} then, {now.get(k)!r} now)"
                for k in sorted(before.keys() | now.keys())
                if before.get(k) != now.get(k)
            ]
            done = {
                k
                for k in range(fold_count(plan))
                if (out / fold_name(k, plan["folds"]) / PREDICTIONS_FILE).is_file()
            }
            if not resume:
                made = fold_count(earlier)
                done_then = sum(
                    (out / fold_name(k, earlier["folds"]) / PREDICTIONS_FILE).is_file() for k in range(made)
                )
                raise ConfigError(
                    f"output_dir {where!r} holds an earlier audit ({done_then} of "
                    f"{made or '?'} folds done). Pass resume=True to continue it "
                    "(CLI: --resume), overwrite=True to delete it and start over (CLI: "
                    "--overwrite), or another output_dir."
                )
            if differs:
                raise ConfigError(
                    f"output_dir {where!r} holds an audit of other data or settings (differs in: "
                    f"{', '.join(differs)}), which resume=True cannot continue. Pass "
                    "overwrite=True to delete it and start over (CLI: --overwrite), or another "
                    "output_dir."
                )
            if earlier.get("repeats", 1) != plan.get("repeats", 1):
                write_json(earlier_plan, plan)
            return done
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / PLAN_FILE, plan)
    return set()


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_json(path: Path, value: Any) -> None:
    staged = path.with_suffix(f".{os.getpid()}.tmp")
    staged.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(staged, path)
