"""CASME II (Yan et al., 2014): 255 micro-expression clips of 26 subjects at 200 fps.

Layout as distributed (``--root`` is the folder holding these)::

    CASME2-coding-20140508.xlsx          (any CASME2-coding-*.xlsx version)
    CASME2_RAW_selected/sub01/EP02_01f/img46.jpg ...
    Cropped/sub01/EP02_01f/reg_img46.jpg ...         (the cropped release; either will do)

Quirks handled: blank unnamed columns in the sheet; subjects printed as integers (``1`` for the
folder ``sub01``); an apex written as ``/`` in 21 rows (estimated from motion, and each estimate is
listed in ``SampleSet.fixes``); an offset that contradicts the frames on disk (set to the folder's
last frame; the MEB benchmark (Varanka et al., github.com/tvaranka/meb) makes the same correction
"based on the image folders"). Emotions are the sheet's *Estimated Emotion* column.
"""
from __future__ import annotations

from pathlib import Path

from .apex import ApexCache
from .records import DataError, SampleSet
from .realsets import build_samples, require_dir, rows_from_sheet
from .tables import id_text

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("OnsetFrame", "Onset Frame", "Onset", "OnsetF"),
    "apex": ("ApexFrame", "Apex Frame", "Apex", "ApexF1"),
    "offset": ("OffsetFrame", "Offset Frame", "Offset", "OffsetF"),
    "aus": ("Action Units", "AUs", "AU"),
    "emotion": ("Estimated Emotion", "Emotion"),
}
FRAME_FOLDERS = {"raw": "CASME2_RAW_selected", "cropped": "Cropped"}
EXPECT = "CASME2-coding-*.xlsx and CASME2_RAW_selected/subXX/EPxx_yy/imgN.jpg (or Cropped/...)"


def find_annotation(root: Path) -> Path:
    found = sorted(root.glob("CASME2-coding-*.xls*")) + sorted(root.glob("CASME2-coding-*.csv"))
    if not found:
        raise DataError(f"no CASME2-coding-*.xlsx in {root}. Expected {EXPECT}. The coding sheet comes with the data set.")
    return found[-1]  # the newest version when several are present


def frame_root(root: Path, frames: str) -> Path:
    if frames == "auto":
        for kind in ("raw", "cropped"):
            if (root / FRAME_FOLDERS[kind]).is_dir():
                return root / FRAME_FOLDERS[kind]
        raise DataError(f"neither {root / 'CASME2_RAW_selected'} nor {root / 'Cropped'} exists. Expected {EXPECT}.")
    if frames not in FRAME_FOLDERS:
        raise ValueError(f"frames must be 'raw', 'cropped' or 'auto', not {frames!r}")
    path = root / FRAME_FOLDERS[frames]
    if not path.is_dir():
        raise DataError(f"{path} does not exist. Expected {EXPECT}; use --frames to pick the other release.")
    return path


def load_casme2(root: str | Path, scheme: str = "casme2_5", frames: str = "auto", annotation: str | Path | None = None,
                apex_cache: ApexCache | None = None, estimate_apex: bool = True, lenient: bool = False) -> SampleSet:
    root = require_dir(Path(root), "CASME II", EXPECT)
    ann = Path(annotation) if annotation else find_annotation(root)
    fr = frame_root(root, frames)
    rows = rows_from_sheet(ann, COLUMNS, "casme2", "CASME II", fr, lambda v: id_text(v, 2, "sub"),
                           f"the coding sheet of CASME II ({EXPECT})")
    return build_samples(rows, scheme, apex_cache, estimate_apex, "CASME II",
                         f"Check that {fr} holds every clip folder of the coding sheet.", lenient=lenient)
