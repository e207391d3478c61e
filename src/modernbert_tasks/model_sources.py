"""Loading a model, for training or for prediction: one set of checks and one policy.

- **Where from:** a local folder (a run folder is taken to mean its `model/`), or a Hub id,
  checked for reachability first (`hub.py`).
- **Pickle:** safetensors only. Pickle weights (`pytorch_model.bin`) can run code when read,
  so they load only with `allow_pickle=True`, in training as in prediction.
- **Remote code:** never run unless `trust_remote_code=True`.
- **Device:** `hardware.best_device()`: CUDA, then Apple MPS, then the CPU.
- **Precision:** weights load in fp32; speed comes from autocast (training) or the
  predictor's precision choice, never from casting the weights.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, ModelLoadError, hint
from .model_files import check_local_folder, one_line

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

__all__ = [
    "ModelSource",
    "resolve_source",
    "resolve_device",
    "position_limit",
    "public_name",
    "load_config",
    "load_tokenizer",
    "load_for_training",
    "load_for_prediction",
    "looks_like_path",
    "MODEL_SUBDIR",
]

logger = logging.getLogger(__name__)

MODEL_SUBDIR = "model"  # where fine_tune saves the final model inside output_dir
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def looks_like_path(name: str) -> bool:
    """Hub ids are 'name' or 'org/name' and never start with '.' or '~'."""
    return (
        os.path.isabs(name)
        or name.startswith((".", "~"))
        or name.count("/") > 1
        or "\\" in name
        or not _HUB_ID.match(name)
    )


def public_name(source: str) -> str:
    """How a model card and a manifest name a model source without leaking a local path: a hub
    id as it is; a folder inside a Hugging Face cache (models--org--name/snapshots/...) by its
    hub id; any other folder by its name only."""
    if not Path(source).exists() and not looks_like_path(source):
        return source
    for part in reversed(Path(source).resolve().parts):
        if part.startswith("models--") and part.count("--") >= 2:
            return part.removeprefix("models--").replace("--", "/", 1)
    return Path(source).resolve().name


# --- where the model comes from -----------------------------------------------------------
def resolve_source(
    path: str | os.PathLike,
    *,
    allow_pickle: bool = False,
    for_training: bool = False,
    cache_dir: str | None = None,
) -> str:
    """A checked local folder, or a Hub id (the hub reachable, or the id in the cache)."""
    from .hub import HubSource, require_hub

    if not isinstance(path, str | os.PathLike):
        raise ConfigError(
            f"{'model_name' if for_training else 'path'} must be a folder path or "
            f"a Hub id string, got {type(path).__name__} {path!r}."
        )
    text = os.fspath(path)
    local = Path(text).expanduser()
    if (
        local.is_dir()
        and not (local / "config.json").exists()
        and (local / MODEL_SUBDIR / "config.json").is_file()
    ):
        # a run folder (the output_dir users chose): its final model is in model/
        logger.warning("%s is a run folder; using its model, %s.", local, local / MODEL_SUBDIR)
        local = local / MODEL_SUBDIR
    if local.exists():
        check_local_folder(local, allow_pickle=allow_pickle, for_training=for_training)
        return str(local)
    if looks_like_path(text):
        if for_training:
            from .options import DEFAULT_MODEL

            raise ModelLoadError(
                f"Model folder {text!r} does not exist. Check the path (relative paths start "
                f"from {os.getcwd()!r}), or pass a Hugging Face Hub id such as "
                f"{DEFAULT_MODEL!r}."
            )
        raise ModelLoadError(
            f"Model folder {text!r} does not exist. Pass the folder fine_tune "
            "saved the model to (FineTuneResult.model_path), e.g. "
            "'runs/sst2/model'."
        )
    if not for_training:  # fine_tune checks the model and the data in one go (engine)
        require_hub(
            [
                HubSource(
                    "model",
                    text,
                    cache_dir=cache_dir,
                    local_hint=("pass the folder fine_tune saved the model to, e.g. 'runs/sst2/model'"),
                )
            ]
        )
    return text


# --- device --------------------------------------------------------------------------------
def position_limit(config: Any, tokenizer: Any = None) -> int | None:
    """The most tokens the model reads in one pass: its position embeddings (ModernBERT 8,192,
    BERT 512), lowered to the tokenizer's model_max_length when that is a real value (RoBERTa's
    positions include 2 offsets; its tokenizer says 512)."""
    limits = [getattr(config, "max_position_embeddings", None)]
    if tokenizer is not None:
        limits.append(getattr(tokenizer, "model_max_length", None))
    real = [int(n) for n in limits if isinstance(n, int) and 0 < n < 1_000_000]
    return min(real) if real else None


def resolve_device(device: Any = None) -> torch.device:
    """`device` checked, or the best available one (CUDA, then MPS, then the CPU)."""
    import torch

    from .hardware import best_device

    if device is None:
        return torch.device(best_device())
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"device={device!r} is not a device ({exc}); expected 'cpu', 'cuda', "
            "'cuda:1', 'mps', an index or None for automatic."
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={device!r} asks for a GPU but CUDA is not available here. Use "
            "device='cpu' or leave device=None."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"device={device!r} asks for Apple's MPS, which is not available "
            "here. Use device='cpu' or leave device=None."
        )
    return resolved


# --- loading ---------------------------------------------------------------------------------
def load_error(what: str, source: str, exc: Exception) -> ModelLoadError:
    from huggingface_hub import constants

    local = Path(source).expanduser().exists()
    folder = "pass a local model folder: " + hint(
        "model_name='path/to/modernbert'", "--model path/to/modernbert"
    )
    if local and "trust_remote_code" in str(exc):
        fix = (
            "The folder ships its own model code, which is not run by default. Pass "
            "trust_remote_code=True only if you trust that code."
        )
    elif local:
        fix = "Check that the folder is complete (save_pretrained writes all the files)."
    elif constants.HF_HUB_OFFLINE:
        fix = (
            f"HF_HUB_OFFLINE=1 is set and {source!r} is not in the cache, so it cannot "
            f"be downloaded: {folder}, or download it once with network access."
        )
    elif "is not a valid model identifier" in str(exc):
        fix = f"Check the model id's spelling on huggingface.co, or {folder}."
    else:
        fix = f"Without network access, download it once where you have network, or {folder}."
    return ModelLoadError(f"Could not load the {what} of {source!r}: {type(exc).__name__}: {exc} {fix}")


def load_config(source: str, hub_kwargs: dict[str, Any], **overrides: Any) -> PretrainedConfig:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, **overrides, **hub_kwargs)
    except (OSError, ValueError) as exc:
        raise load_error("config", source, exc) from exc


def load_tokenizer(source: str, hub_kwargs: dict[str, Any]) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **hub_kwargs)
    except (OSError, ValueError) as exc:
        raise load_error("tokenizer", source, exc) from exc
    _check_padding(tokenizer, source)
    return tokenizer


def _check_padding(tokenizer: PreTrainedTokenizerBase, source: str) -> None:
    if tokenizer.pad_token is None:
        raise ModelLoadError(
            f"The tokenizer of {source!r} has no padding token, so texts of different lengths "
            "cannot be batched. Set one and save it with the model, e.g. tokenizer.pad_token = "
            "tokenizer.eos_token; tokenizer.save_pretrained(folder)."
        )


def load_for_training(
    source: str,
    config: PretrainedConfig,
    attention: str,
    *,
    attention_requested: bool,
    allow_pickle: bool,
    hub_kwargs: dict[str, Any],
):
    """The pretrained encoder with the task's (new) head, fp32, with `attention` if usable."""
    import torch
    from transformers import AutoModelForSequenceClassification

    def load(**extra: Any):
        return AutoModelForSequenceClassification.from_pretrained(
            source,
            config=config,
            dtype=torch.float32,  # master weights; autocast for speed
            ignore_mismatched_sizes=True,  # a checkpoint with another head gets a new one
            use_safetensors=None if allow_pickle else True,
            **extra,
            **hub_kwargs,
        )

    try:
        try:
            model = load(attn_implementation=attention)
        except (ValueError, ImportError) as exc:
            if attention_requested:
                raise ConfigError(
                    f"attention={attention!r} is not usable with {source!r}: {exc} Use attention='auto'."
                ) from exc
            logger.warning(
                "Attention %r is not available for %s (%s); using the model's default.",
                attention,
                source,
                exc,
            )
            model = load()
    except OSError as exc:
        raise load_error("weights", source, exc) from exc
    logger.info(
        "Loaded %s (%s, %.1fM parameters, attention %s)",
        source,
        type(model).__name__,
        model.num_parameters() / 1e6,
        model.config._attn_implementation,
    )
    return model


def load_for_prediction(source: str, *, allow_pickle: bool, trust_remote_code: bool):
    """(model, tokenizer) of a fine-tuned folder or Hub id, fp32, in eval mode."""
    from transformers import AutoModelForSequenceClassification

    hub_kwargs = {"trust_remote_code": trust_remote_code}
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            source,
            use_safetensors=None if allow_pickle else True,
            output_loading_info=True,
            dtype="float32",
            **hub_kwargs,
        )
    except Exception as exc:
        if not Path(source).is_dir():
            raise hub_error(source, exc) from None
        fix = (
            " The folder ships its own model code; pass trust_remote_code=True only if you trust it."
            if "trust_remote_code" in str(exc)
            else ""
        )
        raise ModelLoadError(f"Could not load the model in {source!r}: {one_line(exc)}.{fix}") from None
    untrained = [k for k in info.get("missing_keys", []) if k]
    if untrained:
        raise ModelLoadError(
            f"The weights in {source!r} lack {len(untrained)} parameter(s) of a classification "
            f"model (e.g. {sorted(untrained)[:3]}), so predictions would be random. Is this a "
            "base model rather than a fine-tuned one? Fine-tune it first with fine_tune()."
        )
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **hub_kwargs)
    except Exception as exc:
        raise ModelLoadError(
            f"Could not load the tokenizer of {source!r}: {one_line(exc)}. A model "
            "folder must also hold the tokenizer files (tokenizer.json, tokenizer_config.json); "
            "save them with tokenizer.save_pretrained(folder)."
        ) from None
    _check_padding(tokenizer, source)
    return model.eval(), tokenizer


def hub_error(source: str, exc: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"{source!r} is not a local folder (nothing exists at that path) and could not be "
        "loaded from the Hugging Face Hub "
        f"({one_line(exc)}). Without network access, pass the local folder of a saved model "
        "(e.g. the model_path fine_tune returned)."
    )


# --- one resolved source for a training run ---------------------------------------------------
@dataclass
class ModelSource:
    """A training run's model, resolved once: the folder (or hub id), the config with the
    task's labels, and the tokenizer; `load_model` loads the weights with the same settings."""

    path: str
    config: PretrainedConfig
    tokenizer: PreTrainedTokenizerBase
    hub_kwargs: dict[str, Any]
    allow_pickle: bool

    @classmethod
    def for_training(
        cls, name: str, labels: dict[str, Any], *, allow_pickle: bool, hub_kwargs: dict[str, Any]
    ) -> ModelSource:
        """`labels`: num_labels, id2label, label2id and problem_type for the new head."""
        path = resolve_source(
            name, allow_pickle=allow_pickle, for_training=True, cache_dir=hub_kwargs.get("cache_dir")
        )
        config = load_config(path, hub_kwargs, **labels)
        return cls(
            path=path,
            config=config,
            tokenizer=load_tokenizer(path, hub_kwargs),
            hub_kwargs=hub_kwargs,
            allow_pickle=allow_pickle,
        )

    def load_model(self, attention: str, *, attention_requested: bool):
        """A fresh copy of the pretrained encoder with the task's new head."""
        return load_for_training(
            self.path,
            self.config,
            attention,
            attention_requested=attention_requested,
            allow_pickle=self.allow_pickle,
            hub_kwargs=self.hub_kwargs,
        )
