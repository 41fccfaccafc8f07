"""Landmarks and region boxes drawn over a face, with matplotlib."""
from __future__ import annotations

import numpy as np

REGION_COLOURS = {"right_eye": "tab:orange", "left_eye": "tab:green", "nose": "tab:purple", "mouth": "tab:red"}


def draw_landmarks(ax, landmarks: np.ndarray, color: str = "cyan", size: float = 4.0) -> None:
    lm = np.asarray(landmarks)
    ax.scatter(lm[:, 0], lm[:, 1], s=size, c=color, linewidths=0)


def draw_regions(ax, boxes: dict, labels: bool = True) -> None:
    from matplotlib.patches import Rectangle

    for name, (x0, y0, x1, y1) in boxes.items():
        colour = REGION_COLOURS.get(name, "yellow")
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.2, ec=colour))
        if labels:
            ax.text(x0, y0 - 2, name.replace("_", " "), color=colour, fontsize=6, va="bottom")


def draw_flow_arrows(ax, flow: np.ndarray, step: int = 12, scale: float = 8.0, mask: np.ndarray | None = None, color: str = "yellow") -> None:
    """Arrows every ``step`` px, lengthened ``scale`` times (micro-motion is sub-pixel)."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[step // 2 : h : step, step // 2 : w : step]
    u, v = flow[ys, xs, 0], flow[ys, xs, 1]
    keep = np.ones_like(u, dtype=bool) if mask is None else mask[ys, xs]
    ax.quiver(xs[keep], ys[keep], u[keep] * scale, v[keep] * scale, color=color, angles="xy", scale_units="xy", scale=1, width=0.004)
