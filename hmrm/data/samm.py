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
from .realsets import build_samples, require_dir, rows_from_sheet
from .tables import id_text

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
              apex_cache: ApexCache | None = None, estimate_apex: bool = True, lenient: bool = False) -> SampleSet:
    root = require_dir(Path(root), "SAMM", EXPECT)
    ann = Path(annotation) if annotation else find_annotation(root)
    fr = root / "SAMM"
    if not fr.is_dir():
        raise DataError(f"{fr} does not exist. Expected {EXPECT}.")
    rows = rows_from_sheet(ann, COLUMNS, "samm", "SAMM", fr, lambda v: id_text(v, 3), f"SAMM's FACS code sheet ({EXPECT})")
    return build_samples(rows, scheme, apex_cache, estimate_apex, "SAMM", f"Check that {fr} holds every clip folder of the sheet.",
                         lenient=lenient)
