"""Prediction throughput: `load_finetuned(...).predict` against `transformers.pipeline`.

Both load the same saved model and label the same texts (by default the 1,821 SST-2 test
sentences); the script checks that they give the same labels, then prints sentences/s and
the ratio to the pipeline as users call it (no batch_size), from one run with the
configurations interleaved.

    python bench/predict_throughput.py                        # MiniLM, real weights
    python bench/predict_throughput.py --model modernbert-base --limit 500
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

import common
import flops

COLUMNS = ["configuration", "sentences/s", "ratio", "model GFLOP/s", "RSS growth MiB"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model",
        default=common.MINILM,
        help="'minilm' (real all-MiniLM-L6-v2 weights + a 2-label head), a model "
        "folder, or a name under ../shared/models (random init)",
    )
    p.add_argument(
        "--texts",
        type=Path,
        default=None,
        help="TSV with a 'sentence' column (default: ../shared SST-2 test.tsv)",
    )
    p.add_argument("--limit", type=int, default=None, help="use only the first N texts")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per configuration")
    p.add_argument(
        "--batch-size", type=int, default=64, help="batch size of predict() and of the batched pipeline row"
    )
    p.add_argument(
        "--bf16",
        action="store_true",
        help="add a row for predict(precision='bf16') (labels compared, not required to match)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.texts is None:
        common.require_shared("predict_throughput (default texts)")
    import torch
    import transformers

    from modernbert_tasks import load_finetuned

    print(common.machine_header("predict throughput: load_finetuned().predict vs pipeline"))
    rows = common.read_tsv(args.texts or common.SST2_DIR / "test.tsv")
    texts = [t for t, _ in rows][: args.limit]
    workdir = common.scratch_dir(None, "bench-predict-")
    model_dir = common.prepare_model(args.model, workdir)
    print(
        f"model: {args.model} -> {model_dir}; {len(texts)} texts; batch size "
        f"{args.batch_size}; {args.rounds} rounds"
    )

    ours = load_finetuned(model_dir, device="cpu")
    # useful work per call: forward FLOPs of every text's real tokens
    flop_model = flops.FlopModel.from_folder(model_dir)
    lengths = [
        len(ids) for ids in ours.tokenizer(texts, truncation=True, max_length=ours.max_length)["input_ids"]
    ]
    work = sum(flop_model.forward_flops(n) for n in lengths)
    print(
        f"texts: {sum(lengths) / len(lengths):.1f} tokens on average; "
        f"{flop_model.describe()}; CPU matmul measured now: "
        f"fp32 {flops.measure_matmul(torch.float32) / 1e9:.0f} GFLOP/s, "
        f"bf16 {flops.measure_matmul(torch.bfloat16) / 1e9:.0f} GFLOP/s"
    )
    ours_bf16 = load_finetuned(model_dir, device="cpu", precision="bf16") if args.bf16 else None
    # the default is "mixed" (bf16 + fp32 for close calls) where bf16 is fast, else fp32
    ours_fp32 = (
        load_finetuned(model_dir, device="cpu", precision="fp32") if ours.precision != "fp32" else None
    )
    print(f"predict default precision here: {ours.precision!r}")
    pipe = transformers.pipeline("text-classification", model=str(model_dir), device="cpu")
    labels: dict[str, list[str]] = {}

    def timed(name: str, fn) -> callable:
        def run() -> dict[str, float]:
            gc.collect()
            before = common.rss_mib()
            common.reset_peak_rss()
            seconds, out = common.elapsed(fn)
            labels[name] = [o["label"] for o in out]
            # all models stay loaded, so only the growth during the call is this call's own
            return {
                "sentences/s": len(texts) / seconds,
                "model GFLOP/s": work / seconds / 1e9,
                "RSS growth MiB": max(0.0, common.peak_rss_mib() - before),
            }

        return run

    # The pipeline called the way its docs show (one text at a time), then with batching,
    # which pads each batch of unsorted texts to its longest.
    runs = {
        "pipeline (default, batch 1)": timed("pipe", lambda: pipe(texts)),
        f"pipeline (batch_size={args.batch_size})": timed(
            "pipe_batched", lambda: pipe(texts, batch_size=args.batch_size)
        ),
        f"load_finetuned().predict (batch_size={args.batch_size})": timed(
            "ours", lambda: ours.predict(texts, batch_size=args.batch_size, show_progress=False)
        ),
    }
    if ours_fp32 is not None:
        runs["predict, precision='fp32'"] = timed(
            "ours_fp32", lambda: ours_fp32.predict(texts, batch_size=args.batch_size, show_progress=False)
        )
    if ours_bf16 is not None:
        runs["predict, precision='bf16'"] = timed(
            "ours_bf16", lambda: ours_bf16.predict(texts, batch_size=args.batch_size, show_progress=False)
        )
    # warm-up: first calls allocate and pick kernels
    with torch.inference_mode():
        pipe(texts[:8])
        ours.predict(texts[:8])
    results = common.interleaved(runs, args.rounds)

    base = common.median(results["pipeline (default, batch 1)"])["sentences/s"]
    table = []
    for name, figures in results.items():
        med = common.median(figures)
        table.append({"configuration": name, **med, "ratio": f"{med['sentences/s'] / base:.2f}x"})
    print()
    print(common.format_table(table, COLUMNS))
    agree = _agreement(labels["ours"], labels["pipe"])
    print(
        f"\nlabels: predict vs pipeline identical on {agree}/{len(texts)} texts; "
        f"batched pipeline vs pipeline {_agreement(labels['pipe_batched'], labels['pipe'])}"
        f"/{len(texts)}"
    )
    fp32_labels = labels.get("ours_fp32", labels["ours"])
    if ours_fp32 is not None:
        rescored, total = ours.last_rescored
        print(
            f"labels: predict default ({ours.precision}) vs fp32 identical on "
            f"{_agreement(labels['ours'], fp32_labels)}/{len(texts)} texts; "
            f"{rescored}/{total} ({100 * rescored / max(total, 1):.1f}%) re-scored in fp32"
        )
    if ours_bf16 is not None:
        print(
            f"labels: predict bf16 vs fp32 identical on "
            f"{_agreement(labels['ours_bf16'], fp32_labels)}/{len(texts)} texts"
        )
    print(f"end: {common.load_line()}")
    if agree != len(texts):
        raise SystemExit("FAIL: predict() and the pipeline disagree on some labels (see above).")


def _agreement(a: list[str], b: list[str]) -> int:
    return sum(x == y for x, y in zip(a, b, strict=True))


if __name__ == "__main__":
    main()
