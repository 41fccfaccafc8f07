"""Markdown tables: the one writer behind every table the package and its benchmarks print or save."""
from __future__ import annotations

from typing import Iterable, Sequence


def markdown_row(cells: Sequence[object]) -> str:
    """One row of a markdown table (for tables printed row by row as they are measured)."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> str:
    """A GitHub-flavoured markdown table, without a trailing newline. ``align`` gives one letter per
    column, ``l`` (the default for columns it does not reach) or ``r`` (right-aligned, for numbers);
    cells are written with ``str``."""
    align = align.ljust(len(header), "l")
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align must be one letter l or r per column ({len(header)}), got {align!r}")
    lines = [markdown_row(header), "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} cells for {len(header)} columns: {list(row)}")
        lines.append(markdown_row(row))
    return "\n".join(lines)
