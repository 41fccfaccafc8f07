"""The SynthME montage the README shows: faces with regions, the motion, and its exact flow."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.synthme import load_frame, load_gt_flow, load_synthme
from ..face.regions import region_boxes
from .flow import flow_to_color, flow_wheel
from .overlays import draw_flow_arrows, draw_landmarks, draw_regions


def pick_showcase(samples, n: int = 5) -> list:
    """One sample per (class, subject), cycling through classes, different subjects first."""
    by_class: dict[str, list] = {}
    for s in samples:
        by_class.setdefault(s.label, []).append(s)
    chosen, used = [], set()
    while len(chosen) < n and any(by_class.values()):
        for label in list(by_class):
            pool = by_class[label]
            if not pool:
                continue
            pick = next((s for s in pool if s.subject not in used), pool[0])
            pool.remove(pick)
            used.add(pick.subject)
            chosen.append(pick)
            if len(chosen) == n:
                break
    return chosen


def synthme_montage(root: str | Path, out: str | Path | None = None, n: int = 5, max_mag: float = 2.0):
    """Draw ``n`` SynthME samples: onset with landmarks and regions, the amplified apex-onset
    difference, the ground-truth flow in colour (saturated at ``max_mag`` px) and as arrows."""
    import matplotlib.pyplot as plt  # the caller's backend: a library never switches it (a notebook's would go dark)

    samples = pick_showcase(load_synthme(root), n)
    fig, axes = plt.subplots(4, len(samples), figsize=(2.2 * len(samples), 9.2), squeeze=False)
    for j, s in enumerate(samples):
        onset, apex = load_frame(s.onset_path), load_frame(s.apex_path)
        gt = load_gt_flow(s)
        size = onset.shape[0]
        ax = axes[0, j]
        ax.imshow(onset)
        draw_landmarks(ax, gt["landmarks_onset"], size=2)
        draw_regions(ax, region_boxes(gt["landmarks_onset"], size), labels=j == 0)
        ax.set_xlim(-0.5, size - 0.5)
        ax.set_ylim(size - 0.5, -0.5)
        ax.set_title(f"{s.subject} {s.emotion}\nAU {s.aus}, peak {float(s.meta['peak_px']):.2f} px", fontsize=7)
        diff = np.abs(apex.astype(np.float32) - onset.astype(np.float32)).mean(-1)
        axes[1, j].imshow(np.clip(diff * 10, 0, 255), cmap="gray", vmin=0, vmax=255)
        axes[2, j].imshow(flow_to_color(gt["flow"], max_mag=max_mag))
        axes[2, j].contour(gt["face_mask"], levels=[0.5], colors="k", linewidths=0.4)
        axes[3, j].imshow(onset.mean(-1), cmap="gray")
        draw_flow_arrows(axes[3, j], gt["flow"], step=14, scale=10, mask=gt["face_mask"])
    for i, label in enumerate(["onset, landmarks, regions", "|apex - onset| x10", f"GT flow (colour, {max_mag:g} px = full)", "GT flow arrows (x10)"]):
        axes[i, 0].set_ylabel(label, fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("SynthME: real faces, synthetic micro-expressions, exact flow (onset -> apex)", fontsize=9)
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    inset = fig.add_axes([0.005, 0.005, 0.05, 0.05])
    inset.imshow(flow_wheel(64))
    inset.axis("off")
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    return fig
