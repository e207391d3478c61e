"""The Trainer's arguments: from the resolved options and the hardware's choices, the
evaluation schedule once the number of steps is known, the push settings, and which process
of a distributed launch is the main one."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import hardware
from ..errors import ConfigError
from ..options import AUTO, EVAL_FRACTION, ResolvedOptions, auto_eval_steps

if TYPE_CHECKING:
    from transformers import Trainer, TrainingArguments

__all__ = [
    "training_arguments",
    "schedule",
    "push_settings",
    "is_main_process",
    "training_is_main",
    "warn_if_one_of_many",
    "PUSH_KEYS",
]

logger = logging.getLogger(__name__)


def is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch, or a plain process."""
    return int(os.environ.get("RANK", "0")) == 0


def training_is_main(trainer: Trainer) -> bool:
    return trainer.args.process_index == 0


def warn_if_one_of_many(world_size: int) -> None:
    """`accelerate launch --cpu --num_processes N` starts ONE process (N needs an MPI hostfile);
    it sets MASTER_ADDR for N > 1 but, unlike a launcher that started N, no WORLD_SIZE."""
    if world_size == 1 and os.environ.get("MASTER_ADDR") and "WORLD_SIZE" not in os.environ:
        logger.warning(
            "The launcher was asked for several processes, but this run is the only one "
            "(world size 1). `accelerate launch --cpu` starts one process; for several, use "
            "`accelerate launch --multi_gpu --num_processes N ...` (it also works on CPUs) or "
            "`torchrun --nproc-per-node N -m modernbert_tasks ...` (docs/distributed.md)."
        )


def training_arguments(resolved: ResolvedOptions, hw: hardware.Hardware, out: Path) -> TrainingArguments:
    """The Trainer's arguments from the resolved options and the hardware's choices."""
    from transformers import TrainingArguments

    kwargs = dict(resolved.trainer_kwargs)
    opts = resolved.options
    kwargs.update(hw.trainer_kwargs())  # bf16/fp16/use_cpu passed by the caller are in hw
    if not resolved.explicit("train_sampling_strategy"):
        grouped = opts.group_by_length and opts.padding == "longest"
        kwargs["train_sampling_strategy"] = "group_by_length" if grouped else "random"
    kwargs["output_dir"] = os.fspath(out)
    for name in ("eval_steps", "save_steps"):
        if kwargs.get(name) == AUTO:
            kwargs[name] = EVAL_FRACTION  # a valid stand-in; _schedule sets the real interval
    try:
        return TrainingArguments(**kwargs)
    except (ValueError, TypeError) as exc:
        chosen = {k: v for k, v in kwargs.items() if resolved.explicit(k)}
        raise ConfigError(
            f"These training arguments do not fit together: {exc} (you set: "
            f"{chosen or 'nothing'}). Adjust them; see describe_options()."
        ) from exc


def schedule(args: TrainingArguments, resolved: ResolvedOptions, num_train: int) -> None:
    """Resolve eval_steps/save_steps="auto" now that the number of training steps is known."""
    per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(1, args.world_size)
    total = (
        args.max_steps
        if args.max_steps > 0
        else math.ceil(args.num_train_epochs * math.ceil(num_train / per_step))
    )
    interval = auto_eval_steps(total)
    for name in ("eval_steps", "save_steps"):
        if resolved.trainer_kwargs.get(name) == AUTO:
            setattr(args, name, interval)
    logger.info(
        "%d training steps; evaluating and saving every %s/%s steps.", total, args.eval_steps, args.save_steps
    )


PUSH_KEYS = (
    "push_to_hub",
    "hub_model_id",
    "hub_private_repo",
    "hub_token",
    "hub_strategy",
    "hub_always_push",
    "hub_revision",
)


def push_settings(resolved: ResolvedOptions) -> dict[str, Any] | None:
    """push_to_hub=True uploads the final model folder (safetensors, manifest, card) with
    artifacts.publish once training is done; the Trainer's own push, which uploads pickled
    checkpoints during training, is never used. Checked before training starts."""
    from ..artifacts.publish import check_push

    kwargs = resolved.trainer_kwargs
    asked = {k: kwargs.pop(k) for k in PUSH_KEYS if k in kwargs}
    if not asked.get("push_to_hub"):
        return None
    repo_id = asked.get("hub_model_id")
    if not repo_id:
        raise ConfigError(
            "push_to_hub=True needs the repo to push to: hub_model_id='user/name' "
            "(CLI: --hub-model-id user/name)."
        )
    return check_push(repo_id, private=bool(asked.get("hub_private_repo")), token=asked.get("hub_token"))
