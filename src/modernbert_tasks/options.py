"""Every option `fine_tune()` accepts: its name, type, default, and where the default comes from.

Two sets of names are accepted, both as plain keyword arguments:

* the library's own options, the fields of `TrainOptions` below (data, tokenization, speed);
* every `transformers.TrainingArguments` field (epochs, batch sizes, learning rate, ...).

Precedence, highest first: what the caller passes > the task's ``hyperparameters`` >
`RECIPE_DEFAULTS` > the `TrainingArguments` defaults. `describe_options()` lists all of it for
the CLI and the generated docs. Nothing here imports torch; transformers is imported only by the
functions that need the `TrainingArguments` fields.

Over 400 lines on purpose: `TrainOptions`, `RECIPE_DEFAULTS` and `RENAMED` (about 200 lines of
fields, help texts and sources) are the one visible place for every default, and the checks
that read them sit next to them.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import math
import numbers
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import ConfigError, suggest
from .type_checks import coerce, matches_type, type_name

if TYPE_CHECKING:
    from .task import Task

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MODEL",
    "AUTO",
    "auto_eval_steps",
    "TrainOptions",
    "Default",
    "RECIPE_DEFAULTS",
    "RENAMED",
    "ResolvedOptions",
    "resolve_options",
    "describe_options",
    "trainer_fields",
    "default_output_dir",
    "all_option_names",
    "LORA_LEARNING_RATE",
    "LORA_INSTALL_HINT",
]

DEFAULT_MODEL = "lightonai/modernbert-embed-large"
AUTO = "auto"  # a default the engine computes from the run's size (eval_steps, save_steps)
EVAL_STEPS_FLOOR = 50  # the recipe's evaluation interval
EVAL_FRACTION = 0.1  # ... stretched to 10% of the run when that is longer
_AUTO_FIELDS = ("eval_steps", "save_steps")


@dataclass
class TrainOptions:
    """The library's own options (everything that is not a `TrainingArguments` field)."""

    # --- data -------------------------------------------------------------------------------
    data_dir: str | os.PathLike | None = field(
        default=None,
        metadata={
            "help": (
                "Folder with the split files (train.tsv, validation.tsv, test.tsv; or .csv/.jsonl/"
                ".parquet). Default: the task's hub dataset."
            )
        },
    )
    data_files: Mapping[str, Any] | str | os.PathLike | None = field(
        default=None, metadata={"help": "Explicit files per split, e.g. {'train': 'a.csv', 'eval': 'b.csv'}."}
    )
    train_file: str | os.PathLike | None = field(
        default=None,
        metadata={
            "help": (
                "Training data file (.csv, .tsv, .jsonl, .json or .parquet). With no task name, the task "
                "is inferred from the data (see docs/your-own-data.md)."
            )
        },
    )
    validation_file: str | os.PathLike | None = field(
        default=None,
        metadata={
            "help": ("Evaluation data file. Default: validation_fraction of the training file, held out.")
        },
    )
    test_file: str | os.PathLike | None = field(
        default=None, metadata={"help": ("Test data file, scored once at the end when it has labels.")}
    )
    dataset: str | None = field(
        default=None,
        metadata={
            "help": ("A Hugging Face Hub dataset id ('org/name') to train on without a registered task.")
        },
    )
    dataset_config: str | None = field(
        default=None,
        metadata={"help": ("The hub dataset's configuration name (e.g. 'sst2' for 'nyu-mll/glue').")},
    )
    text_columns: str | list[str] | None = field(
        default=None,
        metadata={
            "help": (
                "The text column, or two columns for sentence pairs ('premise,hypothesis'). Default: "
                "the task's; for data without a task, inferred when there is one string column."
            )
        },
    )
    label_column: str | None = field(
        default=None,
        metadata={
            "help": (
                "The label column. Default: the task's; for data without a task, a column named "
                "label, labels, target, class or category."
            )
        },
    )
    labels: list[str] | None = field(
        default=None,
        metadata={
            "help": (
                "Label names in id order, for data without a task. Default: the training split's "
                "values, numbers sorted numerically and strings alphabetically."
            )
        },
    )
    problem_type: (
        Literal["single_label_classification", "multi_label_classification", "regression"] | None
    ) = field(
        default=None,
        metadata={
            "help": (
                "For data without a task. Default: inferred (strings or integers: single-label; "
                "non-integer numbers: regression; lists or label_separator: multi-label)."
            )
        },
    )
    label_separator: str | None = field(
        default=None, metadata={"help": ("Split label cells on this string for multi-label data, e.g. ','.")}
    )
    label_columns: list[str] | None = field(
        default=None,
        metadata={
            "help": (
                "Multi-label data with one column per label (one-hot): the columns, each cell 0/1, "
                "true/false or yes/no. Default: inferred when every column besides the text holds "
                "only 0/1."
            )
        },
    )
    task_name: str | None = field(
        default=None,
        metadata={"help": ("Name of a task inferred from data. Default: the data folder's or file's name.")},
    )
    validation_fraction: float = field(
        default=0.1,
        metadata={
            "help": (
                "Without an evaluation split, hold out this stratified, seeded share of the training "
                "data for evaluation (0 trains without evaluation)."
            )
        },
    )
    data_revision: str | None = field(
        default=None,
        metadata={"help": "Hub dataset revision (branch, tag or commit). Default: the task's hub_revision."},
    )
    max_train_samples: int | None = field(
        default=None,
        metadata={
            "help": ("Train on a random subset of this many examples (shuffled with `seed`). Default: all.")
        },
    )
    max_eval_samples: int | None = field(
        default=None,
        metadata={
            "help": (
                "Evaluate on a random subset of this many examples (shuffled with `seed`). Default: all."
            )
        },
    )
    exclude_rows: str | os.PathLike | None = field(
        default=None,
        metadata={
            "help": (
                "Train without the rows listed in this CSV (columns row and text), e.g. the "
                "label_issues.csv of `modernbert-tasks audit`. Refused when its rows or texts do not "
                "match the training data. See docs/your-own-data.md."
            )
        },
    )
    exclude_top: int | None = field(
        default=None,
        metadata={
            "help": (
                "With exclude_rows: exclude only the file's first N rows (an audit lists the likeliest "
                "errors first). Default: every listed row."
            )
        },
    )
    # --- tokenization -------------------------------------------------------------------------
    max_length: int | Literal["auto"] | None = field(
        default=None,
        metadata={
            "help": (
                "Truncate texts to this many tokens. 'auto': the 99.9th percentile of the training "
                "texts' token lengths, rounded up to a multiple of 8 and capped at the model's positions. "
                "Default: the task's max_length (128 for sst2)."
            )
        },
    )
    train_long_text: Literal["truncate", "chunks"] = field(
        default="truncate",
        metadata={
            "help": (
                "A text longer than max_length: 'truncate' trains on its first max_length tokens; "
                "'chunks' cuts it into windows of max_length tokens (sharing `stride`), each a training "
                "row with the text's label, and scores evaluations per text, from its windows' "
                "aggregated probabilities. Recorded in the manifest: predict and evaluate then read "
                "long texts the same way by default."
            )
        },
    )
    stride: int | None = field(
        default=None,
        metadata={
            "help": (
                "With train_long_text='chunks': the tokens consecutive windows share, below max_length. "
                "Default: max_length // 8."
            )
        },
    )
    aggregate: Literal["mean", "max"] | None = field(
        default=None,
        metadata={
            "help": (
                "With train_long_text='chunks': a text's output from its windows', the 'mean' or the "
                "per-label 'max' of their calibrated probabilities (regression: the mean). Default: mean."
            )
        },
    )
    padding: Literal["longest", "max_length"] = field(
        default="longest",
        metadata={
            "help": (
                "'longest' pads each batch to its longest text (fast); 'max_length' pads every text to "
                "max_length, as the original recipe did (fixed-width batches)."
            )
        },
    )
    group_by_length: bool = field(
        default=True,
        metadata={
            "help": (
                "Batch texts of similar length together so batches carry little padding (train and "
                "eval). No effect with padding='max_length'. Ignored if train_sampling_strategy is set."
            )
        },
    )
    text_prefix: str | None = field(
        default=None,
        metadata={
            "help": (
                "Text prepended to every input, e.g. 'classification: ' for embedding models trained "
                "with prefixes. Default: the task's text_prefix."
            )
        },
    )
    # --- model and speed ----------------------------------------------------------------------
    precision: Literal["auto", "bf16", "bf16-weights", "fp16", "fp32"] = field(
        default="auto",
        metadata={
            "help": (
                "Mixed precision. 'auto': bf16 autocast where bf16 is faster (GPUs with bf16, CPUs with "
                "AMX, and CPUs with AVX512-BF16 where a bf16 matmul measures faster), fp16 on older "
                "GPUs, else fp32. 'bf16-weights' (opt-in; one process, no compile or LoRA): bf16 "
                "weights in each training step, fp32 master weights for the optimizer. Evaluation "
                "and the saved model are fp32 always."
            )
        },
    )
    attention: Literal["auto", "sdpa", "flash_attention_2", "eager"] = field(
        default="auto",
        metadata={
            "help": ("Attention kernel. 'auto': flash_attention_2 when installed and on CUDA, else sdpa.")
        },
    )
    compile: bool = field(
        default=False,
        metadata={
            "help": (
                "torch.compile the model (in place; saving is unchanged), with batch widths padded to "
                "a few sizes (shape_buckets) so only a handful of graphs compile. Falls back to eager "
                "with a warning if compiling fails. Pays off on long runs: the first batch of each "
                "width compiles for seconds to minutes. See docs/benchmarks-speed.md."
            )
        },
    )
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = field(
        default="default",
        metadata={
            "help": (
                "torch.compile mode with compile=True. 'reduce-overhead' adds CUDA graphs on GPUs "
                "(one per shape bucket), cutting kernel-launch cost."
            )
        },
    )
    shape_buckets: Literal["auto", "pow2", "none"] = field(
        default="auto",
        metadata={
            "help": (
                "Pad each batch's width up to one of a few sizes: 'pow2' = 16, 32, 64, ... up to "
                "max_length; 'none' = each batch's longest text; 'auto' = 'pow2' with compile=True, "
                "else 'none'."
            )
        },
    )
    freeze_embeddings: bool = field(
        default=False,
        metadata={
            "help": (
                "Do not train the token embedding matrix (ModernBERT-base: 38.6M of 149M parameters). "
                "Faster steps on CPUs, but it changes what is trained: check accuracy."
            )
        },
    )
    reuse_memory: bool = field(
        default=True,
        metadata={
            "help": (
                "Keep freed memory for the next step (glibc malloc, Linux) and reuse the gradient "
                "buffers too large for malloc to keep (32 MiB and up: the token embedding's) instead "
                "of faulting in fresh pages: the same updates, faster CPU steps "
                "(bench/train_throughput.py, docs/benchmarks-speed.md). Gradient buffers are kept on "
                "CPUs only: a GPU's caching allocator already reuses memory. False: as the plain "
                "Trainer."
            )
        },
    )
    revision: str | None = field(
        default=None, metadata={"help": "Model revision on the hub (branch, tag or commit)."}
    )
    cache_dir: str | os.PathLike | None = field(
        default=None,
        metadata={
            "help": (
                "Cache folder for downloaded models, datasets and tokenized data. Default: the "
                "Hugging Face caches (HF_HOME)."
            )
        },
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={
            "help": ("Allow model code from the hub to run locally. Off unless you trust the repository.")
        },
    )
    allow_pickle: bool = field(
        default=False,
        metadata={
            "help": (
                "Also load pickle weights (pytorch_model.bin) when the model folder has no safetensors. "
                "Unpickling can run arbitrary code: only for files you trust."
            )
        },
    )
    # --- run control --------------------------------------------------------------------------
    seed: int = field(
        default=42,
        metadata={
            "help": ("Seed for subsets, shuffling, head initialisation and dropout (the recipe's 42).")
        },
    )
    resume: bool | str | os.PathLike = field(
        default=False,
        metadata={
            "help": (
                "True: continue from the last checkpoint in output_dir (starts fresh if there is none); "
                "a path: continue from that checkpoint."
            )
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": ("Delete checkpoints and logs of an earlier run in output_dir and start over.")},
    )
    logging_dir: str | os.PathLike | None = field(
        default=None, metadata={"help": ("TensorBoard log folder. Default: <output_dir>/logs.")}
    )
    callbacks: list[Any] | None = field(
        default=None,
        metadata={"help": ("transformers TrainerCallback instances added to the Trainer (Python API only).")},
    )
    # --- results you can trust (docs/reporting-results.md) -------------------------------------
    seeds: list[int] | None = field(
        default=None,
        metadata={
            "help": (
                "Train once per seed, each in <output_dir>/seed-<n>; report mean, std, min and max of "
                "every metric and keep the best seed (on the evaluation split) in <output_dir>/model. "
                "E.g. [1, 2, 3]. Replaces seed."
            )
        },
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": (
                "Stop after this many evaluations without improvement of the task's main metric "
                "(needs an evaluation split). Default: never stop early."
            )
        },
    )
    early_stopping_threshold: float = field(
        default=0.0,
        metadata={
            "help": (
                "How much the main metric must improve to count as an improvement for "
                "early_stopping_patience."
            )
        },
    )
    class_weights: Literal["balanced"] | Mapping[str, float] | None = field(
        default=None,
        metadata={
            "help": (
                "Weight the loss per class: 'balanced' (n_examples / (n_classes x class count), from "
                "the training split) or {label: weight}. Default: unweighted."
            )
        },
    )
    temperature_scaling: bool = field(
        default=True,
        metadata={
            "help": (
                "After training, fit a temperature on the evaluation split's logits so predict returns "
                "calibrated probabilities (labels do not change). Needs an evaluation split."
            )
        },
    )
    decision_threshold: float | Literal["tune", "tune-per-label"] | None = field(
        default=None,
        metadata={
            "help": (
                "Binary and multi-label tasks: the probability above which predict assigns the "
                "(positive) label. 'tune': the threshold that maximises the main metric on the "
                "evaluation split. 'tune-per-label' (multi-label): 'tune', then each label's own "
                "threshold maximising its F1. Default: 0.5 (argmax for binary)."
            )
        },
    )
    threshold_min_positives: int = field(
        default=5,
        metadata={
            "help": (
                "With decision_threshold='tune-per-label': a label with fewer positive examples in "
                "the evaluation split keeps the global tuned threshold."
            )
        },
    )

    # --- LoRA: parameter-efficient fine-tuning through peft (docs/your-own-data.md#lora) -------
    lora: bool = field(
        default=False,
        metadata={
            "help": (
                "Train low-rank adapters (LoRA, through peft) instead of every weight; the "
                "classification and pooling head are trained in full. The saved model is merged "
                "(a plain model: predict, ONNX, pipeline and serve work unchanged). The learning "
                "rate defaults to LoRA's own, 1e-3, unless you pass one. Needs pip install "
                "'modernbert-tasks[peft]'."
            )
        },
    )
    lora_r: int = field(
        default=8, metadata={"help": "With lora=True: the rank of each adapter (its two matrices)."}
    )
    lora_alpha: int = field(
        default=16,
        metadata={"help": "With lora=True: the adapters' scale is lora_alpha / lora_r (peft's alpha)."},
    )
    lora_dropout: float = field(
        default=0.0,
        metadata={
            "help": (
                "With lora=True: dropout on the adapters' input, in [0, 1). Default 0: peft's "
                "dropout copies every adapted layer's input, and 0.1 measured slower (0.57x to "
                "0.72x the samples/s) and no more accurate (bench/lora.py)."
            )
        },
    )
    lora_target_modules: list[str] | str | None = field(
        default=None,
        metadata={
            "help": (
                "With lora=True: the layers that get adapters, by name (a name matches a module "
                "whose dotted path ends with it), or 'all-linear'. Default: by architecture: "
                "ModernBERT Wqkv, Wo, Wi; BERT-style query, key, value, dense; others all-linear."
            )
        },
    )
    save_adapter: bool = field(
        default=False,
        metadata={
            "help": (
                "With lora=True: also write the unmerged adapter (adapter_config.json and "
                "adapter_model.safetensors, the head included) to <output_dir>/adapter, for "
                "multi-LoRA serving (e.g. vLLM) on top of the base model."
            )
        },
    )


@dataclass(frozen=True)
class Default:
    """A default value and where it comes from (shown by `describe_options`)."""

    value: Any
    source: str


# The recipe we replace (see README), with its values fixed where they are wrong for the data.
# Order of precedence: caller > task.hyperparameters > these > TrainingArguments defaults.
RECIPE_DEFAULTS: dict[str, Default] = {
    "num_train_epochs": Default(3, "recipe"),
    "per_device_train_batch_size": Default(16, "recipe"),
    "per_device_eval_batch_size": Default(64, "recipe"),
    "weight_decay": Default(0.01, "recipe"),
    # The recipe's 500 warmup steps exceed its whole 1,000-example run (3 epochs x 63 = 189
    # steps), so the learning rate would never reach its peak. 6% of the steps is RoBERTa's
    # GLUE setting and fits any run length (a float < 1 is a ratio in TrainingArguments).
    "warmup_steps": Default(0.06, "recipe's 500 steps replaced by a 6% ratio (RoBERTa GLUE)"),
    "logging_strategy": Default("steps", "recipe"),
    "logging_steps": Default(10, "recipe"),
    # Every 50 steps suits the recipe's 189-step subset (4 evaluations) but means ~250
    # evaluations and checkpoint writes on full SST-2 (12.6k steps). "auto" keeps the recipe's 50
    # and stretches it to 10% of the run on larger runs: max(50, ceil(0.1 x total steps)); the
    # engine resolves it once the data size is known. A run shorter than 50 steps is evaluated
    # and saved at its end. Passing only eval_steps (or only save_steps) sets the other to match.
    "eval_strategy": Default("steps", "recipe"),
    "eval_steps": Default(AUTO, "recipe's 50 steps, or 10% of the run when that is more"),
    "save_strategy": Default("steps", "recipe"),
    "save_steps": Default(AUTO, "follows eval_steps (load_best_model_at_end needs them to match)"),
    "save_total_limit": Default(2, "recipe"),
    "load_best_model_at_end": Default(True, "recipe"),
    # metric_for_best_model / greater_is_better come from the task (main_metric).
    "report_to": Default("tensorboard", "recipe (logs under <output_dir>/logs)"),
    # Not in the recipe. DDP only: the Trainer's default (True) re-walks the autograd graph every
    # step to find unused parameters; ModernBERT classifiers use them all. A model that does not
    # fails with a message naming this option: pass ddp_find_unused_parameters=True.
    "ddp_find_unused_parameters": Default(False, "speed: every ModernBERT parameter is used"),
    # Not in the recipe. The Trainer's default (True) checks every step's loss for NaN/inf with
    # two host syncs (a GPU stall each step) only to keep such losses out of the logged average.
    "logging_nan_inf_filter": Default(False, "speed: no per-step host sync (affects only the logged loss)"),
}

# lora=True: LoRA trains about 1-2% of the weights, adapters that start at zero, so it needs a
# larger step than full fine-tuning (whose 3e-5 leaves them near zero). The caller's
# learning_rate wins; the task's and the recipe's are for full fine-tuning and give way.
LORA_LEARNING_RATE = Default(1e-3, "LoRA's own (bench/lora.py: best of 2e-4..2e-3 on MiniLM)")

# Names from older transformers or run_glue.py -> what to pass instead.
RENAMED: dict[str, str] = {
    "evaluation_strategy": "eval_strategy",
    "warmup_ratio": "warmup_steps (a float below 1 is a ratio of the run, e.g. warmup_steps=0.06)",
    "overwrite_output_dir": "overwrite=True",
    "resume_from_checkpoint": "resume=True (or resume='path/to/checkpoint')",
    "no_cuda": "use_cpu=True",
    "model_name_or_path": "model_name",
    "torch_dtype": "precision ('auto', 'bf16', 'fp16', 'fp32'); weights always load in fp32",
    "dtype": "precision ('auto', 'bf16', 'fp16', 'fp32'); weights always load in fp32",
    "attn_implementation": "attention ('auto', 'sdpa', 'flash_attention_2', 'eager')",
    "max_seq_length": "max_length",
    "pad_to_max_length": "padding='max_length'",
    "model_revision": "revision",
    "dataset_name": "dataset (a hub id), or a registered task name",
    "dataset_config_name": "dataset_config",
    "text_column_names": "text_columns",
    "label_column_name": "label_column",
}


# --- field tables ---------------------------------------------------------------------------
def _option_fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(TrainOptions)}


@functools.cache
def _option_hints() -> dict[str, Any]:
    return typing.get_type_hints(TrainOptions)


@functools.cache
def trainer_fields() -> dict[str, tuple[dataclasses.Field, Any]]:
    """TrainingArguments fields a caller may set: name -> (field, resolved type hint)."""
    from transformers import TrainingArguments

    hints = typing.get_type_hints(TrainingArguments)
    own = _option_fields()
    return {
        f.name: (f, hints.get(f.name, Any))
        for f in dataclasses.fields(TrainingArguments)
        if f.init and not f.name.startswith("_") and f.name not in own
    }


def all_option_names() -> list[str]:
    return sorted(set(_option_fields()) | set(trainer_fields()))


# --- type checking (type_checks.py) ------------------------------------------------------
def _check(name: str, value: Any, hint: Any, where: str) -> None:
    if not matches_type(value, hint):
        raise ConfigError(
            f"{where}{name}={value!r} has the wrong type ({type(value).__name__}); expected "
            f"{type_name(hint)}. Fix it, e.g. {name}={_example(hint, _default_of(name))}."
        )


def _default_of(name: str) -> Any:
    if name in RECIPE_DEFAULTS:
        return RECIPE_DEFAULTS[name].value
    field_ = _option_fields().get(name) or (trainer_fields().get(name, (None,))[0])
    return None if field_ is None else _field_default(field_)


def _example(hint: Any, default: Any = None) -> str:
    if default is not None and default != AUTO and matches_type(default, hint):
        return repr(default)  # the field's own default is a value that fits
    origin = typing.get_origin(hint)
    if origin is Literal:
        return repr(typing.get_args(hint)[0])
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        return _example(arms[0]) if arms else "None"
    return {int: "3", float: "3.0", bool: "True", str: "'...'"}.get(hint, "...")


def _check_name(name: str, where: str) -> None:
    if name in RENAMED:
        raise ConfigError(f"{where}{name!r} is not an option here; use {RENAMED[name]} instead.")
    if name not in _option_fields() and name not in trainer_fields():
        raise ConfigError(
            f"{where}unknown option {name!r}.{suggest(name, all_option_names())} fine_tune() accepts "
            "the modernbert_tasks options and any transformers.TrainingArguments field; list them "
            "with `modernbert-tasks options` or modernbert_tasks.options.describe_options()."
        )


def _validate(args: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = {}
    for name, value in args.items():
        _check_name(name, where)
        hint = _option_hints()[name] if name in _option_fields() else trainer_fields()[name][1]
        value = coerce(value, hint)
        if not (value == AUTO and name in _AUTO_FIELDS):
            _check(name, value, hint, where)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(
                f"{where}{name}={value!r} is not a finite number; expected a "
                f"number, e.g. {name}={_example(hint, _default_of(name))}."
            )
        out[name] = os.fspath(value) if isinstance(value, os.PathLike) else value
    return out


def _check_values(opts: TrainOptions) -> None:
    for name in ("max_train_samples", "max_eval_samples"):
        value = getattr(opts, name)
        if value is not None and value < 1:
            raise ConfigError(
                f"{name}={value} would leave no examples; expected an integer >= 1, "
                f"or None to use all of them."
            )
    if opts.resume not in (False, None) and opts.overwrite:
        raise ConfigError(
            f"resume={opts.resume!r} and overwrite=True contradict each other: "
            "resume continues the earlier run, overwrite deletes it. Pass one."
        )
    if isinstance(opts.max_length, int) and opts.max_length < 8:  # not None or 'auto'
        raise ConfigError(
            f"max_length={opts.max_length} is too short; expected an integer >= 8 "
            "(tokens, special tokens included)."
        )
    _check_long_text(opts)
    _check_trust_options(opts)
    _check_lora(opts)


def _check_long_text(opts: TrainOptions) -> None:
    """stride/aggregate without chunks, or a stride not below a fixed max_length (the
    tokenizer's special tokens are checked once it is loaded)."""
    from .long_text import resolve_long_text

    fixed = opts.max_length if isinstance(opts.max_length, int) else None
    if opts.train_long_text == "chunks" and (fixed is None or opts.stride is None):
        return
    resolve_long_text(
        opts.train_long_text,
        opts.stride,
        opts.aggregate,
        max_length=fixed or 8,
        special_tokens=0,
        mode_name=("train_long_text", "--train-long-text"),
    )


# name -> (lowest allowed, whether the lowest itself is allowed, what it means)
RANGES: dict[str, tuple[float, bool, str]] = {
    "learning_rate": (0, False, "a positive number, e.g. 3e-5"),
    "num_train_epochs": (0, False, "a positive number of epochs (or set max_steps)"),
    "per_device_train_batch_size": (1, True, "an integer >= 1"),
    "per_device_eval_batch_size": (1, True, "an integer >= 1"),
    "gradient_accumulation_steps": (1, True, "an integer >= 1"),
    "weight_decay": (0, True, "a number >= 0"),
    "warmup_steps": (0, True, "a number >= 0 (a float below 1 is a share of the run)"),
    "max_grad_norm": (0, True, "a number >= 0 (0 turns clipping off)"),
    "logging_steps": (0, False, "a positive number of steps (a float below 1 is a share)"),
    "eval_steps": (0, False, "a positive number of steps (a float below 1 is a share), or 'auto'"),
    "save_steps": (0, False, "a positive number of steps (a float below 1 is a share), or 'auto'"),
    "save_total_limit": (1, True, "an integer >= 1, or None to keep every checkpoint"),
    "adam_epsilon": (0, False, "a positive number"),
    "dataloader_num_workers": (0, True, "an integer >= 0"),
    "label_smoothing_factor": (0, True, "a number in [0, 1)"),
}


def _check_ranges(trainer_kwargs: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """Out-of-range numbers fail here, before a folder is touched or a step is trained."""
    max_steps = trainer_kwargs.get("max_steps", -1)
    for name, (low, inclusive, expected) in RANGES.items():
        value = trainer_kwargs.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if name == "num_train_epochs" and isinstance(max_steps, int) and max_steps > 0:
            continue  # max_steps decides the length of the run
        if (
            value < low
            or (value == low and not inclusive)
            or (name == "label_smoothing_factor" and value >= 1)
        ):
            origin = sources.get(name, "")
            where = f" (from {origin})" if origin.startswith("task") else ""
            raise ConfigError(
                f"{name}={value!r}{where} is out of range; expected {expected}. Nothing was changed on disk."
            )
    _check_learning_rate(trainer_kwargs.get("learning_rate"))
    if isinstance(max_steps, int) and max_steps == 0:
        raise ConfigError(
            "max_steps=0 would train nothing; expected a positive number of steps, "
            "or -1 (the default) to train for num_train_epochs."
        )


# fine-tuning a pretrained encoder: 1e-5 to 1e-4 (the recipe: 3e-5; LoRA up to about 1e-3)
USUAL_LEARNING_RATES = "1e-5 to 1e-4"


def _check_learning_rate(value: Any) -> None:
    """Above 1 every run diverges to NaN weights; above 1e-2 most fine-tuning runs do."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    if value > 1:
        raise ConfigError(
            f"learning_rate={value!r} is out of range: a step that large makes the "
            f"weights NaN. Fine-tuning uses {USUAL_LEARNING_RATES} (the recipe: "
            "3e-5); pass e.g. learning_rate=3e-5. Nothing was changed on disk."
        )
    if value > 1e-2:
        logger.warning(
            "learning_rate=%g is far above the usual %s for fine-tuning; training "
            "may diverge (it stops with an error if the loss becomes NaN).",
            value,
            USUAL_LEARNING_RATES,
        )


def _check_trust_options(opts: TrainOptions) -> None:
    """seeds, early stopping, class weights and thresholds (docs/reporting-results.md)."""
    if opts.seeds is not None:
        if not opts.seeds or len(set(opts.seeds)) != len(opts.seeds):
            raise ConfigError(
                f"seeds={list(opts.seeds)!r}; expected a non-empty list of distinct "
                "integers, e.g. seeds=[1, 2, 3] (CLI: --seeds 1 2 3)."
            )
    if opts.early_stopping_patience is not None and opts.early_stopping_patience < 1:
        raise ConfigError(
            f"early_stopping_patience={opts.early_stopping_patience}; expected an "
            "integer >= 1 (evaluations without improvement), or None."
        )
    if opts.early_stopping_threshold < 0:
        raise ConfigError(
            f"early_stopping_threshold={opts.early_stopping_threshold}; expected a number >= 0."
        )
    if isinstance(opts.class_weights, Mapping):
        bad = {
            k: v
            for k, v in opts.class_weights.items()
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or not v > 0
        }
        if bad:
            raise ConfigError(
                f"class_weights has weights {bad!r}; expected positive numbers, e.g. "
                "class_weights={'negative': 1.0, 'positive': 5.0}."
            )
    threshold = opts.decision_threshold
    if isinstance(threshold, int | float) and not 0 < threshold < 1:  # not None or 'tune'
        raise ConfigError(
            f"decision_threshold={threshold!r}; expected a probability between 0 "
            "and 1 (exclusive), 'tune', 'tune-per-label', or None for 0.5."
        )
    if opts.threshold_min_positives < 1:
        raise ConfigError(
            f"threshold_min_positives={opts.threshold_min_positives}; expected an integer >= 1 "
            "(positive examples a label needs in the evaluation split for its own threshold)."
        )


LORA_INSTALL_HINT = "pip install 'modernbert-tasks[peft]'"
LORA_OPTIONS = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "save_adapter")


def _check_lora(opts: TrainOptions) -> None:
    """LoRA's numbers, and peft itself (found, not imported); the target modules are checked
    against the model when it is loaded (training/lora.py)."""
    if not opts.lora:
        return
    if opts.lora_r < 1:
        raise ConfigError(
            f"lora_r={opts.lora_r} is not a rank; expected a positive integer, e.g. lora_r=8 "
            "(4 to 64 is usual: higher trains more parameters)."
        )
    if not opts.lora_alpha > 0:
        raise ConfigError(
            f"lora_alpha={opts.lora_alpha!r}; expected a positive integer, e.g. lora_alpha=16 "
            "(twice lora_r is usual)."
        )
    if not 0 <= opts.lora_dropout < 1:
        raise ConfigError(f"lora_dropout={opts.lora_dropout!r}; expected a number in [0, 1), e.g. 0.1.")
    targets = opts.lora_target_modules
    if targets is not None and (not targets or any(not t.strip() for t in targets)):
        raise ConfigError(
            f"lora_target_modules={targets!r} names no module; expected module names, e.g. "
            "lora_target_modules=['Wqkv', 'Wo', 'Wi'], 'all-linear', or None for the "
            "architecture's default."
        )
    import importlib.util

    if importlib.util.find_spec("peft") is None:
        raise ConfigError(f"lora=True needs peft, which is not installed: {LORA_INSTALL_HINT}.")


def _lora_defaults(
    options: dict[str, Any], trainer_kwargs: dict[str, Any], sources: dict[str, str], chosen: set[str]
) -> None:
    """lora_* options need lora=True; with it, LoRA's learning rate replaces the task's and the
    recipe's (theirs are for full fine-tuning), unless the caller gives one."""
    if not options.get("lora"):
        given = [name for name in LORA_OPTIONS if name in chosen]
        if given:
            raise ConfigError(
                f"{given[0]}={options[given[0]]!r} has no effect without lora=True; pass "
                f"lora=True to train LoRA adapters, or drop {given[0]}."
            )
        return
    if sources.get("learning_rate") != "caller":
        trainer_kwargs["learning_rate"] = LORA_LEARNING_RATE.value
        sources["learning_rate"] = LORA_LEARNING_RATE.source


# --- resolving ------------------------------------------------------------------------------
@dataclass
class ResolvedOptions:
    """The effective settings of one run, and where each TrainingArguments value came from."""

    options: TrainOptions
    trainer_kwargs: dict[str, Any]
    sources: dict[str, str]

    def explicit(self, name: str) -> bool:
        """Whether the caller or the task chose this value (not a default)."""
        return self.sources.get(name, "").startswith(("caller", "task"))


def auto_eval_steps(total_steps: int) -> int:
    """The "auto" evaluation/checkpoint interval: the recipe's 50 steps, or 10% of the run."""
    return max(EVAL_STEPS_FLOOR, math.ceil(EVAL_FRACTION * total_steps))


def default_output_dir(task_name: str) -> Path:
    """runs/<task>, relative to the current directory (TensorBoard: --logdir runs)."""
    return Path("runs") / task_name


def resolve_options(task: Task, args: Mapping[str, Any]) -> ResolvedOptions:
    """Validate names and types; merge caller > task.hyperparameters > RECIPE_DEFAULTS."""
    task_args = _validate(task.hyperparameters, f"Task {task.name!r} hyperparameters: ")
    user_args = _validate(args, "")
    own = _option_fields()

    layers = [("task " + repr(task.name), task_args), ("caller", user_args)]
    option_values: dict[str, Any] = {}
    trainer_kwargs = {name: d.value for name, d in RECIPE_DEFAULTS.items() if name not in own}
    sources = {name: d.source for name, d in RECIPE_DEFAULTS.items()}
    sources["metric_for_best_model"] = sources["greater_is_better"] = f"task {task.name!r}"
    trainer_kwargs["metric_for_best_model"] = task.main_metric
    trainer_kwargs["greater_is_better"] = task.greater_is_better
    for source, layer in layers:
        for name, value in layer.items():
            (option_values if name in own else trainer_kwargs)[name] = value
            sources[name] = source
    _fold_precision_flags(trainer_kwargs, option_values, sources)
    _lora_defaults(option_values, trainer_kwargs, sources, set(task_args) | set(user_args))
    options = TrainOptions(**option_values)
    _check_values(options)
    _check_ranges(trainer_kwargs, sources)
    trainer_kwargs["seed"] = options.seed

    # load_best_model_at_end needs eval and save on the same schedule: a caller who moves one
    # moves both, unless they set both. Turning one off ("no") leaves the other alone: without
    # evaluation, checkpoints are still what resume=True continues from. There is then no best
    # model to load.
    chosen = set(task_args) | set(user_args)
    for a, b in (("eval_strategy", "save_strategy"), ("eval_steps", "save_steps")):
        if (a in chosen) != (b in chosen):
            src, dst = (a, b) if a in chosen else (b, a)
            if trainer_kwargs[src] != "no":
                trainer_kwargs[dst] = trainer_kwargs[src]
                sources[dst] = f"follows {src}"
    off = [n for n in ("eval_strategy", "save_strategy") if trainer_kwargs.get(n) == "no"]
    if off and "load_best_model_at_end" not in chosen:
        trainer_kwargs["load_best_model_at_end"] = False
        sources["load_best_model_at_end"] = f"{off[0]}='no'"
    return ResolvedOptions(options, trainer_kwargs, sources)


def _fold_precision_flags(
    trainer_kwargs: dict[str, Any], option_values: dict[str, Any], sources: dict[str, str]
) -> None:
    """bf16=True / fp16=True (TrainingArguments style) mean precision='bf16' / 'fp16';
    bf16=False alone means fp32. The engine then sets both flags from `precision`."""
    flags = {name: trainer_kwargs.pop(name) for name in ("bf16", "fp16") if name in trainer_kwargs}
    if not flags:
        return
    on = [name for name, value in flags.items() if value]
    if len(on) > 1:
        raise ConfigError(
            "bf16=True and fp16=True were both given; pick one (or pass "
            "precision='bf16' / 'fp16' / 'fp32' / 'auto')."
        )
    wanted = on[0] if on else "fp32"
    current = option_values.get("precision", "auto")
    if current not in ("auto", wanted):
        given = ", ".join(f"{k}={v}" for k, v in flags.items())
        raise ConfigError(f"precision={current!r} contradicts {given}; pass only one of them.")
    option_values["precision"] = wanted
    sources["precision"] = sources.pop("bf16", "") or sources.pop("fp16", "caller")


# --- describing -----------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def describe_options(task: Task | None = None) -> list[dict[str, Any]]:
    """Every option as {name, group, type, default, source, help}, library options first.

    With a task, its hyperparameters show as the defaults they become for that task.
    """
    task_args = dict(task.hyperparameters) if task is not None else {}
    rows = []
    for name, f in _option_fields().items():
        default, source = _field_default(f), "modernbert_tasks"
        if task is not None and name in task_args:  # task_args is empty without a task
            default, source = task_args[name], f"task {task.name!r}"
        rows.append(
            {
                "name": name,
                "group": "modernbert_tasks",
                "type": type_name(_option_hints()[name]),
                "default": _jsonable(default),
                "source": source,
                "help": f.metadata.get("help", ""),
            }
        )
    derived = {
        "metric_for_best_model": "the task's main_metric",
        "greater_is_better": "the task's greater_is_better",
        "bf16": "precision option",
        "fp16": "precision option",
        "use_cpu": "True when no GPU is used",
        "output_dir": "runs/<task>",
        "train_sampling_strategy": "group_by_length option",
    }
    for name, (f, hint) in trainer_fields().items():
        default, source = _field_default(f), "transformers.TrainingArguments"
        if name in RECIPE_DEFAULTS:
            default, source = RECIPE_DEFAULTS[name].value, RECIPE_DEFAULTS[name].source
        if name in derived:
            source = derived[name]
        if task is not None and name == "metric_for_best_model":
            default = task.main_metric
        if task is not None and name == "greater_is_better":
            default = task.greater_is_better
        if task is not None and name in task_args:  # task_args is empty without a task
            default, source = task_args[name], f"task {task.name!r}"
        if task is not None and name == "output_dir":
            default = str(default_output_dir(task.name))
        help_text = " ".join(str(f.metadata.get("help", "")).split())
        rows.append(
            {
                "name": name,
                "group": "TrainingArguments",
                "type": type_name(hint),
                "default": _jsonable(default),
                "source": source,
                "help": help_text,
            }
        )
    return rows
