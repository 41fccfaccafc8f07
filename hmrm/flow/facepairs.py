"""Face-domain pretraining pairs: what faces and cameras do, with exact ground-truth flow.

The layered pairs of :mod:`.synthetic` teach a flow network to match textures; this generator adds
the situation GRU-AOFE meets in a micro-expression clip: a face, aligned, that moves a little as a
whole and deforms a little in places, seen by a camera that adds noise, changes its gain, blurs and
compresses. Each pair is drawn as follows (every range is a field of :class:`FacePairConfig`).

**Surface.** With probability ``face_share`` a face-bank photo (the real photos SynthME animates,
:mod:`hmrm.data.facebank`), rendered the way the pipeline crops faces (eyes on the 256 px
alignment template) and then scaled by ``face_scale``, turned by up to ``pose_deg`` and cropped to
``size`` px around a random point of the face; otherwise a non-face texture (a scikit-image photo or
multi-scale noise, as in :mod:`.synthetic`) with random pseudo-landmarks.

**Motion.** Frame-1 pixel ``x`` goes to ``A (x + d(x))`` in frame 2, where

* ``d`` is a sum of ``bumps`` smooth local deformations (Gaussian bumps of width ``bump_sigma_px`` and
  peak ``bump_px``, both log-uniform, random direction); a share ``landmark_share`` of them is centred
  near a landmark (brows, eyes, nose, mouth: where facial muscles move skin), the rest anywhere. The
  shipped recipe widens the peaks to 0.03-4 px (``data.bump_max_px`` of ``configs/flow_pretrain.yaml``):
  trained on peaks up to the default 1.5 px, GRU-AOFE shortened the larger expression motions;
* ``A`` is head motion: a similarity (translation, rotation ``head_rotation_deg``, scale
  ``head_scale``) plus a small shear; its translation is sub-pixel (``head_small_px``) for a share
  ``head_small_share`` of pairs and larger (``head_large_px``) otherwise.

Frame 1 is rendered through ``x + d(x)``, frame 2 through ``A^-1``, both with the same bicubic
resampling, so the flow ``A (x + d(x)) - x`` is exact.

**Camera.** Per frame: a gain change (``gain``), a smooth illumination field (``shading``, a different
low-frequency field in each frame) and a bias; a blur (``blur_sigma``, drawn once per pair and
jittered per frame, with probability ``blur_share``); Gaussian read noise (``noise_sigma``) plus
signal-dependent shot noise (``shot_noise`` times the square root of the brightness); JPEG
compression (quality ``jpeg_quality``, with probability ``jpeg_share``).

**Blinks.** With probability ``blink_share`` an eyelid closes over one eye in frame 2: an ellipse over
the eye's landmarks is filled with blurred skin from above the eye. Frame-1 pixels whose motion ends
under the lid are marked invalid (occluded), as are those that leave the view.

What it never uses: SynthME's action-unit fields, its clips, its renderer or any of its seeds. The
face bank's photos are shared with SynthME (there are no other freely licensed faces to use), so a
network trained here has seen the test faces' skin, never their motion; ``face_share = 0`` trains
on non-face textures only, for a test of how much that matters.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..data import facebank
from ..data.facebank import BankPhoto, Photo
from ..data.synthme.faces import prepare_bank_faces
from ..face.align import alignment_matrix, matrix_scale
from ..viz.flow import add_flow_wheel, flow_to_color
from ..viz.plots import save_figure
from .synthetic import PairConfig, PairDataset, _texture, make_pair

#: Landmark indices (68-point scheme) of the regions facial muscles move; bumps are centred near them.
MOVING_LANDMARKS = tuple(range(17, 68))  # brows 17-26, nose 27-35, eyes 36-47, mouth 48-67
EYES = (tuple(range(36, 42)), tuple(range(42, 48)))
ALIGN_SIZE = 256  # the face crop GRU-AOFE sees in the pipeline


@dataclass(frozen=True)
class FacePairConfig:
    size: int = 128
    face_share: float = 0.8  # pairs on a face-bank photo; the rest on non-face textures
    face_scale: tuple[float, float] = (0.8, 1.25)  # relative to the 256 px alignment
    pose_deg: float = 6.0  # in-plane rotation of the rendered face
    bumps: tuple[int, int] = (1, 8)  # local deformations per pair (inclusive)
    bump_sigma_px: tuple[float, float] = (3.0, 30.0)
    bump_px: tuple[float, float] = (0.03, 1.5)  # peak displacement of one bump
    landmark_share: float = 0.75
    head_small_share: float = 0.7
    head_small_px: tuple[float, float] = (0.01, 0.5)
    head_large_px: tuple[float, float] = (0.5, 5.0)
    head_rotation_deg: float = 1.0
    head_scale: float = 0.01
    head_shear: float = 0.005
    gain: float = 0.05
    shading: float = 0.04  # amplitude of the smooth illumination field, relative
    bias: float = 4.0
    blur_share: float = 0.5
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    noise_sigma: tuple[float, float] = (0.2, 3.0)
    shot_noise: tuple[float, float] = (0.0, 0.2)  # sigma = k sqrt(brightness)
    jpeg_share: float = 0.4
    jpeg_quality: tuple[int, int] = (40, 95)
    blink_share: float = 0.1


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


@lru_cache(maxsize=1)
def face_sources(offline: bool = True) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Every face-bank photo as (grey float32 photo, pre-scaled so that its face has the 256 px
    alignment's size; its 68 landmarks in those pixels). ``offline``: only the photos already cached
    (``hmrm facebank`` or ``make demo`` fetches them; the astronaut is always there)."""
    import cv2

    out = []
    for face in prepare_bank_faces(facebank.fetch_face_bank(offline=offline, verbose=False), offline=offline, verbose=False):
        image = facebank.load_photo(BankPhoto(Photo(face.photo_id, face.person, "", "", None, pad=face.pad), face.path))
        s = matrix_scale(alignment_matrix(face.landmarks, ALIGN_SIZE))
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        h, w = grey.shape
        grey = cv2.resize(grey, (max(1, round(w * s)), max(1, round(h * s))),
                          interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        out.append((grey, face.landmarks * np.array([grey.shape[1] / w, grey.shape[0] / h])))
    return tuple(out)


def _face_surface(rng: np.random.Generator, cfg: FacePairConfig, sources) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(texture, 2x3 map from texture pixels to view pixels, landmarks in view pixels) for a face."""
    tex, lm = sources[rng.integers(len(sources))]
    align = alignment_matrix(lm, ALIGN_SIZE)  # already ~unit scale: a rigid move into the 256 px crop
    s = _log_uniform(rng, *cfg.face_scale)
    th = np.radians(rng.uniform(-cfg.pose_deg, cfg.pose_deg))
    lin = s * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    centre = np.array([ALIGN_SIZE / 2, ALIGN_SIZE / 2]) + rng.uniform(-0.22, 0.22, 2) * ALIGN_SIZE
    # canonical point p -> view point lin (p - centre) + size / 2
    view = np.hstack([lin, (cfg.size / 2 - lin @ centre)[:, None]])
    m = (np.vstack([view, [0, 0, 1]]) @ np.vstack([align, [0, 0, 1]]))[:2]
    return tex, m, lm @ m[:, :2].T + m[:, 2]


def _texture_surface(rng: np.random.Generator, cfg: FacePairConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tex = _texture(rng, cfg.size)  # (2 size)^2
    off = cfg.size / 2 + rng.uniform(-0.5, 0.5, 2)
    m = np.array([[1.0, 0, -off[0]], [0, 1.0, -off[1]]])
    return tex, m, rng.uniform(0.1, 0.9, (68, 2)) * cfg.size


def _head_motion(rng: np.random.Generator, cfg: FacePairConfig) -> np.ndarray:
    lo, hi = cfg.head_small_px if rng.random() < cfg.head_small_share else cfg.head_large_px
    mag, ang = _log_uniform(rng, lo, hi), rng.uniform(0, 2 * np.pi)
    th = np.radians(rng.uniform(-cfg.head_rotation_deg, cfg.head_rotation_deg))
    s = 1 + rng.uniform(-cfg.head_scale, cfg.head_scale)
    lin = s * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    lin = lin @ np.array([[1.0, rng.uniform(-cfg.head_shear, cfg.head_shear)], [0.0, 1.0]])
    c = np.array([cfg.size / 2, cfg.size / 2]) + rng.uniform(-0.2, 0.2, 2) * cfg.size
    return np.hstack([lin, (c - lin @ c + mag * np.array([np.cos(ang), np.sin(ang)]))[:, None]])


def _deformation(rng: np.random.Generator, cfg: FacePairConfig, landmarks: np.ndarray, xs, ys) -> np.ndarray:
    d = np.zeros(xs.shape + (2,))
    moving = landmarks[list(MOVING_LANDMARKS)]
    for _ in range(int(rng.integers(cfg.bumps[0], cfg.bumps[1] + 1))):
        if rng.random() < cfg.landmark_share:
            cx, cy = moving[rng.integers(len(moving))] + rng.normal(0, 4, 2)
        else:
            cx, cy = rng.uniform(0, cfg.size, 2)
        sigma = _log_uniform(rng, *cfg.bump_sigma_px)
        amp, ang = _log_uniform(rng, *cfg.bump_px), rng.uniform(0, 2 * np.pi)
        bump = amp * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))
        d[..., 0] += bump * np.cos(ang)
        d[..., 1] += bump * np.sin(ang)
    return d


def _blink(rng: np.random.Generator, frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Close an eyelid over one eye of ``frame`` (in place); returns the lid's mask (bool)."""
    import cv2

    eye = landmarks[list(EYES[rng.integers(2)])]
    c = eye.mean(0)
    half_w = max(2.0, float(np.ptp(eye[:, 0])) * 0.75)
    half_h = max(1.5, float(np.ptp(eye[:, 1])) * 1.2 + 2.0)
    lid = np.zeros(frame.shape, np.uint8)
    cv2.ellipse(lid, (int(round(c[0])), int(round(c[1]))), (int(round(half_w)), int(round(half_h))), 0, 0, 360, 1, -1)
    lid = lid.astype(bool)
    if not lid.any():
        return lid
    shift = np.float32([[1, 0, 0], [0, 1, 2.5 * half_h]])  # skin from above the eye
    skin = cv2.warpAffine(frame, shift, frame.shape[::-1], borderMode=cv2.BORDER_REFLECT)
    skin = cv2.GaussianBlur(skin, (0, 0), 2.0)
    frame[lid] = skin[lid]
    return lid


def _camera(rng: np.random.Generator, cfg: FacePairConfig, frames: list[np.ndarray]) -> list[np.ndarray]:
    import cv2

    n = cfg.size
    blur = rng.uniform(*cfg.blur_sigma) if rng.random() < cfg.blur_share else 0.0
    jpeg = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)) if rng.random() < cfg.jpeg_share else 0
    read = rng.uniform(*cfg.noise_sigma)
    shot = rng.uniform(*cfg.shot_noise)
    out = []
    for f in frames:
        low = cv2.resize(rng.standard_normal((4, 4)).astype(np.float32), (n, n), interpolation=cv2.INTER_CUBIC)
        g = 1 + rng.uniform(-cfg.gain, cfg.gain) + cfg.shading * low / max(float(np.abs(low).max()), 1e-6)
        f = f * g + rng.uniform(-cfg.bias, cfg.bias)
        if blur > 0:
            f = cv2.GaussianBlur(f, (0, 0), blur * rng.uniform(0.9, 1.1))
        sigma = np.sqrt(read ** 2 + shot ** 2 * np.clip(f, 0, 255))
        f = np.clip(f + rng.standard_normal(f.shape).astype(np.float32) * sigma.astype(np.float32), 0, 255)
        if jpeg:
            ok, buf = cv2.imencode(".jpg", np.rint(f).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, jpeg])
            f = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32)
        out.append(f.astype(np.float32))
    return out


def make_face_pair(rng: np.random.Generator, cfg: FacePairConfig = FacePairConfig(), sources=None, noise: bool = True):
    """One pair ``(frame1, frame2, flow, valid)`` as :func:`hmrm.flow.synthetic.make_pair` returns it;
    ``sources``: :func:`face_sources` (the face photos), looked up when not given."""
    import cv2

    n = cfg.size
    sources = face_sources() if sources is None else sources
    face = bool(sources) and rng.random() < cfg.face_share
    tex, m, landmarks = _face_surface(rng, cfg, sources) if face else _texture_surface(rng, cfg)
    inv = cv2.invertAffineTransform(m)  # view -> texture
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float64)
    d = _deformation(rng, cfg, landmarks, xs, ys)
    a = _head_motion(rng, cfg)
    # frame 1: pixel x shows the surface point at view position x + d(x)
    sx, sy = xs + d[..., 0], ys + d[..., 1]
    mx = (inv[0, 0] * sx + inv[0, 1] * sy + inv[0, 2]).astype(np.float32)
    my = (inv[1, 0] * sx + inv[1, 1] * sy + inv[1, 2]).astype(np.float32)
    f1 = cv2.remap(tex, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    # frame 2: pixel y shows the surface point at view position A^-1 y
    a_inv = cv2.invertAffineTransform(a)
    m2 = (np.vstack([inv, [0, 0, 1]]) @ np.vstack([a_inv, [0, 0, 1]]))[:2]
    f2 = cv2.warpAffine(tex, m2, (n, n), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
    tx = a[0, 0] * sx + a[0, 1] * sy + a[0, 2]
    ty = a[1, 0] * sx + a[1, 1] * sy + a[1, 2]
    flow = np.stack([tx - xs, ty - ys], -1).astype(np.float32)
    valid = (tx >= 0) & (tx <= n - 1) & (ty >= 0) & (ty <= n - 1)
    if rng.random() < cfg.blink_share and face:  # eyelids only where there are eyes
        lid = _blink(rng, f2, landmarks @ a[:, :2].T + a[:, 2])
        ix = np.clip(np.rint(tx), 0, n - 1).astype(int)
        iy = np.clip(np.rint(ty), 0, n - 1).astype(int)
        valid &= ~lid[iy, ix]
    frames = [f1.astype(np.float32), f2.astype(np.float32)]
    if noise:
        frames = _camera(rng, cfg, frames)
    return np.clip(frames[0], 0, 255), np.clip(frames[1], 0, 255), flow, valid


class FacePairDataset:
    """An endless, seedable stream of pretraining pairs (``dataset[i]`` is always the same pair for a
    seed): face-domain pairs (:func:`make_face_pair`), and a share ``layered_share`` of the layered
    pairs of :mod:`.synthetic` (occlusion boundaries and large motions that faces rarely show)."""

    def __init__(self, cfg: FacePairConfig = FacePairConfig(), seed: int = 0, layered_share: float = 0.25,
                 noise: bool = True, offline: bool = True):
        self.cfg, self.seed, self.layered_share, self.noise = cfg, seed, layered_share, noise
        self.layered = PairConfig(size=cfg.size)
        self.offline = offline

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, i])
        if rng.random() < self.layered_share:
            return make_pair(rng, self.layered, self.noise)
        return make_face_pair(rng, self.cfg, face_sources(self.offline), self.noise)

    def batch(self, start: int, n: int):
        return PairDataset.batch(self, start, n)


def plot_pairs(n: int = 6, seed: int = 0, size: int = 128, out=None, max_mag: float = 1.5):
    """Sample pretraining pairs: frame 1, frame 2, their difference and the exact flow (colour wheel;
    grey where invalid), one row per pair, the first rows face pairs, the last a layered pair."""
    from matplotlib.figure import Figure

    sources = face_sources()
    fig = Figure(figsize=(8.4, 2.15 * n), layout="constrained")
    axes = fig.subplots(n, 4, squeeze=False)
    cfg = FacePairConfig(size=size)
    for row in range(n):
        rng = np.random.default_rng([seed, row])
        if row == n - 1:
            pair, kind = make_pair(rng, PairConfig(size=size)), "layered pair (hmrm.flow.synthetic)"
        else:
            pair, kind = make_face_pair(rng, cfg, sources), "face-domain pair"
        a, b, flow, valid = pair
        colour = flow_to_color(flow, max_mag)
        colour[~valid] = 128
        mag = np.linalg.norm(flow, axis=-1)[valid]
        panels = [(a, f"frame 1 ({kind})", (0, 255)), (b, "frame 2", (0, 255)),
                  (b - a, "frame 2 - frame 1 (+-30 grey levels)", (-30, 30)),
                  (colour, f"exact flow, median {np.median(mag):.2f} px, max {mag.max():.2f} px", None)]
        for ax, (img, title, lim) in zip(axes[row], panels):
            if lim is not None:
                ax.imshow(img, cmap="gray", vmin=lim[0], vmax=lim[1])
            else:
                ax.imshow(img)
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    add_flow_wheel(axes[0, 3], max_mag)
    fig.suptitle(f"GRU-AOFE pretraining pairs (colour wheel saturates at {max_mag} px; grey: occluded or out of view)",
                 fontsize=9)
    save_figure(fig, out)
    return fig


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(prog="python -m hmrm.flow.facepairs",
                                 description="Draw sample GRU-AOFE pretraining pairs with their exact flow.")
    ap.add_argument("--out", default="figures/flow_pretraining_pairs.png", help="PNG to write")
    ap.add_argument("--pairs", type=int, default=6, help="rows (the last one is a layered pair)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    plot_pairs(args.pairs, args.seed, out=args.out)
    print(f"figure written to {args.out}")
