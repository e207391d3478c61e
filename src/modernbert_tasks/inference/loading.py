"""`load_finetuned(path)`: a saved model folder (or a hub id) back to a `FineTunedModel`.

The folder's manifest (see `artifacts/manifest.py`) says which task the model was trained on,
so the labels, text columns and prefix match training without the task's plugin being
installed. A plain Hugging Face classification folder (no manifest) loads too. The ONNX
backends load through `onnx_model.py`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import model_sources
from ..artifacts.manifest import MANIFEST_NAME, read_manifest
from ..errors import ConfigError
from ..hardware import PREDICT_PRECISIONS
from .predictor import FineTunedModel
from .settings import model_settings

if TYPE_CHECKING:
    import torch

__all__ = ["load_finetuned"]


def load_finetuned(
    path: str | os.PathLike,
    device: str | int | torch.device | None = None,
    *,
    precision: str = "auto",
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    backend: str = "torch",
    max_length: int | None = None,
    long_text: str | None = None,
    stride: int | None = None,
    aggregate: str | None = None,
) -> FineTunedModel:
    """Load a model saved by `fine_tune` (or any HF sequence-classification folder).

    Args:
        path: the model folder, or a Hugging Face Hub id (needs network or the HF cache).
        device: 'cpu', 'cuda', 'cuda:1', an index or a torch.device; None picks CUDA if present.
        precision: 'auto' ('mixed' where bf16 is fast, else 'fp32': either way the labels
            are fp32's), 'fp32', 'mixed' (bf16, close calls re-scored in fp32) or 'bf16'
            (fastest; close calls can flip). See `_choose_precision`.
        trust_remote_code: run model code shipped in the folder. Off unless you trust it.
        allow_pickle: also load pickle weights (pytorch_model.bin). Unpickling can run
            arbitrary code, so only do this for files you trust.
        backend: 'torch', or 'onnx' / 'onnx-int8' for onnxruntime on a folder written by
            export_onnx (same predict/evaluate; see inference/onnx_model.py).
        max_length: the most tokens predict and evaluate read of a text. Default: the model's
            position limit (ModernBERT 8,192), not the shorter length training used for speed;
            a longer text is truncated, and its record says so.
        long_text: how predict and evaluate read a text longer than max_length: 'truncate'
            (up to max_length) or 'chunks' (whole, in windows of max_length tokens whose
            calibrated probabilities are aggregated). Default: the manifest's (what training
            used), else 'truncate'. A call to predict/evaluate may pass its own.
        stride: with chunks, the tokens consecutive windows share (default: the manifest's,
            else max_length // 8); must be below max_length minus the special tokens.
        aggregate: with chunks, 'mean' (default) or 'max' of the windows' probabilities.
    """
    if backend != "torch":  # onnxruntime: an optional extra, loaded only when asked for
        from .onnx_model import load_backend

        return load_backend(
            path,
            backend,
            device=device,
            precision=precision,
            max_length=max_length,
            long_text=long_text,
            stride=stride,
            aggregate=aggregate,
        )
    if precision not in PREDICT_PRECISIONS:
        raise ConfigError(
            f"precision={precision!r} is not supported; expected one of {', '.join(PREDICT_PRECISIONS)}."
        )
    source = model_sources.resolve_source(path, allow_pickle=allow_pickle)
    manifest = _read_any_manifest(source)
    torch_device = model_sources.resolve_device(device)
    chosen = _choose_precision(torch_device, precision)
    model, tokenizer = model_sources.load_for_prediction(
        source, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code
    )
    settings = model_settings(
        manifest, model.config, tokenizer, source, max_length, long_text, stride, aggregate
    )
    model.to(torch_device).eval()
    return FineTunedModel(
        model, tokenizer, manifest=manifest, device=torch_device, precision=chosen, path=source, **settings
    )


def _read_any_manifest(source: str) -> dict[str, Any] | None:
    if Path(source).is_dir():
        return read_manifest(source)
    from transformers.utils import cached_file

    try:  # a Hub id: the manifest is optional there too
        file = cached_file(
            source,
            MANIFEST_NAME,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
    except Exception as exc:
        raise model_sources.hub_error(source, exc) from None
    return read_manifest(Path(file).parent) if file else None


def _choose_precision(device: torch.device, precision: str) -> str:
    """'fp32', 'bf16' or 'mixed' (bf16 passes run a copy of the model with bf16 parameters).

    'auto' is 'mixed' where bf16 is fast (hardware.bf16_support) and 'fp32'
    elsewhere. 'mixed' computes in bf16 and re-scores every close call in fp32 (see
    RESCORE_MARGIN), so its labels are fp32's. Plain 'bf16' can flip close calls: on
    all-MiniLM-L6-v2 fine-tuned on SST-2 (2,693 validation+test sentences) it changed 2 labels
    on a CPU and 1 on an H200, and bf16 results also depend on how texts are batched.
    """
    from ..hardware import bf16_support

    if precision == "fp32":
        return "fp32"
    supported, reason = bf16_support(device.type)
    if precision == "auto":
        return "mixed" if supported else "fp32"
    if device.type == "cuda" and not supported:
        raise ConfigError(f"precision={precision!r} but {reason}. Use precision='fp32'.")
    if not supported:
        warnings.warn(
            f"precision={precision!r} on this {device.type}: {reason}. Use precision='fp32'.",
            RuntimeWarning,
            stacklevel=3,
        )
    return precision
