"""Markdown tables: the one writer behind every table the package and its benchmarks print or save, and
the one way an estimate is written with its interval."""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


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


def format_interval(value: float, interval: Sequence[float], signed: bool = False, outward: bool = False) -> str:
    """``0.7120 [0.61, 0.80]``, or ``+0.0520 [-0.01, +0.12]`` with ``signed``. ``outward``: the ends are
    rounded away from the estimate (down, and up), so that an interval holding its estimate still
    does when printed with two decimals (an estimate at an end, as a biased statistic's can be)."""
    f = "+.4f" if signed else ".4f"
    g = "+.2f" if signed else ".2f"
    low, high = interval
    if outward and np.isfinite(low) and np.isfinite(high):
        low, high = np.floor(low * 100 + 1e-9) / 100, np.ceil(high * 100 - 1e-9) / 100
    return f"{value:{f}} [{low:{g}}, {high:{g}}]"


