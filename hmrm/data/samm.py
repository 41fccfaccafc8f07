"""SAMM (Davison et al., 2018): 159 micro-expression clips of 32 subjects at 200 fps.

Layout (``--root`` is the folder holding these)::

    SAMM_Micro_FACS_Codes_v2.xlsx
    SAMM/006/006_1_2/006_05562.jpg ...

Quirks handled: preamble rows above the header of the sheet; subjects printed as integers
(``6`` for ``006``); emotion spellings ("Other" / "Others"); an apex of ``-1`` where none was
annotated (estimated from motion; 3 rows in v2, as the MEB benchmark also notes); an offset
that contradicts the frames on disk (set to the folder's last frame, as MEB does for one row).
"""
from __future__ import annotations

from pathlib import Path

from .apex import ApexCache
from .records import DataError, SampleSet
from .realsets import RawRow, build_samples, require_dir
from .tables import frame_number, id_text, read_sheet

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("Onset Frame", "Onset"),
    "apex": ("Apex Frame", "Apex"),
    "offset": ("Offset Frame", "Offset"),
    "aus": ("Action Units", "AUs"),
    "emotion": ("Estimated Emotion", "Emotion"),
}
EXPECT = "SAMM_Micro_FACS_Codes_v2.xlsx and SAMM/<subject>/<subject>_x_y/<subject>_NNNNN.jpg"


def find_annotation(root: Path) -> Path:
    found = sorted(root.glob("SAMM_Micro_FACS_Codes*.xls*")) + sorted(root.glob("SAMM_Micro_FACS_Codes*.csv"))
    if not found:
        raise DataError(f"no SAMM_Micro_FACS_Codes_v2.xlsx in {root}. Expected {EXPECT}.")
    return found[-1]


def load_samm(root: str | Path, scheme: str = "samm5", annotation: str | Path | None = None,
              apex_cache: ApexCache | None = None, estimate_apex: bool = True) -> SampleSet:
    root = require_dir(Path(root), "SAMM", EXPECT)
    ann = Path(annotation) if annotation else find_annotation(root)
    fr = root / "SAMM"
    if not fr.is_dir():
        raise DataError(f"{fr} does not exist. Expected {EXPECT}.")
    rows = []
    for r in read_sheet(ann, COLUMNS, "SAMM", f"Expected SAMM's FACS code sheet ({EXPECT})."):
        where = f"{ann.name}, line {r['_line']}"
        if r["subject"] is None or r["filename"] is None:
            raise DataError(f"{ann}, line {r['_line']}: empty Subject or Filename. Fix or delete the row.")
        subject = id_text(r["subject"], 3)
        try:
            onset, apex, offset = (frame_number(r[k]) for k in ("onset", "apex", "offset"))
        except ValueError as exc:
            raise DataError(f"{ann}, line {r['_line']}: {exc}. Fix the cell.") from None
        if onset is None or offset is None:
            raise DataError(f"{ann}, line {r['_line']}: onset and offset frames are required, got {r['onset']!r}, {r['offset']!r}.")
        sample = str(r["filename"]).strip()
        rows.append(RawRow("samm", subject, sample, fr / subject / sample, onset, apex, offset,
                           str(r["emotion"] or "").strip(), str(r["aus"] or "").strip(), where))
    return build_samples(rows, scheme, apex_cache, estimate_apex, "SAMM", f"Check that {fr} holds every clip folder of the sheet.")
