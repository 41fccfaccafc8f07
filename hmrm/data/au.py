"""Facial action units (FACS-inspired) as landmark displacements, and the dense fields they make.

Each action unit (AU) moves a set of the 68 landmarks in a direction typical of the muscle it
stands for (AU12, the lip corner puller, moves the mouth corners outwards and up). Displacements
are in units of the inter-ocular distance (IOD) and are scaled later, so only their shape matters
here. A thin-plate spline (TPS) then spreads the landmark motion into a smooth dense field over the
face, pinned to zero on a ring around it.

This is an animation model, inspired by FACS descriptions, not an anatomical simulation.
"""
from __future__ import annotations

import numpy as np

from ..face.landmarks import eye_centres
from ..face.regions import face_mask

# Landmarks on the subject's right (image left) and left; the midline ones belong to neither.
RIGHT = [*range(0, 8), *range(17, 22), 31, 32, *range(36, 42), 48, 49, 50, 58, 59, 60, 61, 67]
LEFT = [*range(9, 17), *range(22, 27), 34, 35, *range(42, 48), 54, 53, 52, 56, 55, 64, 63, 65]
MIDLINE = [8, 27, 28, 29, 30, 33, 51, 57, 62, 66]

# Mirror pairs (right index -> left index) of the 68-point layout.
MIRROR = {**{i: 16 - i for i in range(0, 8)}, **{17 + i: 26 - i for i in range(5)}, 31: 35, 32: 34,
          36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46, 48: 54, 49: 53, 50: 52, 59: 55, 58: 56,
          60: 64, 61: 63, 67: 65}

UP, DOWN = -1.0, 1.0  # image y grows downwards

# Per AU: (right-side landmark, outward component, vertical component). Outward is away from the
# midline; each entry is mirrored onto the left side. Midline entries: (index, 0, vertical).
_AU_RIGHT = {
    1: [(21, 0.0, 1.0 * UP), (20, 0.0, 0.7 * UP), (19, 0.0, 0.35 * UP)],
    2: [(17, 0.0, 1.0 * UP), (18, 0.0, 0.8 * UP), (19, 0.0, 0.4 * UP)],
    4: [(21, -0.5, 1.0 * DOWN), (20, -0.4, 0.8 * DOWN), (19, -0.3, 0.6 * DOWN), (18, 0.0, 0.35 * DOWN)],
    5: [(37, 0.0, 1.0 * UP), (38, 0.0, 1.0 * UP), (36, 0.0, 0.2 * UP), (39, 0.0, 0.2 * UP)],
    6: [(40, 0.0, 0.6 * UP), (41, 0.0, 0.6 * UP), (36, 0.1, 0.3 * UP), (1, -0.1, 0.5 * UP),
        (2, -0.1, 0.6 * UP), (3, 0.0, 0.4 * UP)],
    7: [(40, 0.0, 1.0 * UP), (41, 0.0, 1.0 * UP), (37, 0.0, 0.4 * DOWN), (38, 0.0, 0.4 * DOWN)],
    9: [(31, 0.0, 0.8 * UP), (32, 0.0, 0.6 * UP), (21, 0.0, 0.4 * DOWN), (50, 0.0, 0.3 * UP)],
    10: [(49, 0.0, 0.7 * UP), (50, 0.0, 1.0 * UP), (61, 0.0, 0.8 * UP), (31, 0.0, 0.3 * UP)],
    12: [(48, 0.7, 0.7 * UP), (49, 0.3, 0.35 * UP), (59, 0.3, 0.35 * UP), (60, 0.5, 0.5 * UP),
         (3, 0.0, 0.2 * UP), (4, 0.0, 0.2 * UP)],
    14: [(48, -0.6, 0.2 * UP), (60, -0.5, 0.1 * UP), (49, -0.2, 0.0), (59, -0.2, 0.0)],
    15: [(48, 0.0, 1.0 * DOWN), (59, 0.0, 0.5 * DOWN), (49, 0.0, 0.4 * DOWN), (60, 0.0, 0.7 * DOWN)],
    17: [(7, 0.0, 0.8 * UP), (6, 0.0, 0.5 * UP), (58, 0.0, 0.9 * UP), (67, 0.0, 0.6 * UP), (59, 0.0, 0.4 * UP)],
    20: [(48, 1.0, 0.2 * DOWN), (59, 0.5, 0.1 * DOWN), (49, 0.5, 0.0), (60, 0.8, 0.1 * DOWN), (4, 0.2, 0.0)],
    25: [(67, 0.0, 0.8 * DOWN), (58, 0.0, 0.5 * DOWN), (61, 0.0, 0.3 * UP)],
    26: [(5, 0.0, 0.4 * DOWN), (6, 0.0, 0.6 * DOWN), (7, 0.0, 0.8 * DOWN), (58, 0.0, 0.8 * DOWN),
         (59, 0.0, 0.6 * DOWN), (67, 0.0, 0.9 * DOWN)],
}
_AU_MID = {
    4: [(27, 0.0, 0.2 * DOWN)],
    9: [(29, 0.0, 0.4 * UP), (30, 0.0, 0.4 * UP), (33, 0.0, 0.4 * UP), (51, 0.0, 0.3 * UP)],
    10: [(51, 0.0, 0.9 * UP), (62, 0.0, 0.8 * UP), (33, 0.0, 0.15 * UP)],
    17: [(8, 0.0, 1.0 * UP), (57, 0.0, 0.9 * UP), (66, 0.0, 0.6 * UP)],
    25: [(66, 0.0, 0.8 * DOWN), (57, 0.0, 0.5 * DOWN), (62, 0.0, 0.3 * UP)],
    26: [(8, 0.0, 1.0 * DOWN), (57, 0.0, 0.8 * DOWN), (66, 0.0, 0.9 * DOWN)],
}

#: The action units SynthME knows, with their FACS names.
AU_NAMES = {
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
    6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 10: "upper lip raiser",
    12: "lip corner puller", 14: "dimpler", 15: "lip corner depressor", 17: "chin raiser",
    20: "lip stretcher", 25: "lips part", 26: "jaw drop",
}


def au_displacement(au: int, right_gain: float = 1.0, left_gain: float = 1.0) -> np.ndarray:
    """(68, 2) landmark displacement of one AU, in IOD units, before any scaling.

    ``right_gain`` / ``left_gain`` scale the two sides (asymmetry; 0 makes the AU unilateral);
    midline landmarks take the mean of the two.
    """
    if au not in _AU_RIGHT:
        raise ValueError(f"unknown action unit AU{au}; SynthME knows {sorted(AU_NAMES)}")
    d = np.zeros((68, 2))
    for idx, out, vert in _AU_RIGHT[au]:
        # right side: outward is -x (image left); its mirror on the left side: outward is +x
        d[idx] += right_gain * np.array([-out, vert])
        d[MIRROR[idx]] += left_gain * np.array([out, vert])
    for idx, out, vert in _AU_MID.get(au, []):
        d[idx] += 0.5 * (right_gain + left_gain) * np.array([out, vert])
    return d


def blink_displacement(landmarks: np.ndarray) -> np.ndarray:
    """(68, 2) pixel displacement of a full blink: upper lids drop most of the eye opening."""
    lm = np.asarray(landmarks, dtype=np.float64)
    d = np.zeros((68, 2))
    for upper, lower in (((37, 38), (41, 40)), ((43, 44), (47, 46))):
        opening = float(np.mean(lm[list(lower), 1] - lm[list(upper), 1]))
        for u in upper:
            d[u, 1] += 0.75 * opening
        for lo in lower:
            d[lo, 1] -= 0.1 * opening
    return d


def parse_aus(code: str) -> list[tuple[int, str]]:
    """``"1+2+R12"`` -> ``[(1, ""), (2, ""), (12, "R")]`` (R / L: unilateral on that side)."""
    out = []
    for part in str(code).replace(" ", "").split("+"):
        if not part:
            continue
        side = part[0] if part[0] in "RLB" else ""
        num = part[1:] if side else part
        out.append((int(num), side if side != "B" else ""))
    return out


class ThinPlateSpline:
    """A 2-D thin-plate spline on fixed control points, precomputed for one output grid.

    The TPS interpolant is linear in the values at the control points, so for a fixed set of
    points and a fixed grid the whole map is one matrix ``E`` (grid points x control points):
    a dense field is then ``E @ values``, a single matrix product per clip.
    """

    def __init__(self, points: np.ndarray, size: int, step: int = 4):
        self.points = np.asarray(points, dtype=np.float64)
        self.size = size
        self.step = step
        n = len(self.points)
        k = _tps_kernel(self.points, self.points)
        p = np.hstack([np.ones((n, 1)), self.points])
        system = np.zeros((n + 3, n + 3))
        system[:n, :n] = k + 1e-6 * np.eye(n)
        system[:n, n:] = p
        system[n:, :n] = p.T
        inv = np.linalg.inv(system)[:, :n]  # maps control values -> (weights, affine)
        # Evaluate on a coarse grid (every `step` px) and upsample: the field is smooth.
        coarse = np.arange(0, size + step, step, dtype=np.float64)
        gy, gx = np.meshgrid(coarse, coarse, indexing="ij")
        grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
        kg = _tps_kernel(grid, self.points)
        pg = np.hstack([np.ones((len(grid), 1)), grid])
        self._coarse_shape = gx.shape
        self.E = np.hstack([kg, pg]) @ inv  # (grid points, n)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Dense (size, size, 2) float32 field for (n, 2) control values."""
        import cv2

        coarse = (self.E @ np.asarray(values, dtype=np.float64)).reshape(*self._coarse_shape, 2)
        # coarse sample i sits at pixel i*step; resize maps pixel centres, so build the map directly
        idx = np.arange(self.size, dtype=np.float32) / self.step
        mx, my = np.meshgrid(idx, idx)
        return cv2.remap(coarse.astype(np.float32), mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def _tps_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = 0.5 * r2 * np.log(r2)
    return np.nan_to_num(k, nan=0.0, posinf=0.0, neginf=0.0)


def anchor_points(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Zero-motion points that pin a TPS field around the face: an enlarged face outline
    (jaw and a raised forehead line) and a ring along the image border."""
    lm = np.asarray(landmarks, dtype=np.float64)
    a, b = eye_centres(lm)
    iod = float(np.linalg.norm(b - a))
    centre = lm[list(range(17)) + list(range(17, 27))].mean(axis=0)
    jaw = centre + 1.3 * (lm[:17] - centre)
    brows = lm[17:27].copy()
    brows[:, 1] -= 0.9 * iod
    forehead = centre + 1.15 * (brows - centre)
    t = np.linspace(0, size - 1, 7)
    edge = np.concatenate([
        np.stack([t, np.zeros_like(t)], 1), np.stack([t, np.full_like(t, size - 1)], 1),
        np.stack([np.zeros_like(t[1:-1]), t[1:-1]], 1), np.stack([np.full_like(t[1:-1], size - 1), t[1:-1]], 1),
    ])
    return np.concatenate([jaw, forehead, edge])


class FaceFieldModel:
    """Turns landmark displacements of one aligned face into dense motion fields."""

    def __init__(self, landmarks: np.ndarray, size: int):
        self.landmarks = np.asarray(landmarks, dtype=np.float64)
        self.size = size
        a, b = eye_centres(self.landmarks)
        self.iod = float(np.linalg.norm(b - a))
        self.anchors = anchor_points(self.landmarks, size)
        self.tps = ThinPlateSpline(np.concatenate([self.landmarks, self.anchors]), size)
        self.face = face_mask(self.landmarks, size, brow_lift=0.35)
        # a soft version of the face mask keeps TPS overshoot off the background
        import cv2

        grown = cv2.dilate(self.face.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(np.float32)
        self.soft_mask = np.clip(cv2.GaussianBlur(grown, (0, 0), 0.1 * self.iod), 0.0, 1.0)

    def field(self, landmark_disp: np.ndarray) -> np.ndarray:
        """Dense (size, size, 2) field from (68, 2) landmark displacements in pixels."""
        values = np.concatenate([landmark_disp, np.zeros((len(self.anchors), 2))])
        return self.tps(values) * self.soft_mask[..., None]

    def au_field(self, aus: list[tuple[int, float, float]], peak_px: float) -> np.ndarray:
        """Dense field of a combination of AUs ``[(au, right_gain, left_gain), ...]``, scaled so
        its largest displacement over the face is ``peak_px`` pixels."""
        disp = sum(au_displacement(au, r, l) for au, r, l in aus) * self.iod
        f = self.field(disp)
        mag = np.sqrt((f**2).sum(-1))[self.face]
        peak = float(mag.max()) if mag.size else 0.0
        if peak <= 0:
            raise ValueError(f"AU combination {aus} produced no motion on the face")
        return (f * (peak_px / peak)).astype(np.float32)

    def blink_field(self) -> np.ndarray:
        return self.field(blink_displacement(self.landmarks)).astype(np.float32)
