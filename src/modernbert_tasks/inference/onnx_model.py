"""Prediction through onnxruntime: `load_finetuned(path, backend="onnx")`.

The folder is one written by `export_onnx` (`<model>/onnx/`: model.onnx, model.int8.onnx, the
tokenizer, config.json and the manifest). Only the forward pass differs from the torch model:
`OnnxFineTunedModel` is a `FineTunedModel` whose `model` is an onnxruntime session behind the
same call (`model(**batch).logits`), so tokenizing, length-sorted batching, decoding and
`evaluate` are the very same code.

onnxruntime is an optional extra: pip install 'modernbert-tasks[onnx]'.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..errors import ConfigError, ModelLoadError
from .predictor import FineTunedModel
from .settings import model_settings

__all__ = [
    "load_backend",
    "load_onnx",
    "BACKENDS",
    "OnnxFineTunedModel",
    "OnnxForward",
    "ONNX_FILES",
    "INSTALL_HINT",
    "require_onnxruntime",
]

ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
BACKENDS = {"torch": None, "onnx": "fp32", "onnx-int8": "int8"}  # backend -> ONNX weights
ONNX_SUBFOLDER = "onnx"  # where export_onnx writes by default, inside the model folder
INSTALL_HINT = "pip install 'modernbert-tasks[onnx]'"


def require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ModelLoadError(
            f"The ONNX backend needs onnxruntime, which is not installed: {INSTALL_HINT}"
        ) from None
    return onnxruntime


class OnnxForward:
    """An onnxruntime session called like a transformers model: `forward(**batch).logits`.

    Feeds exactly the graph's inputs as int64 (BERT graphs take token_type_ids, ModernBERT
    graphs do not); one the tokenizer did not give is filled in (mask: ones, types: zeros).
    """

    def __init__(self, session: Any, config: Any, file: str) -> None:
        self.session = session
        self.config = config
        self.file = file
        self.input_names = [i.name for i in session.get_inputs()]

    def __call__(self, **batch: Any) -> SimpleNamespace:
        import numpy as np
        import torch

        ids = batch["input_ids"]
        feed = {}
        for name in self.input_names:
            value = batch.get(name)
            if value is None:  # attention: every token is real; token types: all segment 0
                fill = np.ones if name == "attention_mask" else np.zeros
                feed[name] = fill(tuple(ids.shape), dtype=np.int64)
            else:
                feed[name] = value.cpu().numpy().astype(np.int64, copy=False)
        logits = self.session.run(None, feed)[0]
        return SimpleNamespace(logits=torch.from_numpy(logits))

    def __repr__(self) -> str:
        return f"OnnxForward({self.file!r}, inputs={self.input_names})"


class OnnxFineTunedModel(FineTunedModel):
    """A `FineTunedModel` that runs on onnxruntime (CPU, fp32 or int8 weights).

    Extra attributes: quantization ('fp32' or 'int8'), onnx_file.
    """

    def __init__(self, forward: OnnxForward, tokenizer: Any, *, quantization: str, **kwargs: Any) -> None:
        super().__init__(forward, tokenizer, **kwargs)
        self.quantization = quantization
        self.onnx_file = forward.file

    def __repr__(self) -> str:
        task = self.task.name if self.task else None
        return (
            f"OnnxFineTunedModel(path={self.path!r}, task={task!r}, "
            f"labels={list(self.labels)}, max_length={self.max_length}, "
            f"quantization={self.quantization!r})"
        )


def _find_onnx_file(path: str | os.PathLike, quantization: str) -> Path:
    """`path` is the .onnx file, the export folder, or the model folder holding onnx/."""
    if quantization not in ONNX_FILES:
        raise ConfigError(
            f"quantization={quantization!r} is not supported; expected one of {', '.join(ONNX_FILES)}."
        )
    given = Path(path).expanduser()
    if given.is_file() and given.suffix == ".onnx":
        return given
    name = ONNX_FILES[quantization]
    for folder in (given, given / ONNX_SUBFOLDER):
        if (folder / name).is_file():
            return folder / name
    if not given.exists():
        raise ModelLoadError(
            f"Model folder {str(given)!r} does not exist. Pass the folder "
            "export_onnx wrote (default: <model folder>/onnx)."
        )
    how = (
        "modernbert-tasks export PATH --format onnx --quantize int8"
        if quantization == "int8"
        else "modernbert-tasks export PATH --format onnx"
    )
    raise ModelLoadError(
        f"No {name} in {str(given)!r} or its onnx/ subfolder. Export it first: "
        f"modernbert_tasks.export_onnx(path"
        f"{', quantize=' + repr('int8') if quantization == 'int8' else ''}) "
        f"(CLI: {how})."
    )


def load_backend(
    path: str | os.PathLike,
    backend: str,
    *,
    device: Any = None,
    precision: str = "auto",
    max_length: int | None = None,
    long_text: str | None = None,
    stride: int | None = None,
    aggregate: str | None = None,
) -> OnnxFineTunedModel:
    """`load_finetuned(path, backend=...)` for the ONNX backends; checks the torch-only options."""
    if backend not in BACKENDS or backend == "torch":
        raise ConfigError(
            f"backend={backend!r} is not supported; expected one of {', '.join(map(repr, BACKENDS))}."
        )
    if device is not None and str(device) != "cpu":
        raise ConfigError(
            f"device={device!r} with backend={backend!r}: the ONNX backend runs on "
            "the CPU. Leave device=None, or use backend='torch' for a GPU."
        )
    if precision not in ("auto", "fp32"):
        raise ConfigError(
            f"precision={precision!r} with backend={backend!r}: ONNX runs the "
            "exported fp32 (or int8) weights. Use precision='auto', or "
            "backend='onnx-int8' for the quantized model."
        )
    quantization = BACKENDS[backend]
    assert quantization is not None  # only "torch" maps to None, refused above
    return load_onnx(
        path,
        quantization=quantization,
        max_length=max_length,
        long_text=long_text,
        stride=stride,
        aggregate=aggregate,
    )


def load_onnx(
    path: str | os.PathLike,
    *,
    quantization: str = "fp32",
    num_threads: int | None = None,
    max_length: int | None = None,
    long_text: str | None = None,
    stride: int | None = None,
    aggregate: str | None = None,
) -> OnnxFineTunedModel:
    """Load an exported model for onnxruntime on the CPU.

    Args:
        path: the export folder, the model folder that holds onnx/, or a .onnx file.
        quantization: 'fp32' (model.onnx) or 'int8' (model.int8.onnx).
        num_threads: intra-op threads; None lets onnxruntime use every core.
        max_length, long_text, stride, aggregate: as in `load_finetuned`.
    """
    ort = require_onnxruntime()
    from transformers import AutoConfig, AutoTokenizer

    from ..artifacts.manifest import read_manifest

    file = _find_onnx_file(path, quantization)
    folder = file.parent
    if file.name == ONNX_FILES["int8"]:
        quantization = "int8"
    if not (folder / "config.json").is_file():
        raise ModelLoadError(
            f"{str(folder)!r} holds {file.name} but no config.json; re-export "
            "with export_onnx, which writes the config and tokenizer beside it."
        )
    options = ort.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = int(num_threads)
    try:
        session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        config = AutoConfig.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except Exception as exc:
        raise ModelLoadError(
            f"Could not load the ONNX model in {str(folder)!r}: "
            f"{type(exc).__name__}: {' '.join(str(exc).split())}. Re-export it "
            "with export_onnx."
        ) from None
    manifest = read_manifest(folder)
    settings = model_settings(
        manifest, config, tokenizer, str(folder), max_length, long_text, stride, aggregate
    )
    import torch

    return OnnxFineTunedModel(
        OnnxForward(session, config, str(file)),
        tokenizer,
        quantization=quantization,
        manifest=manifest,
        device=torch.device("cpu"),
        precision="fp32",
        path=str(folder),
        **settings,
    )
