"""oneDNN's primitive cache, off for a model served in fp32 (serving/memory.py): the setting,
a user's own value, and that oneDNN really stops caching when it is set after importing torch,
as `serve` sets it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from modernbert_tasks.serving.memory import PRIMITIVE_CACHE_ENV, bound_primitive_cache


def test_fp32_turns_the_cache_off_unless_the_environment_sets_it(monkeypatch):
    monkeypatch.delenv(PRIMITIVE_CACHE_ENV, raising=False)
    assert bound_primitive_cache("mixed") is None  # bf16 matmuls: the cache stays on
    assert PRIMITIVE_CACHE_ENV not in os.environ
    assert bound_primitive_cache("fp32") == "0"
    assert os.environ[PRIMITIVE_CACHE_ENV] == "0"

    monkeypatch.setenv(PRIMITIVE_CACHE_ENV, "512")  # a user's value wins
    assert bound_primitive_cache("fp32") == "512"
    assert bound_primitive_cache("mixed") == "512"
    assert os.environ[PRIMITIVE_CACHE_ENV] == "512"


_PROBE = textwrap.dedent(
    """
    import sys
    import torch
    from modernbert_tasks.serving.memory import bound_primitive_cache
    if sys.argv[1] == "serve":
        bound_primitive_cache("fp32")  # as serve does: torch imported, no pass run yet
    x = torch.randn(3, 7, 64)
    for _ in range(3):
        torch.nn.functional.gelu(x)  # one shape, three times
    """
)


def _creations(mode: str) -> list[str]:
    """oneDNN's verbose 'create:cache_*' words for three GELUs of one shape in a new process."""
    env = {k: v for k, v in os.environ.items() if k != PRIMITIVE_CACHE_ENV}
    env["ONEDNN_VERBOSE"] = "all"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    lines = (done.stdout + done.stderr).splitlines()
    return [f.split(",")[3] for f in lines if f.startswith("onednn_verbose") and ",create:cache_" in f]


def test_onednn_stops_caching_when_serve_sets_it():
    import torch

    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch has no oneDNN: nothing is cached")
    plain = _creations("plain")
    if not plain:
        pytest.skip("GELU does not run through oneDNN on this CPU or torch build")
    assert plain == ["create:cache_miss", "create:cache_hit", "create:cache_hit"]
    assert _creations("serve") == ["create:cache_miss"] * 3
