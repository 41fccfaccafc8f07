"""What each clip will be (:class:`ClipSpec`: subject, emotion, action units, timing, intensity),
drawn from the seed alone, and the subjects' names."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import EMOTION_AUS, NEGATIVE, SynthConfig
from .faces import BankFace


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
    specs = []
    counts = class_counts(config.clips_per_subject, config.balance)
    for si, (person, pfaces) in enumerate(people_of(faces).items()):
        subject = subject_id(si)
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


def subject_id(index: int) -> str:
    """The name of the ``index``-th subject (0-based): ``sub01``, ``sub02`` ..."""
    return f"sub{index + 1:02d}"


def people_of(faces) -> dict[str, list]:
    """Bank faces (or photos) grouped by person, in the bank's order: one SynthME subject each."""
    people: dict[str, list] = {}
    for f in faces:
        people.setdefault(f.person, []).append(f)
    return people
