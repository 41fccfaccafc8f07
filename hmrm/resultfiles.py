"""Results files: every measured table is saved twice, as markdown to read and as JSON to compute with.

::

    a command measures       -> write_results("figures/demo_results.md", text)
                                  figures/demo_results.md    the text people read (tables and captions)
                                  figures/demo_results.json  its twin: the same tables, cells parsed into numbers
    a chapter or a test      -> read_results("figures/demo_results")  -> ResultsFile
                                  .tables[k].value(row, column)       -> 0.7205, or Interval(0.7205, 0.63, 0.82)

The twin is made *from the markdown text* by :func:`parse_results_markdown`, so the two can never say
different things: a test (``tests/test_resultfiles.py``) parses every committed markdown results file
again and compares it with its committed twin. Chapters print the figures they discuss from the twins
instead of typing them into prose, and ``tests/test_claims.py`` checks that every figure the prose
does type is found in a results file.

A cell is parsed by :func:`parse_cell`: ``0.7205`` and ``1,519,881`` become numbers, ``+0.0133 [-0.10,
+0.13]`` an :class:`Interval` (estimate with its 95 % interval), ``[-0.09, 0.07]`` an interval with no
estimate, ``71%`` the fraction 0.71, ``6/16`` a :class:`Count`; anything else stays the text it is.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from .markdown import format_interval, markdown_table
from .utils import atomic_write_text

FORMAT = "hmrm-results/1"
REPO = Path(__file__).resolve().parents[1]

_NUM = r"[+\-−]?\d[\d,]*(?:\.\d+)?"
_NUMBER = re.compile(rf"^{_NUM}$")
_INTERVAL = re.compile(rf"^(?:(?P<value>{_NUM})\s+)?\[(?P<low>{_NUM}|nan),\s*(?P<high>{_NUM}|nan)\]$")
_PERCENT = re.compile(rf"^(?P<value>{_NUM})\s?%$")
_COUNT = re.compile(r"^(?P<k>\d+)/(?P<n>\d+)$")
_ARROW = re.compile(rf"^(?P<a>{_NUM})\s*->\s*(?P<b>{_NUM})$")


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95 % interval (``value`` is None for an interval printed alone)."""

    value: float | None
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0: a difference the data support."""
        return self.low > 0 or self.high < 0

    @property
    def direction(self) -> str | None:
        """``"higher"`` or ``"lower"`` for a difference the data support, None inside the noise."""
        return None if not self.excludes_zero else ("higher" if self.low > 0 else "lower")

    @property
    def signed(self) -> str:
        """As a difference is printed: ``+0.0846 [+0.02, +0.16]``."""
        return self.format(signed=True)

    def format(self, signed: bool = False) -> str:
        """``0.7205 [0.63, 0.82]`` (``signed``: ``+0.0846 [+0.02, +0.16]``), as the tables print it
        (:func:`hmrm.train.stats.format_interval`); an interval printed alone has no estimate."""
        if self.value is None:
            g = "+.2f" if signed else ".2f"
            return f"[{self.low:{g}}, {self.high:{g}}]"
        return format_interval(self.value, (self.low, self.high), signed)

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class Count:
    """``k/n``, e.g. the pairs of 16 on which one method beats another."""

    k: int
    n: int


@dataclass(frozen=True)
class Change:
    """``a -> b``, a figure before and after."""

    before: float
    after: float


def _number(text: str) -> float | int:
    text = text.replace("−", "-").replace(",", "")
    if text == "nan":
        return float("nan")
    value = float(text)
    return int(value) if re.fullmatch(r"[+\-]?\d+", text) else value


def parse_cell(text: str) -> Any:
    """A table cell as a value (see the module docstring): None when empty, else a number, an
    :class:`Interval`, a :class:`Count`, a :class:`Change`, or the cell's text with its markdown
    emphasis (``**``, backticks) removed."""
    cell = text.strip().replace("**", "").strip("`").strip()
    if not cell:
        return None
    if _NUMBER.match(cell):
        return _number(cell)
    m = _INTERVAL.match(cell)
    if m:
        value = m["value"]
        return Interval(None if value is None else float(_number(value)), float(_number(m["low"])), float(_number(m["high"])))
    m = _PERCENT.match(cell)
    if m:
        return round(float(_number(m["value"])) / 100, 10)
    m = _COUNT.match(cell)
    if m:
        return Count(int(m["k"]), int(m["n"]))
    m = _ARROW.match(cell)
    if m:
        return Change(float(_number(m["a"])), float(_number(m["b"])))
    return cell


def _to_json(value: Any) -> Any:
    if isinstance(value, Interval):
        return {"value": value.value, "low": value.low, "high": value.high}
    if isinstance(value, Count):
        return {"k": value.k, "n": value.n}
    if isinstance(value, Change):
        return {"before": value.before, "after": value.after}
    if isinstance(value, float) and value != value:
        return None
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"value", "low", "high"}:
            return Interval(value["value"], value["low"], value["high"])
        if set(value) == {"k", "n"}:
            return Count(value["k"], value["n"])
        if set(value) == {"before", "after"}:
            return Change(value["before"], value["after"])
    return value


def _split_row(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") else body
    return [c.strip() for c in re.split(r"(?<!\\)\|", body)]


def _is_separator(line: str) -> bool:
    return bool(re.fullmatch(r"\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?", line.strip()))


def parse_results_markdown(text: str) -> dict:
    """The JSON twin of a markdown results file: its text paragraphs (``text``) and its tables, each
    with the paragraph above it (``caption``), its ``header``, its raw ``cells`` and the parsed
    ``values`` (:func:`parse_cell`, written as JSON)."""
    lines = text.splitlines()
    paragraphs: list[str] = []
    tables: list[dict] = []
    block: list[str] = []

    def close_text():
        if block:
            paragraphs.append(" ".join(s.strip() for s in block))
            block.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("|") and i + 1 < len(lines) and _is_separator(lines[i + 1]):
            close_text()
            header = _split_row(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_split_row(lines[i]))
                i += 1
            tables.append({"caption": paragraphs[-1] if paragraphs else None, "header": header, "cells": rows,
                           "values": [[_to_json(parse_cell(c)) for c in row] for row in rows]})
            continue
        if line.strip():
            block.append(line)
        else:
            close_text()
        i += 1
    close_text()
    return {"format": FORMAT, "text": paragraphs, "tables": tables}


def twin_path(path: str | Path) -> Path:
    """The JSON twin of a markdown results file (``x.md`` -> ``x.json``)."""
    path = Path(path)
    return path.with_suffix(".json")


def twin_text(markdown_text: str) -> str:
    """The bytes :func:`write_results` puts in the twin of a file holding ``markdown_text``."""
    return json.dumps(parse_results_markdown(markdown_text), indent=1, ensure_ascii=False) + "\n"


def write_results(path: str | Path, text: str) -> Path:
    """Write a measured table: ``path`` (markdown, ``text`` plus a final newline) and its JSON twin
    beside it, each atomically. Returns the twin's path."""
    path = Path(path)
    text = text if text.endswith("\n") else text + "\n"
    atomic_write_text(path, text)
    twin = twin_path(path)
    atomic_write_text(twin, twin_text(text))
    return twin


# ----------------------------------------------------------------------------- reading
class ResultsTable:
    """One table of a results file. Rows are found by the text of their first cell (or of any cell,
    with ``column``), columns by their header (an exact header, else the one header that contains
    the given text)."""

    def __init__(self, record: dict):
        self.caption: str | None = record.get("caption")
        self.header: list[str] = list(record["header"])
        self.cells: list[list[str]] = [list(r) for r in record["cells"]]
        self.values: list[list[Any]] = [[_from_json(v) for v in r] for r in record["values"]]

    def __len__(self) -> int:
        return len(self.values)

    def column(self, name: str) -> int:
        if name in self.header:
            return self.header.index(name)
        for hits in ([k for k, h in enumerate(self.header) if h.startswith(name)],
                     [k for k, h in enumerate(self.header) if name in h]):
            if len(hits) == 1:
                return hits[0]
        raise KeyError(f"column {name!r}: no single header starts with it or contains it ({self.header})")

    def find(self, key: str, column: str | int = 0) -> int:
        """The index of the one row whose cell in ``column`` is ``key``, or else starts with it."""
        col = column if isinstance(column, int) else self.column(column)
        exact = [k for k, r in enumerate(self.cells) if r[col].replace("**", "") == key]
        hits = exact or [k for k, r in enumerate(self.cells) if r[col].replace("**", "").startswith(key)]
        if len(hits) != 1:
            raise KeyError(f"row {key!r}: {len(hits)} rows match in column {self.header[col]!r}")
        return hits[0]

    def where(self, **conditions: str) -> int:
        """The index of the one row whose cells equal the given texts, by column (keyword
        arguments; a column whose header is not a name, e.g. ``UF1 [95%]``, through ``**{...}``)."""
        cols = {self.column(k): str(v) for k, v in conditions.items()}
        hits = [k for k, r in enumerate(self.cells) if all(r[c].replace("**", "") == v for c, v in cols.items())]
        if len(hits) != 1:
            raise KeyError(f"{len(hits)} rows have {conditions}")
        return hits[0]

    def value(self, row: str | int, column: str | int) -> Any:
        """The parsed value of one cell (see :func:`parse_cell`)."""
        r = row if isinstance(row, int) else self.find(row)
        c = column if isinstance(column, int) else self.column(column)
        return self.values[r][c]

    def cell(self, row: str | int, column: str | int) -> str:
        """The cell as the markdown prints it."""
        r = row if isinstance(row, int) else self.find(row)
        c = column if isinstance(column, int) else self.column(column)
        return self.cells[r][c]

    def rows(self) -> Iterator[dict]:
        """Each row as ``{header: value}``."""
        for r in self.values:
            yield dict(zip(self.header, r))

    def frame(self):
        """The table as a pandas DataFrame of parsed values."""
        import pandas as pd

        return pd.DataFrame(self.values, columns=self.header)

    def markdown(self) -> str:
        return markdown_table(self.header, self.cells)


class ResultsFile:
    """A results file read back from its JSON twin: ``text`` (its paragraphs), ``tables``, ``path``
    (the markdown file) and ``markdown`` (its whole text, to display)."""

    def __init__(self, path: Path, record: dict):
        if record.get("format") != FORMAT:
            raise ValueError(f"{path}: not a results twin of format {FORMAT!r}")
        self.path = path
        self.text: list[str] = record["text"]
        self.tables = [ResultsTable(t) for t in record["tables"]]

    @property
    def markdown(self) -> str:
        return self.path.read_text() if self.path.is_file() else ""

    def table(self, header_of_first_column: str, caption: str | None = None) -> ResultsTable:
        """The one table whose first column is headed ``header_of_first_column`` (and, with
        ``caption``, whose caption contains that text)."""
        hits = [t for t in self.tables if t.header[0] == header_of_first_column
                and (caption is None or caption in (t.caption or ""))]
        if len(hits) != 1:
            raise KeyError(f"{self.path.name}: {len(hits)} tables have a first column {header_of_first_column!r} "
                           f"(first columns: {[t.header[0] for t in self.tables]})")
        return hits[0]


def resolve(path: str | Path) -> Path:
    """``path`` as given when it exists, else relative to the repository (``figures/...``,
    ``benchmarks/results/...``); the ``.md`` suffix is added to a bare stem."""
    path = Path(path)
    if path.suffix not in (".md", ".json"):
        path = path.with_suffix(".md")
    if not path.is_absolute() and not path.exists():
        path = REPO / path
    return path.with_suffix(".md")


def read_results(path: str | Path) -> ResultsFile:
    """Read a results file (``figures/demo_results``, with or without ``.md`` / ``.json``) from its
    JSON twin. A missing twin is an error that says which command writes it."""
    md = resolve(path)
    twin = twin_path(md)
    if not twin.is_file():
        raise FileNotFoundError(f"{twin}: no results twin; the command that wrote {md.name} writes it beside it "
                                f"(run it again, or `python -m hmrm.resultfiles {md}` to make it from the markdown)")
    return ResultsFile(md, json.loads(twin.read_text()))


def committed_results_files(root: str | Path = REPO) -> list[Path]:
    """The markdown results files of the repository: ``figures/*.md`` and ``benchmarks/results/**/*.md``."""
    root = Path(root)
    return sorted([*root.glob("figures/*.md"), *root.glob("benchmarks/results/**/*.md")])


def verdict(interval: Interval | Sequence[float], what: str = "the difference") -> str:
    """Plain words for a paired interval of a difference: supported by the data when it excludes 0."""
    interval = interval if isinstance(interval, Interval) else Interval(None, *interval)
    if interval.excludes_zero:
        return f"{what} is supported by the data (its interval excludes 0)"
    return f"{what} is inside the noise (its interval contains 0)"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hmrm.resultfiles FILE.md ...``: (re)write the JSON twin of each markdown results file."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m hmrm.resultfiles",
                                 description="Write the JSON twin of markdown results files (x.md -> x.json), "
                                             "the same bytes the command that wrote x.md writes.")
    ap.add_argument("files", nargs="+", type=Path, help="markdown results files")
    args = ap.parse_args(argv)

    for md in args.files:
        if md.suffix != ".md" or not md.is_file():
            ap.error(f"{md}: not a markdown file")
        atomic_write_text(twin_path(md), twin_text(md.read_text()))
        print(twin_path(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
