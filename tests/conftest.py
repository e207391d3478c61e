"""Shared fixtures: a tiny random-init ModernBERT built once per session, and learnable data.

The tiny model uses the real ModernBERT tokenizer from ../shared when present, and otherwise
a small BPE tokenizer trained here, so the suite also runs from an outside clone.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

import pytest

from modernbert_tasks.testing import build_tiny_modernbert

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MODERNBERT_TASKS_SHARED", ROOT.parent / "shared"))
SST2_DIR = SHARED / "data" / "sst2"
TOKENIZER_DIR = SHARED / "models" / "modernbert-base"


MAX_WORKERS = 4  # each worker trains the session fixtures once; more workers repeat that work


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` (pyproject's addopts): one worker per usable core, at most MAX_WORKERS. Each
    worker runs torch on one thread (one_torch_thread below), so two workers use a 2-core
    machine that one process left half idle."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def _installed_packages(path: list[str] | None = None) -> dict[str, str]:
    """{distribution name: version} as importlib.metadata sees it (sys.path by default)."""
    dists = metadata.distributions() if path is None else metadata.distributions(path=path)
    return {(d.metadata["Name"] or "?").lower(): d.version for d in dists}


@pytest.fixture(scope="session")
def installed_packages():
    return _installed_packages


@pytest.fixture(autouse=True, scope="session")
def environment_untouched():
    """Testing must never change the user's environment (installs, upgrades, removals).
    Both looks use the session's starting sys.path: an import that appends to sys.path (e.g.
    setuptools' vendored packages) is not an install."""
    path = list(sys.path)
    before = _installed_packages(path)
    yield
    after = _installed_packages(path)
    changed = sorted(
        f"{name}: {before.get(name, '(absent)')} -> {after.get(name, '(absent)')}"
        for name in before.keys() | after.keys()
        if before.get(name) != after.get(name)
    )
    assert not changed, "the test suite changed the installed packages: " + "; ".join(changed)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine two
    OpenMP threads make every step several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=["bf16 CPU", "CPU without bf16"])
def cpu_kind(request, monkeypatch) -> bool:
    """Run a test as on a CPU with fast bf16 (AMX) and as on one without (AVX2, or AVX512-BF16),
    whatever this machine is: "auto" takes the same code paths as there. True for bf16."""
    from modernbert_tasks.hardware import FORCE_BF16_ENV

    fast = request.param == "bf16 CPU"
    monkeypatch.setenv(FORCE_BF16_ENV, "1" if fast else "0")
    return fast


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """modernbert_tasks.testing's tiny ModernBERT, with the real ModernBERT tokenizer from
    ../shared when present (overrides the plugin's fixture of the same name)."""
    tokenizer = TOKENIZER_DIR if TOKENIZER_DIR.is_dir() else None
    return build_tiny_modernbert(tmp_path_factory.mktemp("tiny-modernbert"), tokenizer=tokenizer)


@pytest.fixture(scope="session")
def file_trained_model(tiny_model_dir, tmp_path_factory) -> Path:
    """A model trained from a CSV of two-word tickets (text,team): no plugin, no data_dir,
    and a short max_length='auto'. Trained once for the session."""
    import random

    from modernbert_tasks import fine_tune

    words = ["invoice", "refund", "crash", "login", "demo", "quote"]
    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("tickets")
    lines = ["text,team"] + [
        f"{w} {rng.choice(words)},{'billing' if w in words[:2] else 'tech'}"
        for w in (rng.choice(words) for _ in range(60))
    ]
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    result = fine_tune(
        train_file=folder / "train.csv",
        model_name=tiny_model_dir,
        output_dir=folder / "run",
        num_train_epochs=1,
        report_to="none",
        disable_tqdm=True,
        precision="fp32",
    )
    return result.model_path


@pytest.fixture(scope="session")
def small_sentiment_dir(tmp_path_factory) -> Path:
    """train.tsv (64 rows) and validation.tsv (16): for runs of a few steps."""
    from modernbert_tasks.testing import make_sentiment_rows, write_tsv

    root = tmp_path_factory.mktemp("small-sentiment")
    write_tsv(root / "train.tsv", make_sentiment_rows(64, seed=1))
    write_tsv(root / "validation.tsv", make_sentiment_rows(16, seed=2))
    return root


@pytest.fixture(scope="session")
def trained_sentiment(tiny_model_dir, sentiment_dir, tmp_path_factory):
    """The tiny ModernBERT fine-tuned on `sentiment_dir` ('sst2', testing.FAST: 2 epochs of
    20 steps), an evaluation and a checkpoint every 4 steps, TensorBoard logs in output_dir.
    Trained once for the session and shared (test_engine, test_export, test_predictor):
    read-only; a test that writes into it works on a copy."""
    from modernbert_tasks import fine_tune
    from modernbert_tasks.testing import FAST

    out = tmp_path_factory.mktemp("sst2-run")
    return fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        output_dir=out,
        data_dir=str(sentiment_dir),
        eval_steps=4,
        **{**FAST, "report_to": "tensorboard"},
    )


@pytest.fixture(scope="session")
def shared_tokenizer_dir() -> Path:
    """ModernBERT's real tokenizer in ../shared; the test is skipped without it."""
    if not TOKENIZER_DIR.is_dir():
        pytest.skip(f"../shared is absent ({SHARED}); it holds ModernBERT's real tokenizer")
    return TOKENIZER_DIR


@pytest.fixture(scope="session")
def sst2_dir() -> Path:
    """The real SST-2 files in ../shared; the test is skipped without them."""
    if not SST2_DIR.is_dir():
        pytest.skip(f"../shared is absent ({SHARED}); it holds the SST-2 data")
    return SST2_DIR
