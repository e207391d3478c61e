"""What every command shares: exit codes, the parser class, plain-text tables."""

from __future__ import annotations

import argparse
from typing import Any

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
PROG = "modernbert-tasks"


class Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


class Parser(argparse.ArgumentParser):
    """ArgumentParser with our help layout and no prefix matching (unknown flags: `_parse`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        kwargs.setdefault("allow_abbrev", False)  # --epoch must not silently mean --epochs
        super().__init__(*args, **kwargs)


def add_debug_flag(parser: argparse.ArgumentParser, default: Any) -> None:
    # SUPPRESS on the subcommands, so `train --debug` and `--debug train` both work
    parser.add_argument(
        "--debug",
        dest="traceback",
        action="store_true",
        default=default,
        help="show the full traceback when an error occurs",
    )


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def table(rows: list[list[Any]], headers: list[str], right: bool = False) -> list[str]:
    """Plain-text columns; `right` right-aligns every column but the first (numbers)."""
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [
            c.rjust(w) if right and i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(cells[0]), line(["-" * w for w in widths]), *map(line, cells[1:])]


def metric_lines(metrics: dict[str, Any]) -> list[str]:
    scalars = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    width = max((len(k) for k in scalars), default=0)
    return [f"  {k:<{width}}  {number(v)}" for k, v in scalars.items()]


def number(value: float) -> str:
    """A metric as the CLI prints it: integers as they are, else 4 decimals (4 significant
    digits when that would hide it: very large, or under 0.001)."""
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.4g}"
    return f"{value:.4f}"
