"""Installed versions, read from package metadata: no package is imported (no torch)."""

from __future__ import annotations

from importlib import metadata

__all__ = ["package_versions"]


def package_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    """{distribution: its installed version, or None when it is not installed}."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
