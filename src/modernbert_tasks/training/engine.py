"""`fine_tune()`: fine-tune a sequence classifier on a task in one call.

It follows the recipe it replaces, step by step, and `prepare` reads in that order:
1. options -> 2. the model source (config and tokenizer) -> 3. data and tokenization ->
4. the model and the Trainer; then `fine_tune` trains -> 5. evaluates -> 6. saves (and pushes).
`prepare()` stops before training and returns the ready `PreparedRun`, for benchmarks and tests.

Under ``torchrun``/``accelerate launch`` the same call trains with DDP (the Trainer handles
it); only the main process writes the final model, and every process returns the result.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import hardware
from ..artifacts.saving import save_final_model
from ..errors import hint
from ..long_text import LongText
from ..metrics import load_evaluate_metrics
from ..model_sources import ModelSource, looks_like_path, position_limit
from ..options import AUTO, DEFAULT_MODEL, TrainOptions, default_output_dir, resolve_options
from ..task import Task
from . import speed
from .arguments import (
    is_main_process,
    push_settings,
    schedule,
    training_arguments,
    training_is_main,
    warn_if_one_of_many,
)
from .batching import make_collator, tokenize_splits
from .checkpoints import cleaning_up_new_folders, clear_previous_run, find_checkpoint, output_dir_for
from .chunking import train_long_text
from .final import final_metrics, train_metrics
from .lora import apply_lora, check_resume, finish_lora
from .master_weights import BF16_WEIGHTS, check_precision
from .run import LOGS_SUBDIR, MODEL_SUBDIR, RUN_METRICS, FineTuneResult, PreparedRun
from .splits import final_splits, fixed_max_length, load_splits
from .task_source import data_files_of, resolve_task

if TYPE_CHECKING:
    from transformers import Trainer

__all__ = [
    "fine_tune",
    "prepare",
    "FineTuneResult",
    "PreparedRun",
    "DEFAULT_MODEL",
    "training_arguments",
    "MODEL_SUBDIR",
    "LOGS_SUBDIR",
    "RUN_METRICS",
]

logger = logging.getLogger(__name__)


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

        return fine_tune_seeds(fine_tune, task, model_name, output_dir_for(task, output_dir), **args)
    from .calibrating import calibrate_run
    from .checkpoints import refusing_unsafe_checkpoint, reporting_write_errors
    from .interrupts import RESUME_HINT, GracefulInterrupt, stop_on_sigint
    from .locking import run_lock

    task, _, args = resolve_task(task, args)
    out = output_dir_for(task, output_dir)
    # one run per folder; other ranks of a distributed run share the main process's lock
    with cleaning_up_new_folders(out), run_lock(out, enabled=is_main_process()):
        run = prepare(task, model_name, out, **args)
        trainer = run.trainer
        interrupt = GracefulInterrupt()
        trainer.add_callback(interrupt)
        with (
            reporting_write_errors(run.output_dir, RESUME_HINT),
            refusing_unsafe_checkpoint(run.checkpoint),
            stop_on_sigint(interrupt),
        ):
            train_output = trainer.train(resume_from_checkpoint=run.checkpoint)
        interrupt.raise_if_interrupted(trainer)
        lora = finish_lora(run)  # LoRA: adapter saved if asked, then merged (training/lora.py)
        if run.long_text.chunks:  # per text, with the temperature (training/chunking.py)
            calibration, calibration_metrics = calibrate_run(run)
            metrics = final_metrics(run, calibration) | train_metrics(train_output.metrics)
        else:
            metrics = final_metrics(run) | train_metrics(train_output.metrics)
            calibration, calibration_metrics = calibrate_run(run)  # temperature, threshold
        metrics |= calibration_metrics
        manifest = run.manifest(metrics)
        if calibration is not None:
            manifest["calibration"] = calibration
        if lora is not None:
            manifest["lora"] = lora
        save_final_model(trainer, run.model_path, manifest)
        if run.push is not None and training_is_main(trainer):
            from ..artifacts.publish import push_to_hub

            plan = push_to_hub(run.model_path, **run.push)
            logger.info("Pushed the model to %s (%d files)", plan.url or run.push["repo_id"], len(plan.files))
    best = trainer.state.best_model_checkpoint
    return FineTuneResult(
        metrics=metrics,
        model_path=run.model_path,
        best_checkpoint=Path(best) if best else None,
        log_history=list(trainer.state.log_history),
        output_dir=run.output_dir,
    )


def prepare(
    task: str | Task | None = None,
    model_name: str | os.PathLike = DEFAULT_MODEL,
    output_dir: str | os.PathLike | None = None,
    **args: Any,
) -> PreparedRun:
    """Steps 1-4 of `fine_tune`: options, model source, data, model and Trainer."""
    # 1. options, checked before anything is read or written
    task, plugin, args = resolve_task(task, args)
    resolved = resolve_options(task, args)
    opts = resolved.options
    if opts.text_prefix is not None:
        task = dataclasses.replace(task, text_prefix=opts.text_prefix)
    push = push_settings(resolved)  # checked now: a push must not fail after hours of training
    # without network, one quick error names every download the run needs (before the
    # seconds of importing the Trainer, and the minute of retries that loading would take)
    _require_model_and_data(os.fspath(model_name), task, opts)
    load_evaluate_metrics(task.metrics)  # an evaluate metric that cannot load fails now
    out = Path(output_dir) if output_dir is not None else default_output_dir(task.name)
    hw = hardware.detect(
        opts.precision, opts.attention, use_cpu=bool(resolved.trainer_kwargs.get("use_cpu", False))
    )
    check_precision(opts.precision, lora=opts.lora, compile=opts.compile)
    hw.log()

    # 2. the model source: a wrong model_name fails in seconds, before any data work
    source = ModelSource.for_training(
        os.fspath(model_name),
        {
            "num_labels": task.num_labels,
            "id2label": task.id2label,
            "label2id": task.label2id,
            "problem_type": task.problem_type,
        },
        allow_pickle=opts.allow_pickle,
        hub_kwargs=_hub_kwargs(opts),
    )
    # "auto" is read from the training texts once they are loaded (training/lengths.py)
    max_length = None if opts.max_length == AUTO else fixed_max_length(opts, task, source.config, source.path)
    checkpoint = check_resume(find_checkpoint(out, opts), opts)  # a LoRA checkpoint needs lora=True
    training_args = training_arguments(resolved, hw, out)  # starts torch.distributed when launched
    warn_if_one_of_many(training_args.world_size)

    # 3. data: loaded and tokenized once, by the main process first
    with training_args.main_process_first(desc="preparing the output folder and data"):
        splits, held_out = load_splits(task, opts)
        if max_length is None:
            from .lengths import auto_max_length

            max_length = auto_max_length(
                splits["train"],
                task,
                source.tokenizer,
                getattr(source.config, "max_position_embeddings", None),
                opts.seed,
            )
        long_text = train_long_text(opts, task, source.tokenizer, max_length)
        tokenized = tokenize_splits(
            splits,
            task,
            source.tokenizer,
            max_length,
            opts.padding,
            None if opts.cache_dir is None else os.fspath(opts.cache_dir),
            long_text.stride,
        )
        # chunks: prediction reads windows of the length the model was trained on
        predict_max_length = (
            max_length
            if long_text.chunks
            else max(position_limit(source.config, source.tokenizer) or max_length, max_length)
        )
        scored = final_splits(splits, tokenized, task, source.tokenizer, max_length, predict_max_length, opts)
    if "eval" not in tokenized:
        logger.warning(
            "Task %r has no evaluation split in this data: training without "
            "evaluation, and the final model is the last one.",
            task.name,
        )
        training_args.set_evaluate("no")
        training_args.load_best_model_at_end = False
    schedule(training_args, resolved, len(tokenized["train"]))

    # 4. the model and the Trainer
    trainer = _trainer(task, opts, source, hw, training_args, tokenized, max_length, long_text)
    _send_tensorboard_to(trainer, Path(opts.logging_dir) if opts.logging_dir else out / LOGS_SUBDIR)
    # overwrite=True deletes the earlier run only now that every option, the data and the model
    # have been checked: a bad value must not cost the user their checkpoints
    if training_args.process_index == 0 and opts.overwrite:
        clear_previous_run(out, opts)
    return PreparedRun(
        task=task,
        plugin=plugin,
        model_name=source.path,
        output_dir=out,
        options=opts,
        resolved=resolved,
        hardware=hw,
        max_length=max_length,
        trainer=trainer,
        checkpoint=checkpoint,
        test_dataset=tokenized.get("test"),
        predict_max_length=predict_max_length,
        final_splits=scored,
        num_examples={role: len(ds) for role, ds in tokenized.items()},
        held_out=held_out,
        push=push,
        source=source,
        long_text=long_text,
    )


def _trainer(
    task: Task,
    opts: TrainOptions,
    source: ModelSource,
    hw: hardware.Hardware,
    training_args: Any,
    tokenized: Any,
    max_length: int,
    long_text: LongText,
) -> Trainer:
    """Class weights, callbacks, the model (seeded head) and our Trainer."""
    from transformers import set_seed

    from .calibrating import check_calibration_options
    from .chunking import DocumentMetrics
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

    stopper = early_stopping_callback(opts, training_args, "eval" in tokenized)
    check_calibration_options(opts, task, "eval" in tokenized)
    counts = label_counts(tokenized["train"], task)
    log_label_distribution(counts, task)
    weights = resolve_class_weights(opts.class_weights, task, counts, len(tokenized["train"]))
    if weights is not None:
        logger.info("Class weights: %s", dict(zip(task.labels, weights, strict=True)))

    set_seed(opts.seed)  # the classification head is initialised next
    model = source.load_model(hw.attention, attention_requested=opts.attention != "auto")
    model = apply_lora(model, opts)  # lora=True: adapters, the head trained in full
    if opts.freeze_embeddings:
        speed.freeze_embeddings(model)
    if opts.compile:
        speed.compile_in_place(model, mode=opts.compile_mode)
    return TaskTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized.get("eval"),
        processing_class=source.tokenizer,
        data_collator=make_collator(
            source.tokenizer,
            hw.pad_to_multiple_of,
            speed.bucket_widths(opts.shape_buckets, opts.compile, max_length),
        ),
        compute_metrics=DocumentMetrics(task, long_text.aggregate) if long_text.chunks else _metrics_fn(task),
        callbacks=[
            *(opts.callbacks or []),
            TimeEstimate(),
            StopOnDivergence(training_args.learning_rate),
            *([stopper] if stopper else []),
        ],
        compute_loss_func=WeightedLoss(weights, task.problem_type) if weights else None,
        reuse_memory=opts.reuse_memory,
        compile_clip=opts.compile,
        master_weights=hw.precision == BF16_WEIGHTS,
    )


def _hub_kwargs(opts: TrainOptions) -> dict[str, Any]:
    return {
        "revision": opts.revision,
        "trust_remote_code": opts.trust_remote_code,
        "cache_dir": None if opts.cache_dir is None else os.fspath(opts.cache_dir),
    }


def _require_model_and_data(model_name: str, task: Task, opts: TrainOptions) -> None:
    from ..hub import HubSource, require_hub

    cache_dir = None if opts.cache_dir is None else os.fspath(opts.cache_dir)
    sources = []
    if not Path(model_name).expanduser().exists() and not looks_like_path(model_name):
        sources.append(
            HubSource(
                "model",
                model_name,
                local_hint="pass a local model folder: "
                + hint("model_name='path/to/modernbert'", "--model PATH"),
                cache_dir=cache_dir,
            )
        )
    values = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}
    if task.hub_id and not opts.data_dir and not data_files_of(values):
        sources.append(
            HubSource(
                "dataset",
                task.hub_id,
                task.hub_config,
                local_hint="use local files: " + task.local_hint(),
                cache_dir=cache_dir,
            )
        )
    require_hub(sources)


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
