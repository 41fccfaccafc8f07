"""Feature and context encoders: images -> feature maps at 1/``stride`` resolution.

Both are small residual CNNs. The *feature* encoder runs on both frames with shared weights and
feeds the correlation volume; the *context* encoder runs on frame 1 only and gives the GRU its
initial hidden state and a context input (and the attention module its queries and keys).
Faces are smooth: instance norm in the feature encoder keeps correlation robust to lighting
changes between frames; the context encoder uses no normalisation (as in RAFT-small).
"""
from __future__ import annotations

import torch
from torch import nn


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, norm: str = "instance"):
        super().__init__()
        mk = {"instance": lambda c: nn.InstanceNorm2d(c), "none": lambda c: nn.Identity()}[norm]
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.n1, self.n2 = mk(cout), mk(cout)
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, stride), mk(cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.n1(self.conv1(x)))
        y = self.act(self.n2(self.conv2(y)))
        return self.act(self.skip(x) + y)


class Encoder(nn.Module):
    """(N, in_ch, H, W) -> (N, out_dim, H/4, W/4): a stride-2 stem and one stride-2 stage."""

    def __init__(self, out_dim: int, in_ch: int = 1, width: int = 32, norm: str = "instance"):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_ch, width, 7, 2, 3), nn.ReLU(inplace=True))
        self.stage1 = ResBlock(width, width, 1, norm)
        self.stage2 = ResBlock(width, 2 * width, 2, norm)
        self.stage3 = ResBlock(2 * width, 2 * width, 1, norm)
        self.out = nn.Conv2d(2 * width, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.stage3(self.stage2(self.stage1(self.stem(x)))))
