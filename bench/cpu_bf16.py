"""Is bf16 faster than fp32 on this CPU? The measurement behind `precision="auto"` on CPUs.

ModernBERT-base (the real architecture, random init from ../shared/models/modernbert-base) for
a training step (forward, backward, fused AdamW; batch 16 x 16 tokens) and an inference pass
(batch 64 x 24 tokens), fp32 against bf16 autocast, interleaved rounds, median per step:

    python bench/cpu_bf16.py

"auto" uses bf16 on a CPU only where this shows it faster: with AMX (hardware.py).
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

    print(common.machine_header("bf16 autocast vs fp32 on this CPU"))
    caps = {k: v for k, v in torch.cpu.get_capabilities().items() if "bf16" in k or "amx" in k}
    print(f"bf16-related CPU flags: {caps}")
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(common.SHARED / "models" / "modernbert-base", num_labels=2)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    ids, labels = torch.randint(5, 50000, (16, 16)), torch.randint(0, 2, (16,))
    batch = torch.randint(5, 50000, (64, 24))

    def train_step(bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    def infer(bf16: bool) -> None:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(input_ids=batch)

    rows = []
    for name, fn in (("training step (16 x 16)", train_step), ("inference (64 x 24)", infer)):
        times: dict[bool, list[float]] = {False: [], True: []}
        fn(False), fn(True)  # warm-up
        for _ in range(args.rounds):
            for bf16 in (False, True):
                start = time.perf_counter()
                for _ in range(args.steps):
                    fn(bf16)
                times[bf16].append((time.perf_counter() - start) / args.steps)
        fp32, bf16 = statistics.median(times[False]), statistics.median(times[True])
        rows.append(
            {
                "what": name,
                "fp32 ms": 1000 * fp32,
                "bf16 autocast ms": 1000 * bf16,
                "bf16 speed-up": f"{fp32 / bf16:.2f}x",
            }
        )
    print()
    print(common.format_table(rows, ["what", "fp32 ms", "bf16 autocast ms", "bf16 speed-up"]))
    print(f"end: {common.load_line()}")


if __name__ == "__main__":
    main()
