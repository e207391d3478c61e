"""Is the Hugging Face Hub reachable? Asked once, before anything is downloaded.

Without network, transformers and datasets each spend about half a minute in retries before
failing, one after the other. A socket probe answers in milliseconds (at most PROBE_TIMEOUT),
so a run that needs the hub fails at once and names every source it could not get, each with
its local-file alternative. Sources already in the cache are used offline instead.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from urllib.parse import urlparse

from .errors import DataError, ModelLoadError

__all__ = ["HubSource", "hub_reachable", "probe", "require_hub", "HubUnreachableError"]

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 3.0  # seconds; a firewall that drops packets costs this much, once
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


class HubUnreachableError(ModelLoadError, DataError):
    """The Hub cannot be reached and a model or dataset the run needs is not in the cache
    (both a ModelLoadError and a DataError, so either `except` catches it)."""


@dataclass(frozen=True)
class HubSource:
    """One thing the run would download: what it is, its hub id, how to use a local copy."""

    what: str  # "model" or "dataset"
    hub_id: str
    config: str | None = None  # a dataset's config name
    local_hint: str = ""
    cache_dir: str | None = None

    def cached(self) -> bool:
        """True when a copy is in the local cache, so offline loading will find it."""
        if self.what == "model":
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(self.hub_id, "config.json", cache_dir=self.cache_dir)
            return isinstance(found, str)
        import datasets

        try:  # offline, so this reads the cache only
            datasets.load_dataset_builder(self.hub_id, self.config, cache_dir=self.cache_dir)
        except Exception:  # noqa: BLE001 - any failure means "not usable offline"
            return False
        return True


def hub_reachable() -> tuple[bool, str]:
    """(reachable, why) for the configured endpoint (HF_ENDPOINT)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False, "HF_HUB_OFFLINE=1 is set"
    return probe(constants.ENDPOINT)


@functools.lru_cache(maxsize=8)
def _probe(endpoint: str) -> tuple[bool, str]:
    """One TCP connection per endpoint and process: enough to tell "no network" apart. In a
    thread, because a DNS lookup ignores socket time-outs."""
    url = urlparse(endpoint)
    if not url.hostname:
        return False, f"{endpoint!r} is not a URL (expected e.g. https://huggingface.co)"
    port = url.port or (443 if url.scheme == "https" else 80)
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(
            lambda: socket.create_connection((url.hostname, port), timeout=PROBE_TIMEOUT).close()
        ).result(timeout=PROBE_TIMEOUT)
    except (OSError, FutureTimeout) as exc:
        reason = "timed out" if isinstance(exc, FutureTimeout) else str(exc)
        return False, f"{url.scheme}://{url.netloc} is unreachable ({reason})"
    finally:
        pool.shutdown(wait=False)
    return True, f"{url.netloc} answered"


def probe(endpoint: str) -> tuple[bool, str]:
    """(reachable, why) for one endpoint, ignoring HF_HUB_OFFLINE; a proxy is trusted."""
    if any(os.environ.get(v) for v in _PROXY_VARS):
        return True, "a proxy is configured; not probed"
    return _probe(endpoint)


def _set_offline(value: bool) -> tuple[bool, bool]:
    """Set transformers' and datasets' offline mode (read the cache only, never retry the
    network); returns the previous values."""
    import datasets
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = value
    return before


@contextlib.contextmanager
def _offline():
    before = _set_offline(True)
    try:
        yield
    finally:
        import datasets
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = before


def require_hub(sources: list[HubSource]) -> None:
    """Before loading: when some sources need the hub and it is unreachable, use the cached
    ones offline, and raise one error naming every source that is not cached."""
    if not sources:
        return
    reachable, why = hub_reachable()
    if reachable:
        return
    with _offline():
        missing = [s for s in sources if not s.cached()]
    if not missing:
        _set_offline(True)  # what HF_HUB_OFFLINE=1 would do, for the rest of this process
        logger.warning(
            "The Hugging Face Hub cannot be used (%s): using the cached %s.",
            why,
            ", ".join(f"{s.what} {s.hub_id!r}" for s in sources),
        )
        return
    lines = [
        f"- {s.what} {s.hub_id!r}" + (f" (config {s.config!r})" if s.config else "") + f": {s.local_hint}"
        for s in missing
    ]
    raise HubUnreachableError(
        f"The Hugging Face Hub cannot be used ({why}), and this run needs "
        f"{len(missing)} download(s) that are not in the cache:\n"
        + "\n".join(lines)
        + "\nUse local copies as shown, or run once with network access to fill the cache."
    )
