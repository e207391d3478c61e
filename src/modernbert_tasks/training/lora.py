"""LoRA through peft: adapters put on the model at the model step, merged away before the save.

`apply_lora` wraps the freshly loaded classifier in a peft `PeftModel`: low-rank adapters on the
encoder's linear layers (ModernBERT: ``Wqkv``, ``Wo``, ``Wi``; BERT-style: ``query``, ``key``,
``value``, ``dense``; or ``"all-linear"``), and the head (the classifier and the pooling head:
ModernBERT's ``head``, BERT's ``pooler``) trained in full through ``modules_to_save``: a head
left out would be the random one on reload (sentence-transformers #3980).

Checkpoints hold the adapter (the Trainer saves and resumes peft models itself). `finish_lora`
runs once training is over: it writes the unmerged adapter when asked (``save_adapter=True``,
``<output_dir>/adapter``) and merges the adapters into the weights (`merge_and_unload`), so the
final metrics are scored on the merged model and the saved folder is a plain transformers model:
prediction, ONNX, pipeline, CrossEncoder and serve read it unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, hint
from ..options import TrainOptions

if TYPE_CHECKING:
    import torch

    from .run import PreparedRun

__all__ = [
    "ALL_LINEAR",
    "DEFAULT_TARGETS",
    "ADAPTER_SUBDIR",
    "apply_lora",
    "finish_lora",
    "check_resume",
    "head_modules",
    "resolve_targets",
]

logger = logging.getLogger(__name__)

ALL_LINEAR = "all-linear"
ADAPTER_SUBDIR = "adapter"  # <output_dir>/adapter with save_adapter=True
# by config.model_type; peft has no ModernBERT default, and its BERT one (query, value) leaves
# the feed-forward layers out. Any other architecture: every linear layer outside the head.
DEFAULT_TARGETS: dict[str, list[str]] = {
    "modernbert": ["Wqkv", "Wo", "Wi"],
    "bert": ["query", "key", "value", "dense"],
    "roberta": ["query", "key", "value", "dense"],
    "xlm-roberta": ["query", "key", "value", "dense"],
    "electra": ["query", "key", "value", "dense"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
    "deberta-v2": ["query_proj", "key_proj", "value_proj", "dense"],
}


def _adaptable(module: Any) -> bool:
    """A layer peft's LoRA can adapt (linear, embedding, convolution)."""
    import torch
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, torch.nn.Linear | torch.nn.Embedding | torch.nn.Conv1d | Conv1D)


def head_modules(model: torch.nn.Module) -> list[str]:
    """The classification and pooling head, trained in full: the model's parts outside the
    encoder that hold weights (ModernBERT: head, classifier; DistilBERT: pre_classifier,
    classifier), and the encoder's pooler when it has one (BERT)."""
    prefix = getattr(model, "base_model_prefix", "")
    heads = [
        name
        for name, child in model.named_children()
        if name != prefix and any(True for _ in child.parameters())
    ]
    encoder = getattr(model, prefix, None) if prefix else None
    pooler = getattr(encoder, "pooler", None) if encoder is not None else None
    if pooler is not None and any(True for _ in pooler.parameters()):
        heads.append(f"{prefix}.pooler")
    return heads


def _in_heads(name: str, heads: list[str]) -> bool:
    return any(name == h or name.startswith(h + ".") for h in heads)


def _matches(name: str, target: str) -> bool:
    """peft's rule for a list of names: the whole dotted path, or its end after a dot."""
    return name == target or name.endswith("." + target)


def resolve_targets(model: torch.nn.Module, requested: list[str] | str | None) -> tuple[list[str], list[str]]:
    """(the target names, the adapted modules' full names), or a ConfigError naming a target
    that matches no adaptable layer outside the head, with the layer names that exist."""
    heads = head_modules(model)
    layers = {name: m for name, m in model.named_modules() if name and _adaptable(m)}
    encoder = [name for name in layers if not _in_heads(name, heads)]
    if isinstance(requested, str):
        requested = [requested]
    if requested is None:
        model_type = getattr(getattr(model, "config", None), "model_type", "")
        requested = DEFAULT_TARGETS.get(model_type, [ALL_LINEAR])
    if ALL_LINEAR in requested:
        if len(requested) > 1:
            raise ConfigError(
                f"lora_target_modules={requested!r} mixes {ALL_LINEAR!r} with names; pass "
                f"either lora_target_modules={ALL_LINEAR!r} or a list of names."
            )
        linear = [n for n in encoder if isinstance(layers[n], _linear_types())]
        return [ALL_LINEAR], _nonempty(linear, ALL_LINEAR, model, layers, heads)
    adapted: list[str] = []
    for target in requested:
        found = [n for n in encoder if _matches(n, target)]
        _nonempty(found, target, model, layers, heads)
        adapted += [n for n in found if n not in adapted]
    return list(requested), adapted


def _linear_types() -> tuple[type, ...]:
    import torch
    from transformers.pytorch_utils import Conv1D

    return (torch.nn.Linear, Conv1D)


def _nonempty(
    found: list[str], target: str, model: Any, layers: dict[str, Any], heads: list[str]
) -> list[str]:
    if found:
        return found
    names = sorted({n.rsplit(".", 1)[-1] for n in layers if not _in_heads(n, heads)})
    in_head = [n for n in layers if _in_heads(n, heads) and _matches(n, target)]
    why = (
        f"matches only {', '.join(in_head)}, in the head, which is trained in full"
        if in_head
        else "matches no layer"
    )
    example = DEFAULT_TARGETS.get(getattr(model.config, "model_type", ""), names[:3])
    how = hint(
        f"lora_target_modules={example!r}, or {ALL_LINEAR!r}, or None for the default",
        f"--lora-target-modules {' '.join(example)}, or {ALL_LINEAR}, or leave the flag out for the default",
    )
    raise ConfigError(
        f"lora_target_modules names {target!r}, which {why} of {type(model).__name__}. Its "
        f"layers that take adapters are named: {', '.join(names)}. Pass some of these, e.g. "
        f"{how}. Nothing was written."
    )


def apply_lora(model: Any, opts: TrainOptions) -> Any:
    """`model` with LoRA adapters and its head trainable (a peft model); `model` itself
    without lora=True."""
    if not opts.lora:
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    targets, adapted = resolve_targets(model, opts.lora_target_modules)
    heads = head_modules(model)
    total = sum(p.numel() for p in model.parameters())
    # a target name may also end a head layer's path (BERT's pooler.dense): keep those out
    excluded = [n for n, m in model.named_modules() if _in_heads(n, heads) and _adaptable(m)]
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=opts.lora_r,
        lora_alpha=opts.lora_alpha,
        lora_dropout=opts.lora_dropout,
        target_modules=targets[0] if targets == [ALL_LINEAR] else targets,
        exclude_modules=excluded or None,
        modules_to_save=list(heads),  # peft adds its own names to the list it is given
    )
    with warnings.catch_warnings():  # peft asks transformers a deprecated question; not ours
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        wrapped = get_peft_model(model, config)
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    logger.info(
        "LoRA: rank %d, alpha %g, dropout %g on %d layers (%s); head trained in full (%s); "
        "%s of %s parameters trainable (%.2f%%)",
        opts.lora_r,
        opts.lora_alpha,
        opts.lora_dropout,
        len(adapted),
        ", ".join(targets),
        ", ".join(heads),
        f"{trainable:,}",
        f"{total:,}",
        100 * trainable / total,
    )
    return wrapped


def finish_lora(run: PreparedRun) -> dict[str, Any] | None:
    """After training: write the adapter (save_adapter=True), merge it into the weights, and
    return what the manifest records; None without LoRA."""
    if not run.options.lora:  # peft is an extra: never imported by a run without LoRA
        return None
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer

    from ..artifacts.saving import swap_into_place
    from ..versions import package_versions

    trainer, opts = run.trainer, run.options
    model = trainer.model
    if not opts.lora or not isinstance(model, PeftModel):
        return None
    # what was trained: the adapters and the head's copies (by name: loading the best
    # checkpoint may have set requires_grad off)
    trainable = sum(
        p.numel() for n, p in model.named_parameters() if "lora_" in n or ".modules_to_save." in n
    )
    adapted = sum(1 for m in model.modules() if isinstance(m, LoraLayer))
    targets = getattr(model.peft_config["default"], "target_modules", None)
    if opts.save_adapter and trainer.is_world_process_zero():
        target = run.output_dir / ADAPTER_SUBDIR
        staged = target.with_name(f".{ADAPTER_SUBDIR}.partial")
        if staged.exists():
            shutil.rmtree(staged)
        model.save_pretrained(os.fspath(staged), safe_serialization=True)
        swap_into_place(staged, target)
        logger.info("Saved the LoRA adapter (with the head) to %s", target)
    merged = model.merge_and_unload()
    trainer.model = trainer.model_wrapped = merged
    logger.info("Merged the LoRA adapters into the weights: the model saves as a plain model")
    total = sum(p.numel() for p in merged.parameters())
    return {
        "r": opts.lora_r,
        "alpha": opts.lora_alpha,
        "dropout": opts.lora_dropout,
        "target_modules": sorted(targets) if isinstance(targets, set | list) else targets,
        "adapted_modules": adapted,
        "modules_to_save": head_modules(merged),
        "trainable_parameters": trainable,
        "total_parameters": total,
        "trainable_percent": round(100 * trainable / total, 4),
        "merged": True,
        "adapter_saved": bool(opts.save_adapter),
        "peft_version": package_versions(("peft",)).get("peft"),
    }


def check_resume(checkpoint: str | None, opts: TrainOptions) -> str | None:
    """A checkpoint trained with LoRA resumes only with lora=True and the same rank, and a
    full fine-tuning one only without: a clear error before anything loads."""
    if checkpoint is None:
        return None
    config_file = Path(checkpoint) / "adapter_config.json"
    if not config_file.is_file():
        if opts.lora:
            raise ConfigError(
                f"resume: checkpoint {checkpoint!r} is from full fine-tuning (it has no "
                "adapter_config.json), and this run has lora=True. Resume without lora=True, "
                "or start a LoRA run in another output_dir (or overwrite=True)."
            )
        return checkpoint
    if not opts.lora:
        raise ConfigError(
            f"resume: checkpoint {checkpoint!r} holds LoRA adapters; pass lora=True (with the "
            "same lora_r, lora_alpha and lora_target_modules) to resume it."
        )
    saved = json.loads(config_file.read_text(encoding="utf-8"))
    if saved.get("r") != opts.lora_r:
        raise ConfigError(
            f"resume: checkpoint {checkpoint!r} has adapters of rank {saved.get('r')}, and this "
            f"run asks for lora_r={opts.lora_r}; pass lora_r={saved.get('r')} to resume it."
        )
    return checkpoint
