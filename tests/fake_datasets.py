"""Build the licensed data sets' folder layouts in a temporary folder, quirks included, with tiny
frames, so the parsers can be tested without the data (which cannot be shipped)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from openpyxl import Workbook

from hmrm.data.composite import composite_list

_JPG = None


def _frame_bytes(ext: str) -> bytes:
    img = (np.random.default_rng(0).random((12, 12)) * 255).astype(np.uint8)
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def write_frames(folder: Path, numbers, pattern: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = _frame_bytes(Path(pattern.format(0)).suffix)
    for n in numbers:
        (folder / pattern.format(n)).write_bytes(data)


def write_xlsx(path: Path, rows: list[list]) -> None:
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    wb.save(path)


NEG_CASME = ("disgust", "repression")
NEG_SAMM = ("anger", "contempt", "disgust", "fear", "sadness")


def casme2_rows(samples) -> list[list]:
    """Rows of a CASME2-coding sheet: blank unnamed columns at C and G, integer subjects."""
    header = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units", "Estimated Emotion"]
    out = [header]
    for sub, name, on, ap, off, emo in samples:
        out.append([int(sub[3:]), name, None, on, ap, off, None, "4+7", emo])
    return out


def make_casme2(root: Path, samples, cropped: bool = False) -> Path:
    """``samples``: (subject 'subNN', filename, onset, apex ('/' allowed), offset, emotion,
    [frame numbers on disk or None for onset..offset])."""
    root.mkdir(parents=True, exist_ok=True)
    write_xlsx(root / "CASME2-coding-20140508.xlsx", casme2_rows([s[:6] for s in samples]))
    base = root / ("Cropped" if cropped else "CASME2_RAW_selected")
    for s in samples:
        sub, name, on, ap, off = s[:5]
        frames = s[6] if len(s) > 6 and s[6] is not None else range(on, off + 1)
        write_frames(base / sub / name, frames, "reg_img{}.jpg" if cropped else "img{}.jpg")
    return root


def make_samm(root: Path, samples) -> Path:
    """``samples``: (subject '006', filename, onset, apex (-1 allowed), offset, emotion)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = [["SAMM micro-movement FACS codes"], ["Version 2"], [], ["Notes: frames are numbered from the start of each video"]]
    rows += [[None] * 3 for _ in range(8)]
    rows.append(["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration", "Type",
                 "Action Units", "Notes", "Estimated Emotion"])
    for sub, name, on, ap, off, emo in samples:
        rows.append([int(sub), name, 1, on, ap, off, off - on + 1, "Micro - 1/2", "R12", None, emo])
    write_xlsx(root / "SAMM_Micro_FACS_Codes_v2.xlsx", rows)
    for sub, name, on, ap, off, emo in samples:
        write_frames(root / "SAMM" / sub / name, range(on, off + 1), f"{sub}_{{:05d}}.jpg")
    return root


def make_smic(root: Path, samples, n_frames: int = 3) -> Path:
    """``samples``: (subject folder 's1', clip folder 's1_ne_01', class folder)."""
    for sub, clip, cls in samples:
        write_frames(root / "HS" / sub / "micro" / cls / clip, range(1000, 1000 + n_frames), "image{:07d}.bmp")
    return root


def make_composite(root: Path) -> Path:
    """All three data sets holding exactly what the MEGC2019 composite needs, plus rows it leaves out."""
    rows = composite_list()
    casme, samm, smic = [], [], []
    for i, r in enumerate(rows):
        lab = r["label"]
        if r["dataset"] == "casme2":
            emo = {"positive": "happiness", "surprise": "surprise"}.get(lab) or NEG_CASME[i % 2]
            casme.append((r["subject"], r["sample"], 10, 11, 12, emo))
        elif r["dataset"] == "samm":
            emo = {"positive": "Happiness", "surprise": "Surprise"}.get(lab) or NEG_SAMM[i % 5].capitalize()
            samm.append((r["subject"], r["sample"], 100, 101, 102, emo))
        else:
            n = int(r["subject"][1:])
            code = r["sample"].split("_")[1]
            smic.append((f"s{n}", f"s{n}_{code}_{r['sample'].split('_')[2]}", lab))
    # rows outside the composite: 'others' and 'fear' in CASME II, 'Other' in SAMM
    casme += [("sub01", "EP99_01", 5, 6, 7, "others"), ("sub02", "EP99_02", 5, 6, 7, "fear")]
    samm += [("006", "006_9_9", 50, 51, 52, "Other")]
    make_casme2(root / "casme2", casme)
    make_samm(root / "samm", samm)
    make_smic(root / "smic", smic)
    return root
