"""What the ``mlops`` commands share: the program name, exit codes and the one-line error."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from typing import Any

from mlops_provider.core.html import aligned

PROG = "mlops"
EXIT_OK = 0
EXIT_ERROR = 2


class CliError(Exception):
    """An error to report as ``mlops: error: <message>`` with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line: ``mlops: error: ... (see '... --help')``."""

    def error(self, message: str):  # type: ignore[override]
        raise CliError(f"{message} (see '{self.prog} --help')")


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def clean(value: Any) -> str:
    """One printable line for a table cell."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return aligned(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return "".join(c if c.isprintable() else " " for c in text) or "-"


def _truncate(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[: max(width - 3, 1)] + "..."


def format_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], max_widths: dict[str, int] | None = None
) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    max_widths = max_widths or {}
    cells = [
        [_truncate(clean(v), max_widths.get(h)) for h, v in zip(headers, row, strict=True)] for row in rows
    ]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    lines = []
    for row in [list(headers), *cells]:
        line = "  ".join(c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row))
        lines.append(line.rstrip())
    return "\n".join(lines)
