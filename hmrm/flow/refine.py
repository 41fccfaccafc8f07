"""The refinement stage of GRU-AOFE: learned, confidence-guided smoothing at full resolution.

Why it exists (measured with ``benchmarks/flow_bench.py``; the README's "Optical flow" section has the table):
on faces the error left by tuned DIS, and by the GRU that starts from it, is *drift*: over flat
skin, sensor noise moves the patch matches by a few hundredths of a pixel, coherently over 8-16 px.
No local correction can see that drift in one pixel, but the true motion of a face is smooth, so
averaging the flow over a neighbourhood removes much of it, provided the average does not reach
across real motion boundaries and weighs reliable (textured) pixels more. That is what global
motion aggregation does at 1/4 resolution inside the GRU; this stage does it at full resolution,
with a network small enough to learn its rule from generated pairs on a CPU budget.

For every pixel the network sees eight numbers that describe the situation, not the scene:

====================  ==============================================================================
feature               meaning
====================  ==============================================================================
texture 2, 4, 8       log of the image-gradient energy of frame 1 averaged at sigma 2, 4, 8 px
residual 2, 8         log of the squared brightness residual after warping frame 2 by the flow
roughness 2, 4, 8     log of how far the flow strays from its own local mean at sigma 2, 4, 8 px
====================  ==============================================================================

and a per-pixel MLP (1 x 1 convolutions) turns them into

* a confidence ``c`` in (0, 1) for the pixel's own flow,
* weights ``p_s`` over the smoothing scales ``s`` = 1, 2, 4, 8 px (softmax),
* a gate ``g`` in (-1, 1).

The smoothed flow at scale ``s`` is a normalised convolution, ``G_s * (c F) / G_s * c`` (Knutsson &
Westin 1993): unreliable pixels borrow from reliable neighbours and do not pollute them. The output
is ``F + g * (sum_s p_s smooth_s(F) - F)``. The gate's layer starts at zero, so an untrained stage
returns its input exactly: whatever it changes was learned.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .ops import backward_warp

SCALES = (1.0, 2.0, 4.0, 8.0)  # smoothing scales (Gaussian sigma, px) the stage chooses between
FEATURE_NAMES = ("texture 2", "texture 4", "texture 8", "residual 2", "residual 8",
                 "roughness 2", "roughness 4", "roughness 8")


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W), radius 3 sigma, edges replicated."""
    r = max(1, int(round(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-t * t / (2 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def normalized_convolution(flow: torch.Tensor, confidence: torch.Tensor, sigma: float, eps: float = 1e-4) -> torch.Tensor:
    """``G_sigma * (c flow) / G_sigma * c``: a Gaussian average of ``flow`` weighted by ``confidence``."""
    return gaussian_blur(confidence * flow, sigma) / gaussian_blur(confidence, sigma).clamp(min=eps)


def refine_features(img1: torch.Tensor, img2: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """The eight per-pixel features (N, 8, H, W) of :data:`FEATURE_NAMES`; images grey 0..255."""
    warped = backward_warp(img2, flow)
    res2 = (img1 - warped) ** 2
    gx = F.pad(img1[..., :, 2:] - img1[..., :, :-2], (1, 1, 0, 0), mode="replicate") / 2
    gy = F.pad(img1[..., 2:, :] - img1[..., :-2, :], (0, 0, 1, 1), mode="replicate") / 2
    grad2 = gx * gx + gy * gy
    feats = [torch.log1p(gaussian_blur(grad2, s)) for s in (2.0, 4.0, 8.0)]
    feats += [torch.log1p(gaussian_blur(res2, s)) for s in (2.0, 8.0)]
    for s in (2.0, 4.0, 8.0):
        dev = ((flow - gaussian_blur(flow, s)) ** 2).sum(1, keepdim=True)
        feats.append(torch.log(gaussian_blur(dev, s) + 1e-4))
    return torch.cat(feats, 1)


class FlowRefiner(nn.Module):
    """Learned confidence-guided smoothing of a full-resolution flow (see the module docstring)."""

    def __init__(self, hidden: int = 32, scales: tuple[float, ...] = SCALES):
        super().__init__()
        self.scales = tuple(float(s) for s in scales)
        k = len(self.scales)
        self.mlp = nn.Sequential(nn.Conv2d(len(FEATURE_NAMES), hidden, 1), nn.ReLU(), nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
                                 nn.Conv2d(hidden, k + 2, 1))  # k scale logits, confidence, gate
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def maps(self, img1: torch.Tensor, img2: torch.Tensor, flow: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything the stage decides for a pair: ``weights`` (N, K, H, W) over :attr:`scales`,
        ``confidence`` and ``gate`` (N, 1, H, W), and the refined ``flow``."""
        k = len(self.scales)
        out = self.mlp(refine_features(img1, img2, flow))
        weights = out[:, :k].softmax(1)
        confidence = torch.sigmoid(out[:, k:k + 1] + 2.0)  # starts near 0.88: all pixels count at first
        gate = torch.tanh(out[:, k + 1:k + 2])
        mix = sum(weights[:, i:i + 1] * normalized_convolution(flow, confidence, s) for i, s in enumerate(self.scales))
        return {"weights": weights, "confidence": confidence, "gate": gate, "flow": flow + gate * (mix - flow)}

    def forward(self, img1: torch.Tensor, img2: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """Refined flow (N, 2, H, W) from grey frames (N, 1, H, W) in 0..255 and a flow (N, 2, H, W)."""
        return self.maps(img1, img2, flow)["flow"]
