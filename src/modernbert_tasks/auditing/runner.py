"""`audit()`: out-of-sample probabilities for every training row, then cleanlab.

    >>> from modernbert_tasks import audit
    >>> result = audit(train_file="tickets.csv", folds=5)       # doctest: +SKIP
    >>> result.issues_file                                       # doctest: +SKIP
    PosixPath('runs/audit/label_issues.csv')

The training rows are split into k stratified, seeded folds. For each fold, `fine_tune` trains
on the other k-1 folds (the fold's rows excluded with `exclude_rows`, so the run reads the
user's data exactly as `train` does) in <output_dir>/fold-<i>, and the fold's model predicts the
held-out rows. With repeats=R the whole k-fold split is made R times (seeds seed, seed+1, ...;
round r >= 2 in <output_dir>/fold-<i>-round-<r>) and each row's held-out probabilities are the
mean of its R out-of-sample predictions. Each
fold is its own run: an interrupted audit continues with resume=True,
skipping the folds whose predictions are saved (held_out_predictions.json) and resuming a
fold's training from its last checkpoint. cleanlab then ranks the rows whose given label the
held-out model doubts (audit/issues.py).

Written into the audit folder: label_issues.csv (worst first; train with exclude_rows= it),
audit.json (rows, folds, noise rate per class, the confident joint), noise_matrix.png (with
matplotlib), with write_cleaned=True a copy of the training file without the flagged rows, and
with data_map=True data_map.csv (each row's training dynamics: auditing/data_map.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, hint
from ..options import DEFAULT_MODEL, resolve_options
from ..task import Task
from ..training.exclusion import AUDIT_SUMMARY, ROW_COLUMN, TEXT_COLUMN, row_text, write_row_file
from ..training.task_source import data_files_of, resolve_task
from . import data_map as dynamics
from .ensemble import (
    DEFAULT_PROBABILITIES,
    IN_SAMPLE_PROBABILITIES,
    IN_SAMPLE_ROWS,
    check_probabilities,
    combine,
    fold_probabilities,
    has_in_sample,
)
from .folds import (
    ISSUES_FILE,
    PLOT_FILE,
    PREDICTIONS_FILE,
    assign_folds,
    check_folder,
    fingerprint,
    fold_count,
    fold_name,
    model_id,
    plain_options,
    write_json,
)
from .issues import check_filter, find_issues, require_cleanlab, write_noise_plot
from .reports import cleaned_source, write_cleaned_copy, write_issues, write_summary

__all__ = ["audit", "AuditResult", "DEFAULT_AUDIT_DIR", "ISSUES_FILE", "PREDICTIONS_FILE"]

logger = logging.getLogger(__name__)

DEFAULT_AUDIT_DIR = Path("runs") / "audit"
HELD_OUT_FILE = "held_out_rows.csv"  # a fold's rows: excluded from its training
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

    rows: the number of training rows audited. folds: k. repeats: rounds of k folds.
    labels: the task's label names.
    probabilities: (rows, labels) the probabilities cleanlab ranked (see `probabilities_from`).
    held_out: the out-of-sample probabilities alone. in_sample: each row's mean probabilities
    from the R(k-1) fold models that trained on it (None with probabilities='held_out'). given:
    each row's label id (single-label) or multi-hot row (multi-label). flagged: the rows cleanlab flags, worst
    first (0-based data rows of the training file). noise_rate: per label, the estimated share
    of wrong labels. confident_joint: cleanlab's (given, likely true) counts.
    """

    output_dir: Path
    rows: int
    folds: int
    repeats: int
    labels: list[str]
    problem_type: str
    probabilities: np.ndarray
    held_out: np.ndarray
    in_sample: np.ndarray | None
    probabilities_from: str
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
    data_map_file: Path | None = None
    data_map: Any = None  # auditing.data_map.DataMap with data_map=True

    def to_dict(self) -> dict[str, Any]:
        return json.loads((self.summary_file).read_text(encoding="utf-8"))


def audit(
    task: str | Task | None = None,
    model_name: str | os.PathLike = DEFAULT_MODEL,
    output_dir: str | os.PathLike | None = None,
    *,
    folds: int = 5,
    repeats: int = 1,
    write_cleaned: bool = False,
    filter_by: str = "prune_by_noise_rate",
    probabilities: str = DEFAULT_PROBABILITIES,
    data_map: bool = False,
    data_map_points: int = dynamics.DEFAULT_POINTS,
    **args: Any,
) -> AuditResult:
    """Find likely wrong labels in the training data with out-of-sample predictions.

    Args:
        task, model_name, **args: as for `fine_tune` (a task name, or train_file=...,
            text_columns=..., label_column=...; model, epochs, max_length, precision, seed...).
            Each fold trains with them. validation_fraction defaults to 0 here (no share of a
            fold's rows is held out for evaluation) unless you pass it (not with data_map=True
            or probabilities='fold_ensemble', which need every row a fold trained on).
        output_dir: the audit folder (default runs/audit); fold i trains in <output_dir>/fold-i
            (round r >= 2 of repeats: fold-i-round-r).
        folds: k, at least 2; every class needs at least k rows.
        repeats: how many times to make the k-fold split (default 1). Round r (from 1) splits
            and trains with seed + r - 1; each row's held-out probabilities are the mean of its R
            out-of-sample predictions. R times the training; on real SST-2 with MiniLM, 3
            repeats ranked the planted flips better (docs/benchmarks.md#label-audit).
            resume=True with more repeats keeps the rounds done and adds the others.
        write_cleaned: also write the training file without the flagged rows.
        filter_by: cleanlab's `find_label_issues` method (default prune_by_noise_rate).
        probabilities: what cleanlab ranks. 'held_out' (default): each row's probabilities
            from the fold model that never saw it. 'fold_ensemble': those averaged with the
            mean in-sample probabilities of the R(k-1) fold models that trained on the row (each
            fold model also predicts its training rows); it flags fewer rows, and misses
            flipped rows when the fold models memorise them (auditing/ensemble.py,
            docs/benchmarks.md#label-audit).
        data_map: also record each fold's training dynamics (the probability of the given
            label and its margin, data_map_points times per epoch, on the fold's training
            rows) and write each row's confidence, variability and area under the margin
            (aum), pooled over the R(k-1) folds that trained on it, to data_map.csv
            (auditing/data_map.py). Costs one prediction of the training rows per point.
        data_map_points: records per epoch with data_map=True (default 4).
        resume=True (in args): continue an interrupted audit in output_dir;
        overwrite=True: delete an earlier audit there and start over.

    Raises:
        ConfigError: bad options, cleanlab missing, a regression task, a folder holding
            another run. DataError: a class with fewer rows than folds, a single class.
    """
    require_cleanlab()  # before any training
    probabilities = check_probabilities(probabilities)
    in_sample = probabilities != "held_out"
    if data_map not in (False, True):
        raise ConfigError(f"data_map={data_map!r} must be True or False (CLI: --data-map).")
    data_map_points = dynamics.check_points(data_map_points)
    if not data_map and data_map_points != dynamics.DEFAULT_POINTS:
        raise ConfigError(
            f"data_map_points={data_map_points} sets the data map's records per epoch, and "
            "data_map is off. Pass data_map=True as well (CLI: --data-map), or drop it."
        )
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(
            f"folds={folds!r} must be an integer >= 2 (each fold's model trains "
            "on the other folds), e.g. folds=5."
        )
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(
            f"repeats={repeats!r} must be an integer >= 1 (how many times the k-fold split is "
            "made, each with its own seed), e.g. repeats=3 (CLI: --repeats 3)."
        )
    filter_by = check_filter(filter_by)
    for name, why in REFUSED.items():
        value = args.pop(name, None)  # None (or push_to_hub=False) is the default: not asked for
        if value is not None and value is not False:  # `is`: exclude_top=0 is asked for
            raise ConfigError(f"audit does not take {name}={value!r}: {why}.")
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
    if data_map and opts.train_long_text == "chunks":
        raise ConfigError(
            "data_map=True records each text's training dynamics, and train_long_text='chunks' "
            "trains on windows of texts. Leave data_map out, or train on truncated texts "
            "(train_long_text='truncate')."
        )
    source = cleaned_source(task, opts) if write_cleaned else None  # hub data: refused now
    out = Path(output_dir) if output_dir is not None else DEFAULT_AUDIT_DIR
    multi_label = task.problem_type == "multi_label_classification"

    train, has_eval = _training_split(task, opts)
    if opts.validation_fraction > 0 and not has_eval and (data_map or in_sample):
        # each fold holds a share of its training rows out for evaluation; which ones is the
        # engine's choice, so they would count as trained on in the in-sample mean and data map
        used = "data_map=True" if data_map else f"probabilities={probabilities!r}"
        raise ConfigError(
            f"validation_fraction={opts.validation_fraction:g} holds a share of each fold's training "
            f"rows out for evaluation, and {used} needs every row a fold model trained on. Pass "
            "validation_fraction=0 (the audit's default), or a validation_file=... of its own."
        )
    texts = [row_text(example, task.text_columns) for example in train]
    columns = [train[c] for c in task.text_columns]
    inputs = list(zip(*columns, strict=True)) if len(columns) == 2 else list(columns[0])
    given = list(train["label"])
    present = set() if multi_label else set(given)
    absent = [] if multi_label else [name for k, name in enumerate(task.labels) if k not in present]
    if absent:  # cleanlab can only suggest a label the fold models learned
        logger.warning(
            "Audit: no training row is labelled %s, so the fold models never learn it and no row "
            "can be suggested as %s. Add rows with it, or leave it out of labels=.",
            " or ".join(repr(a) for a in absent),
            "one of them" if len(absent) > 1 else "it",
        )
    # round 0 is the audit without repeats; each later round splits with its own seed (checked,
    # like the labels' counts, before anything is written)
    assignments = [assign_folds(given, task, folds, opts.seed + r, multi_label) for r in range(repeats)]
    plan = {
        "task": task.name,
        "rows": len(train),
        "folds": folds,
        "repeats": repeats,
        "seed": opts.seed,
        "model": model_id(model_name),
        "data": fingerprint(texts, given),
        "options": plain_options(args),
    }

    from ..training.locking import run_lock

    with run_lock(out):
        done = check_folder(out, plan, resume, overwrite)
        fold_dirs = [out / fold_name(unit, folds) for unit in range(fold_count(plan))]
        if data_map:  # folds done, or trained and not yet predicted: none will train again
            trained_earlier = [u for u, d in enumerate(fold_dirs) if u in done or _has_model(d)]
            dynamics.check_recorded(out, {fold_dirs[u].name: fold_dirs[u] for u in trained_earlier})
        recorder = (given, multi_label, data_map_points) if data_map else None
        trained = 0
        for round_ in range(repeats):
            assignment = assignments[round_]
            fit_args = args if round_ == 0 else {**args, "seed": opts.seed + round_}
            for k in range(folds):
                unit, fold_dir = round_ * folds + k, fold_dirs[round_ * folds + k]
                rows = [i for i in range(len(train)) if assignment[i] == k]
                where = f"fold {k + 1}/{folds}" + (f", round {round_ + 1}/{repeats}" if repeats > 1 else "")
                if unit in done:
                    logger.info("Audit %s: done earlier (%s), skipped.", where, fold_dir / PREDICTIONS_FILE)
                else:
                    logger.info(
                        "Audit %s: training on %d rows, predicting %d held-out rows (%s).",
                        where,
                        len(train) - len(rows),
                        len(rows),
                        fold_dir,
                    )
                    _run_fold(
                        task, model_name, fold_dir, rows, texts, inputs, fit_args, resume, in_sample, recorder
                    )
                    trained += 1
                if in_sample:
                    _add_in_sample(task, fold_dir, inputs)
        files = [fold_dir / PREDICTIONS_FILE for fold_dir in fold_dirs]
        held_out, in_sample_p = fold_probabilities(files, len(train), task.num_labels, in_sample)
        ranked_p = combine(held_out, in_sample_p, probabilities)
        labels = list(task.labels)
        issues = find_issues(given, ranked_p, labels, multi_label, filter_by)
        issues_file = write_issues(out / ISSUES_FILE, issues, texts, given, labels, multi_label)
        summary_file = write_summary(out / AUDIT_SUMMARY, plan, issues, labels, task, probabilities)
        plot_file = write_noise_plot(issues, labels, out / PLOT_FILE)
        dm, map_file = (None, None)
        if data_map:  # each row's training dynamics, pooled over the folds that trained on it
            dm, map_file = dynamics.write_data_map(out, fold_dirs, given, labels, multi_label, summary_file)
        cleaned = write_cleaned_copy(source, opts, out, issues.ranked) if source is not None else None
    return AuditResult(
        output_dir=out,
        rows=len(train),
        folds=folds,
        repeats=repeats,
        labels=labels,
        problem_type=task.problem_type,
        probabilities=ranked_p,
        held_out=held_out,
        in_sample=in_sample_p,
        probabilities_from=probabilities,
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
        data_map_file=map_file,
        data_map=dm,
    )


# --- data and folds ---------------------------------------------------------------------------
def _training_split(task: Task, opts: Any) -> tuple[Any, bool]:
    """The training split, and whether the data has its own evaluation split."""
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
    return splits["train"], "eval" in splits


def _run_fold(
    task: Task,
    model_name: Any,
    fold_dir: Path,
    rows: list[int],
    texts: list[str],
    inputs: list[Any],
    args: dict[str, Any],
    resume: bool,
    in_sample: bool,
    recorder: tuple[list[Any], bool, int] | None = None,
) -> None:
    from ..inference.loading import load_finetuned
    from ..training.checkpoints import checkpoint_folders, partial_checkpoints
    from ..training.engine import fine_tune

    fold_dir.mkdir(parents=True, exist_ok=True)
    held_out = write_row_file(
        fold_dir / HELD_OUT_FILE,
        [{ROW_COLUMN: i, TEXT_COLUMN: texts[i]} for i in rows],
        (ROW_COLUMN, TEXT_COLUMN),
    )
    model = fold_dir / "model"
    if not _has_model(fold_dir):
        fit_args = dict(args)
        if recorder is not None:  # the data map: this fold's training rows during training
            trained = _training_rows(len(inputs), rows)
            callback = dynamics.fold_callback(fold_dir, trained, inputs, *recorder, task.format_text)
            fit_args["callbacks"] = [*(args.get("callbacks") or []), callback]
        else:  # trained on without the data map: an earlier partial record no longer describes it
            (fold_dir / dynamics.DYNAMICS_FILE).unlink(missing_ok=True)
        # a fold not yet started (a new round, or one an interrupt never reached) starts fresh:
        # resume=True there would only warn that it has no checkpoint
        started = bool(checkpoint_folders(fold_dir) or partial_checkpoints(fold_dir)) or model.exists()
        fine_tune(task, model_name, fold_dir, exclude_rows=held_out, resume=resume and started, **fit_args)
    predictor = load_finetuned(model)
    predictor.warn_truncation = False
    saved: dict[str, Any] = {"rows": rows, "probabilities": _predict(predictor, task, inputs, rows)}
    if in_sample:
        _predict_in_sample(saved, predictor, task, inputs)
    write_json(fold_dir / PREDICTIONS_FILE, saved)


def _has_model(fold_dir: Path) -> bool:
    """The fold's training finished: its model and manifest were saved."""
    return (fold_dir / "model" / "modernbert_tasks.json").is_file()


def _training_rows(total: int, held_out: list[int]) -> list[int]:
    skipped = set(held_out)
    return [i for i in range(total) if i not in skipped]


def _predict(predictor: Any, task: Task, inputs: list[Any], rows: list[int]) -> list[list[float]]:
    logger.info("Predicting %d rows with %s.", len(rows), predictor.path)
    probabilities = []
    for p in predictor.predict([inputs[i] for i in rows], show_progress=False):
        if "probabilities" in p:
            probabilities.append([float(p["probabilities"][name]) for name in task.labels])
        else:  # an empty text (training data refuses them, so not expected): no opinion
            probabilities.append([1.0 / task.num_labels] * task.num_labels)
    return probabilities


def _predict_in_sample(saved: dict[str, Any], predictor: Any, task: Task, inputs: list[Any]) -> None:
    """Each fold model also predicts the rows it trained on (probabilities='fold_ensemble')."""
    trained = _training_rows(len(inputs), saved["rows"])
    saved[IN_SAMPLE_ROWS] = trained
    saved[IN_SAMPLE_PROBABILITIES] = _predict(predictor, task, inputs, trained)


def _add_in_sample(task: Task, fold_dir: Path, inputs: list[Any]) -> None:
    """A fold finished by an audit with probabilities='held_out' gets its in-sample
    predictions from its saved model, so resume=True can switch to 'fold_ensemble'."""
    from ..inference.loading import load_finetuned

    path = fold_dir / PREDICTIONS_FILE
    saved = json.loads(path.read_text(encoding="utf-8"))
    if has_in_sample(saved) or not _has_model(fold_dir):
        return  # done, or no model to ask (fold_probabilities then names the file)
    predictor = load_finetuned(fold_dir / "model")
    predictor.warn_truncation = False
    _predict_in_sample(saved, predictor, task, inputs)
    write_json(path, saved)
