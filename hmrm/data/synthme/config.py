"""How a SynthME build is configured (:class:`SynthConfig`, the presets, the generator version) and
the commands that make or remake one."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..records import DataError

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
    # the head moves several times more than the expression: for measuring head-motion compensation
    "head": {"head_px": (2.0, 5.0), "head_rot_px": 3.0, "head_scale": 0.01},
    # SMIC-HS-like: faces 136 px across instead of 256 (SMIC-HS's 150 x 190 px faces against CASME II's
    # 280 x 340), every motion in pixels scaled alike, and half the frames (100 fps against 200)
    "lowres": {"size": 136, "frames": (8, 12), "peak_px": (0.27, 1.06), "head_px": (0.16, 0.8), "head_rot_px": 0.32},
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


def read_manifest(root: str | Path) -> dict:
    """The ``manifest.json`` of a SynthME build, a JSON object; anything else (unreadable, not JSON,
    a list) is an error that names the file and the fix."""
    path = Path(root) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise DataError(f"{path} is not valid JSON ({exc}): the build's record is damaged. Delete {root} and build "
                        f"it again ({synthme_command(root)}).") from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path} is not a SynthME manifest (a JSON object is expected, it holds a "
                        f"{type(manifest).__name__}). Delete {root} and build it again ({synthme_command(root)}).")
    return manifest


def rebuild_command(root: str | Path) -> str:
    """The command that (re)builds the SynthME in ``root`` with the settings its manifest records
    (the default build's command when there is no usable manifest)."""
    try:
        manifest = read_manifest(root)
        subjects = manifest["max_subjects"] if "max_subjects" in manifest else manifest.get("n_subjects")
        return synthme_command(root, manifest["config"], subjects)
    except (OSError, KeyError, TypeError, DataError):
        return synthme_command(root)


def setting_differences(old: dict, new: dict) -> list[str]:
    old_cfg, new_cfg = old.get("config") or {}, new["config"]
    out = [f"{k} {old_cfg.get(k)!r} there, {new_cfg[k]!r} here" for k in new_cfg if old_cfg.get(k) != new_cfg[k]]
    if old.get("generator") != new["generator"]:
        out.append(f"generator version {old.get('generator')!r} there, {new['generator']!r} here")
    if old.get("photos") != new["photos"]:
        out.append(f"{len(old.get('photos') or [])} bank photos there, {len(new['photos'])} here (--subjects)")
    return out
