"""Where a training step's time goes: forward, backward, clipping, optimizer, collate, Trainer.

Each configuration trains through the real engine (`modernbert_tasks.training.engine.prepare`
returns the ready Trainer) or, for `loop`, a plain PyTorch loop over the same prepared model,
data and collator. Probes time each part of every step:

  collate     the data collator (the DataLoader runs it in-process: dataloader_num_workers=0)
  forward     the model's forward (module hooks)
  backward    accelerator.backward / loss.backward()
  clip        gradient clipping (and the grad norm)
  optimizer   optimizer.step() (global optimizer hooks)
  other       the rest of the step's wall time: the Trainer's bookkeeping (scheduler,
              zero_grad, callbacks, logging, the dataloader's own overhead)

and count host syncs: Python-level calls of Tensor.item/tolist/__bool__/__float__/__int__
and torch.cuda.synchronize made during the timed steps, with the code that made them. On a GPU
the probes synchronize at each boundary (so the split is true, and the step a little slower).

One more step after the timed ones runs under torch.profiler, from its entry to the next
step's entry (forward, backward, clip, optimizer, scheduler, zero_grad, callbacks), and
counts what it dispatched: `ops/step`, the aten operators called by the host (from Python,
autograd or a compiled graph's wrapper; not the ones an operator calls inside itself), and
`kernels/step`, the calls that do the work (see count_dispatches). On a CPU these stand in
for a GPU's kernel launches, which a CUDA graph replaces with one launch per captured step.

The default model is the *overhead proxy*: ModernBERT-base's architecture shrunk to 2 layers,
hidden 64 (same tokenizer and vocabulary), whose step on a CPU is dominated by fixed per-step
cost as ModernBERT-large's is on a GPU at batch 16. `--model modernbert-base` is the real
architecture (random init from ../shared/models/modernbert-base/config.json).

    python bench/profile_step.py                                  # proxy: v01, trainer, loop
    python bench/profile_step.py --model modernbert-base --steps 4
    python bench/profile_step.py --variants "compile:compile=True;fp32:precision=fp32"
    python bench/profile_step.py --proxy-layers 28 --variants "compile:compile=True"  # op counts
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import common

PARTS = ["forward", "backward", "clip", "optimizer", "collate"]
COLUMNS = [
    "configuration",
    "step ms",
    "samples/s",
    "ratio",
    *(f"{p} ms" for p in PARTS),
    "other ms",
    "host syncs/step",
    "ops/step",
    "kernels/step",
]
PROXY = dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model",
        default="proxy",
        help="'proxy' (ModernBERT-base shrunk to 2 layers, hidden 64), a name under "
        "../shared/models (random init from its config.json), or a folder",
    )
    p.add_argument(
        "--proxy-layers",
        type=int,
        default=2,
        help="layers of the proxy (28 is ModernBERT-large's depth: the op-count measure)",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument(
        "--max-length",
        type=int,
        default=16,
        help="truncate texts to this many tokens: with SST-2-length sentences "
        "(mean 14.7 tokens) nearly every batch is then batch x max_length",
    )
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median shown)")
    p.add_argument(
        "--configs",
        default="v01,trainer,loop",
        help="comma-separated among v01 (fine_tune's Trainer with v0.1's defaults, set "
        "through today's options), trainer (fine_tune's Trainer, defaults) and loop (a plain "
        "PyTorch loop: fused AdamW, clipping, the engine's precision)",
    )
    p.add_argument(
        "--variants",
        default="",
        help="';'-separated 'name:key=value,...' sets of fine_tune arguments, each "
        "one more Trainer configuration, e.g. 'compile:torch_compile=True'",
    )
    p.add_argument(
        "--workdir", type=Path, default=None, help="folder for the built model and runs (default: temporary)"
    )
    return p.parse_args(argv)


# --- probes ----------------------------------------------------------------------------------
class Probe:
    """Per-step part times and host-sync counts, recorded only while `active`."""

    def __init__(self) -> None:
        self.active = False
        self.parts: dict[str, float] = collections.defaultdict(float)
        self.syncs: collections.Counter[str] = collections.Counter()
        self.starts: list[float] = []
        self.rows = 0
        self.profiler: Any = None
        self.ops = {"ops/step": 0.0, "kernels/step": 0.0}

    def sync(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        if not self.active:
            yield
            return
        self.sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            self.parts[name] += time.perf_counter() - start

    def step_start(self, rows: int) -> None:
        self.sync()
        self.starts.append(time.perf_counter())
        if self.active:
            self.rows += rows

    def count_ops(self, start: bool) -> None:
        """Start the profiler at one step's entry; stop it at the next step's and count."""
        import torch

        if start:
            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self.profiler.start()
        elif self.profiler is not None:
            self.sync()
            self.profiler.stop()
            self.ops = count_dispatches(self.profiler.events())
            self.profiler = None

    def timed(self, fn: Callable, name: str) -> Callable:
        def wrapper(*args, **kwargs):
            with self.part(name):
                return fn(*args, **kwargs)

        return wrapper


# aten operators that only make views or allocate: no kernel runs for them on a GPU
NOT_KERNELS = {
    f"aten::{name}"
    for name in (
        "as_strided alias detach detach_ empty empty_like empty_strided expand lift_fresh "
        "narrow permute reshape _reshape_alias resolve_conj resolve_neg select slice split "
        "squeeze t transpose unbind unsqueeze view _unsafe_view"
    ).split()
}


def count_dispatches(events: Any) -> dict[str, float]:
    """`ops/step`: aten operators the host dispatched (those not called by another aten
    operator). `kernels/step`: the calls that do the work, i.e. aten operators that call no
    other one and are more than a view or an allocation, plus the compiled (Inductor) kernels,
    which show as profiler events because main() turns on inductor's kernel profiling."""
    aten = [e for e in events if e.name.startswith("aten::")]
    parents = {id(e.cpu_parent) for e in aten if e.cpu_parent is not None}
    top = sum(1 for e in aten if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))
    leaves = sum(1 for e in aten if id(e) not in parents and e.name not in NOT_KERNELS)
    compiled = sum(1 for e in events if e.name.startswith(("cpp_fused", "triton_")))
    return {"ops/step": float(top), "kernels/step": float(leaves + compiled)}


@contextlib.contextmanager
def counting_syncs(probe: Probe) -> Iterator[None]:
    """Count Python-level calls that make the host wait for a tensor's value, by call site."""
    import torch

    names = ["item", "tolist", "__bool__", "__float__", "__int__"]
    originals = {n: getattr(torch.Tensor, n) for n in names}
    cuda_sync = torch.cuda.synchronize

    def counted(name: str, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            if probe.active:
                frame = sys._getframe(1)
                site = f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}"
                if site != "profile_step.py:sync":
                    probe.syncs[f"{name} @ {site}"] += 1
            return fn(*args, **kwargs)

        return wrapper

    for n, fn in originals.items():
        setattr(torch.Tensor, n, counted(n, fn))
    torch.cuda.synchronize = counted("cuda.synchronize", cuda_sync)
    try:
        yield
    finally:
        for n, fn in originals.items():
            setattr(torch.Tensor, n, fn)
        torch.cuda.synchronize = cuda_sync


@contextlib.contextmanager
def optimizer_probe(probe: Probe) -> Iterator[None]:
    from torch.optim.optimizer import (
        register_optimizer_step_post_hook,
        register_optimizer_step_pre_hook,
    )

    state: dict[str, float] = {}

    def pre(*_):
        if probe.active:
            probe.sync()
            state["t"] = time.perf_counter()

    def post(*_):
        if probe.active and "t" in state:
            probe.sync()
            probe.parts["optimizer"] += time.perf_counter() - state.pop("t")

    handles = [register_optimizer_step_pre_hook(pre), register_optimizer_step_post_hook(post)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def model_probe(model: Any, probe: Probe) -> list[Any]:
    state: dict[str, float] = {}

    def pre(*_):
        if probe.active:
            probe.sync()
            state["t"] = time.perf_counter()

    def post(*_):
        if probe.active and "t" in state:
            probe.sync()
            probe.parts["forward"] += time.perf_counter() - state.pop("t")

    return [model.register_forward_pre_hook(pre), model.register_forward_hook(post)]


# --- configurations ----------------------------------------------------------------------------
def _prepare(
    model_dir: Path,
    data_dir: Path,
    workdir: Path,
    args: argparse.Namespace,
    n_steps: int,
    extra: dict[str, Any],
):
    from modernbert_tasks.training.engine import prepare

    return prepare(
        "sst2",
        model_name=str(model_dir),
        output_dir=str(workdir / "run"),
        data_dir=str(data_dir),
        max_steps=n_steps,
        max_length=args.max_length,
        per_device_train_batch_size=args.batch_size,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        overwrite=True,
        disable_tqdm=True,
        **extra,
    )


def run_trainer(run: Any, probe: Probe, warmup: int, steps: int) -> None:
    from transformers import Trainer

    trainer = run.trainer
    trainer.data_collator = probe.timed(trainer.data_collator, "collate")
    trainer.accelerator.backward = probe.timed(trainer.accelerator.backward, "backward")
    # the Trainer's clipping step: accelerate's clip, or the compiled one with compile=True
    trainer._clip_grad_norm = probe.timed(trainer._clip_grad_norm, "clip")
    original = Trainer.training_step

    def training_step(self, model, inputs, *a, **kw):
        # timing runs from step `warmup`'s entry to the entry of the step after the last
        index = len(probe.starts)
        probe.active = warmup <= index < warmup + steps
        probe.step_start(int(inputs["input_ids"].shape[0]))
        if index in (warmup + steps, warmup + steps + 1):
            probe.count_ops(start=index == warmup + steps)
        return original(self, model, inputs, *a, **kw)

    handles = model_probe(trainer.model, probe)
    Trainer.training_step = training_step
    try:
        trainer.train()
    finally:
        Trainer.training_step = original
        for h in handles:
            h.remove()


def run_loop(run: Any, probe: Probe, warmup: int, steps: int) -> None:
    """No Trainer: the prepared model, collator and length-grouped order; the engine's
    precision (bf16 weights switched as the engine's MasterWeights does); fused AdamW as the
    Trainer's default; clipping to 1.0."""
    import torch

    from modernbert_tasks.training.master_weights import BF16_WEIGHTS, MasterWeights

    trainer = run.trainer
    model = trainer.model.to(trainer.args.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-5, weight_decay=0.01, fused=True)
    collate = probe.timed(trainer.data_collator, "collate")
    dataset = trainer.train_dataset.remove_columns(
        [c for c in trainer.train_dataset.column_names if c not in ("input_ids", "attention_mask", "label")]
    )
    order = list(trainer._get_train_sampler(dataset))
    bf16 = run.hardware.precision == "bf16"
    switch = MasterWeights() if run.hardware.precision == BF16_WEIGHTS else None
    if switch is not None:
        switch.on_train_begin(None, None, None, model=model)
    handles = model_probe(model, probe)
    b = trainer.args.per_device_train_batch_size
    for step in range(warmup + steps + 2):
        probe.active = warmup <= step < warmup + steps
        start = step * b % (len(order) - b + 1)
        batch = collate([dataset[i] for i in order[start : start + b]])
        probe.step_start(int(batch["input_ids"].shape[0]))
        if step in (warmup + steps, warmup + steps + 1):
            probe.count_ops(start=step == warmup + steps)
        batch = {k: v.to(trainer.args.device) for k, v in batch.items()}
        if switch is not None:
            switch.to_bf16()
        with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        with probe.part("backward"):
            loss.backward()
        with probe.part("clip"):
            if switch is not None:
                switch.to_fp32()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if switch is not None:
            switch.on_optimizer_step(None, None, None)
        optimizer.zero_grad(set_to_none=True)
    probe.active = False
    for h in handles:
        h.remove()


def figures(probe: Probe, warmup: int, steps: int) -> dict[str, float]:
    starts = probe.starts[warmup : warmup + steps + 1]
    if len(starts) < steps + 1:
        raise RuntimeError(f"only {len(probe.starts)} steps ran; expected {warmup + steps + 1}")
    wall = starts[-1] - starts[0]
    out = {"step ms": 1e3 * wall / steps, "samples/s": probe.rows / wall}
    for name in PARTS:
        out[f"{name} ms"] = 1e3 * probe.parts.get(name, 0.0) / steps
    out["other ms"] = out["step ms"] - sum(out[f"{p} ms"] for p in PARTS)
    out["host syncs/step"] = sum(probe.syncs.values()) / steps
    out.update(probe.ops)
    return out


# --- main ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    print(common.machine_header("training step profile: forward, backward, optimizer, collate, Trainer"))
    workdir = common.scratch_dir(args.workdir, "bench-profile-")
    if args.model == "proxy":
        model_dir = common.prepare_model(
            "modernbert-base", workdir, **{**PROXY, "num_hidden_layers": args.proxy_layers}
        )
    else:
        model_dir = common.prepare_model(args.model, workdir)
    data_dir = workdir / "data"
    data_dir.mkdir(exist_ok=True)
    rows = (
        common.read_sst2("train", limit=args.samples, seed=0)
        if common.SST2_DIR.is_dir()
        else common.synthetic_sst2(args.samples, seed=0)
    )
    common.write_tsv(data_dir / "train.tsv", rows)
    common.write_tsv(data_dir / "validation.tsv", rows[:32])
    n_steps = args.warmup + args.steps + 2  # the last two: the profiled step and its end
    print(
        f"model: {args.model} ({model_dir.name}); batch {args.batch_size} x <= "
        f"{args.max_length} tokens; {args.steps} timed steps after {args.warmup}; "
        f"{args.rounds} rounds; threads {torch.get_num_threads()}"
    )

    sites: dict[str, collections.Counter[str]] = {}

    def measured(name: str, extra: dict[str, Any], loop: bool) -> Callable[[], dict]:
        def go() -> dict[str, float]:
            gc.collect()
            probe = Probe()
            run = _prepare(model_dir, data_dir, workdir, args, n_steps, extra)
            with counting_syncs(probe), optimizer_probe(probe):
                if loop:
                    run_loop(run, probe, args.warmup, args.steps)
                else:
                    run_trainer(run, probe, args.warmup, args.steps)
            sites[name] = probe.syncs
            return figures(probe, args.warmup, args.steps)

        return go

    configs: dict[str, Callable[[], dict]] = {}
    for name in filter(None, (c.strip() for c in args.configs.split(","))):
        if name not in ("v01", "trainer", "loop"):
            raise SystemExit(f"--configs: unknown {name!r}; expected v01, trainer or loop")
        labels = {
            "v01": f"Trainer, v0.1 defaults ({common.v01_defaults()})",
            "trainer": "fine_tune's Trainer, defaults",
            "loop": "plain loop (same model, batches, precision)",
        }
        extra = common.parse_kv(common.v01_defaults()) if name == "v01" else {}
        configs[labels[name]] = measured(labels[name], extra, loop=name == "loop")
    for variant in filter(None, (v.strip() for v in args.variants.split(";"))):
        name, _, kv = variant.partition(":")
        label = f"Trainer + {kv or name}"
        configs[label] = measured(label, common.parse_kv(kv), loop=False)
    import torch._inductor.config as inductor_config

    # compiled kernels record themselves in the profiler, so the op count sees them
    with inductor_config.patch({"cpp.enable_kernel_profile": True}):
        results = common.interleaved(configs, args.rounds, log=lambda line: print(line, flush=True))
    table, base = [], None
    for name, rounds in results.items():
        med = common.median(rounds)
        base = base or med["samples/s"]
        table.append({"configuration": name, **med, "ratio": f"{med['samples/s'] / base:.2f}x"})
    print(
        f"\nmedian of {args.rounds} rounds; ratio = samples/s relative to the first row; "
        "other = step wall time minus the measured parts (Trainer bookkeeping)"
    )
    print(common.format_table(table, COLUMNS, digits={"host syncs/step": 2}))
    print("\nhost syncs in the timed steps of the last round, by call site:")
    for name, counter in sites.items():
        shown = ", ".join(f"{site} x{n}" for site, n in counter.most_common()) or "none"
        print(f"- {name}: {shown}")
    print(f"end: {common.load_line()}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
