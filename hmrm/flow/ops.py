"""Small flow operations shared by the data, the flow estimators and the checks.

Convention: a flow ``F`` from frame A to frame B stores, at pixel ``x`` of A, the displacement
``(dx, dy)`` in pixels such that the point seen at ``x`` in A is seen at ``x + F(x)`` in B.
Backward warping B by F therefore gives back A.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def backward_warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear", padding_mode: str = "border") -> torch.Tensor:
    """Sample ``image`` (N, C, H, W) at ``x + flow(x)``; ``flow`` is (N, 2, H, W) in pixels, (dx, dy)."""
    if image.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"expected image (N, C, H, W) and flow (N, 2, H, W), got {tuple(image.shape)} and {tuple(flow.shape)}")
    if image.shape[0] != flow.shape[0] or image.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f"image {tuple(image.shape)} and flow {tuple(flow.shape)} differ in batch or size")
    n, _, h, w = flow.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=flow.dtype, device=flow.device), torch.arange(w, dtype=flow.dtype, device=flow.device), indexing="ij"
    )
    gx = 2 * (xs + flow[:, 0]) / max(w - 1, 1) - 1
    gy = 2 * (ys + flow[:, 1]) / max(h - 1, 1) - 1
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(image.to(flow.dtype), grid, mode=mode, padding_mode=padding_mode, align_corners=True)


def warp_array(image: np.ndarray, flow: np.ndarray, mode: str = "bicubic") -> np.ndarray:
    """NumPy convenience: ``image`` (H, W) or (H, W, C), ``flow`` (H, W, 2) -> float32 image of the same shape."""
    img = np.asarray(image, dtype=np.float32)
    squeeze = img.ndim == 2
    if squeeze:
        img = img[..., None]
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    f = torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)).permute(2, 0, 1)[None]
    out = backward_warp(t, f, mode=mode)[0].permute(1, 2, 0).numpy()
    return out[..., 0] if squeeze else out


def endpoint_error(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, mask=None) -> float:
    """Mean end-point error (Euclidean distance between flow vectors), over ``mask`` if given.

    Accepts (H, W, 2) arrays or (N, 2, H, W) tensors (channel axis found by its size 2)."""
    p = torch.as_tensor(np.asarray(pred) if isinstance(pred, np.ndarray) else pred, dtype=torch.float64)
    t = torch.as_tensor(np.asarray(target) if isinstance(target, np.ndarray) else target, dtype=torch.float64)
    if p.shape != t.shape:
        raise ValueError(f"flow shapes differ: {tuple(p.shape)} vs {tuple(t.shape)}")
    axis = -1 if p.shape[-1] == 2 else 1
    err = torch.linalg.vector_norm(p - t, dim=axis)
    if mask is not None:
        m = torch.as_tensor(np.asarray(mask) if isinstance(mask, np.ndarray) else mask, dtype=torch.bool)
        if m.shape != err.shape:
            m = m.expand_as(err)
        if not m.any():
            raise ValueError("mask selects no pixel")
        err = err[m]
    return float(err.mean())


def angular_error(pred, target, mask=None) -> float:
    """Mean angular error in degrees between space-time vectors (u, v, 1) (Barron et al. 1994)."""
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    num = p[..., 0] * t[..., 0] + p[..., 1] * t[..., 1] + 1.0
    den = np.sqrt((p ** 2).sum(-1) + 1.0) * np.sqrt((t ** 2).sum(-1) + 1.0)
    ang = np.degrees(np.arccos(np.clip(num / den, -1.0, 1.0)))
    return float(ang[mask].mean() if mask is not None else ang.mean())


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude of a (H, W, 2) flow: sqrt(exx^2 + eyy^2 + 2 exy^2), with
    exx = du/dx, eyy = dv/dy, exy = (du/dy + dv/dx) / 2 (central differences)."""
    f = np.asarray(flow, dtype=np.float32)
    du_dy, du_dx = np.gradient(f[..., 0])
    dv_dy, dv_dx = np.gradient(f[..., 1])
    exy = 0.5 * (du_dy + dv_dx)
    return np.sqrt(du_dx ** 2 + dv_dy ** 2 + 2 * exy ** 2).astype(np.float32)


def flow_features(flow: np.ndarray) -> np.ndarray:
    """The four input channels HMRM-style recognisers use: u, v, magnitude, optical strain, (4, H, W)."""
    f = np.asarray(flow, dtype=np.float32)
    mag = np.sqrt((f ** 2).sum(-1))
    return np.stack([f[..., 0], f[..., 1], mag, optical_strain(f)], 0)
