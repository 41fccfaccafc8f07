"""SynthME: synthetic micro-expressions rendered from real face photographs, with exact
ground-truth optical flow.

How a clip is made
------------------
1. A bank photo is aligned (eyes on the template of a ``size`` crop). The photo is pre-scaled so
   that the alignment has unit scale; what is left is a rotation and a translation.
2. A set of action units (AUs) chosen by the clip's emotion becomes a dense displacement field
   over the face (:mod:`hmrm.data.au`), scaled so that its peak is ``peak_px`` pixels (0.5-2 px by
   default: micro intensity) and made asymmetric between the two sides.
3. For every frame ``t`` the face point at reference position ``x`` sits at
   ``Rigid_t(x + a_t * AU(x) + b_t * Blink(x))``: ``a_t`` is the onset -> apex -> offset profile,
   ``b_t`` a random eye blink, ``Rigid_t`` a slow head motion (translation, rotation, scale) of the
   same order as the expression itself.
4. Every frame, the onset included, is rendered in one resampling step from the pre-scaled photo
   (the motion is inverted by a fixed-point iteration), so no frame is sharper than another.
   Illumination drift and sensor noise are added last.
5. The ground-truth forward flow onset -> apex is computed from the same motion model for every
   pixel: warping the apex frame by it gives back the onset frame (noise and lighting aside).

On disk the set looks like a real data set: ``frames/<subject>/<sample>/img001.png ...``, one
``annotations.csv`` (subject, sample, onset, apex, offset, emotion, action units), the flows in
``gt_flow/<subject>/<sample>.npz``, and a ``manifest.json`` describing how it was made.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..face.align import eye_template, invert_affine, matrix_scale, transform_points
from ..face.landmarks import eye_centres
from ..utils import atomic_path, atomic_write_text, folder_lock, worker_pool
from .au import FaceFieldModel, parse_aus
from .classes import get_scheme
from .records import DataError, Sample

if TYPE_CHECKING:
    from .records import SampleSet

GENERATOR_VERSION = "1"

#: Emotion -> the AU patterns it may show (one is drawn per clip). "R"/"L" marks a unilateral AU.
#: Negative emotions are many and varied, as in the real data sets.
EMOTION_AUS: dict[str, list[str]] = {
    "happiness": ["12", "6+12", "6+12+25", "12+25"],
    "surprise": ["1+2", "1+2+5", "1+2+26", "1+2+5+25"],
    "disgust": ["9", "9+10", "4+9", "10", "4+7+9"],
    "repression": ["14", "15", "17", "15+17", "14+17"],
    "anger": ["4+7", "4", "4+5+7", "4+17"],
    "contempt": ["R14", "L14", "R12", "L12+L14"],
    "fear": ["1+2+4", "1+4+20", "20", "1+2+4+5+20"],
    "sadness": ["1+4", "1+4+15", "15", "1+15+17"],
}
NEGATIVE = ("disgust", "repression", "anger", "contempt", "fear", "sadness")


@dataclass
class SynthConfig:
    """Everything that decides a SynthME build. Same config + same seed -> same bytes."""

    clips_per_subject: int = 16
    size: int = 256
    frames: tuple[int, int] = (16, 24)  # inclusive range of frames per clip
    peak_px: tuple[float, float] = (0.5, 2.0)  # AU peak displacement at apex
    head_px: tuple[float, float] = (0.3, 1.5)  # head translation excursion over a clip
    head_rot_px: float = 0.6  # max rotation excursion, as px moved at one IOD from the centre
    head_scale: float = 0.004  # max relative scale change (moving towards the camera)
    blink_prob: float = 0.35
    blink_strength: tuple[float, float] = (0.3, 1.0)
    noise_sigma: tuple[float, float] = (1.0, 2.5)  # grey levels, per frame
    illumination: float = 0.03  # max relative gain drift and left-right gradient
    asymmetry: tuple[float, float] = (0.6, 1.0)  # gain of the weaker side
    balance: tuple[float, float, float] = (0.57, 0.24, 0.19)  # negative, positive, surprise
    image_format: str = "png"
    seed: int = 0

    @classmethod
    def preset(cls, name: str, **overrides) -> "SynthConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown SynthME preset {name!r}; choose one of {sorted(PRESETS)}")
        return replace(cls(), **{**PRESETS[name], **overrides})

    def to_json(self) -> dict:
        return asdict(self)


PRESETS: dict[str, dict] = {
    "default": {},
    # lower intensity, more head motion and noise
    "hard": {"peak_px": (0.25, 1.0), "head_px": (0.5, 2.0), "head_rot_px": 0.8, "noise_sigma": (2.0, 4.0), "blink_prob": 0.5},
    # a few short clips of two subjects: for tests and quick notebook runs
    "tiny": {"clips_per_subject": 4, "frames": (16, 16)},
}


#: SynthConfig fields that ``hmrm synthme`` sets with its own flag (the rest come from --preset)
SYNTHME_FLAGS = {"clips_per_subject": "--clips-per-subject", "seed": "--seed", "image_format": "--format"}


def synthme_command(out: str | Path, config: SynthConfig | dict | None = None, subjects: int | None = None) -> str:
    """The ``hmrm synthme`` command line (shell-quoted, ready to paste) that builds ``config`` into
    ``out``: the preset it derives from plus the flags that differ. A config no preset and flags can
    express (made in Python) gets the plain command and a pointer to its manifest."""
    import shlex

    cfg = json.loads(json.dumps(config.to_json() if isinstance(config, SynthConfig) else (config or SynthConfig().to_json())))
    best = None
    for name in PRESETS:
        base = json.loads(json.dumps(SynthConfig.preset(name).to_json()))
        diff = [k for k in base if cfg.get(k, base[k]) != base[k]]
        if set(diff) <= set(SYNTHME_FLAGS) and (best is None or len(diff) < len(best[1])):
            best = (name, diff)
    parts = ["hmrm", "synthme", "--out", str(out)]
    if best is None:
        return shlex.join(parts) + f"  # with the SynthConfig recorded in {Path(out) / 'manifest.json'}, from Python"
    name, diff = best
    parts += ["--preset", name] if name != "default" else []
    for key in diff:
        parts += [SYNTHME_FLAGS[key], str(cfg[key])]
    if subjects is not None:
        parts += ["--subjects", str(subjects)]
    return shlex.join(parts)


def rebuild_command(root: str | Path) -> str:
    """The command that (re)builds the SynthME in ``root`` with the settings its manifest records
    (the default build's command when there is no manifest)."""
    try:
        manifest = json.loads((Path(root) / "manifest.json").read_text())
        subjects = manifest["max_subjects"] if "max_subjects" in manifest else manifest.get("n_subjects")
        return synthme_command(root, manifest["config"], subjects)
    except (OSError, ValueError, KeyError, TypeError):
        return synthme_command(root)


def _setting_differences(old: dict, new: dict) -> list[str]:
    old_cfg, new_cfg = old.get("config") or {}, new["config"]
    out = [f"{k} {old_cfg.get(k)!r} there, {new_cfg[k]!r} here" for k in new_cfg if old_cfg.get(k) != new_cfg[k]]
    if old.get("generator") != new["generator"]:
        out.append(f"generator version {old.get('generator')!r} there, {new['generator']!r} here")
    if old.get("photos") != new["photos"]:
        out.append(f"{len(old.get('photos') or [])} bank photos there, {len(new['photos'])} here (--subjects)")
    return out


# ----------------------------------------------------------------------------- bank faces
@dataclass
class BankFace:
    """A bank photo with its 68 landmarks in photo coordinates."""

    photo_id: str
    person: str
    path: Path
    pad: float
    landmarks: np.ndarray
    credit: str


def prepare_bank_faces(photos=None, offline: bool = False, verbose: bool = True) -> list[BankFace]:
    """Detect and landmark the face of every bank photo (cached beside the photos)."""
    from ..face import detect_face, landmarks68
    from ..utils import sha256_file
    from . import facebank

    photos = photos if photos is not None else facebank.fetch_face_bank(offline=offline, verbose=verbose)
    cache_file = facebank.bank_dir() / "landmarks.json"
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    out, changed = [], False
    for bp in photos:
        key = f"{bp.photo.photo_id}:{sha256_file(bp.path)}:{bp.photo.pad}"
        if key not in cache:
            image = facebank.load_photo(bp)
            near = bp.photo.near
            if near is not None and bp.photo.pad:
                p = round(bp.photo.pad * max(image.shape[:2]))
                near = (near[0] + p, near[1] + p)
            box = detect_face(image, near=near, source=str(bp.path))
            cache[key] = landmarks68(image, box.box).tolist()
            changed = True
        out.append(BankFace(bp.photo.photo_id, bp.person, bp.path, bp.photo.pad, np.asarray(cache[key]), bp.source_text))
    if changed:
        atomic_write_text(cache_file, json.dumps(cache))
    return out


class RenderFace:
    """A bank face set up for rendering: the pre-scaled photo, its unit-scale alignment, the
    canonical landmarks and the dense-field model."""

    def __init__(self, face: BankFace, size: int):
        import cv2
        import torch

        from . import facebank
        from .facebank import BankPhoto, Photo

        image = facebank.load_photo(BankPhoto(Photo(face.photo_id, face.person, "", "", None, pad=face.pad), face.path))
        lm = face.landmarks
        left, right = eye_centres(lm)
        tmpl = eye_template(size)
        s = float(np.linalg.norm(tmpl[1] - tmpl[0]) / np.linalg.norm(right - left))
        h, w = image.shape[:2]
        new_w, new_h = max(1, round(w * s)), max(1, round(h * s))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
        scaled = cv2.resize(image, (new_w, new_h), interpolation=interp)
        sx, sy = new_w / w, new_h / h
        lm_scaled = lm * np.array([sx, sy])
        from ..face.align import alignment_matrix

        m = alignment_matrix(lm_scaled, size)  # photo' -> canonical, scale ~1
        # keep only the part of the photo the crop can reach (with a margin for motion)
        inv = invert_affine(m)
        corners = transform_points(inv, np.array([[-24, -24], [size + 24, -24], [-24, size + 24], [size + 24, size + 24]]))
        x0, y0 = np.floor(corners.min(0)).astype(int)
        x1, y1 = np.ceil(corners.max(0)).astype(int)
        pad = max(0, -x0, -y0, x1 - new_w, y1 - new_h)
        if pad:
            scaled = cv2.copyMakeBorder(scaled, pad, pad, pad, pad, cv2.BORDER_REFLECT101)
            x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
        crop = scaled[y0:y1, x0:x1]
        shift = np.array([[1, 0, x0 - pad], [0, 1, y0 - pad]], dtype=np.float64)  # crop -> photo'
        self.crop_to_canon = m @ np.vstack([shift, [0, 0, 1]])
        self.canon_to_crop = invert_affine(self.crop_to_canon)
        self.photo = torch.from_numpy(crop.astype(np.float32)).permute(2, 0, 1)[None].contiguous()
        self.size = size
        self.scale = matrix_scale(self.crop_to_canon)
        self.landmarks = transform_points(m, lm_scaled)
        self.fields = FaceFieldModel(self.landmarks, size)
        self.blink = self.fields.blink_field()
        self.centre = self.landmarks.mean(axis=0)


# ----------------------------------------------------------------------------- clip specs
@dataclass
class ClipSpec:
    subject: str
    sample: str
    photo_id: str
    emotion: str
    aus: str
    sides: tuple[float, float]
    peak_px: float
    n_frames: int
    onset: int
    apex: int
    offset: int
    head: dict = field(default_factory=dict)
    blink: dict | None = None
    noise_sigma: float = 0.0
    illum: dict = field(default_factory=dict)
    seed: int = 0


def class_counts(n: int, balance: tuple[float, float, float]) -> dict[str, int]:
    """Split ``n`` clips into negative / positive / surprise by largest remainder."""
    b = np.asarray(balance, dtype=np.float64)
    b = b / b.sum()
    raw = b * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts))[: n - counts.sum()]:
        counts[i] += 1
    return dict(zip(("negative", "positive", "surprise"), counts.tolist()))


def _curve(rng: np.random.Generator, n: int) -> np.ndarray:
    """A smooth random curve over n frames with range 1 (drift plus a slow oscillation)."""
    tau = np.linspace(0.0, 1.0, n)
    c = rng.normal(size=2)
    y = c[0] * tau + c[1] * np.sin(np.pi * rng.uniform(0.5, 1.5) * tau + rng.uniform(0, 2 * np.pi))
    rng_ = y.max() - y.min()
    return (y - y.mean()) / (rng_ if rng_ > 1e-9 else 1.0)


def make_specs(faces: list[BankFace], config: SynthConfig) -> list[ClipSpec]:
    """Draw every clip's parameters. Each clip has its own random stream, so a clip's content
    depends only on the seed, its subject number and its clip number."""
    people: dict[str, list[BankFace]] = {}
    for f in faces:
        people.setdefault(f.person, []).append(f)
    specs = []
    counts = class_counts(config.clips_per_subject, config.balance)
    for si, (person, pfaces) in enumerate(people.items()):
        subject = f"sub{si + 1:02d}"
        order_rng = np.random.default_rng([config.seed, si, 10_000])
        classes = [c for c, k in counts.items() for _ in range(k)]
        order_rng.shuffle(classes)
        for ci, cls in enumerate(classes):
            rng = np.random.default_rng([config.seed, si, ci])
            if cls == "positive":
                emotion = "happiness"
            elif cls == "surprise":
                emotion = "surprise"
            else:
                emotion = str(rng.choice(NEGATIVE))
            aus = str(rng.choice(EMOTION_AUS[emotion]))
            weak = rng.uniform(*config.asymmetry)
            sides = (1.0, weak) if rng.random() < 0.5 else (weak, 1.0)
            n = int(rng.integers(config.frames[0], config.frames[1] + 1))
            onset = int(rng.integers(0, 3))
            offset = n - 1 - int(rng.integers(0, 3))
            apex = onset + max(2, int(round((offset - onset) * rng.uniform(0.35, 0.6))))
            head = {
                "tx": (_curve(rng, n) * rng.uniform(*config.head_px)).tolist(),
                "ty": (_curve(rng, n) * rng.uniform(*config.head_px)).tolist(),
                "rot_px": (_curve(rng, n) * rng.uniform(0, config.head_rot_px)).tolist(),
                "scale": (_curve(rng, n) * rng.uniform(0, config.head_scale)).tolist(),
            }
            blink = None
            if rng.random() < config.blink_prob:
                dur = int(rng.integers(5, 11))
                blink = {"start": int(rng.integers(-dur // 2, n - dur // 2)), "length": dur,
                         "strength": float(rng.uniform(*config.blink_strength))}
            illum = {"gain": (_curve(rng, n) * rng.uniform(0, config.illumination)).tolist(),
                     "gradient": (_curve(rng, n) * rng.uniform(0, config.illumination)).tolist()}
            specs.append(ClipSpec(
                subject=subject, sample=f"{subject}_{ci + 1:02d}", photo_id=pfaces[ci % len(pfaces)].photo_id,
                emotion=emotion, aus=aus, sides=sides, peak_px=float(rng.uniform(*config.peak_px)),
                n_frames=n, onset=onset, apex=apex, offset=offset, head=head, blink=blink,
                noise_sigma=float(rng.uniform(*config.noise_sigma)), illum=illum,
                seed=int(rng.integers(0, 2**31 - 1)),
            ))
    return specs


# ----------------------------------------------------------------------------- rendering
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


# ----------------------------------------------------------------------------- building on disk
ANNOTATION_COLUMNS = (
    "subject", "sample", "n_frames", "onset", "apex", "offset", "emotion", "aus",
    "peak_px", "head_px", "blink", "noise_sigma", "photo",
)


def _frame_name(i: int, fmt: str) -> str:
    """File name of frame ``i`` (0-based); numbers on disk start at 1, as in the real sets."""
    return f"img{i + 1:03d}.{fmt}"


def _clip_dir(root: Path, spec: ClipSpec) -> Path:
    return root / "frames" / spec.subject / spec.sample


def _gt_path(root: Path, subject: str, sample: str) -> Path:
    return root / "gt_flow" / subject / f"{sample}.npz"


def _is_done(root: Path, spec: ClipSpec) -> bool:
    return (_clip_dir(root, spec) / "clip.json").is_file() and _gt_path(root, spec.subject, spec.sample).is_file()


def _annotation_row(spec: ClipSpec, motion: ClipMotion) -> dict:
    h = spec.head
    head = float(np.hypot(np.subtract(h["tx"][spec.apex], h["tx"][spec.onset]), np.subtract(h["ty"][spec.apex], h["ty"][spec.onset])))
    return {
        "subject": spec.subject, "sample": spec.sample, "n_frames": spec.n_frames,
        "onset": spec.onset + 1, "apex": spec.apex + 1, "offset": spec.offset + 1,  # frame numbers
        "emotion": spec.emotion, "aus": spec.aus, "peak_px": f"{spec.peak_px:.4f}",
        "head_px": f"{head:.4f}", "blink": int(bool(motion.b[spec.onset] or motion.b[spec.apex])),
        "noise_sigma": f"{spec.noise_sigma:.3f}", "photo": spec.photo_id,
    }


_WORKER: dict = {}


def _init_worker(faces: list[BankFace], size: int, single_thread: bool = True) -> None:
    if single_thread:  # only inside pool workers: never change the caller's thread settings
        import cv2
        import torch

        torch.set_num_threads(1)
        cv2.setNumThreads(1)
    _WORKER["faces"] = {f.photo_id: f for f in faces}
    _WORKER["size"] = size
    _WORKER["render"] = {}


def _render_face(photo_id: str) -> RenderFace:
    cache = _WORKER["render"]
    if photo_id not in cache:
        cache[photo_id] = RenderFace(_WORKER["faces"][photo_id], _WORKER["size"])
    return cache[photo_id]


def _build_clip(args: tuple[ClipSpec, str, str]) -> dict:
    """Render one clip and write it atomically: frames into a temporary folder that is renamed
    into place last, so an interrupted build never leaves a half-written clip behind."""
    import cv2

    spec, root_s, fmt = args
    root = Path(root_s)
    face = _render_face(spec.photo_id)
    frames, flow, motion = render_clip(face, spec)
    final = _clip_dir(root, spec)
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(tmp / _frame_name(i, fmt)), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    lm_onset = motion.forward(spec.onset, face.landmarks)
    lm_apex = motion.forward(spec.apex, face.landmarks)
    from ..face.regions import face_mask

    gt = _gt_path(root, spec.subject, spec.sample)
    with atomic_path(gt) as part:
        with open(part, "wb") as f:
            np.savez_compressed(f, flow=flow, face_mask=face_mask(lm_onset, face.size),
                                landmarks_onset=lm_onset.astype(np.float32), landmarks_apex=lm_apex.astype(np.float32))
    row = _annotation_row(spec, motion)
    (tmp / "clip.json").write_text(json.dumps(row))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return row


def build_synthme(
    out: str | Path,
    config: SynthConfig | None = None,
    workers: int | None = None,
    max_subjects: int | None = None,
    progress: bool = True,
    offline: bool = False,
) -> dict:
    """Build (or finish building) SynthME in ``out``; returns the manifest.

    Clips already on disk are kept, so an interrupted build resumes where it stopped. A folder
    built with a different configuration is refused rather than mixed, and so is a second process
    while one is building into the same folder.
    """
    config = config or SynthConfig()
    out = Path(out)
    t0 = time.time()
    faces = prepare_bank_faces(offline=offline, verbose=progress)
    if max_subjects is not None:
        keep = list(dict.fromkeys(f.person for f in faces))[:max_subjects]
        faces = [f for f in faces if f.person in keep]
    identity = {"generator": GENERATOR_VERSION, "config": config.to_json(), "photos": [f.photo_id for f in faces]}
    with folder_lock(out, "SynthME folder"):  # one builder at a time; a second process is refused
        manifest = _build_locked(out, config, faces, identity, max_subjects, workers, progress)
    # the build time is returned, not written: same seed, same bytes
    return {**manifest, "seconds": round(time.time() - t0, 1), "root": str(out)}


def _build_locked(out: Path, config: SynthConfig, faces: list, identity: dict, max_subjects, workers, progress) -> dict:
    """The body of :func:`build_synthme` once the folder is locked; returns the manifest."""
    from tqdm.auto import tqdm

    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        if {k: old.get(k) for k in identity} != json.loads(json.dumps(identity)):
            raise DataError(
                f"{out} already holds a SynthME build made with other settings ({manifest_path}): "
                + "; ".join(_setting_differences(old, json.loads(json.dumps(identity))))
                + f". To finish or reuse that build: {rebuild_command(out)}. To build these settings, choose another "
                "--out folder, or delete this one."
            )
    out.mkdir(parents=True, exist_ok=True)
    identity["max_subjects"] = max_subjects  # recorded for the rebuild hints, not part of the identity
    atomic_write_text(manifest_path, json.dumps({**identity, "complete": False}, indent=1))

    specs = make_specs(faces, config)
    todo = [s for s in specs if not _is_done(out, s)]
    workers = workers or min(2, os.cpu_count() or 1)
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc="SynthME clips", unit="clip", disable=not progress)
    jobs = [(s, str(out), config.image_format) for s in todo]
    if workers > 1 and len(jobs) > 1:
        with worker_pool(workers, _init_worker, (faces, config.size)) as pool:  # spawned, end with this process
            for _ in pool.map(_build_clip, jobs, chunksize=2):
                bar.update()
    else:
        _init_worker(faces, config.size, single_thread=False)
        for job in jobs:
            _build_clip(job)
            bar.update()
    bar.close()

    rows = [json.loads((_clip_dir(out, s) / "clip.json").read_text()) for s in specs]
    with atomic_path(out / "annotations.csv") as part:
        with open(part, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=ANNOTATION_COLUMNS)
            w.writeheader()
            w.writerows(rows)
    people = {}
    for f in faces:
        people.setdefault(f.person, []).append(f)
    with atomic_path(out / "subjects.csv") as part:
        with open(part, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["subject", "person", "photos", "source"])
            for i, (person, pf) in enumerate(people.items()):
                w.writerow([f"sub{i + 1:02d}", person, "+".join(p.photo_id for p in pf), " | ".join(dict.fromkeys(p.credit for p in pf))])
    emotions: dict[str, int] = {}
    for r in rows:
        emotions[r["emotion"]] = emotions.get(r["emotion"], 0) + 1
    manifest = {
        **identity, "complete": True, "n_subjects": len(people), "n_samples": len(rows),
        "emotions": emotions, "composite3": class_counts_of(rows, "composite3"),
    }
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1))
    return manifest


def class_counts_of(rows: list[dict], scheme: str) -> dict[str, int]:
    sch = get_scheme(scheme)
    counts = {c: 0 for c in sch.classes}
    for r in rows:
        lab = sch.label(r["emotion"])
        if lab is not None:
            counts[lab] += 1
    return counts


# ----------------------------------------------------------------------------- loading
def load_synthme(root: str | Path, scheme: str = "composite3", lenient: bool = False) -> "SampleSet":
    """Read a SynthME build as :class:`~hmrm.data.records.Sample` records (the same record the
    CASME II parser returns). Rows whose frames are missing are skipped and listed in
    ``.skipped``; rows outside ``scheme`` are counted in ``.dropped``; a row that cannot be read as
    written (frame numbers out of order, an empty or unknown emotion) is an error naming the line,
    or with ``lenient`` a skipped row listed in ``.unreadable``."""
    import warnings

    from .records import SampleSet, unreadable_row, warn_unreadable

    root = Path(root)
    sch = get_scheme(scheme)
    ann = root / "annotations.csv"
    rebuild = f"`{rebuild_command(root)}`"
    if not root.is_dir():
        raise DataError(f"SynthME folder {root} does not exist. Build it with `{synthme_command(root)}` (or `make demo`).")
    if not ann.is_file():
        raise DataError(
            f"{ann} is missing, so {root} is not a finished SynthME build. "
            f"Run {rebuild} again: it resumes and writes the annotation file at the end."
        )
    samples, skipped, dropped, unreadable = [], [], {}, []
    with open(ann, newline="") as f:
        reader = csv.DictReader(f)
        missing_cols = [c for c in ("subject", "sample", "n_frames", "onset", "apex", "offset", "emotion") if c not in (reader.fieldnames or [])]
        if missing_cols:
            raise DataError(f"{ann}: missing column(s) {missing_cols}; the header is {reader.fieldnames}. Rebuild with {rebuild}.")
        for line, row in enumerate(reader, start=2):
            try:
                n = int(row["n_frames"])
                nums = [int(row[k]) for k in ("onset", "apex", "offset")]
            except (TypeError, ValueError):
                raise DataError(
                    f"{ann}, line {line}: n_frames/onset/apex/offset must be integers, got "
                    f"{[row.get(k) for k in ('n_frames', 'onset', 'apex', 'offset')]}. Fix the row or rebuild the set."
                ) from None
            if not 1 <= nums[0] <= nums[1] <= nums[2] <= n:
                raise DataError(
                    f"{ann}, line {line}: need 1 <= onset <= apex <= offset <= n_frames (frame numbers as this file "
                    f"writes them: img001 is frame 1), got onset={nums[0]} apex={nums[1]} offset={nums[2]} "
                    f"n_frames={n}. Fix the row, or rebuild the set with {rebuild}.")
            problem = sch.problem(row["emotion"])
            if problem:
                unreadable_row(f"{ann}, line {line}", "emotion", problem, lenient, unreadable)
                continue
            label = sch.label(row["emotion"])
            if label is None:
                dropped[row["emotion"]] = dropped.get(row["emotion"], 0) + 1
                continue
            clip = root / "frames" / row["subject"] / row["sample"]
            fmt = next((p.suffix[1:] for p in sorted(clip.glob("img001.*"))), "png")
            frames = [clip / _frame_name(i, fmt) for i in range(n)]
            absent = [p for p in frames if not p.is_file()]
            key = f"synthme/{row['subject']}/{row['sample']}"
            if absent:
                skipped.append((key, f"{len(absent)} missing frame(s), first {absent[0]}"))
                continue
            try:
                samples.append(Sample(
                    dataset="synthme", subject=row["subject"], sample_id=row["sample"], frames=tuple(frames),
                    onset=nums[0] - 1, apex=nums[1] - 1, offset=nums[2] - 1, emotion=row["emotion"], label=label,
                    label_index=sch.index(label), aus=row.get("aus", ""),
                    meta={"gt_flow": _gt_path(root, row["subject"], row["sample"]), "frame_numbers": nums,
                          **{k: row[k] for k in ("peak_px", "head_px", "blink", "photo") if k in row}},
                ))
            except ValueError as exc:
                raise DataError(f"{ann}, line {line}: {exc}") from None
    if skipped:
        warnings.warn(
            f"{len(skipped)} SynthME sample(s) skipped for missing frames: "
            + "; ".join(f"{k} ({why})" for k, why in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
            + f". Run {rebuild} to rebuild them.",
            stacklevel=2,
        )
    warn_unreadable(unreadable, f"SynthME {ann}")
    return SampleSet(samples, skipped, dropped, sch, unreadable=unreadable)


def load_gt_flow(sample: Sample) -> dict[str, np.ndarray]:
    """Ground truth of a SynthME sample: ``flow`` (H, W, 2) onset -> apex, ``face_mask``,
    ``landmarks_onset``, ``landmarks_apex``."""
    path = Path(sample.meta.get("gt_flow", ""))
    if not path.is_file():
        root = path.parent.parent.parent
        raise DataError(f"ground-truth flow {path} for {sample.key} is missing; delete the clip folder "
                        f"{root / 'frames' / sample.subject / sample.sample_id} and run `{rebuild_command(root)}`: it "
                        "renders only the missing clips.")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def load_frame(path: str | Path) -> np.ndarray:
    from ..face import load_image

    return load_image(path)


def tiny_synthme(root: str | Path | None = None, seed: int = 0, subjects: int = 2, scheme: str = "composite3") -> "SampleSet":
    """The small SynthME the chapters and quick runs use: the ``tiny`` preset (4 clips a subject)
    for ``subjects`` bank subjects, built once into ``root`` (default: the hmrm cache) and loaded.
    An existing build is reused; a build with another configuration is refused by :func:`build_synthme`."""
    from ..utils import cache_dir

    root = Path(root) if root else cache_dir(f"synthme_tiny_s{subjects}_seed{seed}")
    build_synthme(root, SynthConfig.preset("tiny", seed=seed), max_subjects=subjects, progress=False)
    return load_synthme(root, scheme)
