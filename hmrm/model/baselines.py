"""Baselines trained by the same harness as HMRM: same inputs ``(x, boxes)``, same outputs.

STSTNet
-------
Liong, Gan, See, Khor and Huang, "Shallow Triple Stream Three-dimensional CNN (STSTNet) for
Micro-expression Recognition", IEEE FG 2019 (arXiv:1902.03634). What the sources state:

* input: three optical-flow features of the onset -> apex pair, optical strain and the horizontal
  and vertical flow, resized to 28 x 28 x 3 (paper; README of the authors' MATLAB release,
  github.com/christy1206/STSTNet);
* a "two-layer" network: one convolutional layer made of three parallel streams with 3, 5 and 8
  filters of 3 x 3, whose outputs are concatenated, then a fully connected layer to the classes;
* composite MEGC2019 set (442 clips, LOSO): UAR 0.7605, UF1 0.7353 (abstract).

Our reading of the pooling (the authors give it as a figure): each stream is followed by ReLU and
3 x 3 max pooling with stride 3 (padding 1: 28 -> 10), the concatenated 16 channels by 2 x 2
average pooling (10 -> 5), so the classifier sees 5 x 5 x 16 = 400 features; 1,651 parameters for
3 classes. Channel order (ours: u, v, strain) does not matter to a network trained from scratch.

The flow maps are resized to 28 x 28 inside the network by area averaging (the mean flow of each
cell). Their values are left as they are: the first layer is linear, so a constant scale of the
input is learned away. ``boxes`` are accepted and ignored.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .loss import multiscale_loss, plain_loss


class STSTNet(nn.Module):
    """STSTNet (see the module docstring). ``forward(x, boxes=None)`` with ``x`` (N, 3, S, S), any S.

    ``filters``: the three streams' widths (3, 5, 8 as published); ``input_size``: 28 as
    published; ``weighted_loss``: use the training fold's class weights in :meth:`loss` (False:
    plain cross-entropy, as published).
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 3, input_size: int = 28,
                 filters: tuple[int, ...] = (3, 5, 8), weighted_loss: bool = False) -> None:
        super().__init__()
        self.input_size, self.weighted_loss = input_size, weighted_loss
        self.streams = nn.ModuleList(nn.Conv2d(in_channels, f, kernel_size=3, padding=1) for f in filters)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=3, padding=1)
        self.avg = nn.AvgPool2d(2)
        side = ((input_size + 2 - 3) // 3 + 1) // 2
        self.head = nn.Linear(sum(filters) * side * side, n_classes)

    def forward(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> dict:
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.adaptive_avg_pool2d(x, self.input_size) if x.shape[-1] >= self.input_size else \
                F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        streams = [self.pool(F.relu(conv(x))) for conv in self.streams]
        features = self.avg(torch.cat(streams, dim=1)).flatten(1)
        return {"logits": self.head(features), "grain_logits": {}, "features": features, "attention": None}

    def loss(self, outputs: Mapping, labels: torch.Tensor, class_weights: torch.Tensor | None = None,
             label_smoothing: float = 0.0) -> torch.Tensor:
        """Cross-entropy of the logits; class-weighted only when built with ``weighted_loss=True``;
        ``label_smoothing`` is a training-recipe choice (0 = off)."""
        if self.weighted_loss:
            return multiscale_loss(outputs, labels, class_weights, {"fused": 1.0}, label_smoothing=label_smoothing)
        return plain_loss(outputs, labels, label_smoothing)
