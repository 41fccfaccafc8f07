"""Reading the data sets' annotation sheets, quirks included.

The licensed sets ship Excel files written by hand: preamble rows above the header (SAMM),
blank unnamed columns (CASME II), integers where ids are expected (subject ``1`` for folder
``sub01``), ``/`` or ``-1`` for a missing apex. :func:`read_sheet` finds the header row, drops the
blank columns and normalises the column names; :func:`frame_number` reads one frame-number cell.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from .records import DataError


def _norm(name) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def read_sheet(path: str | Path, required: dict[str, tuple[str, ...]], what: str, fix: str) -> list[dict]:
    """Rows of an ``.xlsx`` / ``.xls`` / ``.csv`` sheet as dicts keyed by the names in ``required``.

    ``required`` maps our column name to the spellings the files use (compared without case,
    spaces or underscores). The header is the first row holding a cell equal to one spelling of
    every required column, so preamble rows above it are skipped. Each dict also has ``_line``,
    the row's line number in the sheet (1-based, as a spreadsheet shows it), and ``_header``, our
    column names -> the header cells as the file spells them, for error messages.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} annotation file {path} is missing. {fix}")
    try:
        if path.suffix.lower() == ".csv":
            raw = pd.read_csv(path, header=None, dtype=object)
        else:
            raw = pd.read_excel(path, header=None, dtype=object)
    except Exception as exc:  # corrupt or wrong format: name the file
        raise DataError(f"{what} annotation file {path} cannot be read ({type(exc).__name__}: {exc}). {fix}") from None
    wanted = {k: {_norm(s) for s in v} for k, v in required.items()}
    header_row = None
    for i in range(min(len(raw), 50)):
        cells = {_norm(c) for c in raw.iloc[i].tolist() if not _blank(c)}
        if all(cells & spellings for spellings in wanted.values()):
            header_row = i
            break
    if header_row is None:
        expect = ", ".join(f"{k} ({' / '.join(v)})" for k, v in required.items())
        raise DataError(f"{path}: no header row with the columns {expect} in its first 50 rows. {fix}")
    header = [_norm(c) if not _blank(c) else "" for c in raw.iloc[header_row].tolist()]
    col_of = {}
    for key, spellings in wanted.items():
        col_of[key] = next(j for j, h in enumerate(header) if h in spellings)
    names = {key: str(raw.iloc[header_row, j]).strip() for key, j in col_of.items()}
    rows = []
    for i in range(header_row + 1, len(raw)):
        values = raw.iloc[i].tolist()
        if all(_blank(v) for v in values):
            continue
        row = {key: (None if _blank(values[j]) else values[j]) for key, j in col_of.items()}
        row["_line"] = i + 1
        row["_header"] = names
        rows.append(row)
    return rows


def frame_number(value) -> int | None:
    """An annotation cell as a frame number, or ``None`` when it says "missing" (blank, ``/``, ``-1``)."""
    if value is None:
        return None
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return None if value < 0 else int(value)
    if isinstance(value, float):
        if math.isnan(value) or value < 0:
            return None
        if value.is_integer():
            return int(value)
        raise ValueError(f"frame number {value!r} is not an integer")
    text = str(value).strip()
    if text in ("", "/", "-", "-1", "nan", "NaN", "n/a", "N/A"):
        return None
    if re.fullmatch(r"\d+(\.0+)?", text):
        return int(float(text))
    raise ValueError(f"frame number {value!r} is not an integer")


def id_text(value, width: int = 0, prefix: str = "") -> str:
    """Ids that Excel turned into numbers back into text: ``1`` -> ``sub01`` (prefix "sub", width 2),
    ``6`` -> ``006`` (width 3). Text ids are returned trimmed (``sub01`` stays ``sub01``)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{prefix}{value:0{width}d}"
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return f"{prefix}{int(text):0{width}d}"
    return text


_NUM = re.compile(r"(\d+)(?!.*\d)")


def list_frames(folder: Path, exts: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")) -> dict[int, Path]:
    """Frame files of a clip folder by frame number (the last number in the file name:
    ``img46.jpg`` -> 46, ``reg_img46.jpg`` -> 46, ``006_05562.jpg`` -> 5562)."""
    out: dict[int, Path] = {}
    if not folder.is_dir():
        return out
    for p in folder.iterdir():
        if p.suffix.lower() in exts and p.is_file():
            m = _NUM.search(p.stem)
            if m:
                out[int(m.group(1))] = p
    return dict(sorted(out.items()))
