"""From an aligned pair to the network's input: the flow of a method, resized to the input's side and
turned into channels, and the region boxes in the same coordinates (see :mod:`hmrm.features`)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.records import DataError, Sample
from ..face.regions import REGION_NAMES, region_boxes
from ..flow import classic_flow, flow_features
from ..flow.classic import METHODS as CLASSIC_METHODS
from ..flow.pretrained import load_pretrained, weight_info
from ..flow.stabilize import remove_head_motion
from .pairs import AlignedPair, load_aligned_pair, read_gt

#: Default side of the network input (why: :mod:`hmrm.features`).
DEFAULT_SIZE = 112
#: Default input channels.
DEFAULT_CHANNELS = ("u", "v", "strain")
#: Every channel :func:`flow_channels` can make.
CHANNELS = ("u", "v", "mag", "strain")
#: Resolution-aware variants for small faces: ``<method>_x2`` estimates on frames enlarged 2x (bicubic)
#: and shrinks the flow back (area mean, vectors halved), so that the method's fixed-size patches and
#: pyramid levels meet a face of the size they were tuned on.
UPSCALED = {f"{m}_x2": m for m in ("dis_tuned", "tvl1")}
#: The flow methods an input can be made with: the classical ones (:data:`hmrm.flow.classic.METHODS`), the shipped GRU-AOFE, SynthME's
#: exact ground truth, and the upscaled variants. The command line and the training configuration read
#: their choices from here.
FLOW_METHODS = (*CLASSIC_METHODS, "gru_aofe", "gt", *UPSCALED)


@lru_cache(maxsize=2)
def _gru_aofe(sha256: str):
    """The shipped GRU-AOFE whose weights have this sha256 (loaded once per process; weights replaced
    on disk, say after retraining, have another hash and are loaded afresh)."""
    return load_pretrained()


def _gru_aofe_sha() -> str:
    return weight_info("gru_aofe")["sha256"]


def estimate_flow(onset: np.ndarray, apex: np.ndarray, method: str) -> np.ndarray:
    """Flow onset -> apex as (H, W, 2) float32 pixels with a classical method, ``gru_aofe`` or an
    upscaled variant (:data:`UPSCALED`)."""
    if method in UPSCALED:
        import cv2

        h, w = onset.shape[:2]
        big = [cv2.resize(np.ascontiguousarray(im), (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC) for im in (onset, apex)]
        flow = estimate_flow(big[0], big[1], UPSCALED[method])
        return (cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA) / 2).astype(np.float32)
    if method == "gru_aofe":
        return _gru_aofe(_gru_aofe_sha()).estimate(onset, apex)

    return classic_flow(onset, apex, method)


def resize_flow(flow: np.ndarray, size: int) -> np.ndarray:
    """Resize a (H, W, 2) flow to (size, size, 2), scaling u by ``size / W`` and v by ``size / H``.

    Shrinking uses area averaging (each output pixel is the mean flow of the input pixels it
    covers); enlarging uses bilinear interpolation."""
    import cv2

    f = np.ascontiguousarray(flow, dtype=np.float32)
    h, w = f.shape[:2]
    if (h, w) != (size, size):
        interp = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_LINEAR
        f = cv2.resize(f, (size, size), interpolation=interp)
    return (f * np.array([size / w, size / h], dtype=np.float32)).astype(np.float32)


def flow_channels(flow: np.ndarray, channels: Sequence[str] = DEFAULT_CHANNELS) -> np.ndarray:
    """Stack the named channels of a (H, W, 2) flow into (C, H, W) float32 (see :data:`CHANNELS`)."""
    check_channels(channels)
    named = dict(zip(CHANNELS, flow_features(flow)))  # u, v, mag, strain: the order of CHANNELS
    return np.stack([named[c] for c in channels], 0).astype(np.float32)


def check_channels(channels: Sequence[str]) -> None:
    bad = [c for c in channels if c not in CHANNELS]
    if bad or not channels:
        raise ValueError(f"unknown channel(s) {bad or list(channels)}; choose from {', '.join(CHANNELS)}")


def check_method(method: str) -> None:
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {method!r}; choose one of {', '.join(FLOW_METHODS)}")


def _scaled_boxes(landmarks: np.ndarray, frame_hw: tuple[int, int], size: int) -> np.ndarray:
    h, w = frame_hw
    lm = np.asarray(landmarks, dtype=np.float64) * np.array([size / w, size / h])
    boxes = region_boxes(lm, size)
    return np.array([boxes[name] for name in REGION_NAMES], dtype=np.int64)


def input_from_pair(pair: AlignedPair, method: str, size: int, channels: Sequence[str],
                     head_motion: str = "keep") -> tuple[np.ndarray, np.ndarray]:
    if method == "gt":
        if pair.gt_file is None:
            raise DataError(f"{pair.sample.key}: method 'gt' needs SynthME's ground-truth flow; it exists only for "
                            "SynthME samples read from their own frames (prepared=None).")
        flow = read_gt(pair.sample)["flow"]
    else:
        flow = estimate_flow(pair.onset, pair.apex, method)
    hw = pair.onset.shape[:2]
    if flow.shape[:2] != hw:
        raise DataError(f"{pair.sample.key}: flow of shape {flow.shape} does not match the frames {pair.onset.shape} "
                        f"({pair.sources[0]}).")
    if head_motion == "remove":
        flow = remove_head_motion(flow, pair.landmarks)
    x = flow_channels(resize_flow(flow, size), channels)
    return x, _scaled_boxes(pair.landmarks, hw, size)


def flow_input(sample: Sample, method: str = "dis_tuned", size: int = DEFAULT_SIZE,
               channels: Sequence[str] = DEFAULT_CHANNELS, prepared: str | Path | None = None) -> np.ndarray:
    """The network input of one sample: (C, size, size) float32, no cache (see :class:`FlowCache`).

    ``method``: one of :data:`FLOW_METHODS` (``gt`` = SynthME's exact flow, for teaching and upper bounds).
    ``prepared``: the ``hmrm prepare`` folder; needed for every data set but SynthME."""
    check_method(method)
    check_channels(channels)
    return input_from_pair(load_aligned_pair(sample, prepared), method, size, tuple(channels))[0]


def region_boxes_for(sample: Sample, size: int = DEFAULT_SIZE, prepared: str | Path | None = None) -> np.ndarray:
    """Region boxes of ``sample`` in input coordinates: int (R, 4) rows ``(x0, y0, x1, y1)``
    (x1, y1 exclusive) in the order of :data:`~hmrm.face.regions.REGION_NAMES`, from the onset
    landmarks scaled to ``size``."""
    pair = load_aligned_pair(sample, prepared)
    return _scaled_boxes(pair.landmarks, pair.onset.shape[:2], size)
