"""Label audit: does any fine-tuning recipe make one fold model much more right out of sample?

One fold of `bench/audit.py`'s data: the same 3,000 SST-2 training rows with the same seeded
5% of labels flipped; a seeded 600 of them are held out, and MiniLM trains on the other 2,400
(flips included, as an audit's fold model does) with each recipe. Each model predicts the 600,
scored against their true labels; the mean of all the recipes' probabilities (an ensemble) is
scored too. Recipes are --recipe NAME:key=value,... over the defaults below.

    python bench/audit_recipes.py
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import common
import numpy as np

DEFAULTS = {"num_train_epochs": 2, "learning_rate": 1e-4, "max_length": 64, "seed": 42}
RECIPES = [
    "2 epochs, 1e-4:",
    "3 epochs, 1e-4:num_train_epochs=3",
    "2 epochs, 3e-4:learning_rate=3e-4",
    "3 epochs, 2e-4:learning_rate=2e-4,num_train_epochs=3",
    "4 epochs, 5e-5:learning_rate=5e-5,num_train_epochs=4",
    "3 epochs, 2e-4, batch 32:per_device_train_batch_size=32,learning_rate=2e-4,num_train_epochs=3",
    "2 epochs, 1e-4, label smoothing 0.1:label_smoothing_factor=0.1",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model", default=common.MINILM, help="'minilm' (real pretrained weights) or a model folder"
    )
    p.add_argument("--recipe", action="append", help="NAME:key=value,... (default: the built-in list)")
    p.add_argument("--rows", type=int, default=3000)
    p.add_argument("--held-out", type=int, default=600)
    p.add_argument("--output-dir", type=Path, default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common.require_shared("audit recipes (the SST-2 data)")
    from modernbert_tasks import fine_tune, load_finetuned
    from modernbert_tasks.training.exclusion import write_row_file

    print(common.machine_header("audit recipes: one fold model's out-of-sample accuracy per recipe"))
    model_name = str(common.minilm_dir()) if args.model == common.MINILM else args.model
    out = common.scratch_dir(args.output_dir, "bench-audit-recipes-")
    # the rows and flips of bench/audit.py (--seed 0)
    rows = common.read_sst2("train", args.rows, seed=0)
    planted = set(random.Random(1).sample(range(len(rows)), round(0.05 * len(rows))))
    noisy = [(t, 1 - y if i in planted else y) for i, (t, y) in enumerate(rows)]
    train = common.write_tsv(out / "flipped.tsv", noisy)
    held = sorted(random.Random(7).sample(range(len(rows)), args.held_out))
    excluded = write_row_file(
        out / "held.csv", [{"row": i, "text": rows[i][0]} for i in held], ("row", "text")
    )
    texts, truth = [rows[i][0] for i in held], np.array([rows[i][1] for i in held])
    table, probabilities = [], []
    for spec in args.recipe or RECIPES:
        name, _, kv = spec.partition(":")
        options = {**DEFAULTS, **common.parse_kv(kv)}
        start = time.perf_counter()
        run = fine_tune(
            "sst2",
            model_name=model_name,
            output_dir=str(out / f"run-{len(table)}"),
            train_file=str(train),
            exclude_rows=str(excluded),
            validation_fraction=0.0,
            report_to="none",
            disable_tqdm=True,
            overwrite=True,
            **options,
        )
        model = load_finetuned(run.model_path)
        p = np.array([[d["probabilities"][n] for n in model.task.labels] for d in model.predict(texts)])
        probabilities.append(p)
        table.append(
            {
                "recipe": name,
                "held-out accuracy": float((p.argmax(1) == truth).mean()),
                "min": (time.perf_counter() - start) / 60,
            }
        )
    mean = np.mean(probabilities, axis=0)
    table.append(
        {
            "recipe": f"mean of the {len(probabilities)}",
            "held-out accuracy": float((mean.argmax(1) == truth).mean()),
        }
    )
    print(
        f"{len(rows) - len(held)} training rows ({len(planted - set(held))} flipped), "
        f"{len(held)} held out, scored against their true labels"
    )
    print(common.format_table(table, ["recipe", "held-out accuracy", "min"], digits={"min": 1}))
    print(f"end: {common.load_line()}")


if __name__ == "__main__":
    main()
