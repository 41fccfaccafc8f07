"""Estimating the apex frame where an annotation has none.

SMIC-HS gives no apex at all, and 21 CASME II rows and 3 SAMM rows leave it blank. We estimate it
the way the annotators define it, the frame of largest motion away from onset:

1. every frame of the clip is read in grey and shrunk to ``width`` pixels across;
2. dense optical flow onset -> frame ``t`` is computed with OpenCV's DIS (fast, CPU);
3. global motion (the head moving as a whole) is removed by subtracting the best-fitting affine
   flow (translation, rotation, scale, shear);
4. the mean magnitude of what is left, over the central part of the frame where the face is,
   gives a motion curve; it is smoothed over ``smooth`` frames and its maximum is the apex.

``benchmarks/apex_estimation.py`` measures the estimator on SynthME, whose apex is known
(``benchmarks/results/apex_estimation.md``), and ``hmrm beyond apex`` what it costs the recognisers:
trained on estimated apexes, HMRM and STSTNet lose UF1 against the true apex, with a paired interval
that excludes 0 (``benchmarks/results/beyond_apex.md``, chapter 10). It is still the default where an
annotation has none, because the alternative that scores better on SynthME, the middle of
onset..offset, does so only because SynthME places every apex at 35-60 % of the clip; on real clips
neither has been measured. ``hmrm prepare --no-apex-estimate`` skips such clips instead.
Estimates are cached in a JSON file (see :class:`ApexCache`) because reading a 300-frame clip
takes a second or two.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..flow.stabilize import fit_affine_flow
from ..utils import atomic_write_text, cache_dir
from .records import DataError

METHOD = "dis-affine-v1"


def _grey(path: Path, width: int) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise DataError(f"cannot read frame {path} (corrupt or not an image); replace the file or remove the sample")
    h, w = img.shape
    if w != width:
        img = cv2.resize(img, (width, max(8, round(h * width / w))), interpolation=cv2.INTER_AREA)
    return img


def _affine_fit(flow: np.ndarray) -> np.ndarray:
    """The affine flow field closest (least squares) to ``flow``: the rigid part of the motion."""
    return fit_affine_flow(flow)


def motion_curve(frames: list[Path] | tuple[Path, ...], onset: int = 0, width: int = 128, centre: float = 0.7) -> np.ndarray:
    """Residual (non-rigid) motion of every frame relative to ``frames[onset]``; 0 at onset."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ref = _grey(Path(frames[onset]), width)
    h, w = ref.shape
    my, mx = round(h * (1 - centre) / 2), round(w * (1 - centre) / 2)
    curve = np.zeros(len(frames))
    for t, p in enumerate(frames):
        if t == onset:
            continue
        flow = dis.calc(ref, _grey(Path(p), width), None)[my:h - my, mx:w - mx]
        resid = flow - _affine_fit(flow)
        curve[t] = float(np.sqrt((resid ** 2).sum(-1)).mean())
    return curve


def estimate_apex(frames, onset: int = 0, offset: int | None = None, width: int = 128, smooth: int = 3) -> int:
    """Index (into ``frames``) of the estimated apex, between ``onset`` and ``offset`` inclusive."""
    offset = len(frames) - 1 if offset is None else offset
    if not 0 <= onset <= offset < len(frames):
        raise ValueError(f"need 0 <= onset <= offset < {len(frames)}, got {onset}, {offset}")
    if offset == onset:
        return onset
    curve = motion_curve(list(frames[onset:offset + 1]), 0, width)
    if smooth > 1 and len(curve) >= smooth:
        curve = np.convolve(curve, np.ones(smooth) / smooth, mode="same")
    return onset + int(np.argmax(curve))


class ApexCache:
    """Apex estimates on disk (``<cache>/apex_estimates.json`` by default), keyed by sample and by
    the frames they were computed from, so a changed clip is estimated again."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else cache_dir("apex") / "apex_estimates.json"
        self._data = json.loads(self.path.read_text()) if self.path.is_file() else {}

    @staticmethod
    def _key(key: str, frames) -> str:
        return f"{METHOD}|{key}|{len(frames)}|{Path(frames[0]).name}|{Path(frames[-1]).name}"

    def get(self, key: str, frames, onset: int = 0, offset: int | None = None) -> int:
        k = self._key(key, frames) + f"|{onset}|{offset}"
        if k not in self._data:
            self._data[k] = estimate_apex(frames, onset, offset)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(self._data, indent=0, sort_keys=True))
        return int(self._data[k])
