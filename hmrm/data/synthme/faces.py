"""The face bank's photos made ready to animate: aligned once (:class:`BankFace`, cached face
detections), and at render size (:class:`RenderFace`)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...face import detect_face, landmarks68
from ...face.align import alignment_matrix, eye_template, invert_affine, matrix_scale, transform_points
from ...face.landmarks import eye_centres
from ...utils import atomic_write_text, sha256_file
from .. import facebank
from ..au import FaceFieldModel
from ..facebank import BankPhoto, Photo


@dataclass
class BankFace:
    """A bank photo with its 68 landmarks in photo coordinates."""

    photo_id: str
    person: str
    path: Path
    pad: float
    landmarks: np.ndarray
    credit: str


def prepare_bank_faces(photos=None, offline: bool = False, verbose: bool = True) -> list[BankFace]:
    """Detect and landmark the face of every bank photo (cached beside the photos)."""
    photos = photos if photos is not None else facebank.fetch_face_bank(offline=offline, verbose=verbose)
    cache_file = facebank.bank_dir() / "landmarks.json"
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    out, changed = [], False
    for bp in photos:
        key = f"{bp.photo.photo_id}:{sha256_file(bp.path)}:{bp.photo.pad}"
        if key not in cache:
            image = facebank.load_photo(bp)
            near = bp.photo.near
            if near is not None and bp.photo.pad:
                p = round(bp.photo.pad * max(image.shape[:2]))
                near = (near[0] + p, near[1] + p)
            box = detect_face(image, near=near, source=str(bp.path))
            cache[key] = landmarks68(image, box.box).tolist()
            changed = True
        out.append(BankFace(bp.photo.photo_id, bp.person, bp.path, bp.photo.pad, np.asarray(cache[key]), bp.source_text))
    if changed:
        atomic_write_text(cache_file, json.dumps(cache))
    return out


class RenderFace:
    """A bank face set up for rendering: the pre-scaled photo, its unit-scale alignment, the
    canonical landmarks and the dense-field model."""

    def __init__(self, face: BankFace, size: int):
        import cv2
        import torch

        image = facebank.load_photo(BankPhoto(Photo(face.photo_id, face.person, "", "", None, pad=face.pad), face.path))
        lm = face.landmarks
        left, right = eye_centres(lm)
        tmpl = eye_template(size)
        s = float(np.linalg.norm(tmpl[1] - tmpl[0]) / np.linalg.norm(right - left))
        h, w = image.shape[:2]
        new_w, new_h = max(1, round(w * s)), max(1, round(h * s))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
        scaled = cv2.resize(image, (new_w, new_h), interpolation=interp)
        sx, sy = new_w / w, new_h / h
        lm_scaled = lm * np.array([sx, sy])

        m = alignment_matrix(lm_scaled, size)  # photo' -> canonical, scale ~1
        # keep only the part of the photo the crop can reach (with a margin for motion)
        inv = invert_affine(m)
        corners = transform_points(inv, np.array([[-24, -24], [size + 24, -24], [-24, size + 24], [size + 24, size + 24]]))
        x0, y0 = np.floor(corners.min(0)).astype(int)
        x1, y1 = np.ceil(corners.max(0)).astype(int)
        pad = max(0, -x0, -y0, x1 - new_w, y1 - new_h)
        if pad:
            scaled = cv2.copyMakeBorder(scaled, pad, pad, pad, pad, cv2.BORDER_REFLECT101)
            x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
        crop = scaled[y0:y1, x0:x1]
        shift = np.array([[1, 0, x0 - pad], [0, 1, y0 - pad]], dtype=np.float64)  # crop -> photo'
        self.crop_to_canon = m @ np.vstack([shift, [0, 0, 1]])
        self.canon_to_crop = invert_affine(self.crop_to_canon)
        self.photo = torch.from_numpy(crop.astype(np.float32)).permute(2, 0, 1)[None].contiguous()
        self.size = size
        self.scale = matrix_scale(self.crop_to_canon)
        self.landmarks = transform_points(m, lm_scaled)
        self.fields = FaceFieldModel(self.landmarks, size)
        self.blink = self.fields.blink_field()
        self.centre = self.landmarks.mean(axis=0)
