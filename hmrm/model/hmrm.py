"""The HMRM network: grained Mamba encoder -> RFFS -> classifier heads, with every ablation switch.

::

    x (N, 3, S, S) flow maps (u, v, strain)   boxes (N, 4, 4) region boxes in input pixels
      -> GrainedMambaEncoder     {grain: token grid (N, G, G, d)}
      -> RFFS                    region + global tokens of every grain, fused by self-attention
         (rffs=False: global average pooling of each grain's tokens, averaged over the grains)
      -> fused head              "logits" (N, n_classes)
      -> one head per grain      "grain_logits" {grain: (N, n_classes)}   (multi-scale loss only)

Optical flow and MotionMix happen before the network (``hmrm.flow``, ``hmrm.augment``), so
``HMRMConfig`` describes the network only; whether training mixes is the training configuration's
switch (:attr:`hmrm.train.loso.LOSOConfig.motionmix`, or the ``no_motionmix`` ablation).

The default configuration has 1.52 M parameters and 0.67 GFLOPs per sample
(:mod:`hmrm.efficiency` counts them; ``tests/test_model.py`` holds it to at most 2 M and 1 GFLOP).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Mapping

import torch
from torch import nn

from ..face.regions import REGION_NAMES
from ..options import OptionError, at_least, between, check_fields, one_of
from ..ssm import BACKENDS
from .encoder import STEMS, GrainedMambaEncoder
from .loss import default_scale_weights, multiscale_loss, plain_loss
from .rffs import RFFS

LOSSES = ("multiscale", "plain")


@dataclass(frozen=True)
class HMRMConfig:
    """Everything that defines an HMRM network.

    Encoder: ``in_channels`` (u, v, strain), ``input_size`` S, ``patch_sizes`` (the grains, finest
    first), ``d_model`` and ``depth`` (the paper's 192 and 4), ``bidirectional``,
    ``share_blocks``, Mamba's ``d_state``, ``d_conv``, ``expand``, BiMamba's ``gate_kernel``,
    the scan ``backend``, the patch embedding ``stem`` ("patch": one linear map per patch;
    "conv": a small convolutional stem first). See :mod:`hmrm.model.encoder` for why these
    defaults.

    Fusion and heads: ``rffs`` (False: global average pooling instead), ``n_heads`` of the
    attention, ``n_regions`` boxes per sample, ``n_classes``, ``dropout`` before each classifier.

    Loss: ``loss`` "multiscale" (a head per grain plus the fused one, class-weighted) or "plain"
    (fused head only, unweighted cross-entropy); ``scale_weights`` (fused, then one per grain in
    ``patch_sizes`` order; None: 1.0 for fused and ``grain_weight`` for each grain).
    """

    in_channels: int = 3
    input_size: int = 112
    patch_sizes: tuple[int, ...] = (8, 16)
    d_model: int = 192
    depth: int = 4
    bidirectional: bool = True
    share_blocks: bool = True
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    gate_kernel: int = 3
    backend: str = "auto"
    stem: str = "patch"
    rffs: bool = True
    n_heads: int = 4
    n_regions: int = len(REGION_NAMES)
    n_classes: int = 3
    dropout: float = 0.1
    loss: str = "multiscale"
    scale_weights: tuple[float, ...] | None = None
    grain_weight: float = 0.5

    def __post_init__(self) -> None:
        check_fields(self, {
            **{k: at_least(1) for k in ("in_channels", "input_size", "patch_sizes", "d_model", "depth", "d_state",
                                        "d_conv", "expand", "gate_kernel", "n_heads", "n_regions")},
            "n_classes": at_least(2), "backend": one_of("auto", *BACKENDS), "stem": one_of(*STEMS),
            "dropout": between(0, 1, high_open=True), "loss": one_of(*LOSSES), "scale_weights": at_least(0),
            "grain_weight": at_least(0)})
        if not self.patch_sizes:
            raise OptionError("patch_sizes", "must name at least one patch size")
        if self.scale_weights is not None and len(self.scale_weights) != 1 + len(self.patch_sizes):
            raise OptionError("scale_weights", f"needs {1 + len(self.patch_sizes)} values (fused, then one per patch "
                                               f"size {self.patch_sizes}), got {self.scale_weights}")

    def replace(self, **overrides) -> "HMRMConfig":
        """A copy with some fields changed (an unknown name raises :class:`~hmrm.options.OptionError`)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise OptionError(unknown[0], f"not an HMRMConfig field; known: {', '.join(sorted(known))}")
        return replace(self, **overrides)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["patch_sizes"] = list(self.patch_sizes)
        if self.scale_weights is not None:
            d["scale_weights"] = list(self.scale_weights)
        return d


class HMRM(nn.Module):
    """The HMRM recognizer. ``forward(x, boxes)`` -> dict:

    * ``logits`` (N, n_classes): the fused prediction;
    * ``grain_logits`` {grain name: (N, n_classes)}: one per grain (empty for ``loss="plain"``);
    * ``features`` (N, d_model): the input of the fused head;
    * ``attention`` (N, heads, T, T) RFFS attention weights over :attr:`token_names` (None without RFFS);
    * ``grids`` {grain name: (N, G, G, d_model)}: the encoder's token grids.

    ``x``: (N, in_channels, S, S) flow maps; ``boxes``: (N, n_regions, 4) ``(x0, y0, x1, y1)`` in
    input pixels, regions in :data:`hmrm.face.regions.REGION_NAMES` order (ignored, and may be
    None, when ``rffs=False``). :meth:`loss` computes the configured loss.
    """

    def __init__(self, config: HMRMConfig | None = None, **overrides) -> None:
        super().__init__()
        config = (config or HMRMConfig()).replace(**overrides) if overrides else (config or HMRMConfig())
        self.config = c = config
        self.encoder = GrainedMambaEncoder(c.in_channels, c.input_size, c.patch_sizes, c.d_model, c.depth,
                                           c.bidirectional, c.share_blocks, c.d_state, c.d_conv, c.expand,
                                           c.gate_kernel, c.backend, c.stem)
        names = self.encoder.names
        self.rffs = RFFS(c.d_model, dict(zip(names, c.patch_sizes)), c.n_heads, c.n_regions) if c.rffs else None
        self.pool_norm = None if c.rffs else nn.LayerNorm(c.d_model)
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.d_model, c.n_classes)
        multiscale = c.loss == "multiscale"
        self.grain_heads = nn.ModuleDict({n: nn.Linear(c.d_model, c.n_classes) for n in names} if multiscale else {})

    @property
    def grain_names(self) -> tuple[str, ...]:
        return self.encoder.names

    @property
    def token_names(self) -> list[str]:
        """Names of the RFFS tokens (rows and columns of ``outputs["attention"]``)."""
        return self.rffs.token_names if self.rffs is not None else []

    @property
    def scale_weights(self) -> dict[str, float]:
        """The weight of each head in the multi-scale loss."""
        c = self.config
        if c.scale_weights is None:
            return default_scale_weights(self.grain_names, c.grain_weight)
        return dict(zip(("fused", *self.grain_names), c.scale_weights))

    def set_backend(self, backend: str) -> None:
        """Switch the selective-scan backend of every Mamba block."""
        self.encoder.set_backend(backend)

    def forward(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> dict:
        grids = self.encoder(x)
        if self.rffs is not None:
            r = self.rffs(grids, boxes)
            features, grain_features, attention = r["features"], r["grain_features"], r["attention"]
        else:
            grain_features = {n: g.mean(dim=(1, 2)) for n, g in grids.items()}
            features = self.pool_norm(torch.stack(list(grain_features.values())).mean(0))
            attention = None
        out = {"logits": self.head(self.dropout(features)), "features": features, "attention": attention, "grids": grids}
        out["grain_logits"] = {n: h(self.dropout(grain_features[n])) for n, h in self.grain_heads.items()}
        return out

    def loss(self, outputs: Mapping, labels: torch.Tensor, class_weights: torch.Tensor | None = None,
             label_smoothing: float = 0.0) -> torch.Tensor:
        """The configured loss: multi-scale class-weighted cross-entropy, or plain cross-entropy
        (``loss="plain"``, which ignores ``class_weights``). ``class_weights`` from
        :func:`hmrm.model.loss.class_weights` on the training fold's labels; ``label_smoothing``
        is a training-recipe choice (0 = off)."""
        if self.config.loss == "plain":
            return plain_loss(outputs, labels, label_smoothing)
        return multiscale_loss(outputs, labels, class_weights, self.scale_weights, label_smoothing=label_smoothing)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

