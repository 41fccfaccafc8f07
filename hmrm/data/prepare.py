"""Preparing samples for the network: aligned onset and apex crops, cached per sample.

For each sample the onset frame's face is detected (MTCNN, dlib HOG as fallback) and landmarked
(dlib 68 points); the similarity transform that puts its eyes on the template is then applied to
*both* onset and apex, so the motion between them survives alignment. Per sample the cache holds::

    <out>/<dataset>/<subject>/<sample>/onset.png, apex.png, face.json

``face.json`` has the landmarks in crop pixels, the region boxes, the transform and the source
frames. Each sample folder is written under a temporary name and renamed when complete, so an
interrupted run resumes where it stopped and never leaves half a sample. Samples that fail (no
face, unreadable frame) are listed in ``<out>/<dataset>/failures.csv`` with the file and the
reason, and the run goes on; a later run tries them again.
"""
from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..face import load_image
from ..face.align import alignment_matrix, transform_points, warp_image
from ..face.detect import FaceNotFoundError, detect_face
from ..face.landmarks import landmarks68
from ..face.regions import region_boxes
from ..utils import atomic_path, atomic_write_text
from .records import DataError, Sample

VERSION = 1


@dataclass
class Prepared:
    """A prepared sample: aligned onset and apex crops with their landmarks and regions."""

    sample: Sample
    onset: np.ndarray  # (size, size, 3) uint8
    apex: np.ndarray
    landmarks: np.ndarray  # (68, 2) onset landmarks in crop pixels
    regions: dict


def sample_dir(out: Path, s: Sample) -> Path:
    return Path(out) / s.dataset / s.subject / s.sample_id


def prepare_sample(s: Sample, out: Path, size: int = 256) -> Path:
    """Align one sample into its cache folder (no-op if it is already there); returns the folder."""
    import cv2

    final = sample_dir(out, s)
    if (final / "face.json").is_file():
        return final
    try:
        onset = load_image(s.onset_path)
        apex = load_image(s.apex_path)
    except (OSError, FileNotFoundError) as exc:
        raise DataError(str(exc)) from None
    box = detect_face(onset, source=str(s.onset_path))
    lm = landmarks68(onset, box.box)
    m = alignment_matrix(lm, size)
    lm_crop = transform_points(m, lm)
    tmp = final.with_name(final.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, img in (("onset", onset), ("apex", apex)):
        crop = warp_image(img, m, size)
        cv2.imwrite(str(tmp / f"{name}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    info = {
        "version": VERSION, "key": s.key, "size": size, "label": s.label, "emotion": s.emotion,
        "onset_frame": str(s.onset_path), "apex_frame": str(s.apex_path),
        "apex_estimated": bool(s.meta.get("apex_estimated", False)),
        "detector_box": [float(v) for v in box.box], "matrix": np.asarray(m).tolist(),
        "landmarks": lm_crop.tolist(), "regions": {k: list(map(int, v)) for k, v in region_boxes(lm_crop, size).items()},
    }
    (tmp / "face.json").write_text(json.dumps(info, indent=1))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def prepare_command(out: str | Path, dataset: str) -> str:
    """The ``hmrm prepare`` command that filled ``out`` with ``dataset`` (as recorded in
    ``<out>/<dataset>/command.txt``), or one with the data set's folder to fill in."""
    import shlex

    try:
        return (Path(out) / dataset / "command.txt").read_text().strip()
    except OSError:
        return shlex.join(["hmrm", "prepare", "--dataset", dataset, "--out", str(out)]) + " --root <the data set's folder>"


def _write_lists(out: Path, samples, ok: list[Sample], failed: list[tuple[str, str, str]]) -> None:
    """``<out>/<dataset>/prepared.csv`` for the prepared samples and ``failures.csv`` for the failed
    ones (removed when none failed), per data set."""
    by_ds: dict[str, list[Sample]] = {}
    for s in ok:
        by_ds.setdefault(s.dataset, []).append(s)
    for ds, items in by_ds.items():
        with atomic_path(out / ds / "prepared.csv") as part:
            with open(part, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["subject", "sample", "label", "emotion", "apex_estimated", "folder"])
                for s in items:
                    w.writerow([s.subject, s.sample_id, s.label, s.emotion, s.meta.get("apex_estimated", False),
                                sample_dir(out, s).relative_to(out)])
    for ds in {s.dataset for s in samples}:
        fpath = out / ds / "failures.csv"
        mine = [f for f in failed if f[0].startswith(ds + "/")]
        if mine:
            with atomic_path(fpath) as part:
                with open(part, "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(["sample", "file", "reason"])
                    w.writerows(mine)
        elif fpath.exists():
            fpath.unlink()


def prepare_samples(samples, out: str | Path, size: int = 256, progress: bool = True, command: str | None = None) -> dict:
    """Prepare every sample; returns ``{"done": n, "cached": n, "failed": [(key, file, reason)]}``.

    Writes ``<out>/<dataset>/prepared.csv`` (one row per prepared sample) and ``failures.csv``, and
    ``command`` (the command line that asked for it) into ``<out>/<dataset>/command.txt`` for the
    hints of later messages."""
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "prepare.json"
    if cfg.is_file():
        old = json.loads(cfg.read_text())
        if old.get("size") != size:
            raise DataError(f"{out} holds crops of size {old.get('size')}, not {size}. Use another --out, or delete {out} to start again.")
    else:
        atomic_write_text(cfg, json.dumps({"size": size, "version": VERSION}))
    if command:
        for dataset in sorted({s.dataset for s in samples}):
            atomic_write_text(out / dataset / "command.txt", command + "\n")
    done = cached = 0
    failed: list[tuple[str, str, str]] = []
    ok: list[Sample] = []
    for s in tqdm(samples, desc="prepare", unit="sample", disable=not progress):
        if (sample_dir(out, s) / "face.json").is_file():
            cached += 1
            ok.append(s)
            continue
        try:
            prepare_sample(s, out, size)
            done += 1
            ok.append(s)
        except FaceNotFoundError as exc:
            failed.append((s.key, str(s.onset_path), str(exc)))
        except DataError as exc:
            failed.append((s.key, str(s.onset_path), str(exc)))
    _write_lists(out, samples, ok, failed)
    return {"done": done, "cached": cached, "failed": failed}


def load_prepared(s: Sample, out: str | Path) -> Prepared:
    """Read a prepared sample back; a clear error if it has not been prepared."""
    d = sample_dir(Path(out), s)
    if not (d / "face.json").is_file():
        raise DataError(f"{s.key} is not prepared in {out}; run `{prepare_command(out, s.dataset)}` (it resumes).")
    info = json.loads((d / "face.json").read_text())
    return Prepared(s, load_image(d / "onset.png"), load_image(d / "apex.png"), np.asarray(info["landmarks"]),
                    {k: tuple(v) for k, v in info["regions"].items()})
