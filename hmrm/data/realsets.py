"""Shared machinery of the licensed data-set parsers (CASME II, SAMM, SMIC-HS).

A parser turns each annotation row into a :class:`RawRow` (ids, frame folder, frame numbers as
the file gives them, raw emotion, AUs) and hands the rows to :func:`build_samples`, which

* drops rows outside the class scheme (counted in ``SampleSet.dropped``);
* lists the clip's frame files and skips rows whose frames are missing (``SampleSet.skipped``,
  plus one warning naming the first few);
* corrects annotation errors it can prove from the frames on disk, recording each in
  ``SampleSet.fixes`` with its reason: an offset before the onset or past the last frame of the
  folder becomes the folder's last frame; a missing apex (blank, ``/``, ``-1``) or one outside
  onset..offset is estimated from motion (:mod:`hmrm.data.apex`);
* returns :class:`~hmrm.data.records.Sample` records with 0-based indices into the frames from
  onset to offset (the file's frame numbers stay in ``meta['frame_numbers']``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .apex import ApexCache
from .classes import get_scheme
from .records import DataError, Sample, SampleSet, unreadable_row, warn_unreadable
from .tables import frame_number, list_frames, read_sheet


@dataclass
class RawRow:
    dataset: str
    subject: str
    sample_id: str
    folder: Path
    onset: int | None  # frame numbers as the data set names its files; None = "first frame"
    apex: int | None  # None = not annotated
    offset: int | None  # None = "last frame"
    emotion: str
    aus: str = ""
    where: str = ""  # "file, line N" for messages
    meta: dict = field(default_factory=dict)
    emotion_column: str = "emotion"  # the header of the emotion column, as the file spells it


class _Skip(Exception):
    """A row that cannot become a sample (the message says why); it is listed in ``SampleSet.skipped``."""


def _clip_frames(r: RawRow, key: str, fixes: list) -> tuple[list[int], list[Path]]:
    """The frame numbers onset..offset of a row and their files, an impossible offset fixed (listed in
    ``fixes``); :class:`_Skip` when the folder is empty, the onset absent or a frame missing."""
    frames = list_frames(r.folder)
    if not frames:
        raise _Skip(f"no frame files in {r.folder}")
    numbers = list(frames)
    onset = numbers[0] if r.onset is None else r.onset
    offset = numbers[-1] if r.offset is None else r.offset
    if onset not in frames:
        raise _Skip(f"onset frame {onset} not in {r.folder} (it holds {numbers[0]}..{numbers[-1]})")
    if offset < onset or offset > numbers[-1]:
        fixes.append((key, f"offset {offset} -> {numbers[-1]}",
                      f"{r.where}: offset {'before the onset' if offset < onset else 'past the last frame'} of the "
                      f"folder; set to the folder's last frame"))
        offset = numbers[-1]
    span = [n for n in numbers if onset <= n <= offset]
    gaps = offset - onset + 1 - len(span)
    if gaps:
        missing = [n for n in range(onset, offset + 1) if n not in frames]
        raise _Skip(f"{gaps} missing frame(s) between onset {onset} and offset {offset} in {r.folder}, first {missing[0]}")
    return span, [frames[n] for n in span]


def _apex_of(r: RawRow, key: str, span: list[int], paths: list[Path], cache, fixes: list) -> tuple[int, bool]:
    """The apex frame number of a row and whether it was estimated (an apex outside the clip, or none,
    is estimated from motion through ``cache``; listed in ``fixes``)."""
    apex = r.apex
    if apex is not None and not span[0] <= apex <= span[-1]:
        fixes.append((key, f"apex {apex} outside onset..offset {span[0]}..{span[-1]}: estimated", f"{r.where}"))
        apex = None
    if apex is not None:
        return apex, False
    if cache is None:
        raise _Skip("no apex annotated and estimation turned off")
    try:
        idx = cache.get(key, paths)
    except DataError as exc:
        raise _Skip(str(exc)) from None
    if r.apex is None and r.dataset != "smic":
        fixes.append((key, f"apex missing -> {span[idx]} (estimated)", f"{r.where}: no apex in the file; estimated from motion"))
    return span[idx], True


def build_samples(rows: list[RawRow], scheme, apex_cache: ApexCache | None = None, estimate_apex: bool = True,
                  what: str = "", fix_hint: str = "", lenient: bool = False) -> SampleSet:
    sch = get_scheme(scheme)
    cache = apex_cache if apex_cache is not None else (ApexCache() if estimate_apex else None)
    samples, skipped, dropped, fixes, unreadable = [], [], {}, [], []
    for r in rows:
        key = f"{r.dataset}/{r.subject}/{r.sample_id}"
        problem = sch.problem(r.emotion)
        if problem:
            unreadable_row(r.where or key, r.emotion_column, problem, lenient, unreadable)
            continue
        label = sch.label(r.emotion)
        if label is None:
            dropped[r.emotion] = dropped.get(r.emotion, 0) + 1
            continue
        try:
            span, paths = _clip_frames(r, key, fixes)
            apex, apex_estimated = _apex_of(r, key, span, paths, cache, fixes)
        except _Skip as why:
            skipped.append((key, str(why)))
            continue
        onset, offset = span[0], span[-1]
        samples.append(Sample(
            dataset=r.dataset, subject=r.subject, sample_id=r.sample_id, frames=tuple(paths),
            onset=0, apex=span.index(apex), offset=len(span) - 1, emotion=r.emotion, label=label,
            label_index=sch.index(label), aus=r.aus,
            meta={"frame_numbers": [onset, apex, offset], "apex_estimated": apex_estimated, "source": r.where, **r.meta},
        ))
    if skipped:
        warnings.warn(
            f"{what or 'data set'}: {len(skipped)} sample(s) skipped: "
            + "; ".join(f"{k} ({why})" for k, why in skipped[:3]) + (" ..." if len(skipped) > 3 else "")
            + (f". {fix_hint}" if fix_hint else ""),
            stacklevel=3,
        )
    warn_unreadable(unreadable, what or "data set")
    return SampleSet(samples, skipped, dropped, sch, fixes, unreadable)


def rows_from_sheet(ann: Path, columns: dict, dataset: str, what: str, frame_root: Path, subject_id, expect: str) -> list[RawRow]:
    """Annotation rows of a coding sheet (CASME II, SAMM) as :class:`RawRow`; ``subject_id`` turns
    the Subject cell into the folder name. Malformed cells raise :class:`DataError` naming the line."""
    rows = []
    for r in read_sheet(ann, columns, what, f"Expected {expect}."):
        line = f"{ann}, line {r['_line']}"
        header = r["_header"]
        if r["subject"] is None or r["filename"] is None:
            raise DataError(f"{line}: empty Subject or Filename. Fix or delete the row.")
        try:
            onset, apex, offset = (frame_number(r[k]) for k in ("onset", "apex", "offset"))
        except ValueError as exc:
            raise DataError(f"{line}: {exc}. Fix the cell.") from None
        if onset is None or offset is None:
            raise DataError(f"{line}: onset and offset frames are required, got {r['onset']!r}, {r['offset']!r}.")
        subject, sample = subject_id(r["subject"]), str(r["filename"]).strip()
        rows.append(RawRow(dataset, subject, sample, frame_root / subject / sample, onset, apex, offset,
                           str(r["emotion"] or "").strip(), str(r["aus"] or "").strip(), line,
                           emotion_column=header["emotion"]))
    return rows


def require_dir(path: Path, what: str, expect: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{what} folder {path} {folder_problem(path)}. Expected {expect}. Pass the folder you were sent "
                        "(--root of hmrm prepare, --data-root of hmrm loso and hmrm reproduce).")
    return path


def folder_problem(path: Path) -> str:
    """What is wrong with a path that should be a folder: it does not exist, or it is a file."""
    path = Path(path)
    if path.is_file():
        return "is a file, not a folder"
    return "does not exist"
