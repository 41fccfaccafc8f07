"""Face detection: MTCNN (facenet-pytorch) first, dlib's HOG detector as the fallback.

Images are RGB ``uint8`` arrays of shape (H, W, 3) throughout the package.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


class FaceNotFoundError(RuntimeError):
    """Raised when neither MTCNN nor dlib's HOG detector finds a face."""


@dataclass(frozen=True)
class FaceBox:
    """A detected face: box (x0, y0, x1, y1) in pixels, a confidence, and the detector used."""

    box: tuple[float, float, float, float]
    score: float
    method: str

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (0.5 * (x0 + x1), 0.5 * (y0 + y1))

    @property
    def size(self) -> float:
        x0, y0, x1, y1 = self.box
        return float(np.sqrt(max(x1 - x0, 0) * max(y1 - y0, 0)))


@lru_cache(maxsize=2)
def _mtcnn(device: str = "cpu"):
    from facenet_pytorch import MTCNN  # weights ship inside the package

    return MTCNN(keep_all=True, device=device, post_process=False)


@lru_cache(maxsize=1)
def _hog():
    import dlib

    return dlib.get_frontal_face_detector()


def detect_mtcnn(image: np.ndarray, min_score: float = 0.9) -> list[FaceBox]:
    from PIL import Image

    boxes, scores = _mtcnn().detect(Image.fromarray(_as_rgb(image)))
    if boxes is None:
        return []
    # facenet-pytorch returns object arrays under NumPy 2; make them plain floats.
    boxes = np.asarray(boxes.tolist(), dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores.tolist(), dtype=np.float64).reshape(-1)
    return [
        FaceBox(tuple(float(v) for v in b), float(s), "mtcnn")
        for b, s in zip(boxes, scores)
        if s >= min_score
    ]


def detect_hog(image: np.ndarray, upsample: int = 1) -> list[FaceBox]:
    rects, scores, _ = _hog().run(_as_rgb(image), upsample, 0.0)
    return [
        FaceBox((float(r.left()), float(r.top()), float(r.right()), float(r.bottom())), float(s), "hog")
        for r, s in zip(rects, scores)
    ]


def detect_faces(image: np.ndarray, method: str = "auto", min_score: float = 0.9) -> list[FaceBox]:
    """All faces in ``image``, largest first.

    ``method``: ``"mtcnn"``, ``"hog"`` or ``"auto"`` (MTCNN, then HOG when MTCNN finds nothing).
    Returns an empty list when nothing is found; :func:`detect_face` raises instead.
    """
    if method not in ("auto", "mtcnn", "hog"):
        raise ValueError(f"unknown face detector {method!r}; use 'auto', 'mtcnn' or 'hog'")
    faces: list[FaceBox] = []
    if method in ("auto", "mtcnn"):
        faces = detect_mtcnn(image, min_score=min_score)
    if not faces and method in ("auto", "hog"):
        faces = detect_hog(image)
    return sorted(faces, key=lambda f: -f.size)


def detect_face(
    image: np.ndarray,
    method: str = "auto",
    near: tuple[float, float] | None = None,
    source: str = "image",
) -> FaceBox:
    """The one face to use: the largest, or the one whose centre is nearest ``near``.

    Raises :class:`FaceNotFoundError` naming ``source`` when no detector finds a face.
    """
    faces = detect_faces(image, method=method)
    if not faces:
        raise FaceNotFoundError(
            f"no face found in {source} (tried {'MTCNN and dlib HOG' if method == 'auto' else method}). "
            "Check that the file shows a frontal face at least ~40 px wide; for a cropped or very "
            "small face, upscale the image or pass the face box yourself."
        )
    if near is None:
        return faces[0]
    return min(faces, key=lambda f: (f.centre[0] - near[0]) ** 2 + (f.centre[1] - near[1]) ** 2)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.shape[-1] == 4:
        image = image[..., :3]
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {image.dtype}")
    return np.ascontiguousarray(image)
