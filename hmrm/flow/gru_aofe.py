"""GRU-AOFE: the attention-guided recurrent flow estimator of HMRM, sized for faces.

Data flow for a pair (frame 1, frame 2), grey, 0..255::

    features f1, f2 = Encoder(frame1), Encoder(frame2)           1/4 resolution, shared weights
    corr = CorrPyramid(f1, f2)                                    all pairs, 3 levels, radius 3
    hidden, context = split(ContextEncoder(frame1))
    attn = Attention(context)                                     once per pair: (HW x HW)
    flow_0 = 0, or a classical estimate (warm start)
    repeat iters times:
        corr features at x + flow_k  ->  motion encoder  ->  aggregated by attn
        ConvGRU(hidden, [context, motion, aggregated])  ->  delta flow, upsampling weights
        flow_{k+1} = flow_k + delta
    full-resolution flow = warm start + convex_upsample(flow_k - flow_0)
    refined = FlowRefiner(frame1, frame2, flow)                   learned smoothing, full resolution

Why these sizes (see chapter 03 and ``benchmarks/flow_bench.py``): faces are aligned to 256 px and
micro-motion is 0.1-2 px, so large search ranges are useless; stride 4 keeps the all-pairs volume
at 64^2 x 64^2 for a 256 px face (67 MB in float32), and 3 levels of radius 3 still see +-12 px at
1/4 resolution, enough for head motion. The warm start (tuned DIS by default) gives the GRU a
sub-pixel-accurate starting point, so it learns the residual: noise, flat skin, boundaries.
With ``warm_start=None`` it is a plain RAFT/GMA-style estimator starting from zero.

Two iterations, not RAFT's 12 or this module's former 6: on the 2-core CPU one 256 px pair costs
0.40 / 0.43 / 0.59 / 0.87 s with 1 / 2 / 3 / 6 iterations (TV-L1: 0.74 s), and in CPU-sized
pretraining (300 steps with 6 iterations) the recurrent residual stayed within a thousandth of a
pixel of the warm start, so the extra iterations bought nothing measurable. The refinement stage
(:mod:`.refine`, ``refine=True``) is where pretraining on generated pairs did pay off: a per-pixel
rule for how far to average the flow, which removes the sensor-noise drift that DIS leaves on
flat skin.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .corr import CorrPyramid
from .encoders import Encoder
from .refine import FlowRefiner
from .update import Attention, UpdateBlock, convex_upsample

STRIDE = 4


@dataclass
class FlowConfig:
    feature_dim: int = 64
    hidden: int = 64
    context: int = 64
    width: int = 32  # encoder base width
    levels: int = 3
    radius: int = 3
    iters: int = 2
    warm_start: str | None = "dis_tuned"  # a hmrm.flow.classic method, or None
    refine: bool = True  # the full-resolution refinement stage (hmrm.flow.refine) after the GRU
    refine_hidden: int = 32


class GRUAOFE(nn.Module):
    def __init__(self, config: FlowConfig | None = None):
        super().__init__()
        self.config = cfg = config or FlowConfig()
        self.fnet = Encoder(cfg.feature_dim, 1, cfg.width, "instance")
        self.cnet = Encoder(cfg.hidden + cfg.context, 1, cfg.width, "none")
        self.attention = Attention(cfg.context)
        corr_ch = cfg.levels * (2 * cfg.radius + 1) ** 2
        self.update = UpdateBlock(corr_ch, cfg.hidden, cfg.context, 64, STRIDE)
        self.refiner = FlowRefiner(cfg.refine_hidden) if cfg.refine else None

    @staticmethod
    def _norm(img: torch.Tensor) -> torch.Tensor:
        return img / 127.5 - 1.0

    def forward(self, img1: torch.Tensor, img2: torch.Tensor, flow_init: torch.Tensor | None = None,
                iters: int | None = None, refine: bool = True) -> list[torch.Tensor]:
        """``img1``, ``img2``: (N, 1, H, W) grey in 0..255, H and W multiples of 16; ``flow_init``:
        (N, 2, H, W) or None. Returns the full-resolution flow after every iteration and, when the
        config has ``refine`` (and the call does not switch it off with ``refine=False``), the refined
        flow as one more, last entry."""
        cfg = self.config
        iters = iters or cfg.iters
        n, _, h, w = img1.shape
        if h % 16 or w % 16:
            raise ValueError(f"height and width must be multiples of 16, got {h}x{w}; use estimate() to pad")
        f1, f2 = self.fnet(self._norm(torch.cat([img1, img2], 0))).chunk(2, 0)
        corr = CorrPyramid(f1, f2, cfg.levels, cfg.radius)
        ctx = self.cnet(self._norm(img1))
        hidden, context = torch.tanh(ctx[:, :cfg.hidden]), F.relu(ctx[:, cfg.hidden:])
        attn = self.attention(context)
        hc, wc = h // STRIDE, w // STRIDE
        ys, xs = torch.meshgrid(torch.arange(hc, dtype=img1.dtype, device=img1.device),
                                torch.arange(wc, dtype=img1.dtype, device=img1.device), indexing="ij")
        coords0 = torch.stack([xs, ys], 0)[None].expand(n, -1, -1, -1)
        base = F.avg_pool2d(flow_init, STRIDE) / STRIDE if flow_init is not None else torch.zeros_like(coords0)
        coords1 = coords0 + base
        out = []
        for _ in range(iters):
            coords1 = coords1.detach()
            flow = coords1 - coords0
            hidden, delta, mask = self.update(hidden, context, corr(coords1), flow, attn)
            coords1 = coords1 + delta
            up = convex_upsample(coords1 - coords0 - base, mask, STRIDE)
            out.append(up + flow_init if flow_init is not None else up)
        if self.refiner is not None and refine:
            out.append(self.refiner(img1, img2, out[-1]))
        return out

    # ------------------------------------------------------------------ numpy convenience
    @torch.no_grad()
    def estimate(self, first: np.ndarray, second: np.ndarray, iters: int | None = None, refine: bool = True) -> np.ndarray:
        """Flow ``first`` -> ``second`` for two frames (RGB or grey arrays), as (H, W, 2) float32.
        ``refine=False`` skips the refinement stage (to see what the GRU alone gives)."""
        from .classic import classic_flow, to_grey

        a, b = to_grey(first).astype(np.float32), to_grey(second).astype(np.float32)
        h, w = a.shape
        ph, pw = (-h) % 16, (-w) % 16
        init = None
        if self.config.warm_start:
            init = classic_flow(a, b, self.config.warm_start)
            init = np.pad(init, ((0, ph), (0, pw), (0, 0)), mode="edge")
            init = torch.from_numpy(init).permute(2, 0, 1)[None]
        pad = lambda x: torch.from_numpy(np.pad(x, ((0, ph), (0, pw)), mode="edge"))[None, None]  # noqa: E731
        dev = next(self.parameters()).device
        was = self.training
        self.eval()
        flow = self(pad(a).to(dev), pad(b).to(dev), None if init is None else init.to(dev), iters, refine)[-1]
        self.train(was)
        return flow[0, :, :h, :w].permute(1, 2, 0).cpu().numpy().astype(np.float32)

    def to_checkpoint(self) -> dict:
        return {"config": asdict(self.config), "state_dict": self.state_dict()}

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> "GRUAOFE":
        model = cls(FlowConfig(**ckpt["config"]))
        model.load_state_dict(ckpt["state_dict"])
        return model


def flow_loss(preds: list[torch.Tensor], target: torch.Tensor, valid: torch.Tensor, gamma: float = 0.8,
              refined: bool = False, refine_max_error: float = 1.0) -> torch.Tensor:
    """The pretraining loss: :func:`sequence_loss` over the GRU iterations, plus, when the last entry
    of ``preds`` is the refinement stage's output (``refined``), its mean end-point error on the valid
    pixels where the GRU's flow is already within ``refine_max_error`` px. The refinement stage only
    averages flow, so it cannot repair gross failures (occlusions, lost large motions); left in the
    loss those would teach it to smooth everything, which is wrong for the sub-pixel motion it is for."""
    if not refined:
        return sequence_loss(preds, target, valid, gamma)
    loss = sequence_loss(preds[:-1], target, valid, gamma)
    with torch.no_grad():
        keep = (valid & (torch.linalg.vector_norm(preds[-2] - target, dim=1) < refine_max_error)).float()
    epe = torch.linalg.vector_norm(preds[-1] - target, dim=1)
    return loss + (epe * keep).sum() / keep.sum().clamp(min=1)


def sequence_loss(preds: list[torch.Tensor], target: torch.Tensor, valid: torch.Tensor, gamma: float = 0.8) -> torch.Tensor:
    """RAFT's loss: L1 end-point-style error of every iteration, later ones weighted more."""
    n = len(preds)
    v = valid[:, None].float()
    total = 0.0
    for i, p in enumerate(preds):
        err = ((p - target).abs() * v).sum() / (2 * v.sum()).clamp(min=1)
        total = total + gamma ** (n - 1 - i) * err
    return total
