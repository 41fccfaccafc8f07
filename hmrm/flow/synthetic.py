"""Pretraining pairs for the flow network, generated on the fly with exact ground truth.

FlyingChairs (Dosovitskiy et al. 2015) showed that a flow network can learn from absurd scenes:
textured layers flying under random affine motions. Those data cannot be downloaded here, so we
generate the same kind of pairs, tuned to micro-expressions: most motions are small and many are
sub-pixel.

A pair is made of a background layer and 1-4 foreground layers (random ellipses and polygons), each
textured with a crop of a scikit-image photograph (coffee, chelsea, brick, gravel, the Hubble deep
field, ...; no faces, so SynthME stays a fair test) or a procedural multi-scale noise texture; 40%
of the layers are faded to 3-25% of their contrast, weakly textured surfaces where sensor noise
dominates and classical flow drifts (the situation of flat skin).
Each layer moves by its own random affine map ``A`` (frame-1 pixel ``x`` goes to ``A x`` in frame
2); half of the layers also bend under a smooth random field ``d`` (a sum of 1-4 Gaussian bumps of
random width, direction and sub-pixel to 1 px height), so frame-1 pixel ``x`` goes to
``A (x + d(x))``: frame 1 is rendered through ``x + d(x)``, frame 2 through ``A^-1``, and the flow
stays exact. Both frames are rendered through the same bicubic resampling (a random sub-pixel offset is
applied to both), so sharpness does not tell them apart. The ground-truth flow at ``x`` is the
motion of the top layer at ``x`` in frame 1; pixels that the top layer does not cover in frame 2
are marked in the ``valid`` mask (occluded or out of view). Photometric noise (gain, a left-right
gain gradient, bias, Gaussian noise) is added per frame.

Nothing here uses SynthME's deformation model (action units, thin-plate splines, faces): the bumps
are placed at random on random textures.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

TEXTURE_IMAGES = ("brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "hubble_deep_field",
                  "immunohistochemistry", "moon", "rocket", "clock", "retina", "cell")


@dataclass(frozen=True)
class PairConfig:
    size: int = 128
    max_layers: int = 4
    small_share: float = 0.6  # share of layers whose translation is drawn from the sub-pixel range
    small_px: tuple[float, float] = (0.02, 1.0)
    large_px: tuple[float, float] = (1.0, 6.0)
    rotation_deg: float = 2.0
    scale: float = 0.02
    noise_sigma: tuple[float, float] = (0.0, 3.0)
    gain: float = 0.05
    bias: float = 5.0
    illum_gradient: float = 0.04  # max relative left-right gain gradient per frame
    nonrigid_share: float = 0.5  # share of layers that also bend under a smooth random field
    nonrigid_px: tuple[float, float] = (0.05, 1.0)  # peak displacement of one bump
    flat_share: float = 0.4  # share of layers whose texture is faded to low contrast (weak texture)
    flat_contrast: tuple[float, float] = (0.03, 0.25)  # remaining share of the texture's contrast


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    import skimage.data as data
    from skimage.color import rgb2gray

    out = []
    for name in TEXTURE_IMAGES:
        img = np.asarray(getattr(data, name)(), dtype=np.float32)
        if img.ndim == 3:
            img = rgb2gray(img[..., :3] / 255.0).astype(np.float32) * 255.0
        elif img.max() <= 1.0:
            img = img * 255.0
        out.append(img)
    return tuple(out)


def _noise_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2

    tex = np.zeros((size, size), np.float32)
    for sigma in (1.0, 3.0, 8.0):
        tex += cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), sigma) * sigma
    tex -= tex.min()
    return tex / max(tex.max(), 1e-6) * rng.uniform(120, 230) + rng.uniform(0, 30)


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A (2 size, 2 size) grey texture: a crop of a photo, or noise."""
    import cv2

    big = 2 * size
    if rng.random() < 0.25:
        return _noise_texture(rng, big)
    img = _photos()[rng.integers(len(TEXTURE_IMAGES))]
    scale = rng.uniform(0.6, 1.6)
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    if min(img.shape) < big:
        img = cv2.resize(img, (max(big, img.shape[1]), max(big, img.shape[0])), interpolation=cv2.INTER_CUBIC)
    y = rng.integers(0, img.shape[0] - big + 1)
    x = rng.integers(0, img.shape[1] - big + 1)
    return np.ascontiguousarray(img[y:y + big, x:x + big])


def _mask(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2

    m = np.zeros((2 * size, 2 * size), np.uint8)
    c = np.array([size, size]) + rng.uniform(-0.4, 0.4, 2) * size
    r = rng.uniform(0.12, 0.35) * size
    if rng.random() < 0.5:
        cv2.ellipse(m, (int(c[0]), int(c[1])), (int(r), int(r * rng.uniform(0.5, 1.0))), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        k = rng.integers(3, 8)
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        pts = c + np.stack([np.cos(ang), np.sin(ang)], 1) * r * rng.uniform(0.6, 1.2, (k, 1))
        cv2.fillPoly(m, [pts.astype(np.int32)], 1)
    return m.astype(np.float32)


def _affine(rng: np.random.Generator, cfg: PairConfig) -> np.ndarray:
    """A random 2x3 affine map about the image centre; translation mostly small."""
    lo, hi = cfg.small_px if rng.random() < cfg.small_share else cfg.large_px
    mag = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    ang = rng.uniform(0, 2 * np.pi)
    t = mag * np.array([np.cos(ang), np.sin(ang)])
    th = np.radians(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
    s = 1 + rng.uniform(-cfg.scale, cfg.scale)
    lin = s * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    c = np.array([cfg.size / 2, cfg.size / 2])
    return np.hstack([lin, (c - lin @ c + t)[:, None]])


def _bend(rng: np.random.Generator, cfg: PairConfig, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """A smooth random displacement field (H, W, 2): 1-4 Gaussian bumps at random places."""
    n = cfg.size
    d = np.zeros(xs.shape + (2,))
    for _ in range(int(rng.integers(1, 5))):
        cx, cy = rng.uniform(0, n, 2)
        sigma = rng.uniform(0.06, 0.3) * n
        amp = np.exp(rng.uniform(np.log(cfg.nonrigid_px[0]), np.log(cfg.nonrigid_px[1])))
        ang = rng.uniform(0, 2 * np.pi)
        bump = amp * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))
        d[..., 0] += bump * np.cos(ang)
        d[..., 1] += bump * np.sin(ang)
    return d


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2x3 affine a after b."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


def _invert(a: np.ndarray) -> np.ndarray:
    return np.linalg.inv(np.vstack([a, [0, 0, 1]]))[:2]


def make_pair(rng: np.random.Generator, cfg: PairConfig = PairConfig(), noise: bool = True):
    """One training pair: ``(frame1, frame2, flow, valid)``; frames (H, W) float32 in 0..255,
    flow (H, W, 2) float32 frame1 -> frame2, valid (H, W) bool."""
    import cv2

    n = cfg.size
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float64)
    pts = np.stack([xs, ys, np.ones_like(xs)], -1)
    frames = [np.zeros((n, n), np.float32), np.zeros((n, n), np.float32)]
    flow = np.zeros((n, n, 2), np.float32)
    top = [np.full((n, n), -1, np.int32), np.full((n, n), -1, np.int32)]
    motions = []
    n_fg = int(rng.integers(1, cfg.max_layers + 1))
    for layer in range(n_fg + 1):
        tex = _texture(rng, n)
        if rng.random() < cfg.flat_share:
            # weakly textured surface: where brightness constancy has little to hold on to, noise wins
            mean = float(tex.mean())
            tex = mean + (tex - mean) * np.float32(rng.uniform(*cfg.flat_contrast))
        mask = np.ones_like(tex) if layer == 0 else _mask(rng, n)
        # texture coordinates of frame-1 pixel x: place the (2n)^2 texture around the view, sub-pixel offset
        place = np.array([[1.0, 0, n / 2 + rng.uniform(-0.5, 0.5)], [0, 1.0, n / 2 + rng.uniform(-0.5, 0.5)]])
        if layer > 0:
            place[:, 2] += rng.uniform(-0.3, 0.3, 2) * n
        motion = _affine(rng, cfg)
        motions.append(motion)
        # frame-1 pixel x shows the layer point h(x) = x + d(x) (d = 0 for rigid layers); frame 2 shows A^-1 y
        src = pts.copy()
        if rng.random() < cfg.nonrigid_share:
            src[..., :2] += _bend(rng, cfg, xs, ys)
        for t in range(2):
            if t == 0:
                tc = src @ np.vstack([place, [0, 0, 1]]).T
                mx, my = tc[..., 0].astype(np.float32), tc[..., 1].astype(np.float32)
                img = cv2.remap(tex, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
                cov = cv2.remap(mask, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) > 0.5
            else:
                # frame 2 pixel y shows texture point place A^-1 y
                m = _compose(place, _invert(motion))
                img = cv2.warpAffine(tex, m, (n, n), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
                cov = cv2.warpAffine(mask, m, (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT) > 0.5
            frames[t][cov] = img[cov]
            top[t][cov] = layer
        covered = top[0] == layer
        moved = src @ motion.T
        flow[covered] = (moved[..., :2] - pts[..., :2])[covered]
    # valid: the top layer at x in frame 1 is also the top layer at x + flow in frame 2, inside the view
    tx, ty = xs + flow[..., 0], ys + flow[..., 1]
    inside = (tx >= 0) & (tx <= n - 1) & (ty >= 0) & (ty <= n - 1)
    ix = np.clip(np.rint(tx), 0, n - 1).astype(int)
    iy = np.clip(np.rint(ty), 0, n - 1).astype(int)
    valid = inside & (top[1][iy, ix] == top[0])
    if noise:
        for t in range(2):
            grad = rng.uniform(-cfg.illum_gradient, cfg.illum_gradient) * (2 * xs / (n - 1) - 1)
            frames[t] = frames[t] * (1 + rng.uniform(-cfg.gain, cfg.gain) + grad.astype(np.float32)) + rng.uniform(-cfg.bias, cfg.bias)
            frames[t] += rng.normal(0, rng.uniform(*cfg.noise_sigma), frames[t].shape).astype(np.float32)
    return np.clip(frames[0], 0, 255), np.clip(frames[1], 0, 255), flow, valid


class PairDataset:
    """An endless, seedable stream of pairs (``dataset[i]`` is always the same pair for a seed)."""

    def __init__(self, cfg: PairConfig = PairConfig(), seed: int = 0, noise: bool = True):
        self.cfg, self.seed, self.noise = cfg, seed, noise

    def __getitem__(self, i: int):
        return make_pair(np.random.default_rng([self.seed, i]), self.cfg, self.noise)

    def batch(self, start: int, n: int):
        """Tensors (n, 1, H, W) x2, (n, 2, H, W), (n, H, W) for pairs start..start+n-1."""
        import torch

        items = [self[start + k] for k in range(n)]
        f1, f2, fl, va = (np.stack(x) for x in zip(*items))
        return (torch.from_numpy(f1)[:, None], torch.from_numpy(f2)[:, None],
                torch.from_numpy(fl).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(va))
