"""Similarity alignment to a canonical crop: the two eye centres land on fixed template points.

A similarity (rotation, uniform scale, translation) has four degrees of freedom, so two point
pairs fix it exactly: the eye centres of the aligned face sit on the template up to rounding.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .landmarks import eye_centres
from .regions import region_boxes

#: Eye centres in the canonical crop, as fractions of its side (image-left eye first).
EYE_TEMPLATE = ((0.33, 0.38), (0.67, 0.38))
DEFAULT_SIZE = 256


def eye_template(size: int = DEFAULT_SIZE) -> np.ndarray:
    """Template eye centres in pixels, shape (2, 2), for a ``size`` x ``size`` crop."""
    return np.asarray(EYE_TEMPLATE, dtype=np.float64) * size


def similarity_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 similarity matrix mapping the two ``src`` points exactly onto the two ``dst`` points."""
    src = np.asarray(src, dtype=np.float64).reshape(2, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(2, 2)
    # Complex numbers make a 2-D similarity a single multiply-add: z -> a z + b.
    s0, s1 = complex(*src[0]), complex(*src[1])
    d0, d1 = complex(*dst[0]), complex(*dst[1])
    if abs(s1 - s0) < 1e-9:
        raise ValueError("the two source points coincide; cannot fit a similarity")
    a = (d1 - d0) / (s1 - s0)
    b = d0 - a * s0
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], dtype=np.float64)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def matrix_scale(matrix: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2]))))


def alignment_matrix(landmarks: np.ndarray, size: int = DEFAULT_SIZE) -> np.ndarray:
    """The similarity that puts this face's eye centres on the template of a ``size`` crop."""
    left, right = eye_centres(landmarks)
    return similarity_from_points(np.stack([left, right]), eye_template(size))


@dataclass
class AlignedFace:
    """A canonical face crop and what produced it."""

    image: np.ndarray  # (size, size, 3) uint8 RGB
    landmarks: np.ndarray  # (68, 2) in crop pixels
    matrix: np.ndarray  # 2x3, source image -> crop
    size: int

    def regions(self):
        return region_boxes(self.landmarks, self.size)


def warp_image(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Resample ``image`` into a ``size`` x ``size`` crop; area-averages when shrinking."""
    scale = matrix_scale(matrix)
    if scale < 0.8:
        # Pre-shrink with area averaging so the affine step does not alias.
        h, w = image.shape[:2]
        small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        pre = np.diag([small.shape[1] / w, small.shape[0] / h])
        matrix = matrix.copy()
        matrix[:, :2] = matrix[:, :2] @ np.linalg.inv(pre)
        image = small
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = DEFAULT_SIZE) -> AlignedFace:
    """Crop and rotate the face so its eye centres land on the template."""
    matrix = alignment_matrix(landmarks, size)
    crop = warp_image(image, matrix, size)
    return AlignedFace(crop, transform_points(matrix, landmarks), matrix, size)
