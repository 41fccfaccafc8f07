"""Rendering one clip: the motion model (expression, blink, head motion), every frame resampled from
the photo in one step, and the exact onset -> apex flow."""
from __future__ import annotations


import numpy as np

from ...face.align import transform_points
from ..au import parse_aus
from .faces import RenderFace
from .specs import ClipSpec


def temporal_profile(n: int, onset: int, apex: int, offset: int) -> np.ndarray:
    """0 before onset, a raised-cosine rise to 1 at apex, a fall back to 0 at offset."""
    t = np.arange(n, dtype=np.float64)
    a = np.zeros(n)
    rise = (t >= onset) & (t <= apex)
    a[rise] = 0.5 - 0.5 * np.cos(np.pi * (t[rise] - onset) / max(apex - onset, 1))
    fall = (t > apex) & (t <= offset)
    a[fall] = 0.5 + 0.5 * np.cos(np.pi * (t[fall] - apex) / max(offset - apex, 1))
    return a


def blink_profile(n: int, blink: dict | None) -> np.ndarray:
    b = np.zeros(n)
    if blink:
        t = np.arange(n, dtype=np.float64)
        s, L = blink["start"], blink["length"]
        inside = (t >= s) & (t <= s + L)
        b[inside] = blink["strength"] * (0.5 - 0.5 * np.cos(2 * np.pi * (t[inside] - s) / L))
    return b


class ClipMotion:
    """The motion model of one clip: where every reference face point is in every frame."""

    def __init__(self, face: RenderFace, spec: ClipSpec):
        self.face = face
        self.spec = spec
        self.size = face.size
        aus = [(au, 0.0 if side == "L" else spec.sides[0], 0.0 if side == "R" else spec.sides[1])
               for au, side in parse_aus(spec.aus)]
        self.au = face.fields.au_field(aus, spec.peak_px)
        self.a = temporal_profile(spec.n_frames, spec.onset, spec.apex, spec.offset)
        self.b = blink_profile(spec.n_frames, spec.blink)
        ys, xs = np.mgrid[0 : self.size, 0 : self.size].astype(np.float64)
        self.grid = np.stack([xs, ys], axis=-1)

    def local(self, t: int) -> np.ndarray:
        return (self.a[t] * self.au + self.b[t] * self.face.blink).astype(np.float32)

    def rigid(self, t: int, p: np.ndarray, inverse: bool = False) -> np.ndarray:
        h = self.spec.head
        iod = self.face.fields.iod
        theta = h["rot_px"][t] / iod
        s = 1.0 + h["scale"][t]
        c, sn = np.cos(theta), np.sin(theta)
        shift = np.array([h["tx"][t], h["ty"][t]])
        ctr = self.face.centre
        if not inverse:
            q = p - ctr
            return ctr + s * np.stack([c * q[..., 0] - sn * q[..., 1], sn * q[..., 0] + c * q[..., 1]], -1) + shift
        q = (p - ctr - shift) / s
        return ctr + np.stack([c * q[..., 0] + sn * q[..., 1], -sn * q[..., 0] + c * q[..., 1]], -1)

    def forward(self, t: int, x: np.ndarray) -> np.ndarray:
        """Frame-t position of the reference points ``x`` (..., 2)."""
        return self.rigid(t, x + sample_field(self.local(t), x))

    def inverse(self, t: int, y: np.ndarray, iters: int = 30) -> np.ndarray:
        """Reference points shown at frame-t positions ``y``: solve x + local(x) = Rigid^-1(y)."""
        z = self.rigid(t, y, inverse=True)
        loc = self.local(t)
        x = z.copy()
        if not loc.any():
            return x
        for _ in range(iters):
            x_new = z - sample_field(loc, x)
            done = np.abs(x_new - x).max() < 1e-7
            x = x_new
            if done:
                break
        return x

    def expression_flow(self, t0: int, t1: int) -> np.ndarray:
        """The flow t0 -> t1 had the head kept its frame-t0 pose: the expression (and blink) alone,
        what head-motion compensation should recover from :meth:`gt_flow`."""
        ref = self.inverse(t0, self.grid)
        return (self.rigid(t0, ref + sample_field(self.local(t1), ref)) - self.grid).astype(np.float32)

    def gt_flow(self, t0: int, t1: int) -> np.ndarray:
        """Forward flow t0 -> t1 for every pixel of frame t0: frame_t1(x + F(x)) = frame_t0(x)."""
        ref = self.inverse(t0, self.grid)
        return (self.forward(t1, ref) - self.grid).astype(np.float32)


def sample_field(fieldmap: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Bilinear sample of an (H, W, C) field at float pixel positions (..., 2), clamped at the
    border, computed in float64 so that the motion model is exact to rounding."""
    import torch
    import torch.nn.functional as F

    h, w = fieldmap.shape[:2]
    f = torch.from_numpy(np.ascontiguousarray(fieldmap, dtype=np.float64)).permute(2, 0, 1)[None]
    p = torch.from_numpy(np.ascontiguousarray(pos, dtype=np.float64)).reshape(1, -1, 1, 2)
    g = torch.stack([2 * p[..., 0] / (w - 1) - 1, 2 * p[..., 1] / (h - 1) - 1], -1)
    out = F.grid_sample(f, g, mode="bilinear", padding_mode="border", align_corners=True)
    return out[0, :, :, 0].T.numpy().reshape(*pos.shape[:-1], fieldmap.shape[2])


def resample_photo(face: RenderFace, canon_pos: np.ndarray) -> np.ndarray:
    """Bicubic sample of the pre-scaled photo at canonical positions (H, W, 2) -> float (H, W, 3)."""
    import torch
    import torch.nn.functional as F

    src = transform_points(face.canon_to_crop, canon_pos.reshape(-1, 2)).reshape(canon_pos.shape)
    _, _, h, w = face.photo.shape
    g = torch.from_numpy(src.astype(np.float64))
    g = torch.stack([2 * g[..., 0] / (w - 1) - 1, 2 * g[..., 1] / (h - 1) - 1], -1).float()[None]
    out = F.grid_sample(face.photo, g, mode="bicubic", padding_mode="border", align_corners=True)
    return out[0].permute(1, 2, 0).numpy()


def render_clip(face: RenderFace, spec: ClipSpec, noise: bool = True, lighting: bool = True):
    """Render a clip: (frames as a list of uint8 (H, W, 3), GT flow onset->apex, motion model)."""
    motion = ClipMotion(face, spec)
    rng = np.random.default_rng(spec.seed)
    xs = (np.arange(face.size) - face.size / 2) / face.size
    frames = []
    for t in range(spec.n_frames):
        img = resample_photo(face, motion.inverse(t, motion.grid))
        if lighting:
            gain = 1.0 + spec.illum["gain"][t] + spec.illum["gradient"][t] * xs[None, :, None]
            img = img * gain
        if noise and spec.noise_sigma > 0:
            img = img + rng.normal(0.0, spec.noise_sigma, size=img.shape)
        frames.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    flow = motion.gt_flow(spec.onset, spec.apex)
    return frames, flow, motion
