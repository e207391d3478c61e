"""`export` (ONNX, with a parity check) and `push` (to the Hugging Face Hub)."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError
from .common import EXIT_OK

EXPORT_EPILOG = """\
examples:
  modernbert-tasks export runs/sst2/model --format onnx
  modernbert-tasks export runs/sst2/model --format onnx --quantize int8

Needs the onnx extra: pip install 'modernbert-tasks[onnx]'. Load the result with
load_finetuned(path, backend="onnx") (or "onnx-int8").
"""

PUSH_EPILOG = """\
examples:
  modernbert-tasks push runs/sst2/model your-name/sst2-modernbert --dry-run
  modernbert-tasks push runs/sst2/model your-name/sst2-modernbert --private
"""


def add_parsers(sub: Any) -> None:
    export = sub.add_parser(
        "export",
        help="export a fine-tuned model to ONNX, with a parity check",
        description="Export a fine-tuned model to ONNX (dynamic batch and "
        "sequence axes), check its logits against PyTorch on a "
        "sample of the eval split, and optionally quantize it.",
        epilog=EXPORT_EPILOG,
    )
    export.add_argument("path", metavar="PATH", help="the model folder (e.g. runs/sst2/model)")
    export.add_argument("--format", default="onnx", choices=["onnx"], help="(default: onnx)")
    export.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="also write an int8 (dynamic quantization) model and report its accuracy change",
    )
    export.add_argument("--output", metavar="DIR", help="where to write (default: PATH/onnx)")
    export.add_argument(
        "--dynamo", action="store_true", help="use the torch.export-based exporter (slower; opset 18)"
    )
    export.add_argument(
        "--sample", type=int, default=None, metavar="N", help="eval rows for the parity check (default: 1000)"
    )

    push = sub.add_parser(
        "push",
        help="upload a model folder (with its card) to the Hub",
        description="Upload a fine-tuned model folder, model card included, to "
        "a Hugging Face Hub repository.",
        epilog=PUSH_EPILOG,
    )
    push.add_argument("path", metavar="PATH", help="the model folder (e.g. runs/sst2/model)")
    push.add_argument("repo_id", metavar="REPO_ID", help="e.g. your-name/sst2-modernbert")
    push.add_argument(
        "--dry-run", action="store_true", help="list what would be uploaded, without touching the network"
    )
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.add_argument("--token", default=None, help="a Hub token (default: the logged-in one)")


def run_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..exporters.onnx import DEFAULT_SAMPLE

    print(
        export_command(
            args.path,
            args.format,
            args.quantize,
            dynamo=args.dynamo,
            output=args.output,
            sample=DEFAULT_SAMPLE if args.sample is None else args.sample,
        )
    )
    return EXIT_OK


def run_push(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:

    print(push_command(args.path, args.repo_id, dry_run=args.dry_run, private=args.private, token=args.token))
    return EXIT_OK


def export_command(
    path: str,
    format: str = "onnx",
    quantize: str | None = None,
    *,
    dynamo: bool = False,
    output: str | None = None,
    sample: int | None = None,
) -> str:
    """`modernbert-tasks export PATH --format onnx [--quantize int8]`: the summary to print."""
    from ..exporters.onnx import FORMATS, QUANTIZATIONS, export_onnx

    if format not in FORMATS:
        raise ConfigError(f"--format {format!r} is not supported; expected one of {', '.join(FORMATS)}.")
    if quantize not in QUANTIZATIONS:
        raise ConfigError(
            f"--quantize {quantize!r} is not supported; expected int8 (or leave it out for fp32 only)."
        )
    return export_onnx(path, output, quantize=quantize, dynamo=dynamo, sample=sample, verbose=False).summary()


def push_command(
    path: str, repo_id: str, *, dry_run: bool = False, private: bool = False, token: str | None = None
) -> str:
    """`modernbert-tasks push PATH REPO_ID [--dry-run] [--private]`: the summary to print."""
    from ..artifacts.publish import push_to_hub

    plan = push_to_hub(path, repo_id, dry_run=dry_run, private=private, token=token)
    return plan.summary(dry_run)
