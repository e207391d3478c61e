"""What a local model folder must hold before anything loads it: config.json, and weights
that are safetensors and readable (pickle weights only with allow_pickle=True)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import ModelLoadError

__all__ = ["weight_files", "check_local_folder", "one_line"]

_OTHER_PICKLES = ("model.pt", "model.pth", "pytorch_model.pt", "model.ckpt")


def weight_files() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(safetensors names, pickle names) as transformers names them."""
    from transformers.utils import (
        SAFE_WEIGHTS_INDEX_NAME,
        SAFE_WEIGHTS_NAME,
        WEIGHTS_INDEX_NAME,
        WEIGHTS_NAME,
    )

    return ((SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME), (WEIGHTS_NAME, WEIGHTS_INDEX_NAME, *_OTHER_PICKLES))


def check_local_folder(folder: Path, *, allow_pickle: bool, for_training: bool = False) -> None:
    """config.json present, weights present, readable and safe to load."""
    name = "model_name" if for_training else "path"
    if not folder.is_dir():
        raise ModelLoadError(
            f"{name} {str(folder)!r} is a file; expected the model folder that holds it "
            "(config.json, model.safetensors and the tokenizer files): pass "
            f"{str(folder.parent)!r}" + (" (CLI: --model FOLDER)." if for_training else ".")
        )
    present = sorted(p.name for p in folder.iterdir())
    if "config.json" not in present:
        nested = [n for n in present if (folder / n / "config.json").is_file()]
        where = f" Its subfolders {nested[:5]} hold models: pass one of them." if nested else ""
        raise ModelLoadError(
            f"{name} {str(folder)!r} is not a model folder: it has no config.json (it holds "
            f"{present[:15] or 'no files'}).{where} Expected a folder written by "
            "save_pretrained() or fine_tune (config.json, model.safetensors, tokenizer files)."
        )
    safe, pickles = weight_files()
    config = _read_json(folder / "config.json", "config.json")
    explicit = config.get("transformers_weights") if isinstance(config, dict) else None
    if explicit and not str(explicit).endswith(safe) and not allow_pickle:
        raise ModelLoadError(
            f"{str(folder / 'config.json')!r} points at weights file {explicit!r}, which is not "
            "safetensors. Loading pickle weights can run arbitrary code; pass allow_pickle=True "
            "only if you trust the file."
        )
    if any(n in present for n in safe):
        _check_safetensors(folder)
        return
    found = [n for n in present if n in pickles]
    if found and not allow_pickle:
        raise ModelLoadError(
            f"{str(folder)!r} has only pickle weights ({', '.join(found)}), no "
            "model.safetensors. Unpickling a file can run arbitrary code, so it is refused. If "
            "you trust the file, pass allow_pickle=True (CLI: --allow-pickle), or convert it "
            "once with model.save_pretrained(folder) (which writes safetensors)."
        )
    if not found:
        raise ModelLoadError(
            f"Model folder {str(folder)!r} has a config but no weights (no model.safetensors; "
            f"it holds {present[:15]}). It may be a config/tokenizer-only copy, or saving was "
            f"interrupted. Point {name} at a folder with the weights (save_pretrained and "
            "fine_tune write them), or at a hub id when online."
        )


def _check_safetensors(folder: Path) -> None:
    """Open each safetensors header so a damaged file fails here with its name, not deep
    inside transformers."""
    from safetensors import safe_open

    (single, sharded), _ = weight_files()
    index = folder / sharded
    if (folder / single).is_file():
        files = [folder / single]
    else:
        weight_map = _read_json(index, index.name).get("weight_map", {})
        files = [folder / name for name in sorted(set(weight_map.values()))]
    for file in files:
        if not file.is_file():
            raise ModelLoadError(
                f"Weights file {str(file)!r} listed in {index.name} is missing. "
                "Copy the complete model folder."
            )
        try:
            with safe_open(str(file), framework="pt") as fh:
                fh.keys()
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise ModelLoadError(
                f"Weights file {str(file)!r} is damaged or not a safetensors file "
                f"({one_line(exc)}). Re-copy or re-save the model."
            ) from None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{what} at {str(path)!r} is not readable JSON ({exc}). Re-save the model folder."
        ) from None


def one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
