"""How far bf16 moves predicted probabilities from fp32, and what "mixed" precision (bf16, then
fp32 for close calls) re-scores: the measurement behind predictor.RESCORE_MARGIN.

For a fine-tuned MiniLM (trained here on --subset SST-2 rows) and the same encoder with an
untrained head (the hard case: every call is close), on SST-2 validation + test (2,693
sentences): the largest and 99.9th-percentile |p_bf16 - p_fp32|, the labels bf16 flips, the
labels "mixed" flips (must be 0) and the share it re-scores, and the speed of each.

    python bench/predict_precision.py --subset 2000

On a CPU without AVX512-BF16/AMX, bf16 is emulated: the deltas are still bf16's, the speeds
are not what such hardware gives (see the machine line).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import common
import numpy as np

COLUMNS = [
    "model",
    "precision",
    "sentences/s",
    "ratio",
    "max |dp|",
    "p99.9 |dp|",
    "labels changed",
    "re-scored",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subset", type=int, default=2000, help="training rows for the fine-tune")
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use only the first N texts (bf16 emulated on AVX2-only CPUs is slow)",
    )
    p.add_argument("--output-dir", type=Path, default=None)
    return p.parse_args(argv)


def _run(model, texts):
    seconds, out = common.elapsed(lambda: model.predict(texts, batch_size=64, show_progress=False))
    probs = np.array([[o["probabilities"][n] for n in model.labels] for o in out])
    return seconds, [o["label"] for o in out], probs


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common.require_shared("predict_precision (the SST-2 data)")
    from modernbert_tasks import fine_tune, load_finetuned
    from modernbert_tasks.inference.predictor import RESCORE_MARGIN

    print(common.machine_header("predict precision: bf16 vs fp32 vs mixed"))
    out = common.scratch_dir(args.output_dir, "bench-precision-")
    texts = [t for t, _ in common.read_tsv(common.SST2_DIR / "validation.tsv")]
    texts += [t for t, _ in common.read_tsv(common.SST2_DIR / "test.tsv")]
    texts = texts[: args.limit]
    untrained = common.prepare_model(common.MINILM, out)
    trained = fine_tune(
        "sst2",
        model_name=str(common.minilm_dir()),
        data_dir=common.SST2_DIR,
        output_dir=out / "trained",
        max_train_samples=args.subset,
        num_train_epochs=1,
        learning_rate=1e-4,
        report_to="none",
        disable_tqdm=True,
        overwrite=True,
    ).model_path
    from modernbert_tasks.testing import build_tiny_modernbert

    # the suite's tiny ModernBERT (random init, the real tokenizer): the tests' mixed path
    tiny = build_tiny_modernbert(out / "tiny", tokenizer=common.SHARED / "models" / "modernbert-base")
    print(f"{len(texts)} texts; RESCORE_MARGIN = {RESCORE_MARGIN}")
    rows = []
    for name, path in (("fine-tuned", trained), ("untrained head", untrained), ("tiny ModernBERT", tiny)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # bf16 emulated on this CPU
            models = {p: load_finetuned(path, device="cpu", precision=p) for p in ("fp32", "bf16", "mixed")}
        for model in models.values():
            model.predict(texts[:16])  # warm-up
        base_s, base_labels, base_probs = _run(models["fp32"], texts)
        for precision, model in models.items():
            seconds, labels, probs = _run(model, texts)
            delta = np.abs(probs - base_probs).max(axis=1)
            rescored = (
                f"{model.last_rescored[0]} ({100 * model.last_rescored[0] / len(texts):.1f}%)"
                if precision == "mixed"
                else ""
            )
            rows.append(
                {
                    "model": name,
                    "precision": precision,
                    "sentences/s": len(texts) / seconds,
                    "ratio": f"{base_s / seconds:.2f}x",
                    "max |dp|": f"{delta.max():.4f}",
                    "p99.9 |dp|": f"{np.quantile(delta, 0.999):.4f}",
                    "labels changed": sum(a != b for a, b in zip(labels, base_labels, strict=True)),
                    "re-scored": rescored,
                }
            )
    print()
    print(common.format_table(rows, COLUMNS))
    print(f"end: {common.load_line()}")
    if any(r["precision"] == "mixed" and r["labels changed"] for r in rows):
        raise SystemExit("FAIL: mixed precision changed labels against fp32 (see above).")


if __name__ == "__main__":
    main()
