"""The final save: weights (safetensors), tokenizer, config, manifest and model card, swapped in atomically.

Everything is written to a hidden folder beside the target first. Only when it is complete is
the previous model moved aside and the new one renamed into place, so an interrupted save never
leaves a half-written model where a good one was.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

if TYPE_CHECKING:
    from transformers import Trainer

__all__ = ["save_final_model", "swap_into_place", "SAFE_WEIGHTS"]

logger = logging.getLogger(__name__)

SAFE_WEIGHTS = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)
# Written by Trainer.save_model but pickled: not kept in the final folder.
_PICKLED = ("training_args.bin",)


def _staging(target: Path) -> tuple[Path, Path]:
    return target.with_name(f".{target.name}.partial"), target.with_name(f".{target.name}.previous")


def swap_into_place(staged: Path, target: Path) -> Path:
    """Replace `target` by the complete folder `staged`; the old one survives until the end."""
    previous = _staging(target)[1]
    if previous.exists():
        shutil.rmtree(previous)
    if target.exists():
        target.rename(previous)
    staged.rename(target)
    if previous.exists():
        shutil.rmtree(previous)
    return target


def save_final_model(trainer: Trainer, target: str | Path, manifest: Mapping[str, Any]) -> Path:
    """Save the trainer's (best) model to `target` from the main process; all ranks return.

    Every rank must call this: `Trainer.save_model` gathers sharded weights (FSDP, DeepSpeed)
    collectively, and the ranks wait for the main one before returning.
    """
    from .manifest import write_manifest
    from .model_card import write_model_card

    target = Path(target)
    staged = _staging(target)[0]
    main = trainer.is_world_process_zero()
    if main and staged.exists():
        shutil.rmtree(staged)  # left over from an interrupted save
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staged))  # safetensors weights, config, tokenizer; main rank only
    if main:
        for name in _PICKLED:
            (staged / name).unlink(missing_ok=True)
        if not any((staged / name).is_file() for name in SAFE_WEIGHTS):
            raise RuntimeError(f"Saving the model to {staged} wrote no safetensors weights.")
        write_manifest(staged, manifest)
        write_model_card(staged, manifest)  # README.md, generated from the manifest alone
        swap_into_place(staged, target)
        logger.info("Saved the fine-tuned model to %s", target)
    trainer.accelerator.wait_for_everyone()
    return target
