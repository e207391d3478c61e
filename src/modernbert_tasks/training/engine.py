"""`fine_tune()`: fine-tune a sequence classifier on a registered task in one call.

It follows the recipe it replaces, step by step: resolve the options -> load the data ->
tokenize -> load the model -> build the Trainer -> train -> evaluate -> save. `prepare()` does
everything up to training and returns the ready `Trainer`, for benchmarks and tests.

Under ``torchrun``/``accelerate launch`` the same call trains with DDP (the Trainer handles
it); only the main process writes the final model, and every process returns the result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import hardware, modeling
from ..artifacts.saving import save_final_model
from ..errors import ConfigError, DataError, hint
from ..metrics import load_evaluate_metrics
from ..options import (
    AUTO,
    DEFAULT_MODEL,
    EVAL_FRACTION,
    ResolvedOptions,
    TrainOptions,
    auto_eval_steps,
    default_output_dir,
    resolve_options,
)
from ..task import Task
from . import speed
from .batching import make_collator, subsample, tokenize_splits
from .exclusion import exclude_flagged_rows, excluded_summary
from .task_source import data_files_of, resolve_task

if TYPE_CHECKING:
    import datasets
    from transformers import PretrainedConfig, Trainer, TrainingArguments

__all__ = ["fine_tune", "prepare", "FineTuneResult", "PreparedRun", "DEFAULT_MODEL"]

logger = logging.getLogger("modernbert_tasks")

MODEL_SUBDIR = modeling.MODEL_SUBDIR  # the final model: <output_dir>/model
LOGS_SUBDIR = "logs"  # TensorBoard: <output_dir>/logs
# keys of FineTuneResult.metrics that describe the training run rather than the model
RUN_METRICS = ("train_runtime", "train_samples_per_second", "train_steps_per_second",
               "train_loss", "epoch", "total_flos")


@dataclass
class FineTuneResult:
    """What a run produced. `to_dict()` is JSON-ready.

    metrics: the final model's evaluation: the task's metrics and "loss" (no "eval_" prefix),
        "test_*" when the test split has labels, and "train_runtime",
        "train_samples_per_second", "train_steps_per_second", "train_loss", "epoch".
    model_path: the saved model folder (load it with `load_finetuned`).
    best_checkpoint: the checkpoint the final model comes from (None without evaluation).
    log_history: the Trainer's log entries (losses, learning rates, evaluations).
    output_dir: the run folder (checkpoints, logs, model).
    """

    metrics: dict[str, float]
    model_path: Path
    best_checkpoint: Path | None
    log_history: list[dict[str, Any]]
    output_dir: Path
    # fine_tune(seeds=[...]): the per-seed figures and their summary (see training/seeds.py);
    # `metrics` are then those of the promoted (best) seed
    seeds: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "metrics": dict(self.metrics),
            "model_path": str(self.model_path),
            "best_checkpoint": str(self.best_checkpoint) if self.best_checkpoint else None,
            "log_history": [dict(entry) for entry in self.log_history],
            "output_dir": str(self.output_dir),
        }
        if self.seeds is not None:
            out["seeds"] = self.seeds
        return out


@dataclass
class PreparedRun:
    """Everything `fine_tune` sets up before calling `trainer.train()`."""

    task: Task
    plugin: tuple[str | None, str | None]  # (name, version) of the plugin providing the task
    model_name: str
    output_dir: Path
    options: TrainOptions
    resolved: ResolvedOptions
    hardware: hardware.Hardware
    max_length: int
    trainer: Trainer
    checkpoint: str | None  # what training resumes from
    test_dataset: datasets.Dataset | None = None  # a labelled test split, scored at the end
    # what prediction reads of a text (the model's position limit), and the eval/test splits
    # tokenized to it for the final metrics (the training-length ones when nothing was cut)
    predict_max_length: int | None = None
    final_splits: dict[str, datasets.Dataset] = field(default_factory=dict)
    num_examples: dict[str, int] = field(default_factory=dict)
    held_out: dict[str, Any] | None = None  # the eval rows taken from train, when no eval split
    push: dict[str, Any] | None = None  # push_to_hub=True: repo_id, private, token

    @property
    def model_path(self) -> Path:
        return self.output_dir / MODEL_SUBDIR

    def manifest(self, metrics: dict[str, float]) -> dict[str, Any]:
        """The manifest the final model is saved with (see artifacts/manifest.py)."""
        return _manifest(self, metrics)



# --- the one call -------------------------------------------------------------------------
def fine_tune(
    task: str | Task | None = None,
    model_name: str | os.PathLike = DEFAULT_MODEL,
    output_dir: str | os.PathLike | None = None,
    **args: Any,
) -> FineTuneResult:
    """Fine-tune `model_name` on `task`, evaluate it, and save it with its manifest.

    Args:
        task: a registered task name (see `list_tasks()`), a `Task`, or None to infer the
            task from the data options (train_file=..., validation_file=..., data_dir=...,
            dataset='org/name', with text_columns=/label_column= when they can't be guessed;
            see `Task.from_data`). A path to a data file or folder works as well. With no
            task and no data, the default task 'sst2' is used.
        model_name: a hub id or a local folder holding config, weights and tokenizer.
        output_dir: the run folder. Default: runs/<task>. The model goes to <output_dir>/model,
            TensorBoard logs to <output_dir>/logs, checkpoints to <output_dir>/checkpoint-*.
        **args: any `modernbert_tasks.options.TrainOptions` field (max_length, padding,
            max_train_samples, data_dir, precision, resume, ...) and any
            `transformers.TrainingArguments` field (num_train_epochs, learning_rate, ...).
            `describe_options()` lists them with their defaults.

    Raises:
        ConfigError: an unknown option (with suggestions), a wrong type or value.
        DataError: data missing, unreadable, or not matching the task.
        ModelLoadError: the model cannot be found or loaded.
        RunLockedError: another run is using output_dir.
        OutputWriteError: a checkpoint could not be written (e.g. the disk is full).
        TrainingInterrupted: Ctrl-C stopped training after saving a checkpoint (a
            KeyboardInterrupt; resume=True continues). A second Ctrl-C aborts at once.
    """
    if args.get("seeds") is not None:  # one run per seed, summarised: training/seeds.py
        from .seeds import fine_tune_seeds

        return fine_tune_seeds(task, model_name, _output_dir(task, output_dir), **args)
    from .calibrating import calibrate_run
    from .callbacks import RESUME_HINT, GracefulInterrupt, stop_on_sigint
    from .checkpoints import refusing_unsafe_checkpoint, reporting_write_errors
    from .locking import run_lock

    task, _, args = resolve_task(task, args)
    out = _output_dir(task, output_dir)
    # one run per folder; other ranks of a distributed run share the main process's lock
    with _cleaning_up_new_folders(out), run_lock(out, enabled=_is_main_process()):
        run = prepare(task, model_name, out, **args)
        trainer = run.trainer
        interrupt = GracefulInterrupt()
        trainer.add_callback(interrupt)
        with (reporting_write_errors(run.output_dir, RESUME_HINT),
              refusing_unsafe_checkpoint(run.checkpoint), stop_on_sigint(interrupt)):
            train_output = trainer.train(resume_from_checkpoint=run.checkpoint)
        interrupt.raise_if_interrupted(trainer)
        metrics = _final_metrics(run) | _train_metrics(train_output.metrics)
        calibration, calibration_metrics = calibrate_run(run)  # temperature, threshold
        metrics |= calibration_metrics
        manifest = run.manifest(metrics)
        if calibration is not None:
            manifest["calibration"] = calibration
        save_final_model(trainer, run.model_path, manifest)
        if run.push is not None and training_is_main(trainer):
            from ..artifacts.publish import push_to_hub

            plan = push_to_hub(run.model_path, **run.push)
            logger.info("Pushed the model to %s (%d files)", plan.url or run.push["repo_id"],
                        len(plan.files))
    best = trainer.state.best_model_checkpoint
    return FineTuneResult(metrics=metrics, model_path=run.model_path,
                          best_checkpoint=Path(best) if best else None,
                          log_history=list(trainer.state.log_history),
                          output_dir=run.output_dir)


def prepare(
    task: str | Task | None = None,
    model_name: str | os.PathLike = DEFAULT_MODEL,
    output_dir: str | os.PathLike | None = None,
    **args: Any,
) -> PreparedRun:
    """Steps 1-4 of `fine_tune`: options, data, tokenization, model and Trainer."""
    task, plugin, args = resolve_task(task, args)
    resolved = resolve_options(task, args)
    opts = resolved.options
    if opts.text_prefix is not None:
        task = dataclasses.replace(task, text_prefix=opts.text_prefix)
    model_name = os.fspath(model_name)
    push = _push_settings(resolved)  # checked now: a push must not fail after hours of training
    # without network, one quick error names every download the run needs (before the
    # seconds of importing the Trainer, and the minute of retries that loading would take)
    _require_hub(model_name, task, opts)
    load_evaluate_metrics(task.metrics)  # an evaluate metric that cannot load fails now

    from transformers import set_seed

    from .calibrating import check_calibration_options
    from .class_weights import (
        WeightedLoss,
        label_counts,
        log_label_distribution,
        resolve_class_weights,
    )
    from .divergence import StopOnDivergence
    from .eta import TimeEstimate
    from .stopping import early_stopping_callback
    from .trainer import TaskTrainer

    out = Path(output_dir) if output_dir is not None else default_output_dir(task.name)
    hw = hardware.detect(opts.precision, opts.attention,
                         use_cpu=bool(resolved.trainer_kwargs.get("use_cpu", False)))
    hw.log()

    # model files first: a wrong model_name fails in seconds, before any data work
    model_name = modeling.resolve_source(model_name, allow_pickle=opts.allow_pickle,
                                         for_training=True)  # a run folder: its model/
    config = _load_config(model_name, task, opts)
    tokenizer = modeling.load_tokenizer(model_name, _hub_kwargs(opts))
    # "auto" is read from the training texts once they are loaded (training/lengths.py)
    max_length = None if opts.max_length == AUTO else _max_length(opts, task, config, model_name)
    checkpoint = _find_checkpoint(out, opts)
    training_args = training_arguments(resolved, hw, out)  # starts torch.distributed when launched
    _warn_if_one_of_many(training_args.world_size)

    with training_args.main_process_first(desc="preparing the output folder and data"):
        splits, held_out = _load_splits(task, opts)
        if max_length is None:
            from .lengths import auto_max_length

            max_length = auto_max_length(splits["train"], task, tokenizer, getattr(
                config, "max_position_embeddings", None), opts.seed)
        tokenized = tokenize_splits(splits, task, tokenizer, max_length, opts.padding,
                                    opts.cache_dir and os.fspath(opts.cache_dir))
        predict_max_length = max(modeling.position_limit(config, tokenizer) or max_length,
                                 max_length)
        final_splits = _final_splits(splits, tokenized, task, tokenizer, max_length,
                                     predict_max_length, opts)
    stopper = early_stopping_callback(opts, training_args, "eval" in tokenized)
    check_calibration_options(opts, task, "eval" in tokenized)
    if "eval" not in tokenized:
        logger.warning("Task %r has no evaluation split in this data: training without "
                       "evaluation, and the final model is the last one.", task.name)
        training_args.set_evaluate("no")
        training_args.load_best_model_at_end = False
    _schedule(training_args, resolved, len(tokenized["train"]))

    counts = label_counts(tokenized["train"], task)
    log_label_distribution(counts, task)
    weights = resolve_class_weights(opts.class_weights, task, counts, len(tokenized["train"]))
    if weights is not None:
        logger.info("Class weights: %s", dict(zip(task.labels, weights, strict=True)))

    set_seed(opts.seed)  # the classification head is initialised next
    model = _load_model(model_name, config, hw, opts)
    if opts.freeze_embeddings:
        speed.freeze_embeddings(model)
    if opts.compile:
        speed.compile_in_place(model, mode=opts.compile_mode)
    trainer = TaskTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized.get("eval"),
        processing_class=tokenizer,
        data_collator=make_collator(tokenizer, hw.pad_to_multiple_of, speed.bucket_widths(
            opts.shape_buckets, opts.compile, max_length)),
        compute_metrics=_metrics_fn(task),
        callbacks=[*(opts.callbacks or []), TimeEstimate(),
                   StopOnDivergence(training_args.learning_rate), *([stopper] if stopper else [])],
        compute_loss_func=WeightedLoss(weights, task.problem_type) if weights else None,
    )
    _send_tensorboard_to(trainer, Path(opts.logging_dir) if opts.logging_dir else out / LOGS_SUBDIR)
    # overwrite=True deletes the earlier run only now that every option, the data and the model
    # have been checked: a bad value must not cost the user their checkpoints
    if training_args.process_index == 0 and opts.overwrite:
        _clear_previous_run(out, opts)
    return PreparedRun(task=task, plugin=plugin, model_name=model_name, output_dir=out,
                       options=opts, resolved=resolved, hardware=hw, max_length=max_length,
                       trainer=trainer, checkpoint=checkpoint, test_dataset=tokenized.get("test"),
                       predict_max_length=predict_max_length, final_splits=final_splits,
                       num_examples={role: len(ds) for role, ds in tokenized.items()},
                       held_out=held_out, push=push)


# --- step 1: options ----------------------------------------------------------------------
def _output_dir(task: str | Task, output_dir: str | os.PathLike | None) -> Path:
    out = Path(output_dir) if output_dir is not None else default_output_dir(
        resolve_task(task, {})[0].name)
    blocked = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise ConfigError(f"output_dir {os.fspath(out)!r} cannot be a folder: {os.fspath(blocked)!r} "
                          "is a file. Pass a folder path, e.g. output_dir='runs/my-run' (CLI: "
                          "--output-dir runs/my-run).")
    return out


@contextlib.contextmanager
def _cleaning_up_new_folders(out: Path):
    """A run that fails leaves no empty folders it created (e.g. runs/ and runs/<task>/)."""
    created = [p for p in (out, *out.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for folder in created:  # deepest first; a folder with anything in it stays
            try:
                folder.rmdir()
            except FileNotFoundError:
                continue  # the run lock already removed the folder it made
            except OSError:
                break
        raise


def _is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch, or a plain process."""
    return int(os.environ.get("RANK", "0")) == 0


def _warn_if_one_of_many(world_size: int) -> None:
    """`accelerate launch --cpu --num_processes N` starts ONE process (N needs an MPI hostfile);
    it sets MASTER_ADDR for N > 1 but, unlike a launcher that started N, no WORLD_SIZE."""
    if world_size == 1 and os.environ.get("MASTER_ADDR") and "WORLD_SIZE" not in os.environ:
        logger.warning(
            "The launcher was asked for several processes, but this run is the only one "
            "(world size 1). `accelerate launch --cpu` starts one process; for several, use "
            "`accelerate launch --multi_gpu --num_processes N ...` (it also works on CPUs) or "
            "`torchrun --nproc-per-node N -m modernbert_tasks ...` (docs/distributed.md).")


def training_arguments(resolved: ResolvedOptions, hw: hardware.Hardware, out: Path
                       ) -> TrainingArguments:
    """The Trainer's arguments from the resolved options and the hardware's choices."""
    from transformers import TrainingArguments

    kwargs = dict(resolved.trainer_kwargs)
    opts = resolved.options
    kwargs.update(hw.trainer_kwargs())  # bf16/fp16/use_cpu passed by the caller are in hw
    if not resolved.explicit("train_sampling_strategy"):
        grouped = opts.group_by_length and opts.padding == "longest"
        kwargs["train_sampling_strategy"] = "group_by_length" if grouped else "random"
    kwargs["output_dir"] = os.fspath(out)
    for name in ("eval_steps", "save_steps"):
        if kwargs.get(name) == AUTO:
            kwargs[name] = EVAL_FRACTION  # a valid stand-in; _schedule sets the real interval
    try:
        return TrainingArguments(**kwargs)
    except (ValueError, TypeError) as exc:
        chosen = {k: v for k, v in kwargs.items() if resolved.explicit(k)}
        raise ConfigError(f"These training arguments do not fit together: {exc} (you set: "
                          f"{chosen or 'nothing'}). Adjust them; see describe_options().") from exc


def _schedule(args: TrainingArguments, resolved: ResolvedOptions, num_train: int) -> None:
    """Resolve eval_steps/save_steps="auto" now that the number of training steps is known."""
    per_step = (args.per_device_train_batch_size * args.gradient_accumulation_steps
                * max(1, args.world_size))
    total = args.max_steps if args.max_steps > 0 else math.ceil(
        args.num_train_epochs * math.ceil(num_train / per_step))
    interval = auto_eval_steps(total)
    for name in ("eval_steps", "save_steps"):
        if resolved.trainer_kwargs.get(name) == AUTO:
            setattr(args, name, interval)
    logger.info("%d training steps; evaluating and saving every %s/%s steps.", total,
                args.eval_steps, args.save_steps)


# --- step 2: data -------------------------------------------------------------------------
def _load_splits(task: Task, opts: TrainOptions) -> tuple[datasets.DatasetDict, dict | None]:
    """The task's splits (subsampled as asked) and, when the data has no evaluation split,
    a description of the share of training data held out for it (None otherwise)."""
    import datasets

    values = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}
    splits = task.load_dataset(
        data_dir=opts.data_dir and os.fspath(opts.data_dir), data_files=data_files_of(values),
        cache_dir=opts.cache_dir and os.fspath(opts.cache_dir), revision=opts.data_revision)
    if "train" not in splits:
        raise DataError(f"Task {task.name!r}: the data has no training split (found "
                        f"{sorted(splits)}). Add a train file (e.g. train.csv) to data_dir, or "
                        "pass train_file=... (CLI: --train-file).")
    splits, held_out = dict(splits), None
    splits["train"] = exclude_flagged_rows(splits["train"], task, opts)  # exclude_rows=...
    if "eval" not in splits and opts.validation_fraction > 0:
        splits["train"], splits["eval"], held_out = _hold_out(splits["train"], task, opts)
    limits = {"train": opts.max_train_samples, "eval": opts.max_eval_samples}
    out = {}
    for role, ds in splits.items():
        if role == "test" and "label" not in ds.column_names:
            continue  # unlabelled test data cannot be scored
        out[role] = subsample(ds, limits.get(role), opts.seed, f"max_{role}_samples")
    return datasets.DatasetDict(out), held_out


def _hold_out(train: datasets.Dataset, task: Task, opts: TrainOptions):
    from ..data import hold_out

    if not 0 < opts.validation_fraction < 1:
        raise ConfigError(f"validation_fraction={opts.validation_fraction} must be between 0 and "
                          "1 (e.g. 0.1 holds out 10%), or 0 to train without evaluation.")
    stratified = task.problem_type == "single_label_classification"
    rest, held = hold_out(train, opts.validation_fraction, opts.seed, stratified)
    info = {"fraction": opts.validation_fraction, "seed": opts.seed, "stratified": stratified,
            "rows": len(held), "from_rows": len(train)}
    logger.warning("No evaluation split in the data: holding out %d of %d training rows (%g%%, "
                   "%sseed %d) for evaluation. Pass validation_file=... (--validation-file) to "
                   "use your own, or validation_fraction=0 to train without evaluation.",
                   len(held), len(train), 100 * opts.validation_fraction,
                   "stratified by label, " if stratified else "", opts.seed)
    return rest, held, info


def _max_length(opts: TrainOptions, task: Task, config: PretrainedConfig, model_name: str) -> int:
    max_length = opts.max_length or task.max_length
    limit = getattr(config, "max_position_embeddings", None)
    if limit and max_length > limit:
        raise ConfigError(f"max_length={max_length} exceeds what {model_name!r} supports "
                          f"({limit} positions). Pass max_length={limit} or less.")
    return max_length


def _final_splits(splits: datasets.DatasetDict, tokenized: datasets.DatasetDict, task: Task,
                  tokenizer: Any, max_length: int, predict_max_length: int,
                  opts: TrainOptions) -> dict[str, datasets.Dataset]:
    """The eval and test splits as prediction reads them: max_length is a speed choice for
    training, so a text it cut is scored at the end up to the model's limit, as predict and
    evaluate read it, and the printed figures are the ones they reproduce."""
    import datasets

    from .truncation import count_truncated

    out = {}
    for role in ("eval", "test"):
        if role not in tokenized:
            continue
        out[role] = tokenized[role]
        if predict_max_length > max_length and count_truncated(
                splits[role], tokenized[role], task, tokenizer, max_length).truncated:
            out[role] = tokenize_splits(datasets.DatasetDict({role: splits[role]}), task,
                                        tokenizer, predict_max_length, "longest",
                                        opts.cache_dir and os.fspath(opts.cache_dir))[role]
            logger.info("The final %s metrics read each text up to %d tokens, as predict and "
                        "evaluate do (training and its periodic evaluations: %d).",
                        role, predict_max_length, max_length)
    return out


# --- step 3: model ------------------------------------------------------------------------
def _hub_kwargs(opts: TrainOptions) -> dict[str, Any]:
    return {"revision": opts.revision, "trust_remote_code": opts.trust_remote_code,
            "cache_dir": opts.cache_dir and os.fspath(opts.cache_dir)}


def _require_hub(model_name: str, task: Task, opts: TrainOptions) -> None:
    from ..hub import HubSource, require_hub

    cache_dir = opts.cache_dir and os.fspath(opts.cache_dir)
    sources = []
    if not Path(model_name).expanduser().exists() and not modeling.looks_like_path(model_name):
        sources.append(HubSource("model", model_name, local_hint="pass a local model folder: "
                                 + hint("model_name='path/to/modernbert'", "--model PATH"),
                                 cache_dir=cache_dir))
    values = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}
    if task.hub_id and not opts.data_dir and not data_files_of(values):
        sources.append(HubSource("dataset", task.hub_id, task.hub_config,
                                 local_hint="use local files: " + task.local_hint(),
                                 cache_dir=cache_dir))
    require_hub(sources)


def training_is_main(trainer: Trainer) -> bool:
    return trainer.args.process_index == 0


_PUSH_KEYS = ("push_to_hub", "hub_model_id", "hub_private_repo", "hub_token", "hub_strategy",
              "hub_always_push", "hub_revision")


def _push_settings(resolved: ResolvedOptions) -> dict[str, Any] | None:
    """push_to_hub=True uploads the final model folder (safetensors, manifest, card) with
    artifacts.publish once training is done; the Trainer's own push, which uploads pickled
    checkpoints during training, is never used. Checked before training starts."""
    from ..artifacts.publish import check_push

    kwargs = resolved.trainer_kwargs
    asked = {k: kwargs.pop(k) for k in _PUSH_KEYS if k in kwargs}
    if not asked.get("push_to_hub"):
        return None
    repo_id = asked.get("hub_model_id")
    if not repo_id:
        raise ConfigError("push_to_hub=True needs the repo to push to: hub_model_id='user/name' "
                          "(CLI: --hub-model-id user/name).")
    return check_push(repo_id, private=bool(asked.get("hub_private_repo")),
                      token=asked.get("hub_token"))


def _load_config(model_name: str, task: Task, opts: TrainOptions) -> PretrainedConfig:
    """The checkpoint's config with the task's labels; everything else (pooling...) kept."""
    return modeling.load_config(model_name, _hub_kwargs(opts), num_labels=task.num_labels,
                                id2label=task.id2label, label2id=task.label2id,
                                problem_type=task.problem_type)


def _load_model(model_name: str, config: PretrainedConfig, hw: hardware.Hardware,
                opts: TrainOptions):
    return modeling.load_for_training(
        model_name, config, hw.attention, attention_requested=opts.attention != "auto",
        allow_pickle=opts.allow_pickle, hub_kwargs=_hub_kwargs(opts))


# --- step 4: Trainer ----------------------------------------------------------------------
def _metrics_fn(task: Task):
    def compute(prediction) -> dict[str, float]:
        outputs = prediction.predictions
        outputs = outputs[0] if isinstance(outputs, tuple) else outputs
        return task.compute_metrics(outputs, prediction.label_ids)

    return compute


def _send_tensorboard_to(trainer: Trainer, logging_dir: Path) -> None:
    """transformers 5 dropped `logging_dir`; point its TensorBoard callback at ours."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback) and callback.logging_dir is None:
            callback.logging_dir = os.fspath(logging_dir)


# --- output folder and resuming ----------------------------------------------------------
def _find_checkpoint(out: Path, opts: TrainOptions) -> str | None:
    """The checkpoint to resume from, after checking that an earlier run is not clobbered."""
    from .checkpoints import (
        STATE_FILE,
        checkpoint_folders,
        last_complete_checkpoint,
        partial_checkpoints,
    )

    last = last_complete_checkpoint(out)
    if opts.resume not in (False, True):  # an explicit checkpoint path
        path = Path(opts.resume)
        if not (path / STATE_FILE).is_file():
            raise ConfigError(f"resume={os.fspath(opts.resume)!r} is not a checkpoint folder "
                              "(no trainer_state.json). Pass resume=True to use the last "
                              f"checkpoint in {os.fspath(out)!r}, or a checkpoint-<step> folder.")
        return os.fspath(path)
    if opts.resume:
        for partial in partial_checkpoints(out):
            # a write cut short (killed process, full disk): it cannot be resumed from
            logger.warning("Removing %s: its write was cut short (no trainer_state.json), so it "
                           "cannot be resumed from.", partial)
            shutil.rmtree(partial, ignore_errors=True)
        if last is None:
            logger.warning("resume=True but %s has no checkpoint: starting from scratch.", out)
        else:
            logger.info("Resuming from %s", last)
        return last
    earlier = [p.name for p in checkpoint_folders(out)][-2:]
    earlier += [f"{MODEL_SUBDIR}/"] if (out / MODEL_SUBDIR).is_dir() else []
    if earlier and not opts.overwrite:
        raise ConfigError(
            f"output_dir {os.fspath(out)!r} holds an earlier run ({', '.join(earlier)}). Pass "
            "resume=True to continue it (CLI: --resume), overwrite=True to delete it and start "
            "over (CLI: --overwrite), or another output_dir.")
    return None


def _clear_previous_run(out: Path, opts: TrainOptions) -> None:
    """overwrite=True: remove the earlier run's checkpoints and logs (the model is replaced
    atomically at the end, so a good one survives a failed run)."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    if not out.is_dir():
        return
    doomed = [p for p in out.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.is_dir()]
    logs = Path(opts.logging_dir) if opts.logging_dir else out / LOGS_SUBDIR
    doomed += [logs] if logs.is_dir() else []
    for path in doomed:
        shutil.rmtree(path)
    if doomed:
        logger.info("overwrite=True: removed %d checkpoint/log folder(s) from %s",
                    len(doomed), out)


# --- steps 6-7: evaluate and save ---------------------------------------------------------
def _final_metrics(run: PreparedRun) -> dict[str, float]:
    """The final (best) model on the eval split, and on the test split when it has labels.

    Scored in fp32 (TaskTrainer.evaluate), as `load_finetuned(...).evaluate` scores, so the
    figures printed at the end of training are the ones `evaluate` reproduces. Not sent to TensorBoard: the
    periodic evaluations are there already, and the Trainer closed its writer at the end of
    training, so one more log would open a second event file for the same step."""
    from transformers import EarlyStoppingCallback
    from transformers.integrations import TensorBoardCallback

    trainer = run.trainer
    trainer.remove_callback(TensorBoardCallback)
    # it would read the test split's "test_accuracy" as a missing "eval_accuracy" and warn
    # that early stopping is disabled; training is over anyway
    trainer.remove_callback(EarlyStoppingCallback)
    keep = set(run.task.metrics) | {"loss"}
    metrics: dict[str, float] = {}
    for role in ("eval", "test"):
        dataset = run.final_splits.get(role)
        if dataset is None:
            continue
        result = trainer.evaluate(eval_dataset=dataset, metric_key_prefix=role)
        for key, value in result.items():
            name = key.removeprefix(f"{role}_")
            # the eval split's metrics go unprefixed: they are *the* metrics of the run
            metrics[name if role == "eval" and name in keep else key] = value
    return metrics


def _train_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return {k: metrics[k] for k in RUN_METRICS if k in metrics}


def _manifest(run: PreparedRun, metrics: dict[str, float]) -> dict[str, Any]:
    from ..artifacts.manifest import build_manifest

    args = run.trainer.args.to_dict()
    training = {name: args.get(name) for name in run.resolved.trainer_kwargs}
    training.update({f.name: getattr(run.options, f.name) for f in dataclasses.fields(run.options)
                     if f.name != "callbacks"})
    # "precision" records what training autocast to; the final metrics are fp32, as
    # load_finetuned predicts (fp32 labels do not depend on batching)
    training.update({"precision": run.hardware.precision, "metrics_precision": "fp32",
                     "attention":
                     run.trainer.model.config._attn_implementation,
                     "world_size": run.trainer.args.world_size,
                     # a plugin's own format_text is applied at prediction only where the
                     # plugin is installed; load_finetuned warns otherwise
                     "format_text": "custom" if type(run.task).format_text
                     is not Task.format_text else "text_prefix",
                     "num_examples": run.num_examples,
                     "held_out_eval": run.held_out,
                     "excluded_rows": excluded_summary(run.options),
                     "class_weight_values": _class_weight_values(run),
                     "global_step": run.trainer.state.global_step})
    return build_manifest(run.task, plugin=run.plugin[0], plugin_version=run.plugin[1],
                          max_length=run.max_length, metrics=metrics,
                          base_model=modeling.public_name(run.model_name),
                          training=training,
                          prediction={"max_length": run.predict_max_length or run.max_length})


def _class_weight_values(run: PreparedRun) -> dict[str, float] | None:
    """The loss weights the run trained with, by label (None: unweighted)."""
    loss = run.trainer.compute_loss_func
    weights = getattr(loss, "weights", None)
    return dict(zip(run.task.labels, weights, strict=True)) if weights else None
