"""LoRA against full fine-tuning, in one run: accuracy, trainable parameters, peak RSS, speed.

Part 1, the real pretrained all-MiniLM-L6-v2 on real SST-2: a random 2,000 training rows,
GLUE's 872 validation rows, `--epochs` epochs, evaluated (and the best epoch kept) once per
epoch. Full fine-tuning at `--full-learning-rate` against `lora=True` at LoRA's own default
learning rate (options.LORA_LEARNING_RATE); `--lora-variants` adds LoRA rows at other
rates or settings (how the defaults were chosen). Validation accuracy is the saved model's (LoRA: merged).

Part 2, ModernBERT-base (random init, the exact architecture: no weights offline): `--steps`
training steps of full fine-tuning and of LoRA, for peak RSS and samples/s only.

Every configuration runs in its own child process (`--child`), so its peak RSS (the kernel's
VmHWM at its end) is its own: imports, model, optimizer state, data, training and (part 1)
the evaluations and the save. samples/s counts training steps only: each step from the
Trainer's on_step_begin to on_step_end (forward, backward, optimizer), the first
`--warmup-steps` left out, evaluations and checkpoints excluded.

    python bench/lora.py                                    # both parts, ~10 min on 2 cores
    python bench/lora.py --lora-variants learning_rate=5e-4 lora_dropout=0.0   # more LoRA rows
    python bench/lora.py --base-model none                  # part 1 only
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common

FULL_LEARNING_RATE = 1e-4  # MiniLM on small SST-2 subsets (docs/benchmarks.md, trust.py)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=common.MINILM, help="part 1: 'minilm' or a model folder")
    p.add_argument(
        "--base-model",
        default="modernbert-base",
        help="part 2: a config folder or a name under ../shared/models ('none' skips part 2)",
    )
    p.add_argument("--data-dir", type=Path, default=None, help="SST-2-style TSVs (default: ../shared)")
    p.add_argument("--subset", type=int, default=2000, help="part 1: training rows")
    p.add_argument("--epochs", type=float, default=3.0, help="part 1: num_train_epochs")
    p.add_argument("--full-learning-rate", type=float, default=FULL_LEARNING_RATE)
    p.add_argument(
        "--lora-variants",
        nargs="*",
        default=[],
        metavar="KEY=VALUE,...",
        help="extra LoRA rows, e.g. learning_rate=2e-4 lora_dropout=0.0 (part 2 takes those "
        "that change more than the learning rate)",
    )
    p.add_argument("--steps", type=int, default=12, help="part 2: training steps per configuration")
    p.add_argument("--warmup-steps", type=int, default=2, help="untimed first steps")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--args", default="", help="extra fine_tune arguments for every run: key=value,...")
    p.add_argument("--output-dir", type=Path, default=None, help="kept scratch folder (default: temporary)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)  # one configuration, as JSON
    return p.parse_args(argv)


# --- one configuration, in a child process -------------------------------------------------
def child(spec: dict[str, Any]) -> dict[str, Any]:
    from transformers import TrainerCallback
    from transformers.utils import logging as hf_logging

    from modernbert_tasks import fine_tune
    from modernbert_tasks.training.engine import prepare

    hf_logging.set_verbosity_error()

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.durations: list[float] = []
            self.began = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self.began = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.durations.append(time.perf_counter() - self.began)

    timer = StepTimer()
    args = dict(spec["args"], callbacks=[timer], disable_tqdm=True, report_to="none", overwrite=True)
    out: dict[str, Any] = {}
    if spec["part"] == "accuracy":
        result = fine_tune("sst2", model_name=spec["model"], output_dir=spec["output_dir"], **args)
        manifest = json.loads((result.model_path / "modernbert_tasks.json").read_text())
        out["validation accuracy"] = float(result.metrics["accuracy"])
        out["learning rate"] = manifest["training"]["learning_rate"]
        lora = manifest.get("lora")
    else:  # speed only: the Trainer's training loop, no evaluation or save
        run = prepare("sst2", model_name=spec["model"], output_dir=spec["output_dir"], **args)
        run.trainer.train()
        lora = None
        model = run.trainer.model
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if spec["args"].get("lora"):  # the head's frozen originals are not the model's
            from modernbert_tasks.training.lora import finish_lora

            lora = finish_lora(run)
        else:
            total = sum(p.numel() for p in model.parameters())
            lora = {"trainable_parameters": trainable, "total_parameters": total}
    if lora is None:
        total = _saved_parameters(spec)
        lora = {"trainable_parameters": total, "total_parameters": total}
    timed = timer.durations[spec["warmup"] :]
    out["trainable params"] = int(lora["trainable_parameters"])
    out["trainable %"] = 100 * lora["trainable_parameters"] / lora["total_parameters"]
    out["samples/s"] = spec["args"]["per_device_train_batch_size"] * len(timed) / sum(timed)
    out["timed steps"] = len(timed)
    out["peak RSS MiB"] = common.peak_rss_mib()
    return out


def _saved_parameters(spec: dict[str, Any]) -> int:
    """Full fine-tuning trains every parameter of the saved model."""
    from safetensors import safe_open

    path = Path(spec["output_dir"]) / "model" / "model.safetensors"
    with safe_open(str(path), "pt") as fh:
        return sum(math.prod(fh.get_slice(k).get_shape()) for k in fh.keys())


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=common.ROOT,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise SystemExit(
            f"configuration {spec['name']!r} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    figures = json.loads(lines[-1])
    shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
    print(f"  {spec['name']}: {shown}", flush=True)
    return figures


# --- the comparison -------------------------------------------------------------------------
def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x"


def accuracy_part(opts: argparse.Namespace, work: Path, extra: dict[str, Any]) -> list[dict[str, Any]]:
    data_dir = opts.data_dir or common.SST2_DIR
    train = common.read_tsv(data_dir / "train.tsv")
    rows = common.read_sst2("train", opts.subset, seed=0) if opts.data_dir is None else train[: opts.subset]
    folder = work / "data-accuracy"
    folder.mkdir(exist_ok=True)
    common.write_tsv(folder / "train.tsv", rows)
    common.write_tsv(folder / "validation.tsv", common.read_tsv(data_dir / "validation.tsv"))
    model = common.prepare_model(opts.model, work)
    base = {
        "data_dir": str(folder),
        "num_train_epochs": opts.epochs,
        "per_device_train_batch_size": opts.batch_size,
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        **extra,
    }
    configs = [("full fine-tuning", {"learning_rate": opts.full_learning_rate})]
    configs += [("LoRA (its default learning rate)", {"lora": True})]
    configs += [(f"LoRA, {v}", {"lora": True, **common.parse_kv(v)}) for v in opts.lora_variants]
    results = []
    for i, (name, args) in enumerate(configs):
        spec = {
            "name": name,
            "part": "accuracy",
            "model": str(model),
            "output_dir": str(work / f"accuracy-{i}"),
            "args": {**base, **args},
            "warmup": opts.warmup_steps,
        }
        results.append(
            {"configuration": name, "train rows": len(rows), "epochs": opts.epochs, **run_child(spec)}
        )
    return results


def speed_part(opts: argparse.Namespace, work: Path, extra: dict[str, Any]) -> list[dict[str, Any]]:
    model = common.prepare_model(opts.base_model, work)
    rows = opts.steps * opts.batch_size
    if opts.data_dir is not None:
        texts = common.read_tsv(opts.data_dir / "train.tsv")[:rows]
    else:
        texts = common.read_sst2("train", rows, seed=1)
    folder = work / "data-speed"
    folder.mkdir(exist_ok=True)
    common.write_tsv(folder / "train.tsv", texts)
    base = {
        "data_dir": str(folder),
        "validation_fraction": 0.0,
        "max_steps": opts.steps,
        "per_device_train_batch_size": opts.batch_size,
        "save_strategy": "no",
        **extra,
    }
    results = []
    configs: list[tuple[str, dict[str, Any]]] = [("full fine-tuning", {}), ("LoRA", {"lora": True})]
    for variant in opts.lora_variants:
        args = common.parse_kv(variant)
        if set(args) - {"learning_rate"}:
            configs.append((f"LoRA, {variant}", {"lora": True, **args}))
    for i, (name, args) in enumerate(configs):
        spec = {
            "name": f"{Path(model).name} {name}",
            "part": "speed",
            "model": str(model),
            "output_dir": str(work / f"speed-{i}"),
            "args": {**base, **args},
            "warmup": opts.warmup_steps,
        }
        results.append({"configuration": name, "steps": opts.steps, **run_child(spec)})
    return results


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the new head's load report, from prepare_model
    if opts.child is not None:
        print(json.dumps(child(json.loads(opts.child))))
        return
    if opts.data_dir is None:
        common.require_shared("bench/lora.py")
    work = common.scratch_dir(opts.output_dir, "bench-lora-")
    extra = common.parse_kv(opts.args)
    print(common.machine_header("LoRA vs full fine-tuning"), flush=True)
    print(
        f"\n## Part 1: {opts.model}, {opts.subset} SST-2 training rows, {opts.epochs:g} epochs\n", flush=True
    )
    acc = accuracy_part(opts, work, extra)
    full = acc[0]
    for row in acc:
        row["samples/s ratio"] = _ratio(row["samples/s"], full["samples/s"])
        row["RSS ratio"] = _ratio(row["peak RSS MiB"], full["peak RSS MiB"])
    print()
    print(
        common.format_table(
            acc,
            [
                "configuration",
                "learning rate",
                "train rows",
                "epochs",
                "validation accuracy",
                "trainable params",
                "trainable %",
                "peak RSS MiB",
                "RSS ratio",
                "samples/s",
                "samples/s ratio",
            ],
            digits={"trainable %": 2, "validation accuracy": 4},
        )
    )
    lora = acc[1]
    gap = 100 * (lora["validation accuracy"] - full["validation accuracy"])
    print(
        f"\nLoRA - full fine-tuning: {gap:+.2f} accuracy points (target: >= -1.5); "
        f"LoRA trains {lora['trainable %']:.2f}% of the parameters (target: <= 3%)."
    )
    if opts.base_model != "none":
        print(
            f"\n## Part 2: {opts.base_model} (random init), {opts.steps} steps of batch {opts.batch_size}\n"
        )
        speed = speed_part(opts, work, extra)
        for row in speed:
            row["samples/s ratio"] = _ratio(row["samples/s"], speed[0]["samples/s"])
            row["RSS ratio"] = _ratio(row["peak RSS MiB"], speed[0]["peak RSS MiB"])
        print()
        print(
            common.format_table(
                speed,
                [
                    "configuration",
                    "steps",
                    "timed steps",
                    "trainable params",
                    "trainable %",
                    "peak RSS MiB",
                    "RSS ratio",
                    "samples/s",
                    "samples/s ratio",
                ],
                digits={"trainable %": 2},
            )
        )
    print(f"\nend: {common.load_line()}")


if __name__ == "__main__":
    main()
