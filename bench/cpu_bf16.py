"""Is bf16 faster than fp32 on this CPU? The measurement behind `precision="auto"` on CPUs.

ModernBERT-base (the real architecture, random init from ../shared/models/modernbert-base) for
a training step (forward, backward, fused AdamW; batch 16 x 16 tokens) and an inference pass
(batch 64 x 24 tokens), fp32 against bf16 autocast and against bf16 weights, interleaved
rounds, median per step:

  bf16 weights   training: precision="bf16-weights" (the engine's MasterWeights switch: bf16
                 weights in forward and backward, fp32 masters for the fused AdamW step);
                 inference: the copy with bf16 parameters that predict's bf16 passes run
                 (inference.batches.bf16_copy), without autocast

    python bench/cpu_bf16.py

With AVX512-BF16 and no AMX, "auto" measures one matmul the same way (hardware.py).
"""

from __future__ import annotations

import argparse
import statistics
import time

import common


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3, help="steps per configuration and round")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common.require_shared("cpu_bf16 (the ModernBERT-base config)")
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from modernbert_tasks.inference.batches import bf16_copy
    from modernbert_tasks.training.master_weights import MasterWeights

    print(common.machine_header("bf16 autocast vs fp32 on this CPU"))
    caps = {k: v for k, v in torch.cpu.get_capabilities().items() if "bf16" in k or "amx" in k}
    print(f"bf16-related CPU flags: {caps}")
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(common.SHARED / "models" / "modernbert-base", num_labels=2)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    ids, labels = torch.randint(5, 50000, (16, 16)), torch.randint(0, 2, (16,))
    batch = torch.randint(5, 50000, (64, 24))
    switch = MasterWeights()
    switch.on_train_begin(None, None, None, model=model)
    model16 = bf16_copy(model)

    def train_step(mode: str) -> None:
        if mode == "weights":
            switch.to_bf16()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "autocast"):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        switch.to_fp32()  # bf16 gradients into the fp32 masters' buffers (after "weights" only)
        optimizer.step()
        if mode == "weights":
            switch.on_optimizer_step(None, None, None)
        optimizer.zero_grad()

    def infer(mode: str) -> None:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "autocast"):
            (model16 if mode == "weights" else model)(input_ids=batch)

    modes = ("fp32", "autocast", "weights")
    rows = []
    for name, fn in (("training step (16 x 16)", train_step), ("inference (64 x 24)", infer)):
        times: dict[str, list[float]] = {m: [] for m in modes}
        for mode in modes:  # warm-up
            fn(mode)
        for _ in range(args.rounds):
            for mode in modes:
                start = time.perf_counter()
                for _ in range(args.steps):
                    fn(mode)
                times[mode].append((time.perf_counter() - start) / args.steps)
        ms = {m: 1000 * statistics.median(times[m]) for m in modes}
        rows.append(
            {
                "what": name,
                "fp32 ms": ms["fp32"],
                "bf16 autocast ms": ms["autocast"],
                "bf16 weights ms": ms["weights"],
                "autocast speed-up": f"{ms['fp32'] / ms['autocast']:.2f}x",
                "weights speed-up": f"{ms['fp32'] / ms['weights']:.2f}x",
            }
        )
    print()
    print(common.format_table(rows, list(rows[0])))
    print(f"end: {common.load_line()}")


if __name__ == "__main__":
    main()
