"""Per-label decision thresholds: does `decision_threshold="tune-per-label"` beat one threshold
on held-out multi-label data whose labels have different base rates?

The data is `modernbert_tasks.testing.make_topic_rows`: five topics with base rates 40%, 20%,
8%, 5% and 1.2%, each with cue words that are in 85% of its rows and in 8% of the others, so
the rare topics are likely (P(topic | cue) < 0.5) but never sure. One model is trained on
one-hot CSV columns with tune-per-label (thresholds fitted on the validation file); the test
file, seen by neither, is then decided three ways from the same probabilities: 0.5 for every
label, the one tuned threshold ("tune"), and the per-label thresholds. Per-label F1 and the
macro and micro F1 are printed side by side, with per-label / 0.5 ratios.

    python bench/per_label.py                      # real MiniLM, 2,000 / 600 / 600 rows, 3 epochs
    python bench/per_label.py --model FOLDER --train 800 --epochs 5
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import common
import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=common.MINILM, help="'minilm' (real pretrained weights) or a folder")
    p.add_argument("--train", type=int, default=2000, help="training rows")
    p.add_argument("--eval", type=int, default=600, help="validation rows (the thresholds are fitted here)")
    p.add_argument("--test", type=int, default=600, help="held-out test rows")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--args", default="", help="extra fine_tune arguments as key=value,...")
    p.add_argument("--output-dir", type=Path, default=None, help="kept (default: a temporary folder)")
    return p.parse_args(argv)


def write_csv(path: Path, rows: list[tuple], names: list[str]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(("text", *names))
        writer.writerows(rows)
    return path


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch
    from sklearn.metrics import f1_score

    from modernbert_tasks import calibration, fine_tune, load_finetuned
    from modernbert_tasks.testing import TOPICS, make_topic_rows

    model = str(common.minilm_dir()) if args.model == common.MINILM else args.model
    print(common.machine_header(f"per-label thresholds: {args.model} on imbalanced one-hot topics"))
    print(f"cpu capability: {torch.backends.cpu.get_cpu_capability()}")
    out = common.scratch_dir(args.output_dir, "bench-per-label-")
    names = list(TOPICS)
    test_rows = make_topic_rows(args.test, seed=3)
    data = out / "data"
    data.mkdir(exist_ok=True)
    write_csv(data / "train.csv", make_topic_rows(args.train, seed=1), names)
    write_csv(data / "validation.csv", make_topic_rows(args.eval, seed=2), names)
    options = {
        "num_train_epochs": args.epochs,
        "learning_rate": 1e-4,
        "report_to": "none",
        "disable_tqdm": True,
        "seed": 42,
        **common.parse_kv(args.args),
    }
    print(
        f"model: {model}; rows train/validation/test {args.train}/{args.eval}/{args.test}; options {options}"
    )
    seconds, result = common.elapsed(
        lambda: fine_tune(
            data_dir=data,
            model_name=model,
            output_dir=out / "run",
            overwrite=True,
            decision_threshold="tune-per-label",
            **options,
        )
    )
    print(f"trained in {seconds:.1f} s")
    fitted = json.loads((result.model_path / "modernbert_tasks.json").read_text())["calibration"]
    finetuned = load_finetuned(result.model_path, precision="fp32")
    probs = calibration.calibrate(
        finetuned.logits([r[0] for r in test_rows]), finetuned.manifest, finetuned.problem_type
    )
    truth = np.array([r[1:] for r in test_rows], dtype=np.int64)
    ways = {
        "0.5": 0.5,
        f"tune ({fitted['decision_threshold']:.2f})": float(fitted["decision_threshold"]),
        "tune-per-label": np.asarray(fitted["label_thresholds"]),
    }
    decided = {way: (probs >= t).astype(np.int64) for way, t in ways.items()}
    columns = ["F1 of", *ways, "per-label / 0.5"]
    rows = []
    for k, name in enumerate(names):
        f1 = [f1_score(truth[:, k], d[:, k], zero_division=0) for d in decided.values()]
        kept = ", kept the global" if name in fitted["labels_kept_global"] else ""
        label = f"{name} ({int(truth[:, k].sum())} positives; t={fitted['label_thresholds'][k]:.2f}{kept})"
        rows.append(dict(zip(columns, [label, *f1, _ratio(f1[-1], f1[0])], strict=True)))
    for average in ("macro", "micro"):
        f1 = [f1_score(truth, d, average=average, zero_division=0) for d in decided.values()]
        rows.append(dict(zip(columns, [f"{average}-F1", *f1, _ratio(f1[-1], f1[0])], strict=True)))
    print()
    print(f"Held-out test F1 ({args.test} rows, never seen by training or the threshold fit):")
    print(common.format_table(rows, columns))


def _ratio(new: float, old: float) -> str:
    return f"{new / old:.2f}x" if old else "n/a (0 at 0.5)"


if __name__ == "__main__":
    main()
