"""Classical optical flow baselines (OpenCV), with their parameters written out.

All methods take two frames (RGB or grey, uint8 or float in 0..255) and return the flow from the
first to the second as a float32 (H, W, 2) array in pixels, (dx, dy), in the convention of
:mod:`hmrm.flow.ops`.

=============  ==============================================================================
method         what it is
=============  ==============================================================================
``tvl1``       Dual TV-L1 (Zach et al. 2007; Pérez et al. 2013), OpenCV contrib defaults: the
               micro-expression field's default estimator. Slow, smooths sub-pixel motion.
``farneback``  Farnebäck (2003) polynomial expansion; pyramid 0.5 x 3 levels, window 15,
               3 iterations, poly_n 5, sigma 1.2.
``dis``        DIS (Kroeger et al. 2016), OpenCV's MEDIUM preset as shipped.
``dis_tuned``  DIS tuned for faces: MEDIUM preset, finest scale 0 (full resolution, the preset
               stops at 1/2), patch 8 / stride 4, 25 gradient-descent iterations, variational
               refinement 5 iterations (alpha 20, gamma 10, delta 5), mean normalisation and
               spatial propagation on.
=============  ==============================================================================

Parameters can be overridden per call (``classic_flow(a, b, "farneback", winsize=21)``).
"""
from __future__ import annotations

import numpy as np

METHODS = ("tvl1", "farneback", "dis", "dis_tuned")

FARNEBACK_DEFAULTS = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
DIS_TUNED = dict(finest_scale=0, patch_size=8, patch_stride=4, gd_iterations=25, var_iterations=5,
                 var_alpha=20.0, var_gamma=10.0, var_delta=5.0)


def to_grey(image: np.ndarray) -> np.ndarray:
    """uint8 grey image from RGB / grey, uint8 / float (0..255)."""
    import cv2

    img = np.asarray(image)
    if img.ndim == 3:
        img = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8) if img.dtype != np.uint8 else img


def _tvl1(a, b, **kw):
    import cv2

    tv = cv2.optflow.DualTVL1OpticalFlow_create(**kw)
    return tv.calc(a, b, None)


def _farneback(a, b, **kw):
    import cv2

    p = {**FARNEBACK_DEFAULTS, **kw}
    return cv2.calcOpticalFlowFarneback(a, b, None, p["pyr_scale"], p["levels"], p["winsize"], p["iterations"],
                                        p["poly_n"], p["poly_sigma"], p["flags"])


def _dis(a, b, tuned: bool = False, **kw):
    import cv2

    d = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    if tuned:
        p = {**DIS_TUNED, **kw}
        d.setFinestScale(p["finest_scale"])
        d.setPatchSize(p["patch_size"])
        d.setPatchStride(p["patch_stride"])
        d.setGradientDescentIterations(p["gd_iterations"])
        d.setVariationalRefinementIterations(p["var_iterations"])
        d.setVariationalRefinementAlpha(p["var_alpha"])
        d.setVariationalRefinementGamma(p["var_gamma"])
        d.setVariationalRefinementDelta(p["var_delta"])
        d.setUseMeanNormalization(True)
        d.setUseSpatialPropagation(True)
    return d.calc(a, b, None)


def classic_flow(first: np.ndarray, second: np.ndarray, method: str = "dis_tuned", **params) -> np.ndarray:
    """Flow ``first`` -> ``second`` with a classical method (see the module docstring)."""
    if method not in METHODS:
        raise ValueError(f"unknown flow method {method!r}; choose one of {', '.join(METHODS)}")
    a, b = to_grey(first), to_grey(second)
    if a.shape != b.shape:
        raise ValueError(f"frames differ in size: {a.shape} vs {b.shape}")
    if method == "tvl1":
        flow = _tvl1(a, b, **params)
    elif method == "farneback":
        flow = _farneback(a, b, **params)
    else:
        flow = _dis(a, b, tuned=method == "dis_tuned", **params)
    return np.ascontiguousarray(flow, dtype=np.float32)
