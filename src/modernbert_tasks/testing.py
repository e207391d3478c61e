"""Test helpers and pytest fixtures for modernbert-tasks and its plugins.

Installed as a pytest plugin (the ``pytest11`` entry point), so in any project that has
modernbert-tasks installed these fixtures are available without a conftest:

- ``tiny_model_dir``: a randomly initialised 2-layer, hidden-64 ModernBERT with a small BPE
  tokenizer, saved once per session. It learns a word-level task in seconds on a CPU.
- ``sentiment_dir``: ``train.tsv`` (320 rows), ``validation.tsv`` and ``test.tsv`` (80 each)
  of synthetic sentiment whose label follows from its adjectives (``sentence<TAB>label``).

And helpers to build your own: `build_tiny_modernbert`, `make_sentiment_rows`,
`make_topic_rows` (imbalanced multi-label rows, one 0/1 value per topic), `write_tsv`, and
`run_cli`, which runs the command line in this process (no fresh interpreter, so no seconds of
torch imports per call) and returns its exit code, stdout and stderr.
Importing this module loads neither torch nor transformers; the fixtures do, when used.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import random
import signal
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "build_tiny_modernbert",
    "make_sentiment_rows",
    "make_topic_rows",
    "TOPICS",
    "write_tsv",
    "POSITIVE",
    "NEGATIVE",
    "NEUTRAL",
    "tiny_model_dir",
    "sentiment_dir",
    "run_cli",
    "CliResult",
    "FAST",
]

# Training arguments that make a tiny model learn `sentiment_dir` in seconds: one definition for
# every test; a test that needs other values overrides them explicitly ({**FAST, ...}).
FAST = {"learning_rate": 1e-3, "num_train_epochs": 2, "disable_tqdm": True, "report_to": "none"}

POSITIVE = [
    "great",
    "wonderful",
    "brilliant",
    "delightful",
    "superb",
    "moving",
    "charming",
    "excellent",
    "beautiful",
    "funny",
    "touching",
    "masterful",
]
NEGATIVE = [
    "awful",
    "boring",
    "dull",
    "terrible",
    "clumsy",
    "tedious",
    "bland",
    "painful",
    "horrible",
    "lifeless",
    "mediocre",
    "dreadful",
]
NEUTRAL = [
    "the film",
    "this movie",
    "the story",
    "the acting",
    "the plot",
    "the ending",
    "the script",
    "the cast",
    "the score",
    "the direction",
]
_TEMPLATES = [
    "{n} was {a}",
    "{n} is {a} and {b}",
    "i found {n} {a}",
    "{a} , {b} and long",
    "what a {a} experience",
    "{n} felt {a} from start to finish",
]


def make_sentiment_rows(n: int, seed: int) -> list[tuple[str, int]]:
    """(sentence, label) pairs whose label (1 positive, 0 negative) follows from the words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = POSITIVE if label else NEGATIVE
        text = rng.choice(_TEMPLATES).format(n=rng.choice(NEUTRAL), a=rng.choice(words), b=rng.choice(words))
        rows.append((text, label))
    return rows


# Multi-label topics with different base rates, each with its cue words. A topic's cue is in 85%
# of its rows and in 8% of the others, so P(topic | cue) is about 0.85 for sports and 0.73 for
# politics but under 0.5 for science and music: at a 0.5 threshold a calibrated model rarely
# predicts those two, and a lower threshold of their own gives them a better F1.
TOPICS: dict[str, tuple[float, tuple[str, ...]]] = {
    "sports": (0.40, ("match", "goal", "team", "coach")),
    "politics": (0.20, ("vote", "senate", "election", "minister")),
    "science": (0.08, ("atom", "physics", "telescope", "molecule")),
    "music": (0.05, ("guitar", "melody", "concert", "album")),
    "cooking": (0.012, ("recipe", "oven", "flour")),
}
_TOPIC_FILLER = (
    "today",
    "people",
    "said",
    "the",
    "news",
    "about",
    "city",
    "morning",
    "report",
    "week",
    "new",
)


def make_topic_rows(n: int, seed: int) -> list[tuple[Any, ...]]:
    """(text, sports, politics, science, music, cooking) rows, one 0/1 per topic of `TOPICS`,
    each topic on exactly round(rate x n) rows (at least one)."""
    rng = random.Random(seed)
    flags = {name: [0] * n for name in TOPICS}
    cues: list[list[str]] = [[] for _ in range(n)]
    for name, (rate, words) in TOPICS.items():
        positives = set(rng.sample(range(n), max(1, round(rate * n))))
        for i in range(n):
            flags[name][i] = int(i in positives)
            if rng.random() < (0.85 if i in positives else 0.08):
                cues[i].append(rng.choice(words))
    rows = []
    for i in range(n):
        text = [rng.choice(_TOPIC_FILLER) for _ in range(rng.randint(3, 6))] + list(cues[i])
        rng.shuffle(text)
        rows.append((" ".join(text), *(flags[name][i] for name in TOPICS)))
    return rows


def write_tsv(path: str | os.PathLike, rows: Iterable[Sequence], header=("sentence", "label")) -> Path:
    """A TSV file with a header line, unquoted (as GLUE ships its files)."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _train_small_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=512, special_tokens=special))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        unk_token="[UNK]",
        model_input_names=["input_ids", "attention_mask"],
    )


def build_tiny_modernbert(
    path: str | os.PathLike,
    num_labels: int = 2,
    *,
    tokenizer: str | os.PathLike | None = None,
    texts: Sequence[str] | None = None,
    **config_overrides,
) -> Path:
    """Save a randomly initialised 2-layer, hidden-64 ModernBERT and its tokenizer to `path`.

    `tokenizer`: a tokenizer folder to use (e.g. ModernBERT's real one); by default a 512-token
    BPE is trained on `texts` (default: 2,000 synthetic sentiment sentences).
    """
    import torch
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertForSequenceClassification

    path = Path(path)
    if tokenizer is not None:
        tok = AutoTokenizer.from_pretrained(tokenizer)
    else:
        tok = _train_small_tokenizer(list(texts or [t for t, _ in make_sentiment_rows(2000, 0)]))
    # the config dataclass takes global_attn_every_n_layers and num_labels through **kwargs at runtime
    config = ModernBertConfig(  # type: ignore[call-arg]
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
        local_attention=64,
        global_attn_every_n_layers=2,
        pad_token_id=tok.pad_token_id,
        cls_token_id=tok.cls_token_id,
        sep_token_id=tok.sep_token_id,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
        classifier_pooling="mean",
        num_labels=num_labels,
        **config_overrides,
    )
    torch.manual_seed(0)
    ModernBertForSequenceClassification(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@dataclass
class CliResult:
    """What a command-line run left: like `subprocess.CompletedProcess`, in this process."""

    returncode: int
    stdout: str
    stderr: str


def _fresh_process_warning_filters() -> None:
    """Python's default filters, as a new interpreter has them (not pytest's)."""
    warnings.resetwarnings()
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.filterwarnings("ignore", category=category)


def _progress_bars(restore: dict[str, bool] | None = None) -> dict[str, bool]:
    """transformers' and datasets' global progress-bar switches (the predict command turns
    them off); with `restore`, set them back (a library first imported during the run had them
    on)."""
    state: dict[str, Any] = {}
    if "transformers" in sys.modules:  # and its verbosity, which sets the Trainer's disable_tqdm
        from transformers.utils import logging as hf_logging

        state["transformers"] = hf_logging.is_progress_bar_enabled()
        state["transformers verbosity"] = hf_logging.get_verbosity()
        if restore is not None and restore.get("transformers", True):
            hf_logging.enable_progress_bar()
        if restore is not None and "transformers verbosity" in restore:
            hf_logging.set_verbosity(restore["transformers verbosity"])
    if "datasets" in sys.modules:
        from datasets import utils as ds_utils

        state["datasets"] = not ds_utils.are_progress_bars_disabled()
        if restore is not None and restore.get("datasets", True):
            ds_utils.enable_progress_bars()
    return state


@contextlib.contextmanager
def _process_state_restored(env: Mapping[str, str | None] | None, cwd) -> Iterator[None]:
    """Undo what a CLI run changes in the process: the library logger's handler (the train
    command adds one bound to the stderr of the moment), `warnings.showwarning` and filters,
    progress-bar switches, signal handlers, the environment and the working directory."""
    logger, root = logging.getLogger("modernbert_tasks"), logging.getLogger()
    saved_logger = (list(logger.handlers), logger.level, logger.propagate)
    # as in a new interpreter, the root logger has no handlers (pytest's log capture hangs
    # there), so a warning of a logger without handlers reaches stderr through lastResort
    saved_root = (list(root.handlers), root.level)
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_signals = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    progress = _progress_bars()
    hub_offline = None
    if env and "HF_HUB_OFFLINE" in env and "huggingface_hub" in sys.modules:
        import huggingface_hub.constants as hub_constants  # read from the environment at import

        hub_offline = hub_constants.HF_HUB_OFFLINE
        hub_constants.HF_HUB_OFFLINE = env["HF_HUB_OFFLINE"] == "1"
    try:
        for name, value in (env or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if cwd is not None:
            os.chdir(cwd)
        root.handlers[:] = []
        root.setLevel(logging.WARNING)
        with warnings.catch_warnings():  # restores showwarning and the filters
            _fresh_process_warning_filters()
            yield
    finally:
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        logger.handlers[:] = saved_logger[0]
        logger.setLevel(saved_logger[1])
        logger.propagate = saved_logger[2]
        for sig, handler in saved_signals.items():
            signal.signal(sig, handler)
        _progress_bars(restore=progress)
        if hub_offline is not None:
            import huggingface_hub.constants as hub_constants

            hub_constants.HF_HUB_OFFLINE = hub_offline


def run_cli(
    *args: object,
    env: Mapping[str, str | None] | None = None,
    stdin: str | None = None,
    cwd: str | os.PathLike | None = None,
) -> CliResult:
    """Run ``modernbert-tasks ARGS`` through `modernbert_tasks.cli.main` in this process, as a
    user's shell would run it: stdin from `stdin` (empty when None), stdout and stderr captured,
    argparse's exits (usage errors, ``--help``) turned into exit codes. `env` sets (or, with
    None, unsets) environment variables for the run; `cwd` is the working directory.
    What the run changes in the process is restored afterwards, so runs do not leak into each
    other. Things read once per process (plugin discovery through PYTHONPATH, hub settings
    other than HF_HUB_OFFLINE) need a real subprocess."""
    from modernbert_tasks.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_streams = (sys.stdin, sys.stdout, sys.stderr)
    # the libraries' own handlers (transformers' warnings) write to this run's stderr
    library_handlers = [
        h
        for name in ("transformers", "datasets", "huggingface_hub")
        for h in logging.getLogger(name).handlers
        if type(h) is logging.StreamHandler
    ]
    handler_streams = [h.stream for h in library_handlers]
    with _process_state_restored(env, cwd):
        sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin or ""), out, err
        for handler in library_handlers:
            handler.setStream(err)
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse: usage errors (2), --help and --version (0)
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            for handler, stream in zip(library_handlers, handler_streams, strict=False):
                handler.setStream(stream)
    return CliResult(code, out.getvalue(), err.getvalue())


# --- pytest fixtures (registered through the pytest11 entry point) --------------------------
@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random-init ModernBERT folder, built once per session. Treat it as read-only."""
    return build_tiny_modernbert(tmp_path_factory.mktemp("tiny-modernbert"))


@pytest.fixture(scope="session")
def sentiment_dir(tmp_path_factory) -> Path:
    """train.tsv (320 rows), validation.tsv (80) and test.tsv (80) of synthetic sentiment."""
    root = tmp_path_factory.mktemp("sentiment")
    write_tsv(root / "train.tsv", make_sentiment_rows(320, seed=1))
    write_tsv(root / "validation.tsv", make_sentiment_rows(80, seed=2))
    write_tsv(root / "test.tsv", make_sentiment_rows(80, seed=3))
    return root
