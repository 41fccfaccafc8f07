"""MotionMix: landmark-guided mixing of facial regions between two flow maps of the same class.

The idea
--------
Micro-expression data sets are tiny (150-450 clips; a few dozen per class, a handful per subject), so a
network quickly memorises whole faces. A micro-expression, however, is mostly made of a few
local movements: brows and lids (AU1, 2, 4, 5, 7) and lips (AU10, 12, 14, 15, 17, 20, 25). Two
clips of the same class can therefore lend each other their eye or mouth motion: the result is
a new, plausible flow map of that class, e.g. one person's raised brows with another person's lip
corners. HMRM calls this MotionMix: "landmark-guided patch mixing of the eye and mouth regions
between two flow maps of the same class, to increase motion diversity". Unlike MixUp or CutMix
the label never changes, because both parents carry the same label.

What the paper leaves open, and what we chose
---------------------------------------------
* **Which regions.** The eye boxes (eye with its brow, each side separately) and the mouth box of
  :mod:`hmrm.face.regions`, from the onset landmarks. Everything outside these boxes stays the
  sample's own: cheeks, forehead, the nose (whose box overlaps the eye and mouth boxes a little)
  and the background head motion. The two eye boxes can share a column or two where the brows
  nearly meet; regions are pasted in order, so the later one wins there.
* **All or some.** ``mode="all"`` (default) takes every listed region from the partner, the most
  literal reading of the paper; ``mode="random"`` takes a random non-empty subset per draw
  (more combinations, e.g. the partner's mouth with the sample's own eyes).
* **Boxes of different size.** The partner's patch is resized to the sample's box (bilinear).
  Displacement values are *not* rescaled: both faces are aligned to the same eye distance, so a
  pixel is the same physical length in both, and a size difference of the boxes reflects
  anatomy (a wider mouth), not zoom.
* **Edges.** ``blend="hard"`` (default) pastes the patch as it is ("patch mixing"); the seam is a
  step in the flow. ``blend="feather"`` ramps the partner's weight linearly from the box edge to
  ``feather_px`` pixels inside it; every mixed value is then a convex combination of the two
  inputs. All channels (u, v, strain ...) are mixed alike, after they were computed: strain is
  not recomputed across the seam, which would draw a bright ridge along every box edge.
* **Head motion.** Every clip carries some rigid head motion, often as large as the expression
  itself. Pasted as it is (``head_motion="keep"``, default, the literal reading of the paper) a
  partner with another drift shows up as a box of offset flow. ``head_motion="match"`` replaces
  the partner's drift (median u, v of its whole map) by the sample's own before pasting, so only
  the partner's *local* motion is transplanted. Which one trains better is an ablation to run.
* **Box size.** The landmark boxes are tight; some movements (lip corners pulled down, cheeks
  raised) spill over them. ``grow`` enlarges the boxes by a fraction of their size first
  (default 0: the boxes as RFFS uses them).
* **Which partner.** A uniformly drawn *other* sample of the same label from the pool (the batch,
  or a whole training fold passed as ``pool``), any subject. A class with a single sample is
  never mixed. Each sample is mixed with probability ``p`` (default 0.5), so half of what the
  network sees stays real.
* **Train folds only.** MotionMix sees only what it is given: pass it training data only (the
  LOSO harness must apply it to training batches only), never the test subject.
* **Randomness.** A :class:`numpy.random.Generator` seeded once; the same seed and the same
  sequence of calls give the same mixes.

Arrays may be NumPy arrays or torch tensors (any device); the result has the input's type.
Inputs are never modified in place.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..face.regions import REGION_NAMES
from ..features import DEFAULT_CHANNELS

MIX_REGIONS = ("right_eye", "left_eye", "mouth")
BLENDS = ("hard", "feather")
MODES = ("all", "random")
HEAD_MOTION = ("keep", "match")


def seam_jump(x, boxes, regions: Sequence[str] = MIX_REGIONS) -> float:
    """How visible the edges of ``regions`` are in a flow input ``x`` (C, S, S): the mean jump of
    ``|u| + |v|`` between the pixel just inside and the pixel just outside each box edge, in pixels of
    displacement. A hard paste between clips that drift differently leaves a large one; feathering
    spreads it over several pixels, so the jump at the edge falls."""
    x, side = _as_numpy(x), _as_numpy(x).shape[-1]
    rows = _box_rows(boxes)
    jumps = []
    for i in _region_index(regions):
        x0, y0, x1, y1 = (int(v) for v in rows[i])
        if y0 > 0:
            jumps.append(np.abs(x[:2, y0, x0:x1] - x[:2, y0 - 1, x0:x1]).sum(0))
        if y1 < side:
            jumps.append(np.abs(x[:2, y1 - 1, x0:x1] - x[:2, y1, x0:x1]).sum(0))
        if x0 > 0:
            jumps.append(np.abs(x[:2, y0:y1, x0] - x[:2, y0:y1, x0 - 1]).sum(0))
        if x1 < side:
            jumps.append(np.abs(x[:2, y0:y1, x1 - 1] - x[:2, y0:y1, x1]).sum(0))
    if not jumps:
        raise ValueError(f"the boxes of {tuple(regions)} have no edge inside the {side} px input")
    return float(np.concatenate(jumps).mean())


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _as_numpy(a) -> np.ndarray:
    if _is_torch(a):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _region_index(regions: Sequence[str]) -> list[int]:
    bad = [r for r in regions if r not in REGION_NAMES]
    if bad:
        raise ValueError(f"unknown region(s) {bad}; choose from {', '.join(REGION_NAMES)}")
    return [REGION_NAMES.index(r) for r in regions]


def _box_rows(boxes) -> np.ndarray:
    """Boxes as an int (R, 4) array in REGION_NAMES order, from an array or a ``{name: box}`` dict."""
    if isinstance(boxes, dict):
        return np.array([boxes[n] for n in REGION_NAMES], dtype=np.int64)
    b = _as_numpy(boxes).astype(np.int64)
    if b.shape != (len(REGION_NAMES), 4):
        raise ValueError(f"boxes must be ({len(REGION_NAMES)}, 4) rows (x0, y0, x1, y1) in order {REGION_NAMES}, got {b.shape}")
    return b


def resize_patch(patch, h: int, w: int):
    """Resize a (C, h0, w0) patch to (C, h, w), bilinear, values unchanged in scale. NumPy patches
    go through the same torch routine, so both array types give the same numbers."""
    if tuple(patch.shape[-2:]) == (h, w):
        return patch
    import torch
    import torch.nn.functional as F

    t = patch if _is_torch(patch) else torch.from_numpy(np.ascontiguousarray(patch))
    out = F.interpolate(t[None].float(), size=(h, w), mode="bilinear", align_corners=False)[0].to(t.dtype)
    return out if _is_torch(patch) else out.numpy()


def feather_weights(h: int, w: int, feather_px: float) -> np.ndarray:
    """(h, w) partner weights in (0, 1]: 1 deeper than ``feather_px`` inside the box, falling
    linearly towards its edge (edge pixels get ``1 / (feather_px + 1)``). ``feather_px=0`` is 1
    everywhere, i.e. a hard paste."""
    if feather_px <= 0:
        return np.ones((h, w), dtype=np.float32)
    dy = np.minimum(np.arange(h), np.arange(h)[::-1]) + 1.0
    dx = np.minimum(np.arange(w), np.arange(w)[::-1]) + 1.0
    d = np.minimum(dy[:, None], dx[None, :])
    return np.minimum(1.0, d / (feather_px + 1.0)).astype(np.float32)


def grow_boxes(boxes, grow: float, height: int, width: int) -> np.ndarray:
    """Boxes (R, 4) enlarged by ``grow`` times their width / height on every side, clipped to the
    image. ``grow=0`` returns them unchanged."""
    b = _box_rows(boxes)
    if grow == 0:
        return b
    dx = np.rint(grow * (b[:, 2] - b[:, 0])).astype(np.int64)
    dy = np.rint(grow * (b[:, 3] - b[:, 1])).astype(np.int64)
    out = np.stack([b[:, 0] - dx, b[:, 1] - dy, b[:, 2] + dx, b[:, 3] + dy], 1)
    return np.clip(out, 0, [width, height, width, height])


def _median(x) -> float:
    if _is_torch(x):
        import torch

        return float(torch.quantile(x.detach().float().flatten(), 0.5))  # interpolates, like np.median
    return float(np.median(x))


def _check_mix_inputs(x_a, x_b, blend: str, head_motion: str) -> None:
    """Refuse options and inputs :func:`motionmix` cannot mix, naming what is wrong."""
    if blend not in BLENDS:
        raise ValueError(f"unknown blend {blend!r}; choose one of {', '.join(BLENDS)}")
    if head_motion not in HEAD_MOTION:
        raise ValueError(f"unknown head_motion {head_motion!r}; choose one of {', '.join(HEAD_MOTION)}")
    if _is_torch(x_a) != _is_torch(x_b):
        raise TypeError("x_a and x_b must both be NumPy arrays or both torch tensors")
    if tuple(x_a.shape[:-2]) != tuple(x_b.shape[:-2]):
        raise ValueError(f"x_a and x_b must have the same channels, got {tuple(x_a.shape)} and {tuple(x_b.shape)}")
    floating = x_a.dtype.is_floating_point if _is_torch(x_a) else np.issubdtype(x_a.dtype, np.floating)
    if (blend == "feather" or head_motion == "match") and not floating:
        raise TypeError(f"blend='feather' and head_motion='match' need floating-point inputs, got {x_a.dtype}")


def _drift_shift(x_a, x_b, channels: Sequence[str]) -> tuple:
    """For ``head_motion="match"``: the u, v (and mag) channel indices, and the shift (du, dv) that
    replaces ``b``'s global drift (median u, v of its whole map) by ``a``'s."""
    ch = list(channels)
    if len(ch) != x_a.shape[0] or "u" not in ch or "v" not in ch:
        raise ValueError(f"head_motion='match' needs the channel names (with 'u' and 'v') of the {x_a.shape[0]} "
                         f"input channels, got channels={tuple(ch)}")
    ui, vi = ch.index("u"), ch.index("v")
    return (ui, vi, ch.index("mag") if "mag" in ch else None,
            _median(x_a[ui]) - _median(x_b[ui]), _median(x_a[vi]) - _median(x_b[vi]))


def motionmix(x_a, boxes_a, x_b, boxes_b, regions: Sequence[str] = MIX_REGIONS, blend: str = "hard",
              feather_px: float = 3.0, grow: float = 0.0, head_motion: str = "keep",
              channels: Sequence[str] = DEFAULT_CHANNELS):
    """Sample ``a`` with the listed regions taken from partner ``b``.

    ``x_a``, ``x_b``: (C, H, W) flow inputs (NumPy or torch, same type); ``boxes_a``, ``boxes_b``:
    (R, 4) int rows ``(x0, y0, x1, y1)`` in :data:`~hmrm.face.regions.REGION_NAMES` order (or
    ``{name: box}`` dicts), in input pixels. For each region, ``b``'s box is resized to ``a``'s box
    and written over it (``blend="hard"``) or blended in with :func:`feather_weights`
    (``blend="feather"``). Pixels outside ``a``'s boxes are returned bit for bit. Regions are
    applied in the order given; where boxes overlap the later one wins. Empty boxes are skipped.

    ``grow``: enlarge both samples' boxes by this fraction of their size on each side first
    (:func:`grow_boxes`), for movements that spill over the landmark boxes.
    ``head_motion``: ``"keep"`` pastes ``b``'s values as they are; ``"match"`` first replaces
    ``b``'s global drift by ``a``'s: the median ``u`` and ``v`` of ``b``'s whole map are subtracted
    from the patch and those of ``a`` added (a ``mag`` channel is recomputed from the shifted
    ``u``, ``v``; strain does not change under a translation). ``channels`` names the channels of
    the input; it is only read for ``"match"``.
    """
    _check_mix_inputs(x_a, x_b, blend, head_motion)
    ba = grow_boxes(boxes_a, grow, x_a.shape[-2], x_a.shape[-1])
    bb = grow_boxes(boxes_b, grow, x_b.shape[-2], x_b.shape[-1])
    shift = _drift_shift(x_a, x_b, channels) if head_motion == "match" else None
    out = x_a.clone() if _is_torch(x_a) else np.array(x_a, copy=True)
    for r in _region_index(regions):
        ax0, ay0, ax1, ay1 = (int(v) for v in ba[r])
        bx0, by0, bx1, by1 = (int(v) for v in bb[r])
        if ax1 <= ax0 or ay1 <= ay0 or bx1 <= bx0 or by1 <= by0:
            continue
        patch = resize_patch(x_b[..., by0:by1, bx0:bx1], ay1 - ay0, ax1 - ax0)
        if shift is not None:
            ui, vi, mi, du, dv = shift
            patch = patch.clone() if _is_torch(patch) else patch.copy()  # never write into x_b
            patch[ui] += du
            patch[vi] += dv
            if mi is not None:
                patch[mi] = (patch[ui] ** 2 + patch[vi] ** 2) ** 0.5
        if blend == "hard" or feather_px <= 0:
            out[..., ay0:ay1, ax0:ax1] = patch
        else:
            w = feather_weights(ay1 - ay0, ax1 - ax0, feather_px)
            own = out[..., ay0:ay1, ax0:ax1]
            if _is_torch(out):
                import torch

                w = torch.as_tensor(w, device=out.device, dtype=out.dtype)
                out[..., ay0:ay1, ax0:ax1] = torch.where(w >= 1, patch, (1 - w) * own + w * patch)
            else:
                out[..., ay0:ay1, ax0:ax1] = np.where(w >= 1, patch, (1 - w) * own + w * patch)
    return out


@dataclass
class MixPlan:
    """What one call of :class:`MotionMix` does: ``partner[i]`` is the pool index whose regions
    sample ``i`` receives (-1: not mixed), ``regions[i]`` the names taken from it."""

    partner: np.ndarray
    regions: list[tuple[str, ...]]

    @property
    def mixed(self) -> np.ndarray:
        return self.partner >= 0


class MotionMix:
    """Batch- or fold-level MotionMix (see the module docstring for the choices).

    >>> mm = MotionMix(p=0.5, seed=0)
    >>> x_aug = mm(x, boxes, labels)                   # partners drawn within the batch
    >>> x_aug = mm(x, boxes, labels, pool=(X, B, Y),   # partners from a whole training fold
    ...            index=batch_idx)                    # (positions of the batch in the pool: never itself)

    ``x``: (N, C, H, W); ``boxes``: (N, R, 4); ``labels``: (N,) ints. Returns the mixed ``x``
    (a new array/tensor of the same type); labels are unchanged by construction.
    """

    def __init__(self, p: float = 0.5, regions: Sequence[str] = MIX_REGIONS, mode: str = "all",
                 blend: str = "hard", feather_px: float = 3.0, grow: float = 0.0, head_motion: str = "keep",
                 channels: Sequence[str] = DEFAULT_CHANNELS, seed: int | None = 0):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if blend not in BLENDS:
            raise ValueError(f"unknown blend {blend!r}; choose one of {', '.join(BLENDS)}")
        if head_motion not in HEAD_MOTION:
            raise ValueError(f"unknown head_motion {head_motion!r}; choose one of {', '.join(HEAD_MOTION)}")
        _region_index(regions)
        if not regions:
            raise ValueError("regions must name at least one region")
        self.p, self.regions, self.mode = float(p), tuple(regions), mode
        self.blend, self.feather_px, self.grow = blend, float(feather_px), float(grow)
        self.head_motion, self.channels = head_motion, tuple(channels)
        self.rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return (f"MotionMix(p={self.p}, regions={self.regions}, mode={self.mode!r}, blend={self.blend!r}, "
                f"feather_px={self.feather_px}, grow={self.grow}, head_motion={self.head_motion!r})")

    def plan(self, labels, pool_labels=None, index=None) -> MixPlan:
        """Draw partners and regions. ``pool_labels`` default to ``labels`` (partners from the batch,
        never the sample itself); ``index[i]`` is sample ``i``'s position in the pool, if it is in it."""
        y = _as_numpy(labels).astype(np.int64).ravel()
        in_batch = pool_labels is None
        py = y if in_batch else _as_numpy(pool_labels).astype(np.int64).ravel()
        if in_batch:
            index = np.arange(len(y))
        elif index is not None:
            index = _as_numpy(index).astype(np.int64).ravel()
            if len(index) != len(y):
                raise ValueError(f"index has {len(index)} entries for {len(y)} samples")
            if (index < 0).any() or (index >= len(py)).any() or (py[index] != y).any():
                raise ValueError("index must give each sample's position in the pool, with the same label there")
        by_class = {c: np.flatnonzero(py == c) for c in np.unique(py)}
        partner = np.full(len(y), -1, dtype=np.int64)
        chosen: list[tuple[str, ...]] = []
        for i, c in enumerate(y):
            # one draw for "mix or not" per sample, so p only decides, never shifts, later draws
            go = self.rng.random() < self.p
            cands = by_class.get(c, np.empty(0, np.int64))
            if index is not None:
                cands = cands[cands != index[i]]
            if not go or len(cands) == 0:
                chosen.append(())
                continue
            partner[i] = cands[self.rng.integers(len(cands))]
            if self.mode == "all":
                chosen.append(self.regions)
            else:
                k = int(self.rng.integers(1, len(self.regions) + 1))
                pick = sorted(self.rng.choice(len(self.regions), size=k, replace=False))
                chosen.append(tuple(self.regions[j] for j in pick))
        return MixPlan(partner, chosen)

    def apply(self, x, boxes, plan: MixPlan, pool=None):
        """Mix ``x`` (N, C, H, W) according to ``plan``; ``pool`` = (X, boxes) of the pool, or None
        for the batch itself. Partners are read from the unmixed inputs."""
        px, pb = (x, boxes) if pool is None else (pool[0], pool[1])
        out = x.clone() if _is_torch(x) else np.array(x, copy=True)
        for i in np.flatnonzero(plan.mixed):
            j = int(plan.partner[i])
            out[i] = motionmix(x[i], boxes[i], px[j], pb[j], plan.regions[i], self.blend, self.feather_px,
                               self.grow, self.head_motion, self.channels)
        return out

    def __call__(self, x, boxes, labels, pool=None, index=None):
        """Mixed ``x``; ``pool`` = (X, boxes, labels) of the partner pool (default: the batch)."""
        n = len(labels)
        if len(x) != n or len(boxes) != n:
            raise ValueError(f"x, boxes and labels disagree in length: {len(x)}, {len(boxes)}, {n}")
        if pool is None:
            plan = self.plan(labels)
            return self.apply(x, boxes, plan)
        plan = self.plan(labels, pool[2], index)
        return self.apply(x, boxes, plan, (pool[0], pool[1]))
