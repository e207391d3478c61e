"""ONNX export with a parity check: `export_onnx(model_path)` -> `<model_path>/onnx/`.

The exporter is `torch.onnx.export`: the TorchScript-based one by default (`dynamo=False`, opset
17; 0.5-2 s) or the dynamo one (`dynamo=True`, opset 18, needs onnxscript; 14-70 s). Both give
dynamic batch and sequence axes and the same numbers on ModernBERT (sliding-window attention
included) and BERT-style models with transformers 5.24. optimum is not used: optimum-onnx
requires transformers < 4.58.

Every export is checked before it replaces anything: the exported graph and the torch model
score a sample of the task's eval split (or, without it, a fixed set of texts including one
longer than max_length), and the max absolute logit difference and the label agreement are
reported. fp32 must agree (labels identical, logits within `tolerance`) or the export fails.
int8 (onnxruntime dynamic quantization) changes numbers by design: its metric change on the
labelled sample is reported instead.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifacts.saving import swap_into_place
from ..errors import ConfigError, ModelLoadError
from .parity import (
    FALLBACK_TEXTS,
    FP32_TOLERANCE,
    ParityError,
    ParityReport,
    check_parity,
    parity_texts,
)

if TYPE_CHECKING:
    from ..inference.predictor import FineTunedModel

__all__ = [
    "export_onnx",
    "ExportResult",
    "ParityReport",
    "ParityError",
    "FALLBACK_TEXTS",
    "FORMATS",
    "QUANTIZATIONS",
]

FORMATS = ("onnx",)
QUANTIZATIONS = (None, "int8")
DEFAULT_SAMPLE = 1000
LEGACY_OPSET, DYNAMO_OPSET = 17, 18
REPORT_NAME = "export_report.json"


@dataclass
class ExportResult:
    output: Path
    files: dict[str, Path]
    parity: list[ParityReport]
    source: str
    exporter: str
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in self.files.values())
        lines = [
            f"Exported to {self.output} ({self.exporter}, {self.seconds:.1f} s): {sizes}",
            f"Parity check on {self.source}:",
        ]
        lines += [f"  {r.line()}" for r in self.parity]
        return "\n".join(lines)


# --- the export ----------------------------------------------------------------------------
def export_onnx(
    model: str | os.PathLike | FineTunedModel,
    output: str | os.PathLike | None = None,
    *,
    quantize: str | None = None,
    dynamo: bool = False,
    sample: int | None = DEFAULT_SAMPLE,
    data: Any = None,
    data_dir: str | os.PathLike | None = None,
    tolerance: float = FP32_TOLERANCE,
    verbose: bool = True,
) -> ExportResult:
    """Export a fine-tuned model to ONNX, check it against torch, and return the report.

    Args:
        model: the model folder (or a loaded torch `FineTunedModel`).
        output: the folder to write; default `<model folder>/onnx`. It is replaced only after
            the parity check passes.
        quantize: None, or 'int8' to also write model.int8.onnx (dynamic quantization).
        dynamo: use the dynamo exporter (needs onnxscript) instead of the TorchScript one.
        sample: how many eval-split texts the parity check scores; None for all of them.
        data, data_dir: labelled data for the check, as for `FineTunedModel.evaluate`;
            default: the task's eval split from the data recorded in the manifest.
        tolerance: the largest fp32 logit difference accepted.
        verbose: print the report.
    """
    _check_args(quantize, dynamo, sample, tolerance)
    started = time.perf_counter()
    reference = _torch_model(model)
    target = _output_folder(reference, output)
    staged = target.with_name(f".{target.name}.partial")
    if staged.exists():
        shutil.rmtree(staged)  # left over from an interrupted export
    staged.mkdir(parents=True)
    try:
        files = {"fp32": staged / "model.onnx"}
        exporter = _export_graph(reference, files["fp32"], dynamo)
        if quantize == "int8":
            files["int8"] = staged / "model.int8.onnx"
            _quantize_int8(files["fp32"], files["int8"])
        _write_companions(reference, staged)
        first, second, labels, source = parity_texts(reference, sample, data, data_dir)
        parity = check_parity(reference, staged, files, first, second, labels, source, tolerance)
        report = {
            "exporter": exporter,
            "source": source,
            "tolerance": tolerance,
            "parity": [asdict(r) | {"metric_change": r.metric_change} for r in parity],
            "versions": _versions(),
        }
        (staged / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    swap_into_place(staged, target)
    result = ExportResult(
        output=target,
        files={k: target / p.name for k, p in files.items()},
        parity=parity,
        source=source,
        exporter=exporter,
        seconds=time.perf_counter() - started,
    )
    if verbose:
        print(result.summary())
    return result


def _check_args(quantize: Any, dynamo: Any, sample: Any, tolerance: Any) -> None:
    if quantize not in QUANTIZATIONS:
        raise ConfigError(f"quantize={quantize!r} is not supported; expected None or 'int8'.")
    if not isinstance(dynamo, bool):
        raise ConfigError(f"dynamo={dynamo!r}; expected True or False.")
    if sample is not None and (not isinstance(sample, int) or isinstance(sample, bool) or sample < 1):
        raise ConfigError(
            f"sample={sample!r}; expected a positive number of texts, or None for the whole eval split."
        )
    if not isinstance(tolerance, int | float) or not tolerance > 0:
        raise ConfigError(f"tolerance={tolerance!r}; expected a positive number such as 1e-3.")
    from ..inference.onnx_model import INSTALL_HINT, require_onnxruntime

    require_onnxruntime()
    needed = ["onnx"] + (["onnxscript"] if dynamo else [])
    for name in needed:
        try:
            __import__(name)
        except ImportError:
            raise ModelLoadError(
                f"ONNX export{' with dynamo=True' if dynamo else ''} needs "
                f"{name}, which is not installed: {INSTALL_HINT}"
            ) from None


def _torch_model(model: Any) -> FineTunedModel:
    """An fp32 torch model on the CPU: the exporter's input and the parity reference."""
    from ..inference.loading import load_finetuned
    from ..inference.onnx_model import OnnxFineTunedModel
    from ..inference.predictor import FineTunedModel

    if isinstance(model, OnnxFineTunedModel):
        raise ConfigError(
            "export_onnx got a model that already runs on ONNX; pass the torch model folder instead."
        )
    if isinstance(model, FineTunedModel):
        if model.device.type == "cpu" and model.precision == "fp32":
            return model
        model = model.path
    if not isinstance(model, str | os.PathLike):
        raise ConfigError(
            f"export_onnx(model=...) got {type(model).__name__}; expected a model "
            "folder path or a FineTunedModel from load_finetuned."
        )
    return load_finetuned(model, device="cpu", precision="fp32")


def _output_folder(reference: FineTunedModel, output: Any) -> Path:
    if output is None:
        if not Path(reference.path).is_dir():
            raise ConfigError(
                f"{reference.path!r} is not a local folder, so there is no default "
                "output folder; pass output='some/folder'."
            )
        return Path(reference.path) / "onnx"
    target = Path(output).expanduser()
    if target.exists() and not target.is_dir():
        raise ConfigError(
            f"output={str(target)!r} is a file; expected a folder to write model.onnx and the tokenizer into."
        )
    if target.is_dir() and any(target.iterdir()) and not (target / "model.onnx").is_file():
        raise ConfigError(
            f"output={str(target)!r} already holds other files (no model.onnx), "
            "and exporting replaces the whole folder. Pass an empty or new folder."
        )
    return target


def _input_names(reference: FineTunedModel) -> list[str]:
    # the order of Logits.forward; token_type_ids only where predict feeds them (BERT)
    extra = ["token_type_ids"] if "token_type_ids" in reference.tokenizer.model_input_names else []
    return ["input_ids", "attention_mask", *extra]


def _export_graph(reference: FineTunedModel, path: Path, dynamo: bool) -> str:
    import torch

    names = _input_names(reference)
    texts = ["hello world", "a short dummy text"]  # padded batch of 2: no size-1 axis to fix
    pair = ["and a second one", "b"] if reference.is_pair else None
    dummy = reference.tokenizer(texts, pair, padding=True, return_tensors="pt")
    args = tuple(dummy[n] for n in names)

    class Logits(torch.nn.Module):
        """Named inputs -> logits: a graph with one plain output. Explicit parameters (not
        *args) so that the dynamo exporter can match dynamic_shapes by name."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Any:
            given = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            return self.model(**{n: given[n] for n in names}).logits

    wrapped = Logits(reference.model).eval()
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python-side branches
            if dynamo:
                batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
                torch.onnx.export(
                    wrapped,
                    args,
                    str(path),
                    input_names=names,
                    output_names=["logits"],
                    dynamo=True,
                    dynamic_shapes={n: {0: batch, 1: seq} for n in names},
                    opset_version=DYNAMO_OPSET,
                    external_data=False,
                )
            else:
                axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
                torch.onnx.export(
                    wrapped,
                    args,
                    str(path),
                    input_names=names,
                    output_names=["logits"],
                    dynamo=False,
                    dynamic_axes=axes,
                    opset_version=LEGACY_OPSET,
                )
    except Exception as exc:
        other = "dynamo=False" if dynamo else "dynamo=True"
        raise ParityError(
            f"torch.onnx.export failed for {reference.path!r}: "
            f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}. Try "
            f"{other}, or report the model type "
            f"({reference.model.config.model_type})."
        ) from None
    if dynamo:
        return f"torch.onnx.export(dynamo=True, opset {DYNAMO_OPSET})"
    return f"torch.onnx.export(dynamo=False, opset {LEGACY_OPSET})"


def _quantize_int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # weights to int8 per output channel, activations quantized on the fly. The quantizer logs
    # a "consider pre-processing" warning on the root logger for every model: not actionable
    # here (the parity report shows the int8 effect), so it is muted for this call only.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)


def _write_companions(reference: FineTunedModel, folder: Path) -> None:
    """What load_finetuned(folder, backend='onnx') needs besides the graph."""
    from ..artifacts.manifest import write_manifest

    reference.tokenizer.save_pretrained(folder)
    reference.model.config.save_pretrained(folder)
    if reference.manifest is not None:
        write_manifest(folder, reference.manifest)


def _versions() -> dict[str, str | None]:
    from ..versions import package_versions

    return package_versions(("torch", "transformers", "onnx", "onnxruntime", "onnxscript"))
