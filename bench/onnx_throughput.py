"""ONNX throughput and accuracy: pipeline vs predict (torch fp32) vs onnxruntime fp32 and int8.

One run: a model (by default all-MiniLM-L6-v2 quickly fine-tuned on SST-2, or an untrained
head with --train-steps 0) is exported with `export_onnx(quantize='int8')` (its parity check
runs and is printed), then the four configurations label the same texts (by default the 872
SST-2 validation sentences, which have labels), interleaved over rounds. The table gives
sentences/s, the ratio to the default pipeline, accuracy, and the labels identical to torch fp32.

    python bench/onnx_throughput.py                      # fine-tune 150 steps first
    python bench/onnx_throughput.py --train-steps 0      # untrained head: speed only
"""

from __future__ import annotations

import argparse
import gc
import os
from pathlib import Path

import common

COLUMNS = ["configuration", "sentences/s", "ratio", "accuracy", "labels = torch fp32"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model",
        default=common.MINILM,
        help="'minilm' (real all-MiniLM-L6-v2 weights + a 2-label head) or a folder",
    )
    p.add_argument(
        "--train-steps",
        type=int,
        default=150,
        help="fine-tune this many steps on SST-2 train first (0: untrained head)",
    )
    p.add_argument(
        "--texts",
        type=Path,
        default=None,
        help="TSV with 'sentence' and 'label' (default: ../shared SST-2 validation)",
    )
    p.add_argument("--limit", type=int, default=None, help="use only the first N texts")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per configuration")
    p.add_argument("--batch-size", type=int, default=64)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common.require_shared("onnx_throughput")
    import torch
    import transformers

    from modernbert_tasks import fine_tune, load_finetuned
    from modernbert_tasks.exporters.onnx import export_onnx

    print(common.machine_header("ONNX throughput: pipeline vs predict vs onnxruntime"))
    rows = common.read_tsv(args.texts or common.SST2_DIR / "validation.tsv")[: args.limit]
    texts, gold = [t for t, _ in rows], [y for _, y in rows]
    workdir = common.scratch_dir(None, "bench-onnx-")
    model_dir = common.prepare_model(args.model, workdir)
    if args.train_steps > 0:
        seconds, result = common.elapsed(
            lambda: fine_tune(
                "sst2",
                model_name=str(model_dir),
                output_dir=workdir / "run",
                data_dir=str(common.SST2_DIR),
                max_steps=args.train_steps,
                per_device_train_batch_size=32,
                learning_rate=5e-5,
                max_length=64,
                max_eval_samples=200,
                eval_strategy="no",
                save_strategy="no",
                load_best_model_at_end=False,
                disable_tqdm=True,
            )
        )
        model_dir = result.model_path
        print(
            f"fine-tuned {args.train_steps} steps in {seconds:.0f} s: eval accuracy on 200 "
            f"validation sentences {result.metrics['accuracy']:.4f}"
        )
    else:
        print("untrained 2-label head: accuracy is chance, speed and agreement still hold")
    seconds, export = common.elapsed(lambda: export_onnx(model_dir, quantize="int8", verbose=False))
    print(
        export.summary().replace(
            f"({export.exporter}, {export.seconds:.1f} s)",
            f"({export.exporter}, {seconds:.1f} s with the check)",
        )
    )

    ours = load_finetuned(model_dir, device="cpu")
    ort32 = load_finetuned(model_dir, backend="onnx")
    ort8 = load_finetuned(model_dir, backend="onnx-int8")
    pipe = transformers.pipeline("text-classification", model=str(model_dir), device="cpu")
    labels: dict[str, list[str]] = {}

    def timed(name: str, fn):
        def run() -> dict[str, float]:
            gc.collect()
            seconds, out = common.elapsed(fn)
            labels[name] = [o["label"] for o in out]
            return {"sentences/s": len(texts) / seconds}

        return run

    def predict(model):
        return lambda: model.predict(texts, batch_size=args.batch_size, show_progress=False)

    configurations = [
        ("pipeline (default, batch 1)", "pipeline", lambda: pipe(texts)),
        ("predict, torch fp32", "torch", predict(ours)),
        ("predict, ONNX fp32", "onnx", predict(ort32)),
        ("predict, ONNX int8", "int8", predict(ort8)),
    ]
    runs = {name: timed(key, fn) for name, key, fn in configurations}
    with torch.inference_mode():  # warm-up: first calls allocate and pick kernels
        pipe(texts[:8])
        for model in (ours, ort32, ort8):
            model.predict(texts[:8])
    results = common.interleaved(runs, args.rounds)

    names = ours.labels
    base = common.median(results["pipeline (default, batch 1)"])["sentences/s"]
    table = []
    for name, key, _ in configurations:
        med = common.median(results[name])
        accuracy = sum(names.index(p) == y for p, y in zip(labels[key], gold, strict=True))
        same = sum(a == b for a, b in zip(labels[key], labels["torch"], strict=True))
        table.append(
            {
                "configuration": name,
                **med,
                "ratio": f"{med['sentences/s'] / base:.2f}x",
                "accuracy": accuracy / len(texts),
                "labels = torch fp32": f"{same}/{len(texts)}",
            }
        )
    print()
    print(common.format_table(table, COLUMNS))
    print(
        f"\nonnxruntime threads: default (all {os.cpu_count()} cores); torch "
        f"threads {torch.get_num_threads()}"
    )
    print(f"end: {common.load_line()}")


if __name__ == "__main__":
    main()
