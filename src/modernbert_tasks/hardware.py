"""Pick the device, the mixed precision and the attention kernel for this machine.

Every choice comes with the reason for it, logged on the "modernbert_tasks" logger so a run
says why it is fast (or why not).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

__all__ = [
    "Hardware",
    "detect",
    "best_device",
    "cpu_supports_bf16",
    "bf16_support",
    "measured_bf16_speedup",
    "BF16_MIN_SPEEDUP",
    "FORCE_BF16_ENV",
    "PREDICT_PRECISIONS",
    "EVALUATE_PRECISIONS",
]

logger = logging.getLogger(__name__)

# bf16 pays off on a CPU with AMX tiles, and never where it is emulated (AVX2 only). With
# AVX512-BF16 and no AMX it depends on the CPU: bf16 autocast ran ModernBERT-base training at
# 0.57x fp32's speed on a 2-core Xeon, and at 1.53x on a 2-core AMD EPYC (inference 0.63x and
# 2.01x; bench/cpu_bf16.py). So there it is measured, once per process.
_BF16_CPU_FLAGS = ("amx_bf16",)
# bf16 counts as fast when a ModernBERT-sized matmul runs at least this much faster than fp32:
# the CPUs above measured about 0.6x and 2x, far on either side of it.
BF16_MIN_SPEEDUP = 1.25
# "1" or "0" overrides the CPU detection: the suite runs the bf16-CPU code paths on any CPU
# (bf16 is emulated on AVX2: slower, same code), and a user can opt out on a bf16 CPU.
FORCE_BF16_ENV = "MODERNBERT_TASKS_CPU_BF16"
# load_finetuned(precision=...): "mixed" is bf16 with close calls re-scored in fp32
PREDICT_PRECISIONS = ("auto", "fp32", "mixed", "bf16")
# evaluate(precision=...) has no "auto": its figures go into reports, so fp32 by default on
# every machine
EVALUATE_PRECISIONS = ("fp32", "mixed", "bf16")


@dataclass(frozen=True)
class Hardware:
    device: str  # "cuda", "mps" or "cpu"
    # "bf16", "fp16" (autocast; weights stay fp32), "fp32", or "bf16-weights" (bf16 weights
    # in the training step, fp32 masters: training/master_weights.py)
    precision: str
    precision_reason: str
    attention: str  # attn_implementation passed to from_pretrained
    attention_reason: str
    pad_to_multiple_of: int | None  # tensor cores want multiples of 8; the CPU gains nothing

    def trainer_kwargs(self) -> dict[str, bool]:
        """The TrainingArguments fields that carry these choices."""
        return {
            "bf16": self.precision == "bf16",
            "fp16": self.precision == "fp16",
            "use_cpu": self.device == "cpu",
        }

    def log(self) -> None:
        logger.info(
            "Device: %s. Precision: %s (%s). Attention: %s (%s).",
            self.device,
            self.precision,
            self.precision_reason,
            self.attention,
            self.attention_reason,
        )


def cpu_supports_bf16(
    capabilities: Mapping[str, Any] | None = None, speedup: Callable[[], float] | None = None
) -> tuple[bool, str]:
    """(supported, reason), from the flags PyTorch detected (`torch.cpu.get_capabilities`, on
    every OS, unlike /proc/cpuinfo) and, with AVX512-BF16 but no AMX, a measurement;
    `capabilities` and `speedup` stand in for them in tests."""
    if capabilities is None:
        forced = os.environ.get(FORCE_BF16_ENV, "").strip()
        if forced in ("0", "1"):
            return forced == "1", f"{FORCE_BF16_ENV}={forced}"
        if forced:
            raise ConfigError(
                f"{FORCE_BF16_ENV}={forced!r}; expected 1 (treat the CPU as having "
                "fast bf16), 0 (as not having it), or unset to detect it."
            )
        import torch

        capabilities = torch.cpu.get_capabilities()
    found = [f for f in _BF16_CPU_FLAGS if capabilities.get(f)]
    if found:
        return True, f"CPU has {'/'.join(found)}"
    if capabilities.get("avx512_bf16"):
        ratio = (speedup or measured_bf16_speedup)()
        fast = ratio >= BF16_MIN_SPEEDUP
        return fast, (
            f"CPU has AVX512-BF16 but no AMX; a bf16 matmul measured {ratio:.2f}x fp32's speed "
            f"here ({'at least' if fast else 'under'} {BF16_MIN_SPEEDUP}x)"
        )
    return False, "CPU lacks AVX512-BF16/AMX, so bf16 would be emulated (slower than fp32)"


@functools.lru_cache(maxsize=1)
def measured_bf16_speedup() -> float:
    """fp32 time / bf16 time of one ModernBERT-base feed-forward matmul (512 tokens x 768 ->
    3,072) on this CPU: best of 5 interleaved tries each, about 0.2 s once per process."""
    import torch

    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(512, 768, generator=gen), torch.randn(3072, 768, generator=gen)
    pairs = [(x, w), (x.bfloat16(), w.bfloat16())]
    best = [float("inf"), float("inf")]
    with torch.no_grad():
        for i, (a, b) in enumerate(pairs * 7):
            start = time.perf_counter()
            torch.nn.functional.linear(a, b)
            if i >= 4:  # the first two of each build their kernels
                best[i % 2] = min(best[i % 2], time.perf_counter() - start)
    return best[0] / best[1]


def best_device(use_cpu: bool = False) -> str:
    """'cuda', then 'mps', then 'cpu': for training and prediction alike."""
    import torch

    if use_cpu:
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def bf16_support(device: str) -> tuple[bool, str]:
    """(fast bf16 on this device type, reason): what every "auto" precision decides on."""
    import torch

    if device == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, "the GPU supports bf16" if ok else "the GPU has no bf16"
    if device == "cpu":
        return cpu_supports_bf16()
    return False, f"mixed precision is not enabled automatically on {device}"


def _precision(requested: str, device: str) -> tuple[str, str]:
    bf16_ok, why = bf16_support(device)
    if requested == "fp16" and device != "cuda":
        raise ConfigError(
            f"precision='fp16' needs a CUDA GPU; this run uses the {device}. Use "
            "precision='bf16' or 'fp32' (or 'auto')."
        )
    if requested != "auto":
        if requested in ("bf16", "bf16-weights") and not bf16_ok:
            logger.warning(
                "precision=%r was requested but %s; it will run, probably slower than fp32.", requested, why
            )
        return requested, "requested"
    if bf16_ok:
        return "bf16", why
    if device == "cuda":
        # Pre-Ampere GPUs (T4, V100): fp16 with loss scaling is the standard speed-up there.
        return "fp16", why + "; fp16 with loss scaling instead"
    return "fp32", why


def _attention(requested: str, device: str) -> tuple[str, str]:
    if requested != "auto":
        return requested, "requested"
    if device == "cuda":
        from transformers.utils import is_flash_attn_2_available

        if is_flash_attn_2_available():
            return "flash_attention_2", "flash-attn is installed"
        return "sdpa", "flash-attn is not installed (pip install flash-attn for more speed)"
    return "sdpa", f"flash-attn needs CUDA; PyTorch SDPA on the {device}"


def detect(precision: str = "auto", attention: str = "auto", use_cpu: bool = False) -> Hardware:
    """The choices for this process; `use_cpu` forces the CPU even when a GPU is present."""
    device = best_device(use_cpu)
    prec, prec_reason = _precision(precision, device)
    attn, attn_reason = _attention(attention, device)
    return Hardware(
        device=device,
        precision=prec,
        precision_reason=prec_reason,
        attention=attn,
        attention_reason=attn_reason,
        pad_to_multiple_of=8 if device == "cuda" else None,
    )
