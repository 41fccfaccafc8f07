"""Building a SynthME folder on disk: clips rendered by worker processes, resumable, the annotation
sheet, subjects list and manifest written atomically under a folder lock."""
from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ...face.regions import face_mask
from ...utils import atomic_path, atomic_write_text, folder_lock, worker_pool
from ..classes import get_scheme
from ..records import DataError
from .config import GENERATOR_VERSION, SynthConfig, read_manifest, rebuild_command, setting_differences, synthme_command
from .faces import BankFace, RenderFace, prepare_bank_faces
from .render import ClipMotion, render_clip
from .specs import ClipSpec, make_specs, people_of, subject_id

ANNOTATION_COLUMNS = (
    "subject", "sample", "n_frames", "onset", "apex", "offset", "emotion", "aus",
    "peak_px", "head_px", "blink", "noise_sigma", "photo",
)


def frame_name(i: int, fmt: str) -> str:
    """File name of frame ``i`` (0-based); numbers on disk start at 1, as in the real sets."""
    return f"img{i + 1:03d}.{fmt}"


def _clip_dir(root: Path, spec: ClipSpec) -> Path:
    return root / "frames" / spec.subject / spec.sample


def gt_path(root: Path, subject: str, sample: str) -> Path:
    return root / "gt_flow" / subject / f"{sample}.npz"


def _is_done(root: Path, spec: ClipSpec) -> bool:
    return (_clip_dir(root, spec) / "clip.json").is_file() and gt_path(root, spec.subject, spec.sample).is_file()


def _annotation_row(spec: ClipSpec, motion: ClipMotion) -> dict:
    h = spec.head
    head = float(np.hypot(np.subtract(h["tx"][spec.apex], h["tx"][spec.onset]), np.subtract(h["ty"][spec.apex], h["ty"][spec.onset])))
    return {
        "subject": spec.subject, "sample": spec.sample, "n_frames": spec.n_frames,
        "onset": spec.onset + 1, "apex": spec.apex + 1, "offset": spec.offset + 1,  # frame numbers
        "emotion": spec.emotion, "aus": spec.aus, "peak_px": f"{spec.peak_px:.4f}",
        "head_px": f"{head:.4f}", "blink": int(bool(motion.b[spec.onset] or motion.b[spec.apex])),
        "noise_sigma": f"{spec.noise_sigma:.3f}", "photo": spec.photo_id,
    }


_WORKER: dict = {}


def _init_worker(faces: list[BankFace], size: int, single_thread: bool = True) -> None:
    if single_thread:  # only inside pool workers: never change the caller's thread settings
        import cv2
        import torch

        torch.set_num_threads(1)
        cv2.setNumThreads(1)
    _WORKER["faces"] = {f.photo_id: f for f in faces}
    _WORKER["size"] = size
    _WORKER["render"] = {}


def _render_face(photo_id: str) -> RenderFace:
    cache = _WORKER["render"]
    if photo_id not in cache:
        cache[photo_id] = RenderFace(_WORKER["faces"][photo_id], _WORKER["size"])
    return cache[photo_id]


def _build_clip(args: tuple[ClipSpec, str, str]) -> dict:
    """Render one clip and write it atomically: frames into a temporary folder that is renamed
    into place last, so an interrupted build never leaves a half-written clip behind."""
    import cv2

    spec, root_s, fmt = args
    root = Path(root_s)
    face = _render_face(spec.photo_id)
    frames, flow, motion = render_clip(face, spec)
    final = _clip_dir(root, spec)
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(tmp / frame_name(i, fmt)), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    lm_onset = motion.forward(spec.onset, face.landmarks)
    lm_apex = motion.forward(spec.apex, face.landmarks)

    gt = gt_path(root, spec.subject, spec.sample)
    with atomic_path(gt) as part:
        with open(part, "wb") as f:
            np.savez_compressed(f, flow=flow, flow_expression=motion.expression_flow(spec.onset, spec.apex),
                                face_mask=face_mask(lm_onset, face.size),
                                landmarks_onset=lm_onset.astype(np.float32), landmarks_apex=lm_apex.astype(np.float32))
    row = _annotation_row(spec, motion)
    (tmp / "clip.json").write_text(json.dumps(row))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return row


def build_synthme(
    out: str | Path,
    config: SynthConfig | None = None,
    workers: int | None = None,
    max_subjects: int | None = None,
    progress: bool = True,
    offline: bool = False,
) -> dict:
    """Build (or finish building) SynthME in ``out``; returns the manifest.

    Clips already on disk are kept, so an interrupted build resumes where it stopped. A folder
    built with a different configuration is refused rather than mixed, and so is a second process
    while one is building into the same folder.
    """
    config = config or SynthConfig()
    out = Path(out)
    t0 = time.time()
    faces = prepare_bank_faces(offline=offline, verbose=progress)
    if max_subjects is not None:
        keep = list(dict.fromkeys(f.person for f in faces))[:max_subjects]
        faces = [f for f in faces if f.person in keep]
    identity = {"generator": GENERATOR_VERSION, "config": config.to_json(), "photos": [f.photo_id for f in faces]}
    with folder_lock(out, "SynthME folder"):  # one builder at a time; a second process is refused
        manifest = _build_locked(out, config, faces, identity, max_subjects, workers, progress)
    # the build time is returned, not written: same seed, same bytes
    return {**manifest, "seconds": round(time.time() - t0, 1), "root": str(out)}


def _build_locked(out: Path, config: SynthConfig, faces: list, identity: dict, max_subjects, workers, progress) -> dict:
    """The body of :func:`build_synthme` once the folder is locked; returns the manifest."""
    from tqdm.auto import tqdm

    manifest_path = out / "manifest.json"
    _refuse_other_build(out, config, identity, max_subjects)
    out.mkdir(parents=True, exist_ok=True)
    identity["max_subjects"] = max_subjects  # recorded for the rebuild hints, not part of the identity
    atomic_write_text(manifest_path, json.dumps({**identity, "complete": False}, indent=1))

    specs = make_specs(faces, config)
    todo = [s for s in specs if not _is_done(out, s)]
    workers = workers or min(2, os.cpu_count() or 1)
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc="SynthME clips", unit="clip", disable=not progress)
    jobs = [(s, str(out), config.image_format) for s in todo]
    if workers > 1 and len(jobs) > 1:
        with worker_pool(workers, _init_worker, (faces, config.size)) as pool:  # spawned, end with this process
            for _ in pool.map(_build_clip, jobs, chunksize=2):
                bar.update()
    else:
        _init_worker(faces, config.size, single_thread=False)
        for job in jobs:
            _build_clip(job)
            bar.update()
    bar.close()

    rows = _write_tables(out, specs, faces)
    emotions: dict[str, int] = {}
    for r in rows:
        emotions[r["emotion"]] = emotions.get(r["emotion"], 0) + 1
    manifest = {
        **identity, "complete": True, "n_subjects": len(people_of(faces)), "n_samples": len(rows),
        "emotions": emotions, "composite3": class_counts_of(rows, "composite3"),
    }
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1))
    return manifest


def _refuse_other_build(out: Path, config: SynthConfig, identity: dict, max_subjects) -> None:
    """Refuse ``out`` when it holds a build of other settings: say what differs and how to go on."""
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        return
    old = read_manifest(out)
    if {k: old.get(k) for k in identity} != json.loads(json.dumps(identity)):
        differences = setting_differences(old, json.loads(json.dumps(identity)))
        again = rebuild_command(out)
        if again == synthme_command(out, config, max_subjects):
            # no option of hmrm synthme makes the difference (other bank photos, another generator)
            hint = (f"No option of `hmrm synthme` reproduces that build here: the difference is in what this "
                    "machine has, not in the command. Delete the folder and run the command again to build it "
                    "anew, or choose another --out folder"
                    + (" (a build with fewer bank photos than its record: fetch the face bank with `hmrm facebank` "
                       "where PyPI can be reached)" if any("bank photos" in d for d in differences) else "") + ".")
        else:
            hint = (f"To finish or reuse that build: {again}. To build these settings, choose another --out "
                    "folder, or delete this one.")
        raise DataError(f"{out} already holds a SynthME build made with other settings ({manifest_path}): "
                        + "; ".join(differences) + ". " + hint)


def _write_tables(out: Path, specs: list, faces: list) -> list[dict]:
    """``annotations.csv`` (one row per clip, returned) and ``subjects.csv`` (one row per person) of a finished build."""
    rows = [json.loads((_clip_dir(out, s) / "clip.json").read_text()) for s in specs]
    with atomic_path(out / "annotations.csv") as part:
        with open(part, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=ANNOTATION_COLUMNS)
            w.writeheader()
            w.writerows(rows)
    people = people_of(faces)
    with atomic_path(out / "subjects.csv") as part:
        with open(part, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["subject", "person", "photos", "source"])
            for i, (person, pf) in enumerate(people.items()):
                w.writerow([subject_id(i), person, "+".join(p.photo_id for p in pf), " | ".join(dict.fromkeys(p.credit for p in pf))])
    return rows


def class_counts_of(rows: list[dict], scheme: str) -> dict[str, int]:
    sch = get_scheme(scheme)
    counts = {c: 0 for c in sch.classes}
    for r in rows:
        lab = sch.label(r["emotion"])
        if lab is not None:
            counts[lab] += 1
    return counts
