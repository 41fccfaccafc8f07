"""The update operator: motion encoder, global motion aggregation, ConvGRU, heads.

One refinement step (per pair, repeated ``iters`` times):

1. **Motion encoder**: correlation lookup + current flow -> motion features.
2. **Global motion aggregation** (the "attention" of GRU-attention flow; Jiang et al. 2021's GMA):
   queries and keys come from frame-1 context features, so the attention matrix (which pixels
   belong together) is computed once per pair; each step it mixes motion features across the
   whole face, letting well-textured regions inform flat or noisy ones.
3. **ConvGRU** (separable 1x5 / 5x1): hidden state, context, motion and aggregated motion -> new
   hidden state.
4. **Heads**: a flow update, and the weights of convex upsampling (each full-resolution pixel is a
   convex combination of its 3x3 coarse neighbours, 16 = 4x4 sub-positions for stride 4).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MotionEncoder(nn.Module):
    def __init__(self, corr_ch: int, out_dim: int = 64):
        super().__init__()
        self.c1 = nn.Conv2d(corr_ch, 64, 1)
        self.f1 = nn.Conv2d(2, 32, 7, padding=3)
        self.f2 = nn.Conv2d(32, 16, 3, padding=1)
        self.out = nn.Conv2d(64 + 16, out_dim - 2, 3, padding=1)

    def forward(self, corr: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        c = F.relu(self.c1(corr))
        f = F.relu(self.f2(F.relu(self.f1(flow))))
        return torch.cat([F.relu(self.out(torch.cat([c, f], 1))), flow], 1)


class Attention(nn.Module):
    """Softmax attention of every pixel over all pixels, from context features (once per pair)."""

    def __init__(self, dim: int, key_dim: int = 32):
        super().__init__()
        self.q = nn.Conv2d(dim, key_dim, 1, bias=False)
        self.k = nn.Conv2d(dim, key_dim, 1, bias=False)
        self.scale = key_dim ** -0.5

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        n, _, h, w = context.shape
        q = self.q(context).flatten(2).transpose(1, 2)  # (N, HW, K)
        k = self.k(context).flatten(2)  # (N, K, HW)
        return torch.softmax(q @ k * self.scale, dim=-1)  # (N, HW, HW)


class Aggregate(nn.Module):
    """Motion features mixed by the attention matrix, added with a learned gain (starts at 0)."""

    def __init__(self, dim: int):
        super().__init__()
        self.v = nn.Conv2d(dim, dim, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, attn: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
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
    def __init__(self, corr_ch: int, hidden: int = 64, context: int = 64, motion: int = 64, stride: int = 4):
        super().__init__()
        self.encoder = MotionEncoder(corr_ch, motion)
        self.aggregate = Aggregate(motion)
        self.gru = SepConvGRU(hidden, context + 2 * motion)
        self.flow_head = nn.Sequential(nn.Conv2d(hidden, 96, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(96, 2, 3, padding=1))
        self.mask_head = nn.Sequential(nn.Conv2d(hidden, 96, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(96, 9 * stride ** 2, 1))
        # the last flow layer starts at zero: an untrained model returns its starting flow unchanged
        # (with a warm start, exactly the classical estimate), and training can only learn to improve it
        nn.init.zeros_(self.flow_head[-1].weight)
        nn.init.zeros_(self.flow_head[-1].bias)

    def forward(self, h, context, corr, flow, attn):
        m = self.encoder(corr, flow)
        g = self.aggregate(attn, m)
        h = self.gru(h, torch.cat([context, m, g], 1))
        return h, self.flow_head(h), 0.25 * self.mask_head(h)


def convex_upsample(flow: torch.Tensor, mask: torch.Tensor, stride: int) -> torch.Tensor:
    """(N, 2, H, W) coarse flow -> (N, 2, sH, sW), each fine pixel a convex combination (softmax
    weights ``mask``) of the 3x3 coarse neighbours; flow values scale by ``stride``."""
    n, _, h, w = flow.shape
    mask = torch.softmax(mask.view(n, 1, 9, stride, stride, h, w), dim=2)
    up = F.unfold(stride * flow, 3, padding=1).view(n, 2, 9, 1, 1, h, w)
    up = (mask * up).sum(2)  # (N, 2, s, s, H, W)
    return up.permute(0, 1, 4, 2, 5, 3).reshape(n, 2, stride * h, stride * w)
