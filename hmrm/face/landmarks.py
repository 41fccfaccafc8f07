"""dlib's 68-point landmark model (iBUG 300-W layout).

Index ranges (from the subject's point of view, so the subject's *right* eye is on the image's left):
jaw 0-16, right brow 17-21, left brow 22-26, nose bridge 27-30, nostrils 31-35,
right eye 36-41, left eye 42-47, outer lips 48-59, inner lips 60-67.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from .detect import _as_rgb

JAW = list(range(0, 17))
RIGHT_BROW = list(range(17, 22))
LEFT_BROW = list(range(22, 27))
NOSE_BRIDGE = list(range(27, 31))
NOSTRILS = list(range(31, 36))
RIGHT_EYE = list(range(36, 42))
LEFT_EYE = list(range(42, 48))
OUTER_LIPS = list(range(48, 60))
INNER_LIPS = list(range(60, 68))

MODEL_FILE = "shape_predictor_68_face_landmarks.dat"


class LandmarkModelMissing(RuntimeError):
    pass


def model_path() -> Path:
    """Locate dlib's 68-point model inside the ``face-recognition-models`` distribution.

    The package is found without importing it: importing it needs ``pkg_resources``, which recent
    setuptools no longer ship.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise LandmarkModelMissing(
            "the dlib landmark model is missing: install it with "
            "`pip install face-recognition-models` (it carries shape_predictor_68_face_landmarks.dat)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / MODEL_FILE
    if not path.is_file():
        raise LandmarkModelMissing(f"{path} not found; reinstall face-recognition-models")
    return path


@lru_cache(maxsize=1)
def _predictor():
    import dlib

    return dlib.shape_predictor(str(model_path()))


def landmarks68(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """68 (x, y) landmarks, float64 array of shape (68, 2), for the face in ``box``."""
    import dlib

    x0, y0, x1, y1 = (int(round(v)) for v in box)
    shape = _predictor()(_as_rgb(image), dlib.rectangle(x0, y0, x1, y1))
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image-left eye centre, image-right eye centre): the subject's right eye comes first."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return lm[RIGHT_EYE].mean(axis=0), lm[LEFT_EYE].mean(axis=0)
