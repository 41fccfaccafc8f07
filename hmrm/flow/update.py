"""The update operator: motion encoder, global motion aggregation, ConvGRU, heads.

One refinement step (per pair, repeated ``iters`` times):

1. **Motion encoder**: correlation lookup + current flow -> motion features.
2. **Global motion aggregation** (the "attention" of GRU-attention flow; Jiang et al. 2021's GMA):
   queries and keys come from frame-1 context features, so the attention matrix (which pixels
   belong together) is computed once per pair; each step it mixes motion features across the
   whole face, letting well-textured regions inform flat or noisy ones.
3. **ConvGRU** (separable 1x5 / 5x1): hidden state, context, motion and aggregated motion -> new
   hidden state.
4. **Heads**: a flow update (times ``delta_scale``: see :class:`UpdateBlock`), and the weights of convex upsampling (each full-resolution pixel is a
   convex combination of its 3x3 coarse neighbours, 16 = 4x4 sub-positions for stride 4).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .ops import backward_warp
from .refine import gaussian_blur


class MotionEncoder(nn.Module):
    """Correlation features and the current flow (and, with ``photometric`` channels, the
    :func:`photometric_features` of the current flow) -> motion features. The flow enters the
    convolutions multiplied by ``flow_scale``: in coarse pixels a micro-motion is a few hundredths,
    far below the correlation features' scale, so without it the flow's shape is invisible."""

    def __init__(self, corr_ch: int, out_dim: int = 64, photometric: int = 0, flow_scale: float = 1.0):
        super().__init__()
        self.flow_scale = float(flow_scale)
        self.c1 = nn.Conv2d(corr_ch, 64, 1)
        self.f1 = nn.Conv2d(2, 32, 7, padding=3)
        self.f2 = nn.Conv2d(32, 16, 3, padding=1)
        self.p1 = nn.Conv2d(photometric, 32, 1) if photometric else None
        self.out = nn.Conv2d(64 + 16 + (32 if photometric else 0), out_dim - 2, 3, padding=1)

    def forward(self, corr: torch.Tensor, flow: torch.Tensor, photometric: torch.Tensor | None = None) -> torch.Tensor:
        parts = [F.relu(self.c1(corr)), F.relu(self.f2(F.relu(self.f1(self.flow_scale * flow))))]
        if self.p1 is not None:
            parts.append(F.relu(self.p1(photometric)))
        return torch.cat([F.relu(self.out(torch.cat(parts, 1))), flow], 1)


PHOTOMETRIC_CHANNELS = 5


def local_contrast(img: torch.Tensor, sigma: float = 4.0) -> torch.Tensor:
    """``img`` minus its local mean, over its local standard deviation (Gaussian window ``sigma`` px,
    2 grey levels added to the deviation so that flat, noisy skin is not blown up): what a change of
    gain, bias or smooth illumination between the frames leaves unchanged."""
    d = img - gaussian_blur(img, sigma)
    return d / (gaussian_blur(d * d, sigma).sqrt() + 2.0)


def photometric_features(img1: torch.Tensor, img2: torch.Tensor, flow: torch.Tensor, stride: int = 4,
                         sigma: float = 4.0) -> torch.Tensor:
    """What the brightness of the two frames says about the current full-resolution ``flow``, per cell of
    the ``stride`` grid: (N, 5, H/stride, W/stride).

    Both frames are brought to local contrast (:func:`local_contrast`, so that a gain or illumination
    change is not read as motion) and frame 2 is warped back by the flow; where the flow is right, the
    two agree. The residual ``r`` and the warped frame's gradients ``(gx, gy)`` give the Lucas-Kanade
    normal equations of the correction, ``M d = -b`` with ``M = [[gx gx, gx gy], [gx gy, gy gy]]`` and
    ``b = [gx r, gy r]``, averaged over a Gaussian window (``sigma`` px) and the cell. The channels are
    the solution ``d`` in coarse pixels (regularised by a tenth of the image's mean trace of ``M``,
    clamped to +-1), ``log`` of the trace and of the determinant of ``M`` (how well the cell is
    textured) and ``log`` of the mean squared residual, the last three divided by 10. Why: the
    correlation volume lives at 1/4 resolution, where a tenth of a pixel (a micro-expression's motion,
    and tuned DIS's typical error on skin) is a fortieth of a cell; these are full-resolution
    measurements of that error, which the GRU and the attention can weigh and pool over the face."""
    i1, w = local_contrast(img1), local_contrast(backward_warp(img2, flow))
    gx = F.pad(w[..., :, 2:] - w[..., :, :-2], (1, 1, 0, 0), mode="replicate") / 2
    gy = F.pad(w[..., 2:, :] - w[..., :-2, :], (0, 0, 1, 1), mode="replicate") / 2
    r = w - i1
    terms = gaussian_blur(torch.cat([gx * gx, gx * gy, gy * gy, gx * r, gy * r, r * r], 1), sigma)
    a, b, c, bx, by, rr = F.avg_pool2d(terms, stride).unbind(1)
    reg = 0.1 * (a + c).mean((1, 2), keepdim=True) + 1e-8
    det = (a + reg) * (c + reg) - b * b
    dx = -((c + reg) * bx - b * by) / det
    dy = -((a + reg) * by - b * bx) / det
    step = (torch.stack([dx, dy], 1) / stride).clamp(-1, 1)
    tex = torch.stack([torch.log(a + c + 1e-8), torch.log((a * c - b * b).clamp(min=0) + 1e-12), torch.log(rr + 1e-10)], 1)
    return torch.cat([step, tex / 10], 1)


class Attention(nn.Module):
    """Softmax attention of every pixel over all pixels, from context features (once per pair).

    ``mode="cosine"`` (the default): queries and keys are L2-normalised and their cosine is scaled
    by a learned temperature that starts at ``temperature``, so rows can be peaked from the first
    step and the temperature is learned rather than set by the features' norm. ``mode="dot"``: GMA's
    scaled dot product (``q . k / sqrt(key_dim)``), the attention of the first weights this project shipped,
    trained before the cosine form; its rows start almost uniform, because a freshly initialised context encoder gives
    small, similar keys.
    """

    def __init__(self, dim: int, key_dim: int = 32, mode: str = "cosine", temperature: float = 10.0):
        super().__init__()
        if mode not in ("cosine", "dot"):
            raise ValueError(f"attention mode must be 'cosine' or 'dot', got {mode!r}")
        self.mode = mode
        self.q = nn.Conv2d(dim, key_dim, 1, bias=False)
        self.k = nn.Conv2d(dim, key_dim, 1, bias=False)
        self.scale = key_dim ** -0.5
        if mode == "cosine":
            self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    def logits(self, context: torch.Tensor) -> torch.Tensor:
        """(N, HW, HW) attention logits (before the softmax over the last axis)."""
        q = self.q(context).flatten(2).transpose(1, 2)  # (N, HW, K)
        k = self.k(context).flatten(2)  # (N, K, HW)
        if self.mode == "cosine":
            return F.normalize(q, dim=2) @ F.normalize(k, dim=1) * self.log_temperature.exp()
        return q @ k * self.scale

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(context), dim=-1)  # (N, HW, HW)


def row_entropy(attn: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the rows of an (N, HW, HW) attention; ``log(HW)`` for uniform rows."""
    return -(attn * attn.clamp(min=1e-30).log()).sum(-1).mean()


class Aggregate(nn.Module):
    """Motion features mixed by the attention matrix, added with a learned gain ``gamma``.

    GMA starts ``gamma`` at 0; then the attention receives no gradient until ``gamma`` has moved,
    and in a CPU-sized training it never does (``benchmarks/flow_overfit.py``: the attention's
    gradient stays about a thousand times below the other parts'). It starts at ``gain`` (1 by
    default): the flow head's last layer starts at zero, so an untrained model still returns its
    starting flow unchanged, whatever the gain."""

    def __init__(self, dim: int, gain: float = 1.0):
        super().__init__()
        self.v = nn.Conv2d(dim, dim, 1, bias=False)
        self.gamma = nn.Parameter(torch.full((1,), float(gain)))

    def forward(self, attn: torch.Tensor | None, motion: torch.Tensor) -> torch.Tensor:
        """``attn=None``: the ablation without attention, the aggregated features replaced by the plain
        motion features."""
        if attn is None:
            return motion
        n, c, h, w = motion.shape
        v = self.v(motion).flatten(2).transpose(1, 2)  # (N, HW, C)
        out = (attn @ v).transpose(1, 2).reshape(n, c, h, w)
        return motion + self.gamma * out


class SepConvGRU(nn.Module):
    def __init__(self, hidden: int, inp: int):
        super().__init__()
        self.zr1 = nn.Conv2d(hidden + inp, 2 * hidden, (1, 5), padding=(0, 2))
        self.q1 = nn.Conv2d(hidden + inp, hidden, (1, 5), padding=(0, 2))
        self.zr2 = nn.Conv2d(hidden + inp, 2 * hidden, (5, 1), padding=(2, 0))
        self.q2 = nn.Conv2d(hidden + inp, hidden, (5, 1), padding=(2, 0))

    @staticmethod
    def _step(h, x, zr_conv, q_conv):
        hx = torch.cat([h, x], 1)
        z, r = torch.sigmoid(zr_conv(hx)).chunk(2, 1)
        q = torch.tanh(q_conv(torch.cat([r * h, x], 1)))
        return (1 - z) * h + z * q

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self._step(self._step(h, x, self.zr1, self.q1), x, self.zr2, self.q2)


class UpdateBlock(nn.Module):
    """Motion encoder, aggregation, ConvGRU and heads. ``delta_scale`` multiplies the flow head's
    output. Why: an optimiser such as Adam moves every weight by about its learning rate per step,
    whatever the gradient's size, so the head's output jumps by roughly ``lr x fan-in`` coarse pixels
    a step, tenths of a pixel at full resolution. That is fine for RAFT's motions of many pixels
    (``delta_scale = 1``), but a warm-started face flow needs corrections of a few hundredths of a
    pixel: at scale 1 each step's jitter is larger than the correction, and the GRU never settles
    below its warm start. At 0.02 the steps are the size of the corrections."""

    def __init__(self, corr_ch: int, hidden: int = 64, context: int = 64, motion: int = 64, stride: int = 4,
                 gain: float = 1.0, photometric: bool = False, flow_scale: float = 1.0, delta_scale: float = 1.0):
        super().__init__()
        self.delta_scale = float(delta_scale)
        self.encoder = MotionEncoder(corr_ch, motion, PHOTOMETRIC_CHANNELS if photometric else 0, flow_scale)
        self.aggregate = Aggregate(motion, gain)
        self.gru = SepConvGRU(hidden, context + 2 * motion)
        self.flow_head = nn.Sequential(nn.Conv2d(hidden, 96, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(96, 2, 3, padding=1))
        self.mask_head = nn.Sequential(nn.Conv2d(hidden, 96, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(96, 9 * stride ** 2, 1))
        # the last flow layer starts at zero: an untrained model returns its starting flow unchanged
        # (with a warm start, exactly the classical estimate), and training can only learn to improve it
        nn.init.zeros_(self.flow_head[-1].weight)
        nn.init.zeros_(self.flow_head[-1].bias)

    def forward(self, h, context, corr, flow, attn, photometric=None):
        m = self.encoder(corr, flow, photometric)
        g = self.aggregate(attn, m)
        h = self.gru(h, torch.cat([context, m, g], 1))
        return h, self.delta_scale * self.flow_head(h), 0.25 * self.mask_head(h)


def convex_upsample(flow: torch.Tensor, mask: torch.Tensor, stride: int) -> torch.Tensor:
    """(N, 2, H, W) coarse flow -> (N, 2, sH, sW), each fine pixel a convex combination (softmax
    weights ``mask``) of the 3x3 coarse neighbours; flow values scale by ``stride``."""
    n, _, h, w = flow.shape
    mask = torch.softmax(mask.view(n, 1, 9, stride, stride, h, w), dim=2)
    up = F.unfold(stride * flow, 3, padding=1).view(n, 2, 9, 1, 1, h, w)
    up = (mask * up).sum(2)  # (N, 2, s, s, H, W)
    return up.permute(0, 1, 4, 2, 5, 3).reshape(n, 2, stride * h, stride * w)
