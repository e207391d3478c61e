"""Long documents: truncate against chunks (mean and max) on documents several windows long.

Documents are built from real SST-2 sentences: each has 12-30 sentences, about 70% of them
(rounded) carrying the document's label and the rest the other label, shuffled, so its label
is the majority of what it says and a truncated reading sees only its first few sentences.
Held-out documents use the validation and test sentences (2,693 full sentences, never trained
on; a sentence appears in several documents, never twice in one).

The model is the real pretrained all-MiniLM-L6-v2 fine-tuned through `fine_tune` (1 epoch),
in one run or both of:

  sentences   on a random 5,000 SST-2 training rows (temperature fitted on 500 others)
  documents   on 800 training documents built the same way from SST-2 training rows of at
              least 10 words, with train_long_text="chunks" (every 128-token window a row
              with its document's label; temperature fitted per document on 150 others)

Each model is loaded with max_length=128 and scores the held-out documents with `evaluate`
three ways:

  truncate        each document up to 128 tokens
  chunks (mean)   the whole document in windows of 128 tokens sharing 16, the mean of their
                  calibrated probabilities
  chunks (max)    the same windows, the per-label max (renormalised)

    python bench/long_docs.py                          # both models, 300 documents
    python bench/long_docs.py --train-on sentences --train-rows 2000 --documents 100
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path
from typing import Any

import common

COLUMNS = ["trained on", "reading", "accuracy", "vs truncate", "windows/doc", "seconds", "time ratio"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model", default=common.MINILM, help="'minilm' (real pretrained weights) or a model folder"
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with SST-2-style train/validation/test TSVs (default: ../shared SST-2)",
    )
    p.add_argument(
        "--train-on",
        choices=("sentences", "documents", "both"),
        default="both",
        help="fine-tune on SST-2 sentences, on training documents (train_long_text='chunks'), or both",
    )
    p.add_argument("--train-rows", type=int, default=5000, help="sentences: SST-2 training rows")
    p.add_argument("--calibration-rows", type=int, default=500, help="sentences: other rows, eval split")
    p.add_argument("--train-documents", type=int, default=800, help="documents: training documents")
    p.add_argument("--calibration-documents", type=int, default=150, help="documents: eval split")
    p.add_argument("--min-words", type=int, default=10, help="documents: training rows used as sentences")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--documents", type=int, default=300, help="held-out documents to score")
    p.add_argument("--sentences", default="12,30", help="sentences per document: MIN,MAX")
    p.add_argument("--share", type=float, default=0.7, help="share of sentences with the document's label")
    p.add_argument("--max-length", type=int, default=128, help="the window: tokens read at a time")
    p.add_argument("--stride", type=int, default=None, help="chunks: tokens windows share (default: 1/8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--args", default="", help="extra fine_tune arguments as key=value,...")
    p.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where fine_tune writes, kept (default: a temporary folder, removed at the end)",
    )
    return p.parse_args(argv)


def make_documents(
    sentences: list[tuple[str, int]], n: int, sizes: tuple[int, int], share: float, seed: int
) -> list[tuple[str, int]]:
    """`n` documents, half of each label: sizes[0]..sizes[1] sentences, round(share x size) of
    them with the document's label and the rest with the other, shuffled, no sentence twice."""
    rng = random.Random(seed)
    pools = {label: [s for s, y in sentences if y == label] for label in (0, 1)}
    docs = []
    for i in range(n):
        label = i % 2
        size = rng.randint(*sizes)
        same = round(share * size)
        picked = rng.sample(pools[label], same) + rng.sample(pools[1 - label], size - same)
        rng.shuffle(picked)
        docs.append((" ".join(picked), label))
    rng.shuffle(docs)
    return docs


def train_model(
    args: argparse.Namespace, model: str, kind: str, data_dir: Path, out_root: Path, extra: dict[str, Any]
) -> Any:
    """Fine-tune on SST-2 training sentences, or on training documents with
    train_long_text='chunks' (every window a row with its document's label); return the
    FineTuneResult."""
    from modernbert_tasks import fine_tune

    train = common.read_tsv(data_dir / "train.tsv")
    random.Random(args.seed).shuffle(train)
    folder = out_root / f"data-{kind}"
    folder.mkdir(exist_ok=True)
    options: dict[str, Any] = {}
    if kind == "sentences":
        rows = train[: args.train_rows]
        calibration = train[args.train_rows : args.train_rows + args.calibration_rows]
        what = f"{len(rows):,} SST-2 training rows, temperature fitted on {len(calibration):,} others"
    else:
        # training rows long enough to be sentences, not the phrases SST-2 also holds
        sentences = [r for r in train if len(r[0].split()) >= args.min_words]
        half = len(sentences) // 2  # the two splits draw from different sentences
        sizes = tuple(int(x) for x in args.sentences.split(","))
        rows = make_documents(sentences[:half], args.train_documents, sizes, args.share, args.seed + 1)
        calibration = make_documents(
            sentences[half:], args.calibration_documents, sizes, args.share, args.seed + 2
        )
        options = {"train_long_text": "chunks", "max_length": args.max_length, "stride": args.stride}
        what = (
            f"{len(rows):,} training documents built the same way from {len(sentences):,} SST-2 "
            f"training rows of >= {args.min_words} words, train_long_text='chunks'; temperature "
            f"fitted on {len(calibration):,} other documents"
        )
    common.write_tsv(folder / "train.tsv", rows)
    common.write_tsv(folder / "validation.tsv", calibration)
    print(f"trained on {kind}: {what}; {args.epochs:g} epoch(s); extra fine_tune args: {extra or 'none'}")
    start = time.perf_counter()
    result = fine_tune(
        "sst2",
        model_name=model,
        output_dir=str(out_root / f"run-{kind}"),
        data_dir=str(folder),
        num_train_epochs=args.epochs,
        seed=args.seed,
        overwrite=True,
        **{"report_to": "none", "disable_tqdm": True, **options, **extra},
    )
    print(
        f"  fine-tuned in {time.perf_counter() - start:.0f} s: accuracy {result.metrics['accuracy']:.4f} "
        f"on its evaluation split, temperature {result.metrics.get('temperature', 1.0):.3f}"
    )
    return result


def score(args: argparse.Namespace, model_path: Path, kind: str, docs: list[tuple[str, int]]) -> list[dict]:
    """The held-out documents read three ways by one loaded model: evaluate's accuracy each."""
    from modernbert_tasks import load_finetuned

    fm = load_finetuned(model_path, precision="fp32", max_length=args.max_length)
    fm.warn_truncation = False
    labelled = [(text, fm.labels[label]) for text, label in docs]
    readings: list[tuple[str, dict[str, Any]]] = [
        ("truncate", {"long_text": "truncate"}),
        ("chunks (mean)", {"long_text": "chunks", "stride": args.stride, "aggregate": "mean"}),
        ("chunks (max)", {"long_text": "chunks", "stride": args.stride, "aggregate": "max"}),
    ]
    table = []
    for name, how in readings:
        seconds, figures = common.elapsed(lambda how=how: fm.evaluate(labelled, **how))
        windows = figures.get("windows", len(docs))
        table.append(
            {
                "trained on": kind,
                "reading": name,
                "accuracy": figures["accuracy"],
                "windows": windows,
                "seconds": seconds,
            }
        )
        print(f"  {kind}, {name}: accuracy {figures['accuracy']:.4f}, {windows} windows")
    base = table[0]
    for row in table:
        row["vs truncate"] = f"{100 * (row['accuracy'] - base['accuracy']):+.1f} pts"
        row["windows/doc"] = row["windows"] / len(docs)
        row["time ratio"] = f"{row['seconds'] / base['seconds']:.2f}x"
    return table


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.data_dir is None:
        common.require_shared("long_docs (the SST-2 data)")
    data_dir = args.data_dir or common.SST2_DIR
    model = str(common.minilm_dir()) if args.model == common.MINILM else args.model
    extra = common.parse_kv(args.args)
    low, high = (int(x) for x in args.sentences.split(","))
    kinds = ["sentences", "documents"] if args.train_on == "both" else [args.train_on]
    print(common.machine_header(f"long documents: {args.model}, truncate vs chunks"))
    out_root = common.scratch_dir(args.output_dir, "bench-long-docs-")

    held_out = common.read_tsv(data_dir / "validation.tsv") + common.read_tsv(data_dir / "test.tsv")
    docs = make_documents(held_out, args.documents, (low, high), args.share, args.seed)
    print(
        f"model: {model}; held-out documents: {len(docs)}, {low}-{high} sentences each from the "
        f"{len(held_out):,} validation and test sentences, {args.share:.0%} with the document's "
        "label, shuffled"
    )
    from transformers import AutoTokenizer

    lengths = [
        len(ids)
        for ids in AutoTokenizer.from_pretrained(model)([d for d, _ in docs], verbose=False)["input_ids"]
    ]
    print(
        f"document length: median {statistics.median(lengths):.0f} tokens (min {min(lengths)}, "
        f"max {max(lengths)}); max_length {args.max_length}"
    )
    table = []
    for kind in kinds:
        result = train_model(args, model, kind, data_dir, out_root, extra)
        table += score(args, result.model_path, kind, docs)
    from modernbert_tasks.long_text import default_stride

    stride = args.stride if args.stride is not None else default_stride(args.max_length)
    print()
    print(f"max_length {args.max_length}, stride {stride}: accuracy on {len(docs)} held-out documents")
    print(common.format_table(table, COLUMNS, digits={"windows/doc": 2, "seconds": 1}))
    print(f"end: {common.load_line()}")


if __name__ == "__main__":
    main()
