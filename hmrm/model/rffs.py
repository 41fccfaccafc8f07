"""RFFS, the regions feature fusion strategy: region tokens from every grain, fused by attention.

For every grain's token grid the face is summarised by five tokens: one per facial region of
:data:`hmrm.face.regions.REGION_NAMES` (right_eye, left_eye, nose, mouth) and one global token::

    region token = mean of the tokens whose patch overlaps the region's box
    global token = mean of all tokens

With two grains that makes ten tokens. A learned embedding per (grain, region) slot tells the
attention which token is which; multi-head self-attention over all of them lets, say, the fine
mouth token borrow from the coarse eye tokens (pre-norm residual, ``t + MHSA(LayerNorm(t))``).
The fused tokens are averaged and normalised into one feature vector for the classifier.

Mapping a box onto a token grid
-------------------------------
Boxes are ``(x0, y0, x1, y1)`` in input pixels with ``x1, y1`` exclusive (as
:func:`hmrm.face.regions.region_boxes` returns them, scaled to the model's input size). Token
``(i, j)`` of a grain with patch ``p`` covers pixels ``[j p, (j+1) p) x [i p, (i+1) p)``; it
belongs to the region when that square overlaps the box, i.e. for columns
``floor(x0 / p) <= j <= ceil(x1 / p) - 1`` (rows alike). A region therefore always holds at least
one token: a box smaller than a patch takes the patch it lies in, an empty or inverted box
(``x1 <= x0``) the patch under its corner ``(x0, y0)``, and a box outside the image the nearest
edge patch. Pooling never divides by zero.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..face.regions import REGION_NAMES


def _axis_mask(lo: torch.Tensor, hi: torch.Tensor, patch: int, grid: int) -> torch.Tensor:
    """(..., grid) bool: the cells ``j`` whose span [j p, (j+1) p) overlaps [lo, hi), at least one."""
    first = torch.floor(lo / patch).clamp(0, grid - 1)
    last = (torch.ceil(hi / patch) - 1).clamp(0, grid - 1)
    last = torch.maximum(first, last)                                     # empty / inverted box: one cell
    cells = torch.arange(grid, device=lo.device, dtype=lo.dtype)
    return (cells >= first.unsqueeze(-1)) & (cells <= last.unsqueeze(-1))


def region_token_mask(boxes: torch.Tensor, patch: int, grid: int) -> torch.Tensor:
    """Boolean (N, R, grid, grid) mask of the tokens each box covers (rows y, columns x).

    ``boxes`` (N, R, 4) as ``(x0, y0, x1, y1)`` in input pixels (ints or floats); ``patch`` the
    patch side in pixels; ``grid`` the number of tokens per side. Every mask holds at least one
    token (see the module docstring).
    """
    if boxes.dim() != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be (N, R, 4) as (x0, y0, x1, y1), got shape {tuple(boxes.shape)}")
    b = boxes.float()
    cols = _axis_mask(b[..., 0], b[..., 2], patch, grid)                 # (N, R, G)
    rows = _axis_mask(b[..., 1], b[..., 3], patch, grid)
    return rows.unsqueeze(-1) & cols.unsqueeze(-2)


def pool_regions(grid: torch.Tensor, boxes: torch.Tensor, patch: int) -> torch.Tensor:
    """Region tokens (N, R, D): the mean of the tokens of ``grid`` (N, G, G, D) under each box."""
    n, g, g2, d = grid.shape
    if g != g2:
        raise ValueError(f"expected a square token grid (N, G, G, D), got {tuple(grid.shape)}")
    mask = region_token_mask(boxes, patch, g).flatten(2).to(grid.dtype)  # (N, R, G*G)
    weights = mask / mask.sum(-1, keepdim=True)
    return torch.bmm(weights, grid.reshape(n, g * g, d))


class RFFS(nn.Module):
    """Region tokens from every grain fused by multi-head self-attention.

    ``grains`` maps grain names to their patch sizes (in the encoder's order); ``n_regions`` is the
    number of boxes per sample (4: :data:`REGION_NAMES`). ``forward(grids, boxes)`` returns a dict:

    * ``features`` (N, d_model): the fused feature vector for the classifier;
    * ``grain_features`` {name: (N, d_model)}: each grain's region and global tokens averaged
      before fusion (inputs of the per-grain heads of the multi-scale loss);
    * ``tokens`` (N, T, d_model) before and ``fused`` after the attention, T = grains x (R + 1);
    * ``attention`` (N, heads, T, T): the attention weights (rows: queries; each row sums to 1),
      in the order of :attr:`token_names`.
    """

    def __init__(self, d_model: int, grains: dict[str, int], n_heads: int = 4, n_regions: int = len(REGION_NAMES),
                 dropout: float = 0.0, region_names: Sequence[str] | None = None) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} must be divisible by n_heads {n_heads}")
        self.grains = dict(grains)
        self.n_regions = n_regions
        names = tuple(region_names) if region_names is not None else (REGION_NAMES if n_regions == len(REGION_NAMES)
                                                                      else tuple(f"region{i}" for i in range(n_regions)))
        self.slot_names = (*names, "global")
        self.slot_embed = nn.Parameter(torch.zeros(len(self.grains), n_regions + 1, d_model))
        nn.init.trunc_normal_(self.slot_embed, std=0.02)
        self.norm = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm_out = nn.LayerNorm(d_model)

    @property
    def token_names(self) -> list[str]:
        """``"grain/region"`` for each of the T fused tokens, e.g. ``"p8/mouth"``, ``"p16/global"``."""
        return [f"{g}/{s}" for g in self.grains for s in self.slot_names]

    def forward(self, grids: dict[str, torch.Tensor], boxes: torch.Tensor) -> dict[str, torch.Tensor]:
        if boxes is None:
            raise ValueError("RFFS needs the region boxes (N, R, 4); pass boxes=... or build the model with rffs=False")
        if boxes.shape[1] != self.n_regions:
            raise ValueError(f"expected {self.n_regions} region boxes per sample, got boxes of shape {tuple(boxes.shape)}")
        per_grain = []
        for name, patch in self.grains.items():
            grid = grids[name]
            regions = pool_regions(grid, boxes.to(grid.device), patch)         # (N, R, D)
            glob = grid.mean(dim=(1, 2)).unsqueeze(1)                          # (N, 1, D)
            per_grain.append(torch.cat([regions, glob], dim=1))
        tokens = torch.stack(per_grain, dim=1)                                 # (N, grains, R+1, D)
        grain_features = {name: tokens[:, i].mean(1) for i, name in enumerate(self.grains)}
        tokens = (tokens + self.slot_embed).flatten(1, 2)                      # (N, T, D)
        q = self.norm(tokens)
        mixed, attention = self.attn(q, q, q, need_weights=True, average_attn_weights=False)
        fused = tokens + mixed
        return {"features": self.norm_out(fused.mean(1)), "grain_features": grain_features,
                "tokens": tokens, "fused": fused, "attention": attention}
