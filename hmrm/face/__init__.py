"""Face pipeline: detect (MTCNN, dlib HOG fallback) -> 68 landmarks (dlib) -> similarity alignment
-> canonical crop with named regions."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .align import DEFAULT_SIZE, AlignedFace, align_face, eye_template, similarity_from_points, transform_points
from .detect import FaceNotFoundError, detect_face, detect_faces
from .landmarks import eye_centres, landmarks68
from .regions import REGION_NAMES, face_mask, region_boxes, region_masks

__all__ = [
    "FaceNotFoundError", "REGION_NAMES", "DEFAULT_SIZE", "align_face", "detect_face", "detect_faces", "eye_centres",
    "eye_template", "face_mask", "landmarks68", "load_image", "process_image", "region_boxes", "region_masks",
    "similarity_from_points", "transform_points",
]


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as an RGB uint8 array; a missing or unreadable file names its path."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise OSError(f"cannot read image {path}: {exc}. Is the file complete? Re-copy it from the source.") from exc


def process_image(
    image: np.ndarray | str | Path,
    size: int = DEFAULT_SIZE,
    detector: str = "auto",
    near: tuple[float, float] | None = None,
) -> AlignedFace:
    """Detect, landmark and align the face in ``image`` (an RGB array or a file path)."""
    source = str(image) if isinstance(image, (str, Path)) else "image"
    if isinstance(image, (str, Path)):
        image = load_image(image)
    box = detect_face(image, method=detector, near=near, source=source)
    lm = landmarks68(image, box.box)
    return align_face(image, lm, size)
