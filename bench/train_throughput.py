"""Training throughput: the recipe vs run_glue-style dynamic padding vs `fine_tune` defaults.

The configurations train the same model on the same sentences in one process, interleaved
over several rounds (order reversed every other round); the table shows medians and the
ratio to the first row.

  recipe    the recipe as written: padding="max_length" (128), random batches, fp32, stock
            Trainer with the recipe's TrainingArguments
  dynamic   HF run_glue-style dynamic padding: DataCollatorWithPadding, random batches, fp32
  ours      `modernbert_tasks.fine_tune` with its defaults (only the step count, batch size
            and, outside the timed window, evaluation/saving are set)
  v01       (optional) `fine_tune` with v0.1's defaults, set through today's options
            (reuse_memory=False, and bf16 autocast where v0.1's "auto" chose it)
  loop      (optional) no Trainer: a plain PyTorch loop on ours' batches and precision,
            to measure what the Trainer itself costs

`Trainer.training_step` is wrapped to time the steps and count the tokens of the batches
actually trained on; the first --warmup steps are not timed. On a CUDA GPU the same script
reports % of the card's bf16 peak (see bench/gpu.sh).

    python bench/train_throughput.py                       # ModernBERT-base, random init
    python bench/train_throughput.py --configs recipe,dynamic,ours,loop
    python bench/train_throughput.py --configs v01,ours     # the speed issue's target row
    python bench/train_throughput.py --model minilm --configs ours,loop
    python bench/train_throughput.py --configs ours --ablate "precision=fp32;group_by_length=False"
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common
import flops

COLUMNS = [
    "configuration",
    "samples/s",
    "ratio",
    "real tokens/s",
    "padding efficiency",
    "model TFLOP/s",
    "% of peak",
    "executed TFLOP/s",
    "system time %",
    "peak RSS MiB",
    "peak GPU MiB",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model",
        default="modernbert-base",
        help="a model folder, a name under ../shared/models (random init from its "
        "config.json + tokenizer), or 'minilm' (real pretrained weights)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with train.tsv (sentence, label); default ../shared SST-2; "
        "synthetic SST-2-length sentences with --synthetic",
    )
    p.add_argument(
        "--synthetic", action="store_true", help="use synthetic sentences with SST-2's length distribution"
    )
    p.add_argument(
        "--samples",
        type=int,
        default=3200,
        help="training-set size: random SST-2 train sentences. 3,200 = 4 x 50 "
        "batches of 16, so the Trainer's length grouping forms mega-batches of "
        "50 batches, as on the full SST-2",
    )
    p.add_argument(
        "--ours-steps",
        type=int,
        default=None,
        help="timed steps for ours. Default: one mega-batch of the Trainer's length "
        "grouping, min(samples // (4 x batch), 50) batches: batches are sorted "
        "by length inside a mega-batch, so only a whole one is a fair sample",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=10,
        help="timed steps for dynamic (random batches: a few are a fair sample)",
    )
    p.add_argument(
        "--recipe-steps",
        type=int,
        default=3,
        help="timed steps for the recipe (every batch has the same shape)",
    )
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    p.add_argument("--batch-size", type=int, default=16, help="per-device batch (recipe: 16)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median shown)")
    p.add_argument("--max-length", type=int, default=128, help="the recipe's max_length")
    p.add_argument(
        "--configs",
        default="recipe,dynamic,v01,ours",
        help="comma-separated subset of recipe,dynamic,v01,ours,loop (loop: no Trainer, "
        "to measure the Trainer's own cost)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="folder for the built model and run outputs, kept (default: a "
        "temporary folder, removed at the end); reusing one skips rebuilding "
        "a random-init model",
    )
    p.add_argument(
        "--ablate",
        default="",
        help="';'-separated sets of fine_tune arguments, each run as one more "
        "configuration next to ours, e.g. 'precision=fp32;group_by_length=False'",
    )
    p.add_argument(
        "--ours-args",
        default="",
        help="extra fine_tune arguments as key=value,... (e.g. precision=fp32) to "
        "measure one change against the defaults",
    )
    return p.parse_args(argv)


# --- measuring steps -------------------------------------------------------------------------
@dataclass
class StepLog:
    """Entry time and token counts of every training_step call of one run."""

    times: list[float] = field(default_factory=list)
    real: list[Any] = field(default_factory=list)  # per-sample real lengths (tensors)
    width: list[int] = field(default_factory=list)  # padded batch width
    rows: list[int] = field(default_factory=list)
    cpu: list[tuple[float, float]] = field(default_factory=list)  # (user, system) seconds so far

    def add(self, batch: Any) -> None:
        """Called as a step starts, with the batch it trains on."""
        _synchronize()  # the previous step's GPU work belongs to the previous step
        self.times.append(time.perf_counter())
        usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
        self.cpu.append((usage.ru_utime, usage.ru_stime))
        ids = batch["input_ids"]
        mask = batch.get("attention_mask")
        # keep the tensor: .sum() stays asynchronous on a GPU; read it after the run
        self.real.append(mask.sum(dim=1) if mask is not None else None)
        self.width.append(int(ids.shape[1]))
        self.rows.append(int(ids.shape[0]))


@contextlib.contextmanager
def recording(log: StepLog) -> Iterator[StepLog]:
    """Wrap Trainer.training_step for the duration: time each step's entry and count the
    tokens of its batch. Whatever Trainer subclass the engine uses calls it once per batch."""
    from transformers import Trainer

    original = Trainer.training_step

    def training_step(self, model, inputs, *args, **kwargs):
        log.add(inputs)
        return original(self, model, inputs, *args, **kwargs)

    Trainer.training_step = training_step
    try:
        yield log
    finally:
        Trainer.training_step = original


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def summarize(log: StepLog, warmup: int, steps: int, flop_model: flops.FlopModel) -> dict[str, float]:
    """Figures over the timed steps [warmup, warmup + steps): their wall time is the time
    between the entries of step `warmup` and step `warmup + steps`."""
    if len(log.times) < warmup + steps + 1:
        raise RuntimeError(
            f"only {len(log.times)} training steps ran; expected "
            f"{warmup + steps + 1}. Use a larger --samples."
        )
    seconds = log.times[warmup + steps] - log.times[warmup]
    window = range(warmup, warmup + steps)
    lengths = [
        int(v)
        for i in window
        for v in (log.real[i].tolist() if log.real[i] is not None else [log.width[i]] * log.rows[i])
    ]
    rows = sum(log.rows[i] for i in window)
    padded = sum(log.rows[i] * log.width[i] for i in window)
    model_flops = sum(flop_model.training_flops(n) for n in lengths)
    executed = sum(log.rows[i] * flop_model.training_flops(log.width[i]) for i in window)
    figures = {
        "samples/s": rows / seconds,
        "real tokens/s": sum(lengths) / seconds,
        "padding efficiency": sum(lengths) / padded,
        "model TFLOP/s": model_flops / seconds / 1e12,
        "executed TFLOP/s": executed / seconds / 1e12,
        "peak RSS MiB": common.peak_rss_mib(),
    }
    if log.cpu:  # the kernel's share of the CPU time: page faults of freshly allocated memory
        (user0, sys0), (user1, sys1) = log.cpu[warmup], log.cpu[warmup + steps]
        figures["system time %"] = 100 * (sys1 - sys0) / max(1e-9, (user1 - user0) + (sys1 - sys0))
    import torch

    if torch.cuda.is_available():
        figures["peak GPU MiB"] = torch.cuda.max_memory_allocated() / 2**20
    return figures


# --- the three configurations ------------------------------------------------------------------
def _dataset(tokenizer: Any, rows: list[tuple[str, int]], **tokenize: Any) -> Any:
    import datasets

    ds = datasets.Dataset.from_dict({"sentence": [t for t, _ in rows], "label": [y for _, y in rows]})
    return ds.map(
        lambda b: tokenizer(b["sentence"], truncation=True, **tokenize),
        batched=True,
        remove_columns=["sentence"],
    )


def run_trainer(
    model_dir: Path, train_ds: Any, tokenizer: Any, batch_size: int, n_steps: int, workdir: Path
) -> None:
    """Stock Trainer, fp32, random batches: the TrainingArguments the recipe wrote, minus
    evaluation and checkpointing (not part of training throughput)."""
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    args = TrainingArguments(
        output_dir=str(workdir / "trainer"),
        max_steps=n_steps,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64,
        warmup_steps=500,
        weight_decay=0.01,
        logging_steps=10,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    trainer.train()


def run_ours(
    model_dir: Path, data_dir: Path, batch_size: int, n_steps: int, workdir: Path, extra: dict[str, Any]
) -> None:
    """The real `fine_tune`, defaults untouched except the step budget and batch size;
    evaluation/saving (after the timed window) use the smallest eval set."""
    from modernbert_tasks import fine_tune

    fine_tune(
        "sst2",
        model_name=str(model_dir),
        output_dir=str(workdir / "ours"),
        data_dir=str(data_dir),
        max_steps=n_steps,
        per_device_train_batch_size=batch_size,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        overwrite=True,
        **extra,
    )


def run_loop(
    model_dir: Path, train_ds: Any, tokenizer: Any, batch_size: int, n_steps: int, log: StepLog
) -> None:
    """No Trainer: a plain PyTorch loop over the same kind of batches as ours (length-grouped,
    padded per batch), bf16 autocast where the engine would use it, fused AdamW, gradient
    clipping. What the model costs on this device; the gap to ours is Trainer overhead."""
    import torch
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from modernbert_tasks import hardware

    hw = hardware.detect()
    device = torch.device(hw.device)
    torch.manual_seed(42)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-5, weight_decay=0.01, fused=True)
    collate = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=hw.pad_to_multiple_of)
    lengths = [len(ids) for ids in train_ds["input_ids"]]
    order = get_length_grouped_indices(lengths, batch_size, generator=torch.Generator().manual_seed(42))
    for step in range(n_steps):
        start = step * batch_size % (len(order) - batch_size + 1)
        batch = collate([train_ds[i] for i in order[start : start + batch_size]])
        batch = {k: v.to(device) for k, v in batch.items()}
        log.add(batch)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=hw.precision == "bf16"):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    float(loss.detach())  # wait for the last step


# --- main ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.ours_steps is None:  # transformers' get_length_grouped_indices mega-batch size
        args.ours_steps = max(1, min(args.samples // (4 * args.batch_size), 50))
    if args.data_dir is None and not args.synthetic:
        common.require_shared("train_throughput (SST-2 sentences; or pass --synthetic)")
    import torch
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    print(common.machine_header("training throughput: recipe vs dynamic padding vs fine_tune"))
    workdir = common.scratch_dir(args.workdir, "bench-train-")
    model_dir = common.prepare_model(args.model, workdir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = _training_rows(args)
    data_dir = workdir / "data"
    data_dir.mkdir(exist_ok=True)
    common.write_tsv(data_dir / "train.tsv", rows)
    common.write_tsv(data_dir / "validation.tsv", rows[:32])
    flop_model = flops.FlopModel.from_folder(model_dir)
    peak, peak_source = flops.device_peak()  # on a CPU measured again at the end
    print(
        f"model: {args.model} ({flop_model.describe()}); {len(rows)} training sentences; "
        f"batch {args.batch_size}; timed steps: recipe {args.recipe_steps}, dynamic "
        f"{args.steps}, ours {args.ours_steps}, after {args.warmup} warm-up steps; "
        f"{args.rounds} rounds"
    )
    print(f"peak for '% of peak': {peak_source}")

    recipe_ds = _dataset(tokenizer, rows, padding="max_length", max_length=args.max_length)
    dynamic_ds = _dataset(tokenizer, rows, max_length=args.max_length)
    extra = common.parse_kv(args.ours_args)

    def measured(run, steps: int, wrap: bool = True):
        def go() -> dict[str, float]:
            log = StepLog()
            gc.collect()  # the previous configuration's model and optimizer go first
            common.reset_peak_rss()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            with recording(log) if wrap else contextlib.nullcontext():
                run(args.warmup + steps + 1, log)
            return summarize(log, args.warmup, steps, flop_model)

        return go

    v01_args = {**extra, **common.parse_kv(common.v01_defaults())}
    configs = {
        "recipe": (
            "recipe: max_length=128 padding, random, fp32",
            measured(
                lambda n, _: run_trainer(model_dir, recipe_ds, tokenizer, args.batch_size, n, workdir),
                args.recipe_steps,
            ),
        ),
        "dynamic": (
            "dynamic padding, random, fp32 (run_glue-style)",
            measured(
                lambda n, _: run_trainer(model_dir, dynamic_ds, tokenizer, args.batch_size, n, workdir),
                args.steps,
            ),
        ),
        "ours": (
            "fine_tune defaults" + (f" + {args.ours_args}" if extra else ""),
            measured(
                lambda n, _: run_ours(model_dir, data_dir, args.batch_size, n, workdir, extra),
                args.ours_steps,
            ),
        ),
        "v01": (
            f"v0.1 defaults ({common.v01_defaults()})",
            measured(
                lambda n, _: run_ours(model_dir, data_dir, args.batch_size, n, workdir, v01_args),
                args.ours_steps,
            ),
        ),
        "loop": (
            "plain PyTorch loop, same batching and precision as ours",
            measured(
                lambda n, log: run_loop(model_dir, dynamic_ds, tokenizer, args.batch_size, n, log),
                args.ours_steps,
                wrap=False,
            ),
        ),
    }
    for variant in filter(None, (v.strip() for v in args.ablate.split(";"))):
        changes = {**extra, **common.parse_kv(variant)}
        configs[variant] = (
            f"fine_tune + {variant}",
            measured(
                lambda n, _, changes=changes: run_ours(
                    model_dir, data_dir, args.batch_size, n, workdir, changes
                ),
                args.ours_steps,
            ),
        )
    chosen = [c.strip() for c in args.configs.split(",") if c.strip()]
    chosen += [v.strip() for v in args.ablate.split(";") if v.strip()]
    unknown = set(chosen) - set(configs)
    if unknown:
        raise SystemExit(f"--configs: unknown {sorted(unknown)}; expected among {list(configs)}")
    results = common.interleaved({configs[c][0]: configs[c][1] for c in chosen}, args.rounds)

    if not torch.cuda.is_available():
        # a busy moment makes the matmul rate look low: keep the better of two measurements
        end_peak, end_source = flops.device_peak()
        if end_peak > peak:
            peak, peak_source = end_peak, end_source
            print(f"peak for '% of peak', measured again at the end: {peak_source}")
    table = []
    base = None
    for name, figures in results.items():
        med = common.median(figures)
        base = base or med["samples/s"]
        row = {"configuration": name, **med, "ratio": f"{med['samples/s'] / base:.2f}x"}
        if peak:
            row["% of peak"] = 100 * med["model TFLOP/s"] * 1e12 / peak
        table.append(row)
    print(
        f"\nmedian of {args.rounds} rounds; ratio = samples/s relative to the first row; "
        f"threads {torch.get_num_threads()}"
    )
    print(common.format_table(table, [c for c in COLUMNS if any(c in r for r in table)]))
    print(f"end: {common.load_line()}")


def _training_rows(args: argparse.Namespace) -> list[tuple[str, int]]:
    if args.synthetic:
        return common.synthetic_sst2(args.samples, seed=0)
    if args.data_dir is not None:
        rows = common.read_tsv(args.data_dir / "train.tsv")
        return [rows[i] for i in _sample_indices(len(rows), args.samples)]
    return common.read_sst2("train", limit=args.samples, seed=0)


def _sample_indices(n: int, k: int) -> list[int]:
    import random

    return sorted(random.Random(0).sample(range(n), min(k, n)))


if __name__ == "__main__":
    main()
