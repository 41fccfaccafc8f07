"""The all-pairs correlation pyramid and its local lookup (RAFT, Teed & Deng 2020).

``C[i, j] = <f1_i, f2_j> / sqrt(D)`` for every pixel ``i`` of frame 1 and ``j`` of frame 2 at
feature resolution: an (H W) x (H W) volume, computed once per pair. Its last two dimensions are
average-pooled ``levels - 1`` times to see larger motions. At each refinement step the current
estimate ``x + f(x)`` is looked up: for every level, a (2r+1) x (2r+1) window of correlations
around the (scaled) target, sampled bilinearly, so sub-pixel positions give interpolated
correlations. The lookups of all levels are stacked as channels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def all_pairs(f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
    """(N, D, H, W) x2 -> (N, H, W, H, W) correlation, scaled by 1/sqrt(D)."""
    n, d, h, w = f1.shape
    c = torch.einsum("ndi,ndj->nij", f1.reshape(n, d, h * w), f2.reshape(n, d, h * w))
    return (c / d ** 0.5).reshape(n, h, w, h, w)


def corr_channels(levels: int, radius: int) -> int:
    """The channels of a correlation lookup: a (2 radius + 1)^2 window at each of ``levels`` levels."""
    return levels * (2 * radius + 1) ** 2


class CorrPyramid:
    def __init__(self, f1: torch.Tensor, f2: torch.Tensor, levels: int = 3, radius: int = 3):
        n, _, h, w = f1.shape
        self.levels, self.radius, self.shape = levels, radius, (n, h, w)
        vol = all_pairs(f1, f2).reshape(n * h * w, 1, h, w)
        self.pyramid = [vol]
        for _ in range(levels - 1):
            vol = F.avg_pool2d(vol, 2, stride=2)
            self.pyramid.append(vol)

    @property
    def channels(self) -> int:
        return corr_channels(self.levels, self.radius)

    def __call__(self, coords: torch.Tensor) -> torch.Tensor:
        """``coords`` (N, 2, H, W): target positions (x, y) in frame-2 feature pixels ->
        (N, levels (2r+1)^2, H, W) correlation features."""
        n, h, w = self.shape
        r = self.radius
        d = torch.arange(-r, r + 1, device=coords.device, dtype=coords.dtype)
        dy, dx = torch.meshgrid(d, d, indexing="ij")
        delta = torch.stack([dx, dy], -1).reshape(1, 2 * r + 1, 2 * r + 1, 2)
        centre = coords.permute(0, 2, 3, 1).reshape(n * h * w, 1, 1, 2)
        out = []
        for lvl, vol in enumerate(self.pyramid):
            hl, wl = vol.shape[-2:]
            pos = centre / 2 ** lvl + delta  # (NHW, 2r+1, 2r+1, 2)
            grid = torch.stack([2 * pos[..., 0] / max(wl - 1, 1) - 1, 2 * pos[..., 1] / max(hl - 1, 1) - 1], -1)
            s = F.grid_sample(vol, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            out.append(s.reshape(n, h, w, -1))
        return torch.cat(out, -1).permute(0, 3, 1, 2).contiguous()
