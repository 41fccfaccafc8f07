"""Reading what a network input is computed from: the aligned onset and apex crops of a sample, its
onset landmarks, and (for SynthME) its exact flow; a missing or unreadable file is an error that
names it and says how to get it back (see :mod:`hmrm.features`)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.prepare import prepare_command, sample_dir
from ..data.records import DataError, Sample
from ..data.synthme import load_gt_flow, rebuild_command
from ..face import load_image


@dataclass
class AlignedPair:
    """What the input is computed from: the aligned onset and apex crops of one sample, its onset
    landmarks in crop pixels, and the files they came from (for error messages and the cache)."""

    sample: Sample
    onset: np.ndarray  # (H, W, 3) uint8
    apex: np.ndarray
    landmarks: np.ndarray  # (68, 2) float
    sources: tuple[Path, ...]  # onset, apex, landmark file
    gt_file: Path | None = None  # SynthME ground truth, when the crops are SynthME's own frames


def _read_image(path: Path, sample: Sample, fix: str) -> np.ndarray:
    try:
        return load_image(path)
    except (OSError, ValueError) as exc:  # FileNotFoundError is an OSError
        raise DataError(f"{sample.key}: cannot read frame {path} ({exc}). {fix}") from None


def _synthme_fix(sample: Sample) -> str:
    clip = Path(sample.onset_path).parent
    root = clip.parent.parent.parent
    return (f"Delete the folder {clip} and run `{rebuild_command(root)}` again: it renders only the "
            "clips that are missing.")


def source_files(sample: Sample, prepared: str | Path | None = None) -> tuple[Path, Path, Path]:
    """The files an input is computed from: onset crop, apex crop, landmark file (``face.json`` of a
    prepared sample, the ground-truth ``.npz`` of a SynthME sample). The cache hashes them."""
    if prepared is not None:
        folder = sample_dir(Path(prepared), sample)
        return folder / "onset.png", folder / "apex.png", folder / "face.json"
    if sample.dataset != "synthme" or not sample.meta.get("gt_flow"):
        raise DataError(
            f"{sample.key}: the frames of a {sample.dataset!r} sample are not aligned faces, so the flow input needs "
            f"the crops of `hmrm prepare`. Run `hmrm prepare --dataset {sample.dataset} --root <the data set's folder> "
            "--out data/prepared` and pass prepared='data/prepared' (the --out folder)."
        )
    return Path(sample.onset_path), Path(sample.apex_path), Path(sample.meta["gt_flow"])


def load_aligned_pair(sample: Sample, prepared: str | Path | None = None) -> AlignedPair:
    """The aligned onset / apex crops and onset landmarks of ``sample``.

    With ``prepared`` (the ``--out`` folder of ``hmrm prepare``) the prepared crops are used; without
    it only SynthME samples work, since their frames are aligned faces already."""
    onset_file, apex_file, info_file = sources = source_files(sample, prepared)
    if prepared is not None:
        command = prepare_command(prepared, sample.dataset)
        fix = (f"Delete the folder {info_file.parent} and run `{command}` again: it prepares only the samples that "
               "are missing.")
        if not info_file.is_file():
            raise DataError(f"{sample.key} is not prepared: {info_file} is missing. Run `{command}` first (it resumes).")
        try:
            landmarks = np.asarray(json.loads(info_file.read_text())["landmarks"], dtype=np.float64)
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{sample.key}: {info_file} is unreadable or has no 'landmarks' ({exc!r}). {fix}") from None
        gt_file = None
    else:
        fix = _synthme_fix(sample)
        gt = read_gt(sample)
        if "landmarks_onset" not in gt:
            raise DataError(f"{sample.key}: {info_file} has no 'landmarks_onset'. {fix}")
        landmarks, gt_file = np.asarray(gt["landmarks_onset"], dtype=np.float64), info_file
    onset = _read_image(onset_file, sample, fix)
    apex = _read_image(apex_file, sample, fix)
    return AlignedPair(sample, onset, apex, landmarks, sources, gt_file)


def read_gt(sample: Sample) -> dict[str, np.ndarray]:
    try:
        return load_gt_flow(sample)
    except DataError:
        raise
    except Exception as exc:  # a truncated or corrupt .npz
        raise DataError(f"{sample.key}: cannot read the ground truth {sample.meta.get('gt_flow')} ({exc!r}). "
                        f"{_synthme_fix(sample)}") from None
