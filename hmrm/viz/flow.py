"""Optical flow as colour: hue is the direction, saturation the speed (the usual convention of
flow papers, built here on the HSV wheel)."""
from __future__ import annotations

import numpy as np


def flow_to_color(flow: np.ndarray, max_mag: float | None = None) -> np.ndarray:
    """(H, W, 2) flow -> (H, W, 3) uint8 RGB. White means no motion; a fully saturated colour
    means ``max_mag`` pixels (default: the largest magnitude in ``flow``)."""
    import cv2

    flow = np.asarray(flow, dtype=np.float32)
    u, v = flow[..., 0], flow[..., 1]
    mag = np.sqrt(u**2 + v**2)
    if max_mag is None:
        max_mag = float(mag.max()) if mag.size else 1.0
    max_mag = max(max_mag, 1e-6)
    ang = (np.degrees(np.arctan2(-v, -u)) + 180.0) % 360.0  # 0..360, right = red
    hsv = np.zeros(flow.shape[:2] + (3,), dtype=np.float32)
    hsv[..., 0] = ang
    hsv[..., 1] = np.clip(mag / max_mag, 0, 1)
    hsv[..., 2] = 1.0
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def add_flow_wheel(ax, max_mag: float, size: float = 0.28, corner: str = "lower right"):
    """Put the colour key of :func:`flow_to_color` in a corner of ``ax``: the wheel's rim is a
    displacement of ``max_mag`` px (the saturation of the image beside it), its hue the direction.
    Returns the inset axes."""
    x = 1 - size if "right" in corner else 0.0
    y = 0.0 if "lower" in corner else 1 - size
    inset = ax.inset_axes([x, y, size, size])
    inset.imshow(flow_wheel(64))
    inset.set_title(f"{max_mag:g} px", fontsize=6, pad=1)
    inset.axis("off")
    return inset


def flow_wheel(size: int = 101) -> np.ndarray:
    """The colour key: the colour of every flow vector inside a unit disc."""
    r = np.linspace(-1, 1, size, dtype=np.float32)
    u, v = np.meshgrid(r, r)
    img = flow_to_color(np.stack([u, v], -1), max_mag=1.0)
    img[u**2 + v**2 > 1] = 255
    return img
