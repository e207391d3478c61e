"""Opt-in speed levers applied to the loaded model: torch.compile with an eager fallback, and
frozen token embeddings. Static shapes for the compiler come from `bucket_widths`, which
the collator pads each batch's width up to (see batching.make_collator). With compile=True the
gradient clipping compiles too (`CompiledClip`): eager clipping dispatches a norm and a multiply
per parameter on a CPU, which the compiler fuses into a few kernels.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["CompiledClip", "bucket_widths", "compile_in_place", "freeze_embeddings"]

logger = logging.getLogger(__name__)

_SMALLEST_BUCKET = 16


def bucket_widths(kind: str, compiled: bool, max_length: int) -> tuple[int, ...] | None:
    """Batch widths to pad to: powers of two from 16 up to max_length, and max_length itself,
    so a compiled model sees a handful of shapes (4 for max_length=128) instead of one per
    batch width. None: pad to each batch's longest text."""
    if kind == "none" or (kind == "auto" and not compiled):
        return None
    widths, width = [], _SMALLEST_BUCKET
    while width < max_length:
        widths.append(width)
        width *= 2
    return (*widths, max_length)


def compile_in_place(model: Any, mode: str | None = None, backend: Any = "inductor") -> None:
    """`model.compile()` with static shapes; state_dict keys and saving are unchanged. If the
    compiler is missing or fails on the first batch, training continues in eager mode after one
    warning line."""
    import torch

    try:
        model.compile(dynamic=False, mode=None if mode == "default" else mode, backend=backend)
    except Exception as exc:  # e.g. a platform torch.compile does not support
        _warn(exc)
        return
    compiled = model._compiled_call_impl

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return compiled(*args, **kwargs)
        except torch._dynamo.exc.TorchDynamoException as exc:  # compiler errors, not user errors
            _warn(exc)
            model._compiled_call_impl = None
            return model._call_impl(*args, **kwargs)

    model._compiled_call_impl = call
    logger.info(
        "torch.compile: the model compiles on its first batch of each width "
        "(mode %s); compiled graphs are cached across runs.",
        mode or "default",
    )


def _clip_grads(grads: list[Any], max_norm: float) -> Any:
    """torch.nn.utils.clip_grad_norm_ (2-norm) on a list of gradients: scale them in place so
    their joint norm is at most max_norm; return the norm before clipping."""
    import torch

    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, 2.0) for g in grads]), 2.0)
    coefficient = torch.clamp(max_norm / (total + 1e-6), max=1.0)  # torch's own epsilon
    torch._foreach_mul_(grads, coefficient)
    return total


class CompiledClip:
    """Gradient clipping as one compiled function, eager after one warning if it fails."""

    def __init__(self) -> None:
        import torch

        self.compiled: Any = torch.compile(_clip_grads, dynamic=False)

    def __call__(self, parameters: Any, max_norm: float) -> Any:
        import torch

        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:  # as torch's clip: nothing to scale, a zero norm
            return torch.tensor(0.0)
        if self.compiled is not None:
            try:
                return self.compiled(grads, float(max_norm))
            except torch._dynamo.exc.TorchDynamoException as exc:
                _warn(exc)
                self.compiled = None
        with torch.no_grad():
            return _clip_grads(grads, float(max_norm))


def _warn(exc: BaseException) -> None:
    exc = getattr(exc, "inner_exception", None) or exc  # the compiler's own error
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    logger.warning(
        "torch.compile failed (%s: %s); training continues without compiling.",
        type(exc).__name__,
        first[:200],
    )


def freeze_embeddings(model: Any) -> int:
    """Stop training the token embedding matrix (its dense AdamW update touches every row
    although a batch uses a few hundred). Returns the number of frozen parameters."""
    weight = model.get_input_embeddings().weight
    weight.requires_grad_(False)
    logger.warning(
        "freeze_embeddings=True: the %.1fM token-embedding parameters are not trained.", weight.numel() / 1e6
    )
    return weight.numel()
