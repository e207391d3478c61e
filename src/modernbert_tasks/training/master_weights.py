"""precision="bf16-weights": bf16 weights inside each training step, fp32 master weights
everywhere else.

Autocast keeps fp32 weights and casts every one of them to a fresh bf16 copy in every forward,
then casts the gradients back. In a plain PyTorch loop without memory reuse, on a 2-core AMD
EPYC with AVX512-BF16, bf16 weights ran ModernBERT-base's step 1.17x faster than autocast
(bench/cpu_bf16.py). Here each parameter keeps two storages for the whole run, and the
step switches between them in place:

* at the step's start the parameters take their bf16 storage, so forward and backward run in
  bf16 with no casts and no new weight copies;
* before the clip the parameters take their fp32 storage back, and the bf16 gradients are
  copied into kept fp32 buffers: the clip and the fused AdamW step are the fp32 ones, on fp32
  master weights, with the optimizer's fp32 state;
* after the optimizer step the bf16 storage is refreshed from the masters.

Outside the step (evaluation, checkpoints, the best model, the saved model) the model holds its
fp32 weights, so every figure and file is the fp32 one, and a resumed run rebuilds exactly the
same bf16 storage from the checkpoint's fp32 weights. With gradient accumulation the
micro-batches' gradients add up in bf16.

It is opt-in. Measured inside the Trainer on ModernBERT-base (2-core AMD EPYC, AVX512-BF16), it
trained at the speed of bf16 autocast with `reuse_memory` (1.00x against 1.01x, 3 interleaved
rounds, docs/benchmarks-speed.md): the casts it saves come back as the two copies per step
(gradients to fp32, masters to bf16), and memory reuse had already removed autocast's
allocation churn. It used less system time (1.9% against 5.7%) and 180 MiB more memory, so
"auto" keeps autocast.
"""

from __future__ import annotations

import os
from typing import Any

from transformers import TrainerCallback

from ..errors import ConfigError

__all__ = ["MasterWeights", "check_precision", "BF16_WEIGHTS"]

BF16_WEIGHTS = "bf16-weights"


def check_precision(requested: str, lora: bool, compile: bool) -> None:
    """bf16 weights need a plain step: one process, no compiled model, no LoRA adapters."""
    if requested != BF16_WEIGHTS:
        return
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    blockers = [
        name
        for name, on in (("lora=True", lora), ("compile=True", compile), ("a distributed run", distributed))
        if on
    ]
    if blockers:
        raise ConfigError(
            f"precision={BF16_WEIGHTS!r} does not work with {' or '.join(blockers)}. Use "
            "precision='bf16' (autocast) or 'auto' there."
        )


class MasterWeights(TrainerCallback):
    """Switches the model's parameters between bf16 (in the step) and fp32 (elsewhere)."""

    def __init__(self) -> None:
        self.params: list[Any] = []
        self.fp32: list[Any] = []
        self.bf16: list[Any] = []
        self.grads: list[Any] = []  # the kept fp32 gradient buffers, made at the first step
        self.in_bf16 = False

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        import torch

        self.to_fp32()  # a new train() (search trial, resume) may bring another model
        self.params = [p for p in model.parameters() if p.is_floating_point()]
        self.fp32 = [p.data for p in self.params]
        self.bf16 = [p.data.to(torch.bfloat16) for p in self.params]
        self.grads = [None] * len(self.params)

    def on_step_begin(self, args, state, control, **kwargs):
        self.to_bf16()

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.to_fp32()  # done already where the Trainer clips (TaskTrainer._clip_grad_norm)

    def on_optimizer_step(self, args, state, control, **kwargs):
        import torch

        trained = [i for i, p in enumerate(self.params) if p.requires_grad]
        with torch.no_grad():
            torch._foreach_copy_([self.bf16[i] for i in trained], [self.fp32[i] for i in trained])

    def on_train_end(self, args, state, control, **kwargs):
        self.to_fp32()

    def to_bf16(self) -> None:
        if self.in_bf16:
            return
        for p, b in zip(self.params, self.bf16, strict=True):
            p.data = b
        self.in_bf16 = True

    def to_fp32(self) -> None:
        """fp32 weights back in place, with the step's bf16 gradients as fp32 gradients."""
        import torch

        if not self.in_bf16:
            return
        have = [i for i, p in enumerate(self.params) if p.grad is not None]
        bf16_grads = [self.params[i].grad for i in have]
        for i in have:
            if self.grads[i] is None:
                self.grads[i] = torch.empty_like(self.fp32[i])
        for p in self.params:
            p.grad = None
        for p, f in zip(self.params, self.fp32, strict=True):
            p.data = f
        if have:
            with torch.no_grad():
                torch._foreach_copy_([self.grads[i] for i in have], bf16_grads)
            for i in have:
                self.params[i].grad = self.grads[i]
        self.in_bf16 = False
