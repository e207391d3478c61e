"""Model FLOPs per training sample and the device's bf16 peak, for '% of peak' figures.

Model FLOPs count useful work only: real (non-padding) tokens. Per token, a training step
costs 6 x the non-embedding parameters (forward 2, backward 4), plus attention scores and
weighted sums: 3 x 4 x hidden x context per layer, where the context is the sequence length
for global layers and at most the sliding window for ModernBERT's local layers. Executed
FLOPs apply the same formula to the padded batch shape.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FlopModel", "device_peak", "GPU_BF16_PEAK_TFLOPS"]

# Dense bf16 tensor-core peaks from the vendor data sheets (no sparsity), TFLOP/s.
# Matched in order against torch.cuda.get_device_name(), so specific names come first.
GPU_BF16_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM
    ("H200", 989.0),  # same compute as the H100 SXM
    ("GH200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
)


@dataclass(frozen=True)
class FlopModel:
    """What the FLOP count needs to know about an encoder."""

    non_embedding_params: int
    layers: int
    hidden: int
    local_window: int | None = None  # ModernBERT: local_attention (full window width)
    local_layers: tuple[int, ...] = ()  # layers with sliding-window attention

    @classmethod
    def from_folder(cls, folder: str | Path) -> FlopModel:
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification

        config = AutoConfig.from_pretrained(folder)
        with torch.device("meta"):  # shapes only: no memory, no init
            model = AutoModelForSequenceClassification.from_config(config)
        total = sum(p.numel() for p in model.parameters())
        embedding = model.get_input_embeddings().weight.numel()
        return cls(
            non_embedding_params=total - embedding,
            layers=config.num_hidden_layers,
            hidden=config.hidden_size,
            local_window=getattr(config, "local_attention", None),
            local_layers=tuple(
                i
                for i, kind in enumerate(getattr(config, "layer_types", None) or [])
                if kind == "sliding_attention"
            ),
        )

    def training_flops(self, tokens: int) -> float:
        """FLOPs of one forward + backward pass over one sequence of `tokens` real tokens."""
        dense = 6 * self.non_embedding_params * tokens
        attention = 0
        for layer in range(self.layers):
            local = self.local_window is not None and layer in self.local_layers
            context = min(tokens, self.local_window) if local else tokens
            attention += 3 * 4 * self.hidden * tokens * context
        return float(dense + attention)

    def forward_flops(self, tokens: int) -> float:
        """FLOPs of one forward pass (inference) over `tokens` real tokens: a third of training."""
        return self.training_flops(tokens) / 3

    def describe(self) -> str:
        return (
            f"{self.non_embedding_params / 1e6:.1f}M non-embedding parameters, "
            f"{self.layers} layers, hidden {self.hidden}"
        )


def device_peak(seconds: float = 1.0) -> tuple[float | None, str]:
    """(bf16 FLOP/s peak, where it comes from): the data sheet for known GPUs; on a CPU a
    measured bf16 matmul rate (the realistic ceiling here, not a vendor figure)."""
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        for key, tflops in GPU_BF16_PEAK_TFLOPS:
            if key in name:
                return tflops * 1e12, f"{name}: {tflops:.0f} TFLOP/s dense bf16 (data sheet)"
        return None, f"{name}: bf16 peak unknown (add it to GPU_BF16_PEAK_TFLOPS in bench/flops.py)"
    from modernbert_tasks.hardware import cpu_supports_bf16

    # without native bf16 (AVX2-only CPUs) a bf16 matmul is emulated and far slower than
    # fp32, so the fp32 rate is this CPU's real ceiling
    native, _ = cpu_supports_bf16()
    dtype, name = (torch.bfloat16, "bf16") if native else (torch.float32, "fp32 (no native bf16)")
    rate, size = measure_matmul(dtype, seconds=seconds), _last_size
    return rate, f"CPU {name} matmul measured now: {rate / 1e9:.0f} GFLOP/s ({size}x{size}, best of runs)"


_last_size = 2048


def measure_matmul(dtype, size: int = 2048, seconds: float = 1.0) -> float:
    """Best FLOP/s of square matmuls on the CPU over about `seconds`. The size shrinks when one
    matmul would take longer than a tenth of that (slow dtypes, one thread)."""
    import torch

    global _last_size
    probe = torch.randn(256, 256).to(dtype)
    start = time.perf_counter()
    torch.mm(probe, probe)
    rate = 2 * 256**3 / max(time.perf_counter() - start, 1e-9)
    while size > 256 and 2 * size**3 / rate > seconds / 10:
        size //= 2
    _last_size = size
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    torch.mm(a, b)  # warm-up: kernel choice, page faults
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best
