"""Loading a task's data: the hub by default, local TSV/CSV/JSON(L)/parquet files always.

The result is a `datasets.DatasetDict` keyed by role ('train', 'eval', 'test') whose
label column is called ``label`` and holds ids (classification) or floats (regression).
Every problem found in the data is reported with the file, the column and the row numbers.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DataError, suggest

if TYPE_CHECKING:
    import datasets

    from .task import Task

__all__ = ["EXTENSIONS", "load_task_dataset", "read_data_file", "find_data_files", "prepare_split"]

# extension -> (datasets packaged builder, reader options)
EXTENSIONS: dict[str, tuple[str, dict[str, Any]]] = {
    # QUOTE_NONE: GLUE text contains bare quote characters
    ".tsv": ("csv", {"sep": "\t", "quoting": csv.QUOTE_NONE, "keep_default_na": False,
                     "na_values": [""]}),
    ".csv": ("csv", {"keep_default_na": False, "na_values": [""]}),
    ".jsonl": ("json", {}),
    ".json": ("json", {}),
    ".parquet": ("parquet", {}),
}
_ROLE_ALIASES = {"train": ("train",), "eval": ("eval", "validation", "dev", "valid"),
                 "test": ("test",)}
MAX_ROWS_SHOWN = 10


def _rows(indices: list[int]) -> str:
    shown = ", ".join(str(i + 1) for i in indices[:MAX_ROWS_SHOWN])
    more = f" and {len(indices) - MAX_ROWS_SHOWN} more" if len(indices) > MAX_ROWS_SHOWN else ""
    return f"{len(indices)} row(s): {shown}{more} (data rows counted from 1, header excluded)"


# --- finding files ------------------------------------------------------------------------
def find_data_files(task: Task, data_dir: str | Path) -> dict[str, Path]:
    """Files in `data_dir` named after each split (e.g. validation.tsv) or role (eval.csv)."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"data_dir {str(root)!r} is not a directory. Pass the folder that holds "
                        f"the split files, e.g. data_dir='path/to/{task.name}' containing "
                        f"train.tsv and validation.tsv.")
    found: dict[str, Path] = {}
    for role, split in task.splits.items():
        names = dict.fromkeys(([split] if split else []) + list(_ROLE_ALIASES[role]))
        for name in names:
            hits = [root / f"{name}{ext}" for ext in EXTENSIONS if (root / f"{name}{ext}").is_file()]
            if hits:
                found[role] = hits[0]
                break
    if "train" not in found and "eval" not in found:
        present = sorted(p.name for p in root.iterdir())[:20]
        raise DataError(
            f"No split files found in data_dir {str(root)!r} (it holds: {present or 'nothing'}). "
            f"Expected files named after the splits, e.g. {task.splits.get('train')}.tsv and "
            f"{task.splits.get('eval') or 'validation'}.tsv, with extension one of "
            f"{', '.join(EXTENSIONS)}; or pass data_files={{'train': ..., 'eval': ...}}."
        )
    return found


def _role_of(key: str, task: Task) -> str:
    for role, aliases in _ROLE_ALIASES.items():
        if key in aliases or key == task.splits.get(role):
            return role
    raise DataError(f"data_files key {key!r} is not a split. Use 'train', 'eval' (or "
                    f"'validation') and 'test'.{suggest(key, ['train', 'eval', 'validation', 'test'])}")


def _normalise_data_files(task: Task, data_files: Mapping[str, Any] | str | Path) -> dict[str, Path]:
    if isinstance(data_files, str | Path):
        data_files = {"train": data_files}
    files = {}
    for key, value in data_files.items():
        path = Path(value).expanduser()
        if not path.is_file():
            raise DataError(f"Data file for split {key!r} not found: {str(path)!r}. Check the path "
                            "(relative paths are resolved from the current directory).")
        files[_role_of(str(key), task)] = path
    return files


# --- reading ------------------------------------------------------------------------------
def read_data_file(path: str | Path, cache_dir: str | None = None) -> datasets.Dataset:
    """One local file -> Dataset, through the datasets packaged builders (cached by content)."""
    import datasets

    path = Path(path)
    ext = ".jsonl" if path.suffix.lower() == ".jsonl" else path.suffix.lower()
    if ext not in EXTENSIONS:
        raise DataError(f"Unsupported data file type {path.suffix!r} for {str(path)!r}; expected "
                        f"one of {', '.join(EXTENSIONS)}. Convert it, or rename it if the "
                        "content already matches one of these.")
    if path.stat().st_size == 0:
        raise DataError(f"Data file {str(path)!r} is empty. Expected a header line and at least "
                        "one row.")
    _check_utf8(path) if ext in (".tsv", ".csv", ".json", ".jsonl") else None
    builder, options = EXTENSIONS[ext]
    try:
        ds = datasets.load_dataset(builder, data_files={"train": str(path)}, split="train",
                                   cache_dir=cache_dir, **options)
    except Exception as exc:  # the builders wrap parser errors in DatasetGenerationError
        if "corresponds to no data" in str(exc):  # a header line and nothing else
            raise DataError(f"Data file {str(path)!r} has a header but no rows.") from None
        cause = exc.__cause__ or exc.__context__ or exc
        raise DataError(f"Could not read {str(path)!r} as {ext[1:].upper()}: {cause}. Check that "
                        "the file matches its extension (TSV: tab-separated with a header).") from exc
    if len(ds) == 0:
        raise DataError(f"Data file {str(path)!r} has a header but no rows.")
    return ds


def _check_utf8(path: Path) -> None:
    with open(path, "rb") as fh:
        offset = 0
        for line_no, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"Data file {str(path)!r} is not valid UTF-8: byte {line[exc.start]:#04x} at "
                    f"line {line_no} (file offset {offset + exc.start}). Re-save the file as "
                    "UTF-8, e.g. `iconv -f latin1 -t utf-8 in.tsv > out.tsv`."
                ) from None
            offset += len(line)


def _load_hub(task: Task, cache_dir: str | None, revision: str | None) -> dict[str, Any]:
    import datasets

    where = f"{task.hub_id!r}" + (f" (config {task.hub_config!r})" if task.hub_config else "")
    try:
        dd = datasets.load_dataset(task.hub_id, task.hub_config,
                                   revision=revision or task.hub_revision, cache_dir=cache_dir)
    except Exception as exc:
        raise DataError(
            f"Could not load dataset {where} from the Hugging Face Hub: {type(exc).__name__}: "
            f"{exc}. Without network access, point at local files instead: "
            f"fine_tune({task.name!r}, data_dir='path/to/folder') with files named "
            f"{task.splits.get('train')}.tsv / {task.splits.get('eval')}.tsv (or .csv, .jsonl, "
            f".parquet), or data_files={{'train': ..., 'eval': ...}}; CLI: --data-dir PATH."
        ) from exc
    return {role: dd[split] for role, split in task.splits.items() if split and split in dd}


def load_task_dataset(
    task: Task,
    data_dir: str | Path | None = None,
    data_files: Mapping[str, Any] | str | Path | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
) -> datasets.DatasetDict:
    import datasets

    if data_files:
        files = _normalise_data_files(task, data_files)
    elif data_dir:
        files = find_data_files(task, data_dir)
    elif task.hub_id:
        raw = _load_hub(task, cache_dir, revision)
        return datasets.DatasetDict({
            role: prepare_split(ds, task, role, source=f"hub dataset {task.hub_id!r} split {role!r}")
            for role, ds in raw.items()
        })
    else:
        raise DataError(f"Task {task.name!r} has no hub dataset; pass data_dir=... or "
                        "data_files={'train': ..., 'eval': ...}.")
    return datasets.DatasetDict({
        role: prepare_split(read_data_file(path, cache_dir), task, role, source=repr(str(path)))
        for role, path in files.items()
    })


# --- validating and encoding --------------------------------------------------------------
def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip())


def prepare_split(ds: datasets.Dataset, task: Task, role: str, source: str) -> datasets.Dataset:
    """Check columns, texts and labels; return the split with a numeric ``label`` column.

    A test split whose labels are all -1 (GLUE's hidden test labels) comes back unlabelled.
    """
    missing = [c for c in task.text_columns if c not in ds.column_names]
    if missing:
        raise DataError(
            f"{source} has no column {missing[0]!r} (task {task.name!r} reads text from "
            f"{list(task.text_columns)}); its columns are {ds.column_names}."
            f"{suggest(missing[0], ds.column_names)} Rename the column in the file."
        )
    for col in task.text_columns:
        empty = [i for i, v in enumerate(ds[col]) if _is_missing(v)]
        if empty:
            raise DataError(f"{source}: column {col!r} is empty in {_rows(empty)}. Remove or "
                            "fill those rows.")
    keep = list(task.text_columns)
    if task.label_column not in ds.column_names:
        if role == "test":
            return ds.select_columns(keep)
        raise DataError(
            f"{source} has no label column {task.label_column!r}; its columns are "
            f"{ds.column_names}.{suggest(task.label_column, ds.column_names)} Add the labels "
            f"(one of {list(task.labels)}) or rename the column."
        )
    raw = ds[task.label_column]
    if role == "test" and all(v == -1 for v in raw):
        return ds.select_columns(keep)
    values = _encode_labels(raw, task, source)
    return ds.select_columns(keep).add_column("label", values)


def _encode_labels(raw: list[Any], task: Task, source: str) -> list[Any]:
    col = task.label_column
    nan_rows = [i for i, v in enumerate(raw) if _is_missing(v)]
    if nan_rows:
        raise DataError(f"{source}: label column {col!r} is empty or NaN in {_rows(nan_rows)}. "
                        "Remove those rows or give them a label.")
    if task.problem_type == "regression":
        try:
            return [float(v) for v in raw]
        except (TypeError, ValueError) as exc:
            raise DataError(f"{source}: label column {col!r} must hold numbers for regression "
                            f"task {task.name!r}: {exc}.") from None
    label2id = task.label2id
    if task.problem_type == "multi_label_classification":
        out = []
        for i, v in enumerate(raw):
            items = v if isinstance(v, list | tuple) else str(v).split(",")
            ids = [_label_id(item, label2id, task.num_labels) for item in items]
            if None in ids:
                _bad_labels([(i, v)], task, source)
            out.append([1.0 if k in ids else 0.0 for k in range(task.num_labels)])
        return out
    ids = [_label_id(v, label2id, task.num_labels) for v in raw]
    bad = [(i, raw[i]) for i, v in enumerate(ids) if v is None]
    if bad:
        _bad_labels(bad, task, source)
    return ids


def _bad_labels(bad: list[tuple[int, Any]], task: Task, source: str) -> None:
    values = list(dict.fromkeys(repr(v) for _, v in bad))[:MAX_ROWS_SHOWN]
    raise DataError(
        f"{source}: label(s) {', '.join(values)} in {_rows([i for i, _ in bad])} are not among "
        f"task {task.name!r}'s labels: expected an id 0..{task.num_labels - 1} or a name in "
        f"{list(task.labels)}. Fix those labels, or use a task whose labels match the data."
    )


def _label_id(value: Any, label2id: dict[str, int], num_labels: int) -> int | None:
    if isinstance(value, str):
        value = value.strip()
        if value in label2id:
            return label2id[value]
        if value.lstrip("-").isdigit():
            value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < num_labels:
        return value
    return None
