"""Reading data files and encoding labels: task-free building blocks that `Task` composes.

Nothing here knows what a `Task` is: every function takes the columns, label names and problem
type it needs. Problems are reported with the file, the column and the row numbers (data rows
counted from 1, header excluded).

The label rule, everywhere (built-in, plugin and inferred tasks): a cell is matched against the
label *names* first, as text with surrounding whitespace stripped. An integer cell is read as an
id only when it matches no name and no name is a digit string, so names ("1", ..., "5") with
cells 1..5 map 1 -> "1", never 1 -> "2".
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data_files import DELIMITERS, EXTENSIONS, read_data_file  # re-exported: users import them here
from .errors import DataError, suggest
from .labels import encode_labels, infer_labels, is_missing, rows  # re-exported: users import them here

if TYPE_CHECKING:
    import datasets

__all__ = [
    "EXTENSIONS",
    "LABEL_COLUMN_NAMES",
    "ROLE_ALIASES",
    "read_data_file",
    "find_split_files",
    "split_files",
    "load_hub_splits",
    "check_text_columns",
    "encode_labels",
    "infer_columns",
    "infer_labels",
    "hold_out",
    "rows",
]

logger = logging.getLogger(__name__)

ROLE_ALIASES = {"train": ("train",), "eval": ("eval", "validation", "dev", "valid"), "test": ("test",)}
# a label column is found by these names when the caller names none (case-insensitive)
LABEL_COLUMN_NAMES = (
    "label",
    "labels",
    "target",
    "class",
    "category",
    "y",
    "sentiment",
    "rating",
    "stars",
    "intent",
    "topic",
)


# --- finding files ------------------------------------------------------------------------
def find_split_files(data_dir: str | os.PathLike[str], splits: Mapping[str, str | None]) -> dict[str, Path]:
    """Files in `data_dir` named after each role's split (validation.tsv) or alias (dev.csv)."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(
            f"data_dir {str(root)!r} is not a directory. Pass the folder that holds "
            "the split files (train.csv, validation.csv, ...), or pass the files "
            "themselves (train_file=..., validation_file=...)."
        )
    found: dict[str, Path] = {}
    for role in ROLE_ALIASES:
        split = splits.get(role)
        names = dict.fromkeys(([split] if split else []) + list(ROLE_ALIASES[role]))
        for name in names:
            hits = [root / f"{name}{ext}" for ext in EXTENSIONS if (root / f"{name}{ext}").is_file()]
            if hits:
                found[role] = hits[0]
                break
    if "train" not in found and "eval" not in found:
        present = sorted(p.name for p in root.iterdir())[:20]
        raise DataError(
            f"No split files found in data_dir {str(root)!r} (it holds: {present or 'nothing'}). "
            f"Expected files named after the splits, e.g. {splits.get('train') or 'train'}.csv and "
            f"{splits.get('eval') or 'validation'}.csv, with extension one of "
            f"{', '.join(EXTENSIONS)}; or pass the files: train_file=..., validation_file=..."
        )
    return found


def split_files(
    data_files: Mapping[str, Any] | str | Path, splits: Mapping[str, str | None]
) -> dict[str, Path]:
    """{'train': path, 'validation': path, ...} -> {role: existing Path}."""
    if isinstance(data_files, str | Path):
        data_files = {"train": data_files}
    files = {}
    for key, value in data_files.items():
        role = next((r for r, names in ROLE_ALIASES.items() if key in names or key == splits.get(r)), None)
        if role is None:
            raise DataError(
                f"data_files key {key!r} is not a split. Use 'train', 'validation' "
                f"(or 'eval') and 'test'."
                f"{suggest(str(key), ['train', 'eval', 'validation', 'test'])}"
            )
        path = Path(value).expanduser()
        if not path.is_file():
            hint = " It is a folder: pass it as data_dir." if path.is_dir() else ""
            raise DataError(
                f"Data file for split {key!r} not found: {str(path)!r}.{hint} Check "
                "the path (relative paths start from the current directory)."
            )
        files[role] = path
    return files


def load_hub_splits(
    hub_id: str,
    config: str | None,
    revision: str | None,
    splits: Mapping[str, str | None],
    cache_dir: str | None,
    local_hint: str,
) -> dict[str, datasets.Dataset]:
    """The hub dataset's splits keyed by role; `local_hint` says how to use local files."""
    import datasets

    from .hub import HubSource, require_hub

    require_hub(
        [HubSource("dataset", hub_id, config, f"use local files: {local_hint}", cache_dir)]
    )  # no network: fail now, not after a minute of retries
    where = f"{hub_id!r}" + (f" (config {config!r})" if config else "")
    try:
        dd = datasets.load_dataset(hub_id, config, revision=revision, cache_dir=cache_dir)
    except Exception as exc:
        raise DataError(
            f"Could not load dataset {where} from the Hugging Face Hub: {type(exc).__name__}: "
            f"{exc}. Without network access, point at local files instead: {local_hint}"
        ) from exc
    out = {}
    for role, aliases in ROLE_ALIASES.items():
        names = ([splits[role]] if splits.get(role) else []) + list(aliases)
        found = next((n for n in names if n in dd), None)
        if found is not None and (role == "train" or splits.get(role, "") is not None):
            out[role] = dd[found]
    return out


# --- columns ------------------------------------------------------------------------------
def check_text_columns(
    ds: datasets.Dataset, text_columns: Sequence[str], source: str, task_name: str
) -> datasets.Dataset:
    """Texts present and non-empty; non-string cells (numbers) become text, with a warning."""
    import datasets

    missing = [c for c in text_columns if c not in ds.column_names]
    if missing:
        hint = ""
        if len(ds.column_names) == 1 and any(d in ds.column_names[0] for d in DELIMITERS):
            hint = " The file has a single column whose name holds a delimiter: check the separator."
        raise DataError(
            f"{source} has no column {missing[0]!r} (task {task_name!r} reads text from "
            f"{list(text_columns)}); its columns are {ds.column_names}."
            f"{suggest(missing[0], ds.column_names)}{hint} Rename the column in the file, or "
            "choose the text column (text_columns=... / --text-column)."
        )
    for col in text_columns:
        feature = ds.features[col]
        if not (isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")):
            # numbers in a text column (ids, codes, years) are text to the model
            logger.warning(
                "%s: column %r holds %s values, not text; converting all %d cells to "
                "text. If this is the wrong column, pass text_columns=... "
                "(--text-column).",
                source,
                col,
                feature.dtype if isinstance(feature, datasets.Value) else type(feature).__name__,
                len(ds),
            )
            ds = ds.map(
                lambda b, c=col: {c: [None if is_missing(v) else str(v) for v in b[c]]},
                batched=True,
                features=_with_string(ds.features, col),
            )
        empty = [i for i, v in enumerate(ds[col]) if is_missing(v)]
        if empty:
            raise DataError(f"{source}: column {col!r} is empty in {rows(empty)}. Remove or fill those rows.")
    return ds


def _with_string(features: datasets.Features, column: str) -> datasets.Features:
    import datasets

    out = features.copy()
    out[column] = datasets.Value("string")
    return out


def infer_columns(
    ds: datasets.Dataset, source: str, text_columns: Sequence[str] | None, label_column: str | None
) -> tuple[tuple[str, ...], str]:
    """(text columns, label column) given the ones the caller chose (either may be None)."""
    import datasets

    names = ds.column_names
    if label_column is None:
        by_lower = {n.lower(): n for n in names}
        label_column = next((by_lower[c] for c in LABEL_COLUMN_NAMES if c in by_lower), None)
    if label_column is None:
        label_column = _only_other_column(names, text_columns, source)
        if label_column is None:
            raise DataError(_no_label_column(ds, names, text_columns, source))
    elif label_column not in names:
        raise DataError(
            f"{source} has no label column {label_column!r}; its columns are "
            f"{names}.{suggest(label_column, names)} Pass label_column='...' "
            "(--label-column NAME)."
        )
    if text_columns:
        return tuple(text_columns), label_column
    strings = [
        n
        for n in names
        if n != label_column
        and isinstance(ds.features[n], datasets.Value)
        and ds.features[n].dtype in ("string", "large_string")
    ]
    if len(strings) != 1:
        found = f"{len(strings)} text columns {strings}" if strings else "no text column"
        raise DataError(
            f"{source}: cannot tell which column holds the text: {found} besides the label "
            f"column {label_column!r} (columns: {names}). Choose it: text_columns='...' or "
            "text_columns=['a', 'b'] for pairs (CLI: --text-column NAME, --text-columns A,B)."
        )
    return (strings[0],), label_column


# a text column is found by these names when the label column must be inferred from it
TEXT_COLUMN_NAMES = (
    "text",
    "sentence",
    "content",
    "review",
    "body",
    "document",
    "message",
    "comment",
    "question",
    "title",
    "description",
)


def _only_other_column(names: Sequence[str], text_columns: Sequence[str] | None, source: str) -> str | None:
    """The label column when it is the only column left besides the text column(s)."""
    if text_columns:
        text = [n for n in names if n in text_columns]
    else:
        by_lower = {n.lower(): n for n in names}
        text = [by_lower[c] for c in TEXT_COLUMN_NAMES if c in by_lower][:1]
    rest = [n for n in names if n not in text]
    if not text or len(rest) != 1:
        return None
    logger.info(
        "%s: label column %r, the only column besides the text column %r (pass "
        "label_column=... to choose another).",
        source,
        rest[0],
        text[0],
    )
    return rest[0]


def _no_label_column(
    ds: datasets.Dataset, names: Sequence[str], text_columns: Sequence[str] | None, source: str
) -> str:
    message = (
        f"{source}: no label column found among {names} (looked for "
        f"{', '.join(LABEL_COLUMN_NAMES)}). Choose it, e.g. "
        f"label_column={names[-1]!r} (CLI: --label-column NAME)."
    )
    binary = [n for n in names if n not in (text_columns or ()) and _is_zero_one(ds[n])]
    if len(binary) >= 2:
        message += (
            f" Columns {binary} hold only 0/1, as one-hot multi-label data does: for "
            f"multi-label with one column per label, pass label_columns={binary} (CLI: "
            f"--label-columns {' '.join(binary)})."
        )
    return message


def _is_zero_one(values: Sequence[Any]) -> bool:
    return len(values) > 0 and all(str(v) in ("0", "1", "0.0", "1.0", "True", "False") for v in values)


# --- held-out evaluation split ------------------------------------------------------------
def hold_out(
    ds: datasets.Dataset, fraction: float, seed: int, stratify: bool
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """(train, held-out) with `fraction` of the rows held out, stratified by `label` when asked
    and possible (every class needs two rows), seeded."""
    from sklearn.model_selection import train_test_split

    indices = list(range(len(ds)))
    labels = ds["label"] if stratify else None
    if labels is not None and min(Counter(labels).values()) < 2:
        labels = None  # a class with one row cannot be split in two
    n_eval = max(1, round(fraction * len(ds)))
    if labels is not None and n_eval < len(set(labels)):
        n_eval = len(set(labels))
    train_idx, eval_idx = train_test_split(indices, test_size=n_eval, random_state=seed, stratify=labels)
    return ds.select(sorted(train_idx)), ds.select(sorted(eval_idx))
