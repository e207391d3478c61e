"""Scaling: throughput against input length, and run time against training-set size.

Part 1, input length (about 16, 128, 512 and 2048 tokens; long inputs are SST-2 sentences
joined together, cut at exactly that length): training tokens/s through `fine_tune` (same
tokens per batch at every length) and `load_finetuned(...).predict` sentences/s on the model
that run saved. Part 2, training-set size (1k, 4k, 16k SST-2 rows): the wall time of a whole
one-epoch `fine_tune` run with its defaults (evaluation and checkpoints included).

Default model: the ModernBERT-base architecture cut to 4 of its 22 layers (hidden 768, local
attention window 128, layers 0 and 3 global), random init, real tokenizer: 8,192 positions
like the full model and about MiniLM's size, so the whole run takes a few minutes here.

    python bench/scaling.py
    python bench/scaling.py --lengths 16,128 --sizes 500,1000 --no-plot     # quick
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import common
import flops
from train_throughput import StepLog, recording, summarize

LENGTH_COLUMNS = [
    "tokens",
    "batch",
    "train tokens/s",
    "train vs 128",
    "train samples/s",
    "predict sentences/s",
    "predict tokens/s",
    "predict vs 128",
]
SIZE_COLUMNS = ["train rows", "steps", "train min", "wall min", "train samples/s", "wall s per 1k rows"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model",
        default="modernbert-base",
        help="a model folder or a name under ../shared/models (random init)",
    )
    p.add_argument(
        "--layers",
        type=int,
        default=4,
        help="cut a random-init architecture to this many layers (0: keep all)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with train.tsv and validation.tsv (default ../shared SST-2)",
    )
    p.add_argument("--lengths", default="16,128,512,2048", help="input lengths in tokens")
    p.add_argument(
        "--batch-tokens",
        type=int,
        default=2048,
        help="tokens per training batch (batch size = this / length, at least 1)",
    )
    p.add_argument("--steps", type=int, default=3, help="timed training steps per length")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before timing")
    p.add_argument(
        "--predict-tokens",
        type=int,
        default=32768,
        help="tokens predicted per length (texts = this / length, at least 8)",
    )
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median shown)")
    p.add_argument("--sizes", default="1000,4000,16000", help="training-set sizes for part 2 ('' to skip)")
    p.add_argument(
        "--plot",
        type=Path,
        default=common.ROOT / "docs" / "scaling.png",
        help="PNG written when matplotlib is installed",
    )
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    return p.parse_args(argv)


# --- part 1: input length ----------------------------------------------------------------------
def length_run(
    model_dir: Path,
    rows: list[tuple[str, int]],
    tokenizer: Any,
    length: int,
    args: argparse.Namespace,
    workdir: Path,
    flop_model: flops.FlopModel,
) -> dict[str, float]:
    """Train a few steps at `length` tokens per input, then predict with the saved model."""
    from modernbert_tasks import fine_tune, load_finetuned

    batch = max(1, args.batch_tokens // length)
    n_steps = args.warmup + args.steps + 1
    sentences = [t for t, _ in rows]
    texts = common.long_texts(sentences, tokenizer, length, batch * n_steps, seed=length)
    labels = [y for _, y in rows[: len(texts)]]
    data = workdir / f"len{length}"
    data.mkdir(exist_ok=True)
    common.write_tsv(data / "train.tsv", list(zip(texts, labels, strict=True)))
    common.write_tsv(data / "validation.tsv", list(zip(texts[:8], labels[:8], strict=True)))

    log = StepLog()
    with recording(log):
        result = fine_tune(
            "sst2",
            model_name=str(model_dir),
            output_dir=str(workdir / "out"),
            data_dir=str(data),
            max_length=length,
            max_steps=n_steps,
            per_device_train_batch_size=batch,
            eval_strategy="no",
            save_strategy="no",
            report_to="none",
            overwrite=True,
        )
    train = summarize(log, args.warmup, args.steps, flop_model)

    n_predict = max(8, args.predict_tokens // length)
    predict_texts = common.long_texts(sentences, tokenizer, length, n_predict, seed=length + 1)
    model = load_finetuned(result.model_path, device="cpu")
    model.predict(predict_texts[:4], show_progress=False)  # warm-up
    seconds, _ = common.elapsed(lambda: model.predict(predict_texts, show_progress=False))
    tokens = sum(
        len(ids) for ids in tokenizer(predict_texts, truncation=True, max_length=length)["input_ids"]
    )
    return {
        "batch": float(batch),
        "train tokens/s": train["real tokens/s"],
        "train samples/s": train["samples/s"],
        "predict sentences/s": n_predict / seconds,
        "predict tokens/s": tokens / seconds,
    }


# --- part 2: training-set size -----------------------------------------------------------------
def size_run(model_dir: Path, data_dir: Path, size: int, workdir: Path) -> dict[str, float]:
    """A whole one-epoch fine_tune run on `size` rows, defaults otherwise."""
    from modernbert_tasks import fine_tune

    start = time.perf_counter()
    result = fine_tune(
        "sst2",
        model_name=str(model_dir),
        output_dir=str(workdir / f"n{size}"),
        data_dir=str(data_dir),
        max_train_samples=size,
        num_train_epochs=1,
        report_to="none",
        overwrite=True,
    )
    wall = time.perf_counter() - start
    train = float(result.metrics["train_runtime"])
    steps = max(e.get("step", 0) for e in result.log_history)
    return {
        "train rows": size,
        "steps": steps,
        "train min": train / 60,
        "wall min": wall / 60,
        "train samples/s": size / train,
        "wall s per 1k rows": wall / size * 1000,
    }


# --- main ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.data_dir is None:
        common.require_shared("scaling (SST-2 sentences)")
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    data_dir = args.data_dir or common.SST2_DIR
    print(common.machine_header("scaling: input length and training-set size"))
    workdir = common.scratch_dir(None, "bench-scaling-")
    overrides = {"num_hidden_layers": args.layers} if args.layers else {}
    model_dir = common.prepare_model(args.model, workdir, **overrides)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    flop_model = flops.FlopModel.from_folder(model_dir)
    print(
        f"model: {args.model}"
        + (f" cut to {args.layers} layers" if args.layers else "")
        + f", random init ({flop_model.describe()})"
    )
    rows = common.read_tsv(data_dir / "train.tsv")

    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    runs = {
        f"{n} tokens": (lambda n=n: length_run(model_dir, rows, tokenizer, n, args, workdir, flop_model))
        for n in lengths
    }
    results = common.interleaved(runs, args.rounds)
    length_table = [{"tokens": n, **common.median(results[f"{n} tokens"])} for n in lengths]
    ref = next((r for r in length_table if r["tokens"] == 128), length_table[0])
    for row in length_table:
        row["batch"] = int(row["batch"])
        row["train vs 128"] = f"{row['train tokens/s'] / ref['train tokens/s']:.2f}x"
        row["predict vs 128"] = f"{row['predict tokens/s'] / ref['predict tokens/s']:.2f}x"
    print(
        f"\ninput length (median of {args.rounds} rounds; 'vs 128' compares tokens/s with "
        f"the {ref['tokens']}-token row)"
    )
    print(common.format_table(length_table, LENGTH_COLUMNS))

    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    size_table = []
    for size in sizes:
        row = size_run(model_dir, data_dir, size, workdir)
        print(f"  {size} rows: {row}")
        size_table.append(row)
    if size_table:
        print("\ntraining-set size (one run each, whole fine_tune call, 1 epoch)")
        print(common.format_table(size_table, SIZE_COLUMNS, digits={"train min": 2, "wall min": 2}))
    print(f"end: {common.load_line()}")
    if not args.no_plot:
        plot(length_table, size_table, args.plot)


def plot(length_table: list[dict], size_table: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot: matplotlib is not installed; no PNG written (pip install matplotlib)")
        return
    fig, axes = plt.subplots(1, 2 if size_table else 1, figsize=(10 if size_table else 5, 4))
    axes = list(axes) if size_table else [axes]
    xs = [r["tokens"] for r in length_table]
    axes[0].plot(xs, [r["train tokens/s"] for r in length_table], "o-", label="train")
    axes[0].plot(xs, [r["predict tokens/s"] for r in length_table], "s-", label="predict")
    axes[0].set(
        xscale="log", xlabel="input length (tokens)", ylabel="tokens/s", title="throughput vs input length"
    )
    axes[0].legend()
    if size_table:
        axes[1].plot([r["train rows"] for r in size_table], [r["wall min"] for r in size_table], "o-")
        axes[1].set(
            xlabel="training rows (1 epoch)", ylabel="minutes", title="fine_tune wall time vs data size"
        )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
