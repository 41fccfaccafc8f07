"""Head-motion compensation: remove the face's rigid (affine) motion from an onset -> apex flow.

A micro-expression moves a few facial points by a pixel or two; in the same fraction of a second the
whole head may drift, turn or lean by as much or more. The network was meant to see the first, but
the flow holds both. HMRM's authors name this as a limit they leave open. The remedy here:

1. the **stable pixels**: the face (:func:`hmrm.face.regions.face_mask`) minus the boxes of the
   regions expressions move (eyes with brows, nose wings, mouth), so forehead, cheeks, the upper
   nose bridge and the face outline;
2. the **affine flow** (six numbers: translation, rotation, scale, shear) closest to the flow on
   those pixels, by least squares;
3. **robust refits**: the pixels whose flow the fit explains worst (an action unit that reaches a
   cheek or the chin, a blink) are dropped, keeping the ``keep`` share best explained, and the fit
   is repeated ``iterations`` times;
4. the fitted field, extended over the whole frame, is subtracted.

What is left is the motion of the face relative to the head, which is what the expression is. On
SynthME, whose exact expression-only flow is known (``flow_expression`` in its ground truth), the
effect is measured by :func:`hmrm.beyond.head_motion_experiment`.
"""
from __future__ import annotations

import numpy as np

from ..face.regions import face_mask, region_masks

#: Flow inputs: ``keep`` leaves the flow as estimated, ``remove`` subtracts the head's affine motion.
HEAD_MOTION = ("keep", "remove")


def affine_basis(h: int, w: int) -> np.ndarray:
    """(h*w, 3) design matrix ``[1, x / w, y / h]`` of an affine flow field."""
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([np.ones(h * w), xs.ravel() / w, ys.ravel() / h], 1)


def fit_affine_flow(flow: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The affine flow field (H, W, 2) closest in least squares to ``flow`` on the pixels of ``mask``
    (all pixels when None)."""
    h, w = flow.shape[:2]
    a = affine_basis(h, w)
    f = flow.reshape(-1, 2).astype(np.float64)
    m = np.ones(h * w, bool) if mask is None else np.asarray(mask, bool).ravel()
    if m.sum() < 3:
        raise ValueError(f"an affine fit needs at least 3 pixels, the mask has {int(m.sum())}")
    coef, *_ = np.linalg.lstsq(a[m], f[m], rcond=None)
    return (a @ coef).reshape(h, w, 2)


def stable_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: the face minus the boxes of the eyes (with brows), nose and mouth."""
    mask = face_mask(landmarks, size)
    for m in region_masks(landmarks, size).values():
        mask &= ~m
    return mask


def head_motion(flow: np.ndarray, landmarks: np.ndarray, iterations: int = 3, keep: float = 0.7) -> np.ndarray:
    """The head's affine motion (H, W, 2) in ``flow``, fitted robustly on the stable pixels of the
    face whose 68 ``landmarks`` are given in the flow's pixels (see the module docstring)."""
    h, w = flow.shape[:2]
    if h != w:
        raise ValueError(f"expected a square flow (aligned face), got {flow.shape}")
    mask = stable_mask(landmarks, h)
    if mask.sum() < 50:
        raise ValueError(f"only {int(mask.sum())} stable face pixels: are the landmarks in this flow's pixels?")
    fit = fit_affine_flow(flow, mask)
    for _ in range(iterations):
        resid = np.linalg.norm(flow - fit, axis=-1)
        cut = np.quantile(resid[mask], keep)
        fit = fit_affine_flow(flow, mask & (resid <= cut))
    return fit.astype(np.float32)


def remove_head_motion(flow: np.ndarray, landmarks: np.ndarray, iterations: int = 3, keep: float = 0.7) -> np.ndarray:
    """``flow`` minus the head's affine motion (:func:`head_motion`)."""
    return (flow - head_motion(flow, landmarks, iterations, keep)).astype(np.float32)
