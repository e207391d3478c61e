"""Publishing a saved model folder to the Hugging Face Hub, model card included.

`push_to_hub(model_path, repo_id)` is `huggingface_hub.HfApi().upload_folder` with the checks
that make it safe and quick to fail: the folder must be a complete model folder (weights in
safetensors, config, manifest); pickle files and hidden staging folders are never uploaded; a
missing card is generated from the manifest first; offline, it fails within seconds with a
clear message instead of retrying for half a minute. `dry_run=True` lists exactly the files
`upload_folder` would send (the same filter) and touches no network.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import ConfigError, ModelLoadError, ModernBertTasksError

__all__ = ["push_to_hub", "check_push", "PushPlan", "PublishError", "IGNORE_PATTERNS"]

# Never uploaded: pickles (save only safetensors), hidden files and staging folders
# (.model.partial, .onnx.partial), editor and OS leftovers.
IGNORE_PATTERNS = [
    "*.bin",
    "*.pt",
    "*.pth",
    "*.pkl",
    "*.pickle",
    "*.ckpt",
    ".*",
    "**/.*",
    "**/.*/**",
    "__pycache__/**",
    "**/__pycache__/**",
]
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.\-]{0,95}/)?[A-Za-z0-9][\w.\-]{0,95}$")


class PublishError(ModernBertTasksError):
    """Publishing failed: no network, no token, or the Hub refused the upload."""


@dataclass
class PushPlan:
    """What is (or would be) uploaded: files relative to the folder, with sizes in bytes."""

    folder: Path
    repo_id: str
    files: list[tuple[str, int]]
    card_generated: bool
    private: bool
    url: str | None = None  # the commit URL after a real push

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)

    def summary(self, dry_run: bool) -> str:
        head = "Dry run: would upload" if dry_run else "Uploaded"
        lines = [
            f"{head} {len(self.files)} files ({_size(self.total_bytes)}) from "
            f"{self.folder} to {'private ' if self.private else ''}model repo "
            f"{self.repo_id}:"
        ]
        width = max((len(name) for name, _ in self.files), default=0)
        lines += [f"  {name:<{width}}  {_size(size):>9}" for name, size in self.files]
        if self.card_generated:
            lines.append(
                "  (README.md is generated from the manifest"
                f"{' at upload' if dry_run else ''}: the folder had no model card)"
            )
        if self.url:
            lines.append(f"Commit: {self.url}")
        return "\n".join(lines)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def check_push(repo_id: str, *, private: bool = False, token: str | None = None) -> dict[str, Any]:
    """Before training with push_to_hub=True: the repo id, a token and the Hub, all checked;
    returns push_to_hub's keyword arguments."""
    import huggingface_hub
    from huggingface_hub import constants

    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id):
        raise ConfigError(
            f"hub_model_id={repo_id!r} is not a Hub repo id; expected 'user/name' "
            "or 'org/name' (letters, digits, '-', '_', '.')."
        )
    if constants.HF_HUB_OFFLINE:
        raise PublishError(
            "push_to_hub=True, but HF_HUB_OFFLINE is set, so the model could not "
            "be uploaded after training. Unset it, or drop push_to_hub and push "
            "the saved folder later with `modernbert-tasks push`."
        )
    if not (token or huggingface_hub.get_token()):
        raise PublishError(
            "push_to_hub=True, but there is no Hugging Face token: log in with "
            "`hf auth login` or set HF_TOKEN before training (it needs write "
            f"access to {repo_id.split('/')[0]!r})."
        )
    _check_reachable(constants.ENDPOINT)
    return {"repo_id": repo_id, "private": private, "token": token}


def push_to_hub(
    model_path: str | os.PathLike,
    repo_id: str,
    *,
    dry_run: bool = False,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    endpoint: str | None = None,
) -> PushPlan:
    """Upload a saved model folder (weights, config, tokenizer, manifest, card, onnx/) to a
    Hub model repo, creating the repo if needed.

    Args:
        model_path: the folder fine_tune saved (FineTuneResult.model_path).
        repo_id: 'user/name' or 'org/name'.
        dry_run: only list what would be uploaded; no network, no token needed.
        private: create the repo as private (an existing repo keeps its visibility).
        token: a Hub token; default: HF_TOKEN or the one saved by `hf auth login`.
        endpoint: another Hub endpoint; default: huggingface_hub's (HF_ENDPOINT).
    """
    folder = _check_folder(model_path)
    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id):
        raise ConfigError(
            f"repo_id={repo_id!r} is not a Hub repo id; expected 'user/name' or "
            "'org/name' (letters, digits, '-', '_', '.')."
        )
    card_missing = not (folder / "README.md").is_file()
    plan = PushPlan(
        folder=folder,
        repo_id=repo_id,
        files=_planned_files(folder, card_missing),
        card_generated=card_missing,
        private=bool(private),
    )
    if dry_run:
        return plan
    import huggingface_hub
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise PublishError(
            "HF_HUB_OFFLINE is set, so nothing can be uploaded. Unset it (and "
            "connect to the network) to push, or use dry_run=True (CLI: "
            "--dry-run) to see what would be uploaded."
        )
    token = token or huggingface_hub.get_token()
    if not token:
        raise PublishError(
            "No Hugging Face token: log in with `hf auth login`, set HF_TOKEN, "
            "or pass token=... (it needs write access to "
            f"{repo_id.split('/')[0]!r})."
        )
    endpoint = endpoint or constants.ENDPOINT
    _check_reachable(endpoint)
    if card_missing:
        from .manifest import read_manifest
        from .model_card import write_model_card

        manifest = read_manifest(folder)
        assert manifest is not None  # _planned_files refused a folder without one
        write_model_card(folder, manifest)
    api = huggingface_hub.HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.create_commit(
            repo_id=repo_id,
            repo_type="model",
            operations=_upload_operations(folder, plan.files),
            commit_message=commit_message or "Upload model from modernbert-tasks",
        )
    except Exception as exc:
        raise PublishError(
            f"Uploading {folder} to {repo_id!r} failed: {type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:400]}. Check that the token can write "
            "to that namespace and that the network is up."
        ) from None
    plan.url = getattr(info, "commit_url", None) or str(info)
    return plan


def _check_folder(model_path: Any) -> Path:
    if not isinstance(model_path, str | os.PathLike):
        raise ConfigError(f"model_path={model_path!r}; expected the path of a saved model folder.")
    folder = Path(model_path).expanduser()
    if not folder.is_dir():
        raise ModelLoadError(
            f"Model folder {str(folder)!r} does not exist. Pass the folder "
            "fine_tune saved the model to (FineTuneResult.model_path)."
        )
    from .manifest import MANIFEST_NAME, read_manifest
    from .saving import SAFE_WEIGHTS

    missing = [n for n in ("config.json", MANIFEST_NAME) if not (folder / n).is_file()]
    if not any((folder / n).is_file() for n in SAFE_WEIGHTS):
        missing.append("model.safetensors")
    if missing:
        raise ModelLoadError(
            f"{str(folder)!r} is not a complete saved model: it lacks "
            f"{', '.join(missing)}. Push the folder fine_tune wrote (it has the "
            "weights, config, tokenizer, manifest and model card)."
        )
    read_manifest(folder)  # a damaged manifest fails here, before anything is uploaded
    return folder


def _planned_files(folder: Path, card_missing: bool) -> list[tuple[str, int]]:
    """The files upload_folder sends: the same listing and the same pattern filter."""
    from huggingface_hub.utils import filter_repo_objects
    from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

    found = {
        p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.glob("**/*")) if p.is_file()
    }
    kept = filter_repo_objects(found, ignore_patterns=IGNORE_PATTERNS + DEFAULT_IGNORE_PATTERNS)
    files = [(name, found[name]) for name in kept]
    if card_missing:
        from .manifest import read_manifest
        from .model_card import render_model_card

        manifest = read_manifest(folder)
        assert manifest is not None  # checked to exist above
        size = len(render_model_card(manifest).encode("utf-8"))
        files = sorted(files + [("README.md", size)])
    return files


def _upload_operations(folder: Path, files: list[tuple[str, int]]) -> list[Any]:
    """One upload per planned file; the manifest goes up with its local paths reduced to names
    (the copy on disk keeps them: export's parity check reads the data files they name)."""
    import json

    from huggingface_hub import CommitOperationAdd

    from .manifest import MANIFEST_NAME, read_manifest, shareable_manifest

    operations = []
    for name, _ in files:
        content: Any = str(folder / name)
        if name == MANIFEST_NAME:
            manifest = read_manifest(folder)
            assert manifest is not None  # name is the manifest file, so it exists
            shared = shareable_manifest(manifest)
            content = (json.dumps(shared, indent=2) + "\n").encode("utf-8")
        operations.append(CommitOperationAdd(path_in_repo=name, path_or_fileobj=content))
    return operations


def _check_reachable(endpoint: str) -> None:
    """Fail in seconds when the Hub cannot be reached, rather than after upload retries."""
    from ..hub import probe

    if not urlparse(endpoint).hostname:
        raise ConfigError(f"Hub endpoint {endpoint!r} is not a URL; expected e.g. https://huggingface.co.")
    reachable, why = probe(endpoint)
    if not reachable:
        raise PublishError(
            f"Cannot reach the Hugging Face Hub ({why}), so nothing was uploaded. Connect to "
            "the network (or set HF_ENDPOINT to a reachable Hub mirror) and run the push "
            "again; dry_run=True (CLI: --dry-run) shows what would be uploaded without a "
            "network."
        )
