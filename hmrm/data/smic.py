"""SMIC-HS (Li et al., 2013): 164 micro-expression clips of 16 subjects at 100 fps.

Layout (``--root`` is the folder holding ``HS``)::

    HS/s1/micro/negative/s1_ne_01/image012345.bmp ...
    HS/s1/micro/positive/s1_po_01/...
    HS/s1/micro/surprise/s1_sur_01/...

There is no annotation sheet: the class is the folder name, each clip runs from its first to its
last frame, and the apex is not given, so it is estimated from motion (:mod:`hmrm.data.apex`) for
every clip (``meta['apex_estimated']``). Ids follow the MEGC2019 composite list: subject ``s1``
becomes ``s01`` and clip ``s1_ne_01`` becomes ``s01_ne_01``.
"""
from __future__ import annotations

import re
from pathlib import Path

from .apex import ApexCache
from .records import DataError, SampleSet
from .realsets import RawRow, build_samples, require_dir

EXPECT = "HS/sN/micro/{negative,positive,surprise}/sN_xx_NN/*.bmp"
CLASSES = ("negative", "positive", "surprise")


def composite_id(name: str) -> str:
    """``s1`` -> ``s01``, ``s1_ne_01`` -> ``s01_ne_01`` (already padded ids are kept)."""
    m = re.fullmatch(r"s(\d+)(_.*)?", name.strip(), flags=re.IGNORECASE)
    if not m:
        return name
    return f"s{int(m.group(1)):02d}{m.group(2) or ''}"


def load_smic(root: str | Path, scheme: str = "smic3", apex_cache: ApexCache | None = None,
              estimate_apex: bool = True, lenient: bool = False) -> SampleSet:
    root = require_dir(Path(root), "SMIC", EXPECT)
    hs = root / "HS" if (root / "HS").is_dir() else root
    subjects = sorted((p for p in hs.iterdir() if p.is_dir() and re.fullmatch(r"s\d+", p.name, re.IGNORECASE)),
                      key=lambda p: int(p.name[1:]))
    if not subjects:
        raise DataError(f"no subject folders s1, s2, ... in {hs}. Expected {EXPECT} under --root.")
    rows = []
    for sub in subjects:
        micro = sub / "micro"
        if not micro.is_dir():
            continue
        for emotion in CLASSES:
            for clip in sorted(p for p in (micro / emotion).glob("*") if p.is_dir()):
                rows.append(RawRow("smic", composite_id(sub.name), composite_id(clip.name), clip, None, None, None,
                                   emotion, "", str(clip.relative_to(root)), {"folder_name": clip.name}))
    if not rows:
        raise DataError(f"no clip folders under {hs}/sN/micro/<class>/. Expected {EXPECT}.")
    return build_samples(rows, scheme, apex_cache, estimate_apex, "SMIC-HS", "", lenient=lenient)
