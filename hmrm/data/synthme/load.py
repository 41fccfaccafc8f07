"""Reading a SynthME folder back: the samples with their labels, the exact flows, the frames, and the
tiny build the chapters use."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...face import load_image
from ...utils import cache_dir
from ..classes import get_scheme
from ..realsets import folder_problem
from ..records import DataError, Sample, SampleSet, unreadable_row, warn_unreadable
from .build import build_synthme, frame_name, gt_path
from .config import SynthConfig, rebuild_command, synthme_command

if TYPE_CHECKING:
    from ..records import SampleSet


def load_synthme(root: str | Path, scheme: str = "composite3", lenient: bool = False) -> "SampleSet":
    """Read a SynthME build as :class:`~hmrm.data.records.Sample` records (the same record the
    CASME II parser returns). Rows whose frames are missing are skipped and listed in
    ``.skipped``; rows outside ``scheme`` are counted in ``.dropped``; a row that cannot be read as
    written (frame numbers out of order, an empty or unknown emotion) is an error naming the line,
    or with ``lenient`` a skipped row listed in ``.unreadable``."""
    import warnings

    root = Path(root)
    sch = get_scheme(scheme)
    ann = root / "annotations.csv"
    rebuild = f"`{rebuild_command(root)}`"
    if not root.is_dir():
        fix = ("give the folder `hmrm synthme --out` wrote (data/synthme after make demo)" if root.is_file() else
               f"build it with `{synthme_command(root)}` (or `make demo`)")
        raise DataError(f"SynthME folder {root} {folder_problem(root)}: {fix}.")
    if not ann.is_file():
        raise DataError(
            f"{ann} is missing, so {root} is not a finished SynthME build. "
            f"Run {rebuild} again: it resumes and writes the annotation file at the end."
        )
    samples, skipped, dropped, unreadable = [], [], {}, []
    with open(ann, newline="") as f:
        reader = csv.DictReader(f)
        missing_cols = [c for c in ("subject", "sample", "n_frames", "onset", "apex", "offset", "emotion") if c not in (reader.fieldnames or [])]
        if missing_cols:
            raise DataError(f"{ann}: missing column(s) {missing_cols}; the header is {reader.fieldnames}. Rebuild with {rebuild}.")
        for line, row in enumerate(reader, start=2):
            nums, n = _frame_numbers(row, f"{ann}, line {line}", rebuild)
            problem = sch.problem(row["emotion"])
            if problem:
                unreadable_row(f"{ann}, line {line}", "emotion", problem, lenient, unreadable)
                continue
            label = sch.label(row["emotion"])
            if label is None:
                dropped[row["emotion"]] = dropped.get(row["emotion"], 0) + 1
                continue
            clip = root / "frames" / row["subject"] / row["sample"]
            fmt = next((p.suffix[1:] for p in sorted(clip.glob("img001.*"))), "png")
            frames = [clip / frame_name(i, fmt) for i in range(n)]
            absent = [p for p in frames if not p.is_file()]
            if absent:
                skipped.append((f"synthme/{row['subject']}/{row['sample']}",
                                f"{len(absent)} missing frame(s), first {absent[0]}"))
                continue
            samples.append(_sample(root, row, frames, nums, label, sch, f"{ann}, line {line}"))
    if skipped:
        warnings.warn(
            f"{len(skipped)} SynthME sample(s) skipped for missing frames: "
            + "; ".join(f"{k} ({why})" for k, why in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
            + f". Run {rebuild} to rebuild them.",
            stacklevel=2,
        )
    warn_unreadable(unreadable, f"SynthME {ann}")
    return SampleSet(samples, skipped, dropped, sch, unreadable=unreadable)


def _sample(root: Path, row: dict, frames: list, nums: list[int], label: str, sch, where: str) -> Sample:
    """The :class:`~hmrm.data.records.Sample` of an annotation row whose frames are all there; a value the
    record refuses is an error naming ``where`` (the file and line)."""
    try:
        return Sample(
            dataset="synthme", subject=row["subject"], sample_id=row["sample"], frames=tuple(frames),
            onset=nums[0] - 1, apex=nums[1] - 1, offset=nums[2] - 1, emotion=row["emotion"], label=label,
            label_index=sch.index(label), aus=row.get("aus", ""),
            meta={"gt_flow": gt_path(root, row["subject"], row["sample"]), "frame_numbers": nums,
                  **{k: row[k] for k in ("peak_px", "head_px", "blink", "photo") if k in row}},
        )
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None


def _frame_numbers(row: dict, where: str, rebuild: str) -> tuple[list[int], int]:
    """(onset, apex, offset) and n_frames of an annotation row, 1-based as the file writes them, checked."""
    try:
        n = int(row["n_frames"])
        nums = [int(row[k]) for k in ("onset", "apex", "offset")]
    except (TypeError, ValueError):
        raise DataError(
            f"{where}: n_frames/onset/apex/offset must be integers, got "
            f"{[row.get(k) for k in ('n_frames', 'onset', 'apex', 'offset')]}. Fix the row or rebuild the set."
        ) from None
    if not 1 <= nums[0] <= nums[1] <= nums[2] <= n:
        raise DataError(
            f"{where}: need 1 <= onset <= apex <= offset <= n_frames (frame numbers as this file "
            f"writes them: img001 is frame 1), got onset={nums[0]} apex={nums[1]} offset={nums[2]} "
            f"n_frames={n}. Fix the row, or rebuild the set with {rebuild}.")
    return nums, n


def load_gt_flow(sample: Sample) -> dict[str, np.ndarray]:
    """Ground truth of a SynthME sample: ``flow`` (H, W, 2) onset -> apex, ``flow_expression`` (the
    same without the head's motion; builds made before it was added lack it), ``face_mask``,
    ``landmarks_onset``, ``landmarks_apex``."""
    path = Path(sample.meta.get("gt_flow", ""))
    if not path.is_file():
        root = path.parent.parent.parent
        raise DataError(f"ground-truth flow {path} for {sample.key} is missing; delete the clip folder "
                        f"{root / 'frames' / sample.subject / sample.sample_id} and run `{rebuild_command(root)}`: it "
                        "renders only the missing clips.")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def load_frame(path: str | Path) -> np.ndarray:
    return load_image(path)


def tiny_synthme(root: str | Path | None = None, seed: int = 0, subjects: int = 2, scheme: str = "composite3") -> "SampleSet":
    """The small SynthME the chapters and quick runs use: the ``tiny`` preset (4 clips a subject)
    for ``subjects`` bank subjects, built once into ``root`` (default: the hmrm cache) and loaded.
    An existing build is reused; a build with another configuration is refused by :func:`build_synthme`."""
    root = Path(root) if root else cache_dir(f"synthme_tiny_s{subjects}_seed{seed}")
    build_synthme(root, SynthConfig.preset("tiny", seed=seed), max_subjects=subjects, progress=False)
    return load_synthme(root, scheme)
