"""GRU-AOFE: the attention-guided recurrent flow estimator of HMRM, sized for faces.

Data flow for a pair (frame 1, frame 2), grey, 0..255::

    features f1, f2 = Encoder(frame1), Encoder(frame2)           1/4 resolution, shared weights
    corr = CorrPyramid(f1, f2)                                    all pairs, 3 levels, radius 3
    hidden, context = split(ContextEncoder(frame1))
    attn = Attention(context)                                     once per pair: (HW x HW)
    flow_0 = 0, or a classical estimate (warm start)
    repeat iters times:
        corr features at x + flow_k (+ photometric features of the full-resolution flow_k)
            ->  motion encoder  ->  aggregated by attn
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

Two iterations, not RAFT's 12: on the 2-core CPU one 256 px pair costs 0.40 / 0.43 / 0.59 / 0.87 s
with 1 / 2 / 3 / 6 iterations (TV-L1: 0.74 s); the benchmark below times the whole network beside TV-L1.

Why the GRU once stayed at its warm start, and what teaches it (``benchmarks/flow_scales.py``,
committed as ``benchmarks/results/flow_scales.md``): RAFT's loss and RAFT's scales are made for motions
of many pixels. (1) The sequence loss is an L1 error over every valid pixel, and the few pixels where
tuned DIS fails by pixels (occlusions, lost texture) outweigh the hundredths of a pixel the GRU could
win everywhere else; ``train.max_warm_error`` (:func:`flow_loss`) keeps only the pixels where the warm
start is already within that many pixels, the micro-motion regime the GRU is for. (2) The update head's
output is the step in coarse pixels and Adam moves every weight by about its learning rate a step, so
the step jitters by tenths of a pixel while the corrections are hundredths: ``delta_scale`` (0.02)
multiplies the update. (3) The current flow enters the motion encoder in coarse pixels, where a
micro-motion is a few hundredths, invisible beside the correlation features: ``flow_scale`` (40)
multiplies it there. Why the attention could not learn was found with :mod:`.overfit`: GMA's form
(``attention="dot"``, gain starting at 0) gets a gradient about a thousand times below the other
parts' and keeps uniform rows; ``attention="cosine"`` (normalised queries and keys, a learned
temperature, gain starting at 1) learns. ``photometric=True`` adds full-resolution Lucas-Kanade
measurements of the current flow's error (:func:`.update.photometric_features`).

Why the GRU then made tuned DIS worse on the best-textured faces (measured on the development SynthME,
seed 1, never on the reported seeds): (1) trained on local deformations whose peaks reached 1.5 px, it
had learned that facial motion is small and shortened the larger expression motions that DIS had right:
on the face pixels that move 1.2-2.5 px, the error along the true motion was -0.0224 px for DIS and
-0.0689 px after the GRU (``benchmarks/results/flow_parts/dev1_narrow.md``, the error-by-size table of
``benchmarks/flow_bench.py``); (2) its corrections had a floor of a few hundredths of a pixel everywhere,
more than DIS's own error where DIS is best. The recipe draws deformations up to 4 px
(``data.bump_max_px``) and, once the GRU has learned, weighs an error by how right DIS already was
(``train.harm_weight``, :func:`flow_loss`).

The shipped weights are trained in two stages (``configs/flow_pretrain.yaml``, then
``configs/flow_pretrain_refine.yaml``; ``hmrm/flow/weights/gru_aofe.json`` records both): the GRU,
its attention and the encoders on face-domain pairs (:mod:`.facepairs`) with the refinement stage
off, then a fresh refinement stage (:mod:`.refine`) on layered pairs (:mod:`.synthetic`) with
everything else frozen (``train.frozen_gru``). Trained together with the GRU on face-domain pairs
the stage made the GRU's flow worse on a development SynthME
(``benchmarks/results/flow_parts/dev1_faces.md``); trained second, it helps
(``dev1_faces_refine.md``). What each part buys in the shipped weights, with intervals over subjects,
is measured by ``benchmarks/flow_bench.py``: ``benchmarks/results/flow_parts/seed0.md`` (the demo's
SynthME), ``seed2.md`` (the hold-out seed) and ``dev1.md`` (the development seed). Checkpoints saved
before the newer fields existed load with the values they were trained with (:data:`LEGACY_CONFIG`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .classic import classic_flow, to_grey
from .corr import CorrPyramid, corr_channels
from .encoders import Encoder
from .refine import FlowRefiner
from .update import Attention, UpdateBlock, convex_upsample, photometric_features

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
    attention: str = "cosine"  # cosine (learned temperature) / dot (GMA's) / none (ablation: no attention)
    attention_gain: float = 1.0  # the aggregation gain's starting value (GMA: 0)
    attention_temperature: float = 10.0  # the cosine attention's starting temperature (learned from there)
    photometric: bool = True  # full-resolution brightness measurements of the current flow's error (update.photometric_features)
    flow_scale: float = 40.0  # the current flow (coarse px) enters the motion encoder times this (RAFT: 1)
    delta_scale: float = 0.02  # the flow head's output is multiplied by this (RAFT: 1; use 1 without a warm start)
    refine_detach: bool = True  # the refinement stage's loss does not reach the GRU (training only; flow unchanged)


#: What a checkpoint that predates a config field meant by it (the first weights this project shipped, trained
#: before the cosine attention and the micro-motion scales, used GMA's dot-product attention, a gain that started
#: at 0 and RAFT's scales; the temperature field only seeds a cosine attention, whose learned value is saved).
LEGACY_CONFIG = {"attention": "dot", "attention_gain": 0.0, "photometric": False, "flow_scale": 1.0, "delta_scale": 1.0,
                 "refine_detach": False}
ATTENTION_MODES = ("cosine", "dot", "none")


class GRUAOFE(nn.Module):
    def __init__(self, config: FlowConfig | None = None):
        super().__init__()
        self.config = cfg = config or FlowConfig()
        self.fnet = Encoder(cfg.feature_dim, 1, cfg.width, "instance")
        self.cnet = Encoder(cfg.hidden + cfg.context, 1, cfg.width, "none")
        if cfg.attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {', '.join(ATTENTION_MODES)}, got {cfg.attention!r}")
        self.attention = Attention(cfg.context, mode=cfg.attention, temperature=cfg.attention_temperature) if cfg.attention != "none" else None
        self.update = UpdateBlock(corr_channels(cfg.levels, cfg.radius), cfg.hidden, cfg.context, 64, STRIDE, cfg.attention_gain, cfg.photometric,
                                  cfg.flow_scale, cfg.delta_scale)
        self.refiner = FlowRefiner(cfg.refine_hidden) if cfg.refine else None

    @staticmethod
    def _norm(img: torch.Tensor) -> torch.Tensor:
        return img / 127.5 - 1.0

    def forward(self, img1: torch.Tensor, img2: torch.Tensor, flow_init: torch.Tensor | None = None,
                iters: int | None = None, refine: bool = True, attention: bool = True) -> list[torch.Tensor]:
        """``img1``, ``img2``: (N, 1, H, W) grey in 0..255, H and W multiples of 16; ``flow_init``:
        (N, 2, H, W) or None. Returns the full-resolution flow after every iteration and, when the
        config has ``refine`` (and the call does not switch it off with ``refine=False``), the refined
        flow as one more, last entry. ``attention=False`` replaces the aggregated motion features by
        the plain motion features (the ablation of a trained network without its attention)."""
        cfg = self.config
        iters = iters or cfg.iters
        n, _, h, w = img1.shape
        if h % 16 or w % 16:
            raise ValueError(f"height and width must be multiples of 16, got {h}x{w}; use estimate() to pad")
        f1, f2 = self.fnet(self._norm(torch.cat([img1, img2], 0))).chunk(2, 0)
        corr = CorrPyramid(f1, f2, cfg.levels, cfg.radius)
        ctx = self.cnet(self._norm(img1))
        hidden, context = torch.tanh(ctx[:, :cfg.hidden]), F.relu(ctx[:, cfg.hidden:])
        attn = self.attention(context) if self.attention is not None and attention else None
        hc, wc = h // STRIDE, w // STRIDE
        ys, xs = torch.meshgrid(torch.arange(hc, dtype=img1.dtype, device=img1.device),
                                torch.arange(wc, dtype=img1.dtype, device=img1.device), indexing="ij")
        coords0 = torch.stack([xs, ys], 0)[None].expand(n, -1, -1, -1)
        base = F.avg_pool2d(flow_init, STRIDE) / STRIDE if flow_init is not None else torch.zeros_like(coords0)
        coords1 = coords0 + base
        out = []
        full = flow_init if flow_init is not None else torch.zeros(n, 2, h, w, dtype=img1.dtype, device=img1.device)
        for _ in range(iters):
            coords1 = coords1.detach()
            flow = coords1 - coords0
            photo = photometric_features(img1, img2, full.detach(), STRIDE) if cfg.photometric else None
            hidden, delta, mask = self.update(hidden, context, corr(coords1), flow, attn, photo)
            coords1 = coords1 + delta
            up = convex_upsample(coords1 - coords0 - base, mask, STRIDE)
            full = up + flow_init if flow_init is not None else up
            out.append(full)
        if self.refiner is not None and refine:
            # detached: the refinement stage learns on what the GRU gives it, but its loss does not reach the
            # GRU, whose own sequence loss alone teaches it (else the fast-learning smoothing absorbs the error
            # and leaves the GRU at its warm start)
            out.append(self.refiner(img1, img2, out[-1].detach() if cfg.refine_detach else out[-1]))
        return out

    # ------------------------------------------------------------------ numpy convenience
    @torch.no_grad()
    def estimate(self, first: np.ndarray, second: np.ndarray, iters: int | None = None, refine: bool = True,
                 attention: bool = True, init: np.ndarray | None = None) -> np.ndarray:
        """Flow ``first`` -> ``second`` for two frames (RGB or grey arrays), as (H, W, 2) float32.
        ``refine=False`` skips the refinement stage (to see what the GRU alone gives), ``attention=False``
        the attention (:meth:`forward`); ``init`` is the warm start when it is already computed."""
        return self.estimate_all(first, second, iters, refine, attention, init)[-1]

    @torch.no_grad()
    def estimate_all(self, first: np.ndarray, second: np.ndarray, iters: int | None = None, refine: bool = True,
                     attention: bool = True, init: np.ndarray | None = None) -> list[np.ndarray]:
        """Every flow :meth:`estimate` passes through, as (H, W, 2) float32 arrays: the warm start (zero
        flow without one), the flow after each GRU iteration and, with ``refine``, the refined flow."""
        a, b = to_grey(first).astype(np.float32), to_grey(second).astype(np.float32)
        h, w = a.shape
        ph, pw = (-h) % 16, (-w) % 16
        if self.config.warm_start:
            init = classic_flow(a, b, self.config.warm_start) if init is None else np.asarray(init, np.float32)
            start = init
            init = np.pad(init, ((0, ph), (0, pw), (0, 0)), mode="edge")
            init = torch.from_numpy(init).permute(2, 0, 1)[None]
        else:
            init, start = None, np.zeros((h, w, 2), np.float32)
        pad = lambda x: torch.from_numpy(np.pad(x, ((0, ph), (0, pw)), mode="edge"))[None, None]  # noqa: E731
        dev = next(self.parameters()).device
        was = self.training
        self.eval()
        flows = self(pad(a).to(dev), pad(b).to(dev), None if init is None else init.to(dev), iters, refine, attention)
        self.train(was)
        return [start] + [f[0, :, :h, :w].permute(1, 2, 0).cpu().numpy().astype(np.float32) for f in flows]

    def to_checkpoint(self) -> dict:
        return {"config": asdict(self.config), "state_dict": self.state_dict()}

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> "GRUAOFE":
        model = cls(FlowConfig(**{**LEGACY_CONFIG, **ckpt["config"]}))
        model.load_state_dict(ckpt["state_dict"])
        return model


def flow_loss(preds: list[torch.Tensor], target: torch.Tensor, valid: torch.Tensor, gamma: float = 0.8,
              refined: bool = False, refine_max_error: float = 1.0, init: torch.Tensor | None = None,
              max_warm_error: float = 0.0, harm_weight: float = 0.0, harm_eps: float = 0.05) -> torch.Tensor:
    """The pretraining loss: :func:`sequence_loss` over the GRU iterations, plus, when the last entry
    of ``preds`` is the refinement stage's output (``refined``), its mean end-point error on the valid
    pixels where the GRU's flow is already within ``refine_max_error`` px. The refinement stage only
    averages flow, so it cannot repair gross failures (occlusions, lost large motions); left in the
    loss those would teach it to smooth everything, which is wrong for the sub-pixel motion it is for.

    With a warm start ``init`` and ``max_warm_error`` > 0, the GRU's sequence loss counts only the valid
    pixels where the warm start is within ``max_warm_error`` px of the truth: the micro-motion regime
    the GRU is for. Where DIS fails by pixels (lost texture, occlusion) those errors are larger than all
    the micro-motion corrections together and would set the update's scale.

    ``harm_weight`` > 0 (with a warm start) adds the "do no harm" term: ``harm_weight`` times the mean,
    over the same pixels, of the GRU's last end-point error divided by the warm start's own error plus
    ``harm_eps`` px. An error costs most where the warm start is already right, which is where the
    earlier GRU made tuned DIS worse (its well-textured subjects): without it the GRU's corrections
    have a floor of about 0.03 px everywhere, larger than DIS's own error on a quarter of those
    pixels. The shipped recipe uses 0.5 over its last 300 steps (``configs/flow_pretrain.yaml``,
    ``train.harm_from_step``): from the first step the term held the untrained GRU at its warm start."""
    if init is not None and max_warm_error > 0:
        with torch.no_grad():
            valid = valid & (torch.linalg.vector_norm(init - target, dim=1) < max_warm_error)
    gru = preds[:-1] if refined else preds
    harm = 0.0
    if harm_weight > 0 and init is not None:
        with torch.no_grad():
            scale = 1.0 / (torch.linalg.vector_norm(init - target, dim=1) + harm_eps)
        v = valid.float()
        err = torch.linalg.vector_norm(gru[-1] - target, dim=1)
        harm = harm_weight * (err * scale * v).sum() / v.sum().clamp(min=1)
    loss = sequence_loss(gru, target, valid, gamma) + harm
    if not refined:
        return loss
    with torch.no_grad():
        keep = (valid & (torch.linalg.vector_norm(gru[-1] - target, dim=1) < refine_max_error)).float()
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
