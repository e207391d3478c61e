"""`audit()`: out-of-sample probabilities for every training row, then cleanlab.

    >>> from modernbert_tasks import audit
    >>> result = audit(train_file="tickets.csv", folds=5)       # doctest: +SKIP
    >>> result.issues_file                                       # doctest: +SKIP
    PosixPath('runs/audit/label_issues.csv')

The training rows are split into k stratified, seeded folds. For each fold, `fine_tune` trains
on the other k-1 folds (the fold's rows excluded with `exclude_rows`, so the run reads the
user's data exactly as `train` does) in <output_dir>/fold-<i>, and the fold's model predicts the
held-out rows. Each fold is its own run: an interrupted audit continues with resume=True,
skipping the folds whose predictions are saved (held_out_predictions.json) and resuming a
fold's training from its last checkpoint. cleanlab then ranks the rows whose given label the
held-out model doubts (audit/issues.py).

Written into the audit folder: label_issues.csv (worst first; train with exclude_rows= it),
audit.json (rows, folds, noise rate per class, the confident joint), noise_matrix.png (with
matplotlib), and with write_cleaned=True a copy of the training file without the flagged rows.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, hint
from ..options import DEFAULT_MODEL, resolve_options
from ..task import Task
from ..training.exclusion import (
    AUDIT_SUMMARY,
    ROW_COLUMN,
    TEXT_COLUMN,
    row_text,
    write_row_file,
)
from ..training.task_source import data_files_of, resolve_task
from .issues import LabelIssues, find_issues, require_cleanlab, write_noise_plot

__all__ = ["audit", "AuditResult", "DEFAULT_AUDIT_DIR", "ISSUES_FILE", "PREDICTIONS_FILE"]

logger = logging.getLogger("modernbert_tasks")

DEFAULT_AUDIT_DIR = Path("runs") / "audit"
ISSUES_FILE = "label_issues.csv"
PLAN_FILE = "audit_plan.json"  # what the folder's folds were made from (resume checks it)
PLOT_FILE = "noise_matrix.png"
HELD_OUT_FILE = "held_out_rows.csv"  # a fold's rows: excluded from its training
PREDICTIONS_FILE = "held_out_predictions.json"  # a fold's output: its presence = fold done
ISSUE_COLUMNS = (
    ROW_COLUMN,
    TEXT_COLUMN,
    "given_label",
    "suggested_label",
    "given_label_probability",
    "quality",
)
# fine_tune options the audit sets itself, or that would make the folds read other rows
REFUSED = {
    "max_train_samples": "the audit reads every training row; to audit a subset, write those "
    "rows to a file and pass it as train_file",
    "exclude_rows": "the audit excludes each fold's own rows; drop exclude_rows",
    "exclude_top": "the audit excludes each fold's own rows; drop exclude_top",
    "seeds": "one seed per audit: pass seed=N",
    "push_to_hub": "fold models are scratch models; train the final model with `train`",
}


@dataclass
class AuditResult:
    """What `audit` found and wrote.

    rows: the number of training rows audited. folds: k. labels: the task's label names.
    probabilities: (rows, labels) out-of-sample probabilities. given: each row's label id
    (single-label) or multi-hot row (multi-label). flagged: the rows cleanlab flags, worst
    first (0-based data rows of the training file). noise_rate: per label, the estimated share
    of wrong labels. confident_joint: cleanlab's (given, likely true) counts.
    """

    output_dir: Path
    rows: int
    folds: int
    labels: list[str]
    problem_type: str
    probabilities: np.ndarray
    given: list[Any]
    flagged: list[int]
    quality: np.ndarray
    noise_rate: dict[str, float]
    confident_joint: list[Any]
    noise_matrix: list[list[float]] | None
    issues_file: Path
    summary_file: Path
    plot_file: Path | None
    cleaned_file: Path | None
    folds_run: int  # folds trained by this call (the others were done already)

    def to_dict(self) -> dict[str, Any]:
        return json.loads((self.summary_file).read_text(encoding="utf-8"))


def audit(
    task: str | Task | None = None,
    model_name: str | os.PathLike = DEFAULT_MODEL,
    output_dir: str | os.PathLike | None = None,
    *,
    folds: int = 5,
    write_cleaned: bool = False,
    filter_by: str = "prune_by_noise_rate",
    **args: Any,
) -> AuditResult:
    """Find likely wrong labels in the training data with out-of-sample predictions.

    Args:
        task, model_name, **args: as for `fine_tune` (a task name, or train_file=...,
            text_columns=..., label_column=...; model, epochs, max_length, precision, seed...).
            Each fold trains with them. validation_fraction defaults to 0 here (no share of a
            fold's rows is held out for evaluation) unless you pass it.
        output_dir: the audit folder (default runs/audit); fold i trains in <output_dir>/fold-i.
        folds: k, at least 2; every class needs at least k rows.
        write_cleaned: also write the training file without the flagged rows.
        filter_by: cleanlab's `find_label_issues` method (default prune_by_noise_rate).
        resume=True (in args): continue an interrupted audit in output_dir;
        overwrite=True: delete an earlier audit there and start over.

    Raises:
        ConfigError: bad options, cleanlab missing, a regression task, a folder holding
            another run. DataError: a class with fewer rows than folds, a single class.
    """
    require_cleanlab()  # before any training
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(
            f"folds={folds!r} must be an integer >= 2 (each fold's model trains "
            "on the other folds), e.g. folds=5."
        )
    for name, why in REFUSED.items():
        if args.get(name) not in (None, False):
            raise ConfigError(f"audit does not take {name}={args[name]!r}: {why}.")
    resume, overwrite = args.pop("resume", False), bool(args.pop("overwrite", False))
    if resume not in (False, True):
        raise ConfigError(
            f"resume={resume!r}: an audit resumes its own folder; pass resume=True (CLI: --resume)."
        )
    if resume and overwrite:
        raise ConfigError(
            "resume=True and overwrite=True contradict each other: resume "
            "continues the earlier audit, overwrite deletes it. Pass one."
        )
    task, _, args = resolve_task(task, args)
    if task.problem_type == "regression":
        raise ConfigError(
            f"Task {task.name!r} is a regression task: the label audit supports "
            "single-label and multi-label classification only (cleanlab's label "
            "issues need classes)."
        )
    args.setdefault("validation_fraction", 0.0)
    opts = resolve_options(task, args).options  # every option checked before anything runs
    out = Path(output_dir) if output_dir is not None else DEFAULT_AUDIT_DIR
    multi_label = task.problem_type == "multi_label_classification"

    train = _training_split(task, opts)
    texts = [row_text(example, task.text_columns) for example in train]
    columns = [train[c] for c in task.text_columns]
    inputs = list(zip(*columns, strict=True)) if len(columns) == 2 else list(columns[0])
    given = list(train["label"])
    assignment = _assign_folds(given, task, folds, opts.seed, multi_label)
    plan = {
        "task": task.name,
        "rows": len(train),
        "folds": folds,
        "seed": opts.seed,
        "model": _model_id(model_name),
        "data": _fingerprint(texts, given),
        "options": _plain(args),
    }

    from ..training.locking import run_lock

    with run_lock(out):
        done = _check_folder(out, plan, resume, overwrite)
        probabilities = np.zeros((len(train), task.num_labels))
        trained = 0
        for k in range(folds):
            rows = [i for i in range(len(train)) if assignment[i] == k]
            fold_dir = out / f"fold-{k + 1}"
            if k in done:
                logger.info(
                    "Audit fold %d/%d: done earlier (%s), skipped.", k + 1, folds, fold_dir / PREDICTIONS_FILE
                )
            else:
                logger.info(
                    "Audit fold %d/%d: training on %d rows, predicting %d held-out rows (%s).",
                    k + 1,
                    folds,
                    len(train) - len(rows),
                    len(rows),
                    fold_dir,
                )
                _run_fold(task, model_name, fold_dir, rows, texts, inputs, args, resume)
                trained += 1
            saved = json.loads((fold_dir / PREDICTIONS_FILE).read_text(encoding="utf-8"))
            probabilities[saved["rows"]] = np.asarray(saved["probabilities"])
        labels = list(task.labels)
        issues = find_issues(given, probabilities, labels, multi_label, filter_by)
        issues_file = _write_issues(out / ISSUES_FILE, issues, texts, given, labels, multi_label)
        summary_file = _write_summary(out / AUDIT_SUMMARY, plan, issues, labels, task)
        plot_file = write_noise_plot(issues, labels, out / PLOT_FILE)
        cleaned = _write_cleaned(task, opts, out, issues.ranked) if write_cleaned else None
    return AuditResult(
        output_dir=out,
        rows=len(train),
        folds=folds,
        labels=labels,
        problem_type=task.problem_type,
        probabilities=probabilities,
        given=given,
        flagged=issues.ranked,
        quality=issues.quality,
        noise_rate=issues.noise_rate,
        confident_joint=issues.confident_joint,
        noise_matrix=issues.noise_matrix,
        issues_file=issues_file,
        summary_file=summary_file,
        plot_file=plot_file,
        cleaned_file=cleaned,
        folds_run=trained,
    )


# --- data and folds ---------------------------------------------------------------------------
def _training_split(task: Task, opts: Any):
    values = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}
    splits = task.load_dataset(
        data_dir=opts.data_dir and os.fspath(opts.data_dir),
        data_files=data_files_of(values),
        cache_dir=opts.cache_dir and os.fspath(opts.cache_dir),
        revision=opts.data_revision,
    )
    if "train" not in splits:
        raise DataError(
            f"Task {task.name!r}: the data has no training split to audit (found "
            f"{sorted(splits)}). Pass " + hint("train_file=...", "--train-file FILE") + "."
        )
    return splits["train"]


def _assign_folds(given: list[Any], task: Task, folds: int, seed: int, multi_label: bool) -> np.ndarray:
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
        raise DataError(
            f"Too few rows per label for {folds} folds: {shown}; every label needs "
            f"at least {folds} (one per fold). Pass fewer folds (folds="
            f"{max(2, min(few.values()))} if that is at least 2), add rows, or "
            "merge the rare labels."
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


def _fingerprint(texts: list[str], given: list[Any]) -> str:
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


def _model_id(model_name: Any) -> str:
    """A local model folder by its real path (so ./model and /abs/model are the same)."""
    path = Path(model_name).expanduser()
    return str(path.resolve()) if path.exists() else os.fspath(model_name)


def _plain(args: dict[str, Any]) -> dict[str, Any]:
    """The options that shape what the folds learn, as JSON, for comparing an earlier audit's
    plan (a one-item list reads as its item: --report-to none is ['none'])."""
    kept = {
        k: v[0] if isinstance(v, list | tuple) and len(v) == 1 else v
        for k, v in sorted(args.items())
        if k not in _NOT_LEARNING
    }
    return json.loads(json.dumps(kept, default=str))


# --- the folder ---------------------------------------------------------------------------
def _check_folder(out: Path, plan: dict[str, Any], resume: bool, overwrite: bool) -> set[int]:
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
            for name in (PLAN_FILE, ISSUES_FILE, AUDIT_SUMMARY, PLOT_FILE):
                (out / name).unlink(missing_ok=True)
            logger.info("overwrite=True: removed the earlier audit in %s.", out)
        else:
            earlier = _read_json(earlier_plan)
            differs = [k for k in plan if k != "options" and earlier.get(k) != plan[k]]
            before, now = _plain(earlier.get("options") or {}), plan["options"]
            differs += [
                f"{k} ({before.get(k)!r} then, {now.get(k)!r} now)"
                for k in sorted(before.keys() | now.keys())
                if before.get(k) != now.get(k)
            ]
            done = {k for k in range(plan["folds"]) if (out / f"fold-{k + 1}" / PREDICTIONS_FILE).is_file()}
            if not resume:
                raise ConfigError(
                    f"output_dir {where!r} holds an earlier audit ({len(done)} of "
                    f"{earlier.get('folds', '?')} folds done). Pass resume=True to continue it "
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
            return done
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / PLAN_FILE, plan)
    return set()


def _run_fold(
    task: Task,
    model_name: Any,
    fold_dir: Path,
    rows: list[int],
    texts: list[str],
    inputs: list[Any],
    args: dict[str, Any],
    resume: bool,
) -> None:
    from ..inference.loading import load_finetuned
    from ..training.engine import fine_tune

    fold_dir.mkdir(parents=True, exist_ok=True)
    held_out = write_row_file(
        fold_dir / HELD_OUT_FILE,
        [{ROW_COLUMN: i, TEXT_COLUMN: texts[i]} for i in rows],
        (ROW_COLUMN, TEXT_COLUMN),
    )
    model = fold_dir / "model"
    if not (model / "modernbert_tasks.json").is_file():
        fine_tune(task, model_name, fold_dir, exclude_rows=held_out, resume=resume, **args)
    predictor = load_finetuned(model)
    predictor.warn_truncation = False
    predicted = predictor.predict([inputs[i] for i in rows], show_progress=False)
    probabilities = []
    for p in predicted:
        if "probabilities" in p:
            probabilities.append([float(p["probabilities"][name]) for name in task.labels])
        else:  # an empty text: the model cannot say anything, so it doubts nothing
            probabilities.append([1.0 / task.num_labels] * task.num_labels)
    _write_json(fold_dir / PREDICTIONS_FILE, {"rows": rows, "probabilities": probabilities})


# --- outputs ------------------------------------------------------------------------------
def _label_text(value: Any, labels: list[str], multi_label: bool) -> str:
    if multi_label:
        return ",".join(labels[k] for k, v in enumerate(value) if v > 0.5)
    return labels[int(value)]


def _write_issues(
    path: Path, issues: LabelIssues, texts: list[str], given: list[Any], labels: list[str], multi_label: bool
) -> Path:
    rows = []
    for i in issues.ranked:
        suggested = issues.suggested[i]
        rows.append(
            {
                ROW_COLUMN: i,
                TEXT_COLUMN: texts[i],
                "given_label": _label_text(given[i], labels, multi_label),
                "suggested_label": ",".join(labels[k] for k in suggested),
                "given_label_probability": f"{issues.given_probability[i]:.4f}",
                "quality": f"{issues.quality[i]:.4f}",
            }
        )
    return write_row_file(path, rows, ISSUE_COLUMNS)


def _write_summary(
    path: Path, plan: dict[str, Any], issues: LabelIssues, labels: list[str], task: Task
) -> Path:
    summary = {
        "task": task.name,
        "problem_type": task.problem_type,
        "rows": plan["rows"],
        "folds": plan["folds"],
        "seed": plan["seed"],
        "labels": labels,
        "flagged": len(issues.ranked),
        "method": {
            "filter_by": issues.filter_by,
            "ranked_by": "self_confidence",
            "cleanlab": _cleanlab_version(),
        },
        "noise_rate": {k: round(v, 4) for k, v in issues.noise_rate.items()},
        "confident_joint": issues.confident_joint,
        "confident_joint_axes": (
            "[given label][likely true label]"
            if issues.noise_matrix is not None
            else "[label][given 0/1][likely true 0/1]"
        ),
        "noise_matrix": issues.noise_matrix,
        "noise_matrix_axes": "[true label][given label]: P(given | true)"
        if issues.noise_matrix is not None
        else None,
        "issues_file": ISSUES_FILE,
    }
    _write_json(path, summary)
    return path


def _write_cleaned(task: Task, opts: Any, out: Path, flagged: list[int]) -> Path:
    """The training file without the flagged rows, in its own format, every column kept."""
    from ..data import find_split_files, read_data_file

    values = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}
    files = data_files_of(values) or {}
    source = files.get("train")
    if source is None and opts.data_dir:
        source = find_split_files(opts.data_dir, task.splits).get("train")
    if source is None:
        raise ConfigError(
            "write_cleaned=True copies a local training file, and this data comes "
            "from the hub. Train with "
            + hint("exclude_rows='runs/audit/label_issues.csv'", "--exclude-rows runs/audit/label_issues.csv")
            + " instead."
        )
    source = Path(source)
    raw = read_data_file(source, opts.cache_dir and os.fspath(opts.cache_dir))
    doomed = set(flagged)
    kept = raw.select([i for i in range(len(raw)) if i not in doomed])
    ext = source.suffix.lower()
    target = out / f"{source.stem}.cleaned{source.suffix}"
    if ext in (".csv", ".tsv"):
        tab = ext == ".tsv"
        with open(target, "w", newline="", encoding="utf-8") as fh:
            if tab:  # GLUE-style TSV: no quoting at all, as read_data_file reads it
                writer = csv.writer(
                    fh, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, quotechar=None
                )
            else:
                writer = csv.writer(fh, delimiter=",", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
            writer.writerow(kept.column_names)
            for record in kept:
                writer.writerow(["" if record[c] is None else record[c] for c in kept.column_names])
    elif ext == ".parquet":
        kept.to_parquet(os.fspath(target))
    else:  # .json / .jsonl: one object a line
        target = target.with_suffix(".jsonl")
        kept.to_json(os.fspath(target), lines=True, force_ascii=False)
    logger.info(
        "Wrote %s: %d of %d rows (the %d flagged rows removed).", target, len(kept), len(raw), len(doomed)
    )
    return target


def _cleanlab_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("cleanlab")
    except Exception:  # noqa: BLE001 - only a record
        return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, value: Any) -> None:
    staged = path.with_suffix(f".{os.getpid()}.tmp")
    staged.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(staged, path)
