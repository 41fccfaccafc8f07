"""Named facial regions from 68 landmarks: the regions MotionMix mixes and RFFS pools.

Sides follow the subject's anatomy, as dlib's landmark layout does: ``right_eye`` (eye and brow)
is the subject's right, which is on the *left* of the image.
"""
from __future__ import annotations

import numpy as np

from .landmarks import LEFT_BROW, LEFT_EYE, NOSE_BRIDGE, NOSTRILS, OUTER_LIPS, RIGHT_BROW, RIGHT_EYE, eye_centres

REGION_NAMES = ("right_eye", "left_eye", "nose", "mouth")

# Margins as fractions of the inter-ocular distance (eye centre to eye centre).
_MARGIN = {"right_eye": (0.12, 0.12, 0.18), "left_eye": (0.12, 0.12, 0.18), "nose": (0.08, 0.0, 0.08), "mouth": (0.15, 0.15, 0.15)}


def _box(points: np.ndarray, mx: float, my_top: float, my_bottom: float, size: int) -> tuple[int, int, int, int]:
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    box = (x0 - mx, y0 - my_top, x1 + mx, y1 + my_bottom)
    x0, y0, x1, y1 = (int(np.floor(box[0])), int(np.floor(box[1])), int(np.ceil(box[2])) + 1, int(np.ceil(box[3])) + 1)
    return (max(0, x0), max(0, y0), min(size, x1), min(size, y1))


def region_boxes(landmarks: np.ndarray, size: int) -> dict[str, tuple[int, int, int, int]]:
    """Boxes ``(x0, y0, x1, y1)`` (x1, y1 exclusive) for each of :data:`REGION_NAMES`.

    ``size`` is the side of the (square) image the landmarks live in; boxes are clipped to it.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks of shape (68, 2), got {lm.shape}")
    a, b = eye_centres(lm)
    d = float(np.linalg.norm(b - a))
    groups = {
        "right_eye": lm[RIGHT_BROW + RIGHT_EYE],
        "left_eye": lm[LEFT_BROW + LEFT_EYE],
        # from the lower half of the nose bridge down to the nostrils
        "nose": lm[NOSE_BRIDGE[1:] + NOSTRILS],
        "mouth": lm[OUTER_LIPS],
    }
    out = {}
    for name, pts in groups.items():
        mx, mt, mb = _MARGIN[name]
        out[name] = _box(pts, mx * d, mt * d, mb * d, size)
    return out


def region_masks(landmarks: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Boolean (size, size) masks of the region boxes."""
    masks = {}
    for name, (x0, y0, x1, y1) in region_boxes(landmarks, size).items():
        m = np.zeros((size, size), dtype=bool)
        m[y0:y1, x0:x1] = True
        masks[name] = m
    return masks


def face_mask(landmarks: np.ndarray, size: int, brow_lift: float = 0.25) -> np.ndarray:
    """Boolean mask of the face: the jaw line closed over the brows raised by ``brow_lift`` IOD."""
    import cv2

    lm = np.asarray(landmarks, dtype=np.float64)
    a, b = eye_centres(lm)
    d = float(np.linalg.norm(b - a))
    brows = lm[RIGHT_BROW + LEFT_BROW][::-1].copy()
    brows[:, 1] -= brow_lift * d
    poly = np.concatenate([lm[:17], brows]).round().astype(np.int32)
    mask = np.zeros((size, size), dtype=np.uint8)
    cv2.fillPoly(mask, [cv2.convexHull(poly)], 1)
    return mask.astype(bool)
