"""One local data file read into a `datasets.Dataset`: its format by extension, the CSV
delimiter sniffed, the encoding checked (UTF-8, BOM allowed), duplicate column names refused."""

from __future__ import annotations

import csv
import itertools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import DataError

if TYPE_CHECKING:
    import datasets

__all__ = ["EXTENSIONS", "DELIMITERS", "read_data_file"]

logger = logging.getLogger(__name__)

# extension -> (datasets packaged builder, reader options)
EXTENSIONS: dict[str, tuple[str, dict[str, Any]]] = {
    ".tsv": ("csv", {"sep": "\t", "keep_default_na": False, "na_values": [""]}),
    ".csv": ("csv", {"sep": ",", "keep_default_na": False, "na_values": [""]}),
    ".jsonl": ("json", {}),
    ".json": ("json", {}),
    ".parquet": ("parquet", {}),
}
DELIMITERS = (",", ";", "\t", "|")  # what spreadsheet exports use
_Quoting = Literal[0, 1, 2, 3]  # the csv.QUOTE_* values csv.reader's stub accepts


def read_data_file(path: str | Path, cache_dir: str | None = None) -> datasets.Dataset:
    """One local file -> Dataset, through the datasets packaged builders (cached by content).

    CSV/TSV files may use ',' ';' TAB or '|' whatever their extension (the delimiter is sniffed
    and logged) and may start with a UTF-8 BOM.
    """
    import datasets

    path = Path(path)
    ext = path.suffix.lower()
    if ext not in EXTENSIONS:
        raise DataError(
            f"Unsupported data file type {path.suffix!r} for {str(path)!r}; expected "
            f"one of {', '.join(EXTENSIONS)}. Convert it, or rename it if the "
            "content already matches one of these."
        )
    if path.stat().st_size == 0:
        raise DataError(f"Data file {str(path)!r} is empty. Expected a header line and at least one row.")
    builder, options = EXTENSIONS[ext]
    options = dict(options)
    if ext in (".tsv", ".csv", ".json", ".jsonl"):
        bom = _check_utf8(path)
        if builder == "csv":
            options["sep"] = _sniff_delimiter(path, options["sep"], bom)
            # GLUE TSVs hold bare quote characters: only quote-aware for other delimiters
            options["quoting"] = csv.QUOTE_NONE if options["sep"] == "\t" else csv.QUOTE_MINIMAL
            options["encoding"] = "utf-8-sig" if bom else "utf-8"
            _refuse_duplicate_columns(path, options["sep"], options["quoting"], options["encoding"])
    try:
        ds = datasets.load_dataset(
            builder, data_files={"train": str(path)}, split="train", cache_dir=cache_dir, **options
        )
    except Exception as exc:  # the builders wrap parser errors in DatasetGenerationError
        if "corresponds to no data" in str(exc):  # a header line and nothing else
            raise DataError(f"Data file {str(path)!r} has a header but no rows.") from None
        cause = exc.__cause__ or exc.__context__ or exc
        raise DataError(
            f"Could not read {str(path)!r} as {ext[1:].upper()}: {cause}. Check that "
            "the file matches its extension (TSV: tab-separated with a header)."
        ) from exc
    if len(ds) == 0:
        raise DataError(f"Data file {str(path)!r} has a header but no rows.")
    return ds


def _refuse_duplicate_columns(path: Path, sep: str, quoting: _Quoting, encoding: str) -> None:
    """pandas would rename a second 'text' column to 'text.1' without a word."""
    with open(path, encoding=encoding, newline="") as fh:
        header = next(csv.reader(fh, delimiter=sep, quoting=quoting), [])
    seen: set[str] = set()
    duplicated = []
    for n in filter(None, header):
        if n in seen:
            duplicated.append(n)
        seen.add(n)
    if duplicated:
        raise DataError(
            f"Data file {str(path)!r} names column {duplicated[0]!r} more than once in "
            f"its header {header}. Rename the columns so that each name is unique."
        )


def _sniff_delimiter(path: Path, default: str, bom: bool) -> str:
    """The delimiter that splits the first lines into the most columns, consistently."""
    with open(path, encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        head = list(itertools.islice(fh, 50))
    best, best_width = default, 1
    for delimiter in DELIMITERS:
        quoting: _Quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        try:
            widths = {len(r) for r in csv.reader(head, delimiter=delimiter, quoting=quoting) if r}
        except csv.Error:
            continue
        width = widths.pop() if len(widths) == 1 else 0
        if width > best_width or (width == best_width and delimiter == default):
            best, best_width = delimiter, width
    if best != default:
        logger.warning(
            "%s: read as %r-separated (sniffed from its first lines), not %r.", path, best, default
        )
    return best


def _check_utf8(path: Path) -> bool:
    """Raise a DataError naming the likely encoding unless the file is UTF-8; True if BOM."""
    with open(path, "rb") as fh:
        offset = 0
        for line_no, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                likely = _likely_encoding(path)
                raise DataError(
                    f"Data file {str(path)!r} is not valid UTF-8: byte {line[exc.start]:#04x} at "
                    f"line {line_no} (file offset {offset + exc.start}). It looks like {likely}. "
                    f"Re-save the file as UTF-8 (in Excel: Save As > 'CSV UTF-8'), or convert it: "
                    f"`iconv -f {likely.split()[0]} -t utf-8 {path.name} > {path.stem}.utf8{path.suffix}`."
                ) from None
            offset += len(line)
    with open(path, "rb") as fh:
        return fh.read(3) == b"\xef\xbb\xbf"


def _likely_encoding(path: Path) -> str:
    raw = path.read_bytes()
    for name, label in (
        ("utf-16", "utf-16 (Excel 'Unicode Text')"),
        ("cp1252", "cp1252 (Windows-1252, what Excel on Windows writes)"),
    ):
        if name == "utf-16" and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            continue
        try:
            raw.decode(name)
            return label
        except UnicodeDecodeError:
            pass
    return "latin-1 (ISO-8859-1) or another 8-bit encoding"
