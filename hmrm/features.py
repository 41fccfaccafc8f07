"""From a :class:`~hmrm.data.records.Sample` to the network's input: flow maps and region boxes.

For every sample the network sees one picture of motion: the optical flow from the onset frame
to the apex frame of the aligned face, resized to ``size`` x ``size`` and turned into a few
channels. Alongside it come the four region boxes (:data:`hmrm.face.regions.REGION_NAMES`) in the
same input coordinates, which MotionMix (:mod:`hmrm.augment`) and the region fusion of the model
use.

Where the aligned faces come from
---------------------------------
* **SynthME** frames are already 256 px aligned faces; the onset landmarks are stored with the
  ground truth (``gt_flow/<subject>/<sample>.npz``, key ``landmarks_onset``).
* **Licensed sets** are aligned by ``hmrm prepare``, which stores ``onset.png``, ``apex.png`` and
  ``face.json`` (landmarks in crop pixels) per sample; pass its ``--out`` folder as ``prepared``.
  A prepared folder may be given for SynthME too; it then wins over the raw frames.

Choices (the paper gives none of them)
--------------------------------------
* **Flow at full resolution, then resized.** Flow is estimated on the 256 px crop, where the
  motion is 0.5-2 px, and then area-averaged down to ``size``. Displacements are multiplied by the
  resize factor (``size / 256``), so values stay in pixels *of the input*: a 1 px shift at 256 px
  is 0.4375 px at 112. Area averaging also averages out some of the estimator's noise.
* **Default size 112.** 112 = 7 x 16 = 14 x 8, so both patch sizes of the grained encoder divide
  it (7 x 7 coarse and 14 x 14 fine tokens); 128 would give 8 x 8 and 16 x 16, i.e. 31 % more fine
  tokens and scan steps for little more detail than the flow carries once area-averaged.
* **Default channels u, v, optical strain.** Horizontal and vertical displacement keep the
  direction of the motion, strain (:func:`hmrm.flow.optical_strain`) measures local deformation,
  which skin moved by a muscle shows and a rigid head motion does not. This triple is the usual
  input of flow-based micro-expression networks; ``mag`` (the flow magnitude) is available too.
  Derived channels are computed on the resized flow, so strain is that of the flow the network
  sees. No normalisation is applied here: values are pixels (and strain is unitless).
* **No head-motion removal.** The paper states that HMRM does not handle global head motion;
  we feed the flow as estimated, head motion included, like the paper.

The cache
---------
:class:`FlowCache` keeps one ``.npz`` per sample under ``<root>/<method>-s<size>-<channels>-v<N>/
<dataset>-<id of the source folder>/<subject>/<sample>.npz`` (GRU-AOFE's folder also names the
weights, ``gru_aofe-w<sha256[:8]>-...``) holding the input, the boxes, the
sample key and a sha256 of the source files (frames and landmark file). An entry is reused when key and digest match; otherwise
(changed frames, rebuilt SynthME, unreadable file) it is recomputed with a warning naming the
file. Entries are written atomically, so an interrupted :func:`build_flow_inputs` resumes where it
stopped and never leaves half a file. Every entry is computed with one thread
(:func:`hmrm.utils.single_threaded`): GRU-AOFE's convolutions give other last bits on two threads
than on one, and a cache must not depend on which process of how many filled it.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from .data.prepare import prepare_command, sample_dir
from .data.records import DataError, Sample
from .data.synthme import load_gt_flow, rebuild_command
from .face import load_image
from .face.regions import REGION_NAMES, region_boxes
from .flow import classic_flow, flow_features
from .flow.classic import METHODS as CLASSIC_METHODS
from .flow.pretrained import load_pretrained, weight_info
from .flow.stabilize import HEAD_MOTION, remove_head_motion
from .utils import atomic_path, cache_dir, single_threaded, worker_pool

#: Default side of the network input (see the module docstring).
DEFAULT_SIZE = 112
#: Default input channels.
DEFAULT_CHANNELS = ("u", "v", "strain")
#: Every channel :func:`flow_channels` can make.
CHANNELS = ("u", "v", "mag", "strain")
#: Resolution-aware variants for small faces: ``<method>_x2`` estimates on frames enlarged 2x (bicubic)
#: and shrinks the flow back (area mean, vectors halved), so that the method's fixed-size patches and
#: pyramid levels meet a face of the size they were tuned on.
UPSCALED = {f"{m}_x2": m for m in ("dis_tuned", "tvl1")}
#: Flow methods: the classical ones (:data:`hmrm.flow.classic.METHODS`), the shipped GRU-AOFE, SynthME's
#: exact ground truth, and the upscaled variants. The command line and the training configuration read
#: their choices from here.
METHODS = (*CLASSIC_METHODS, "gru_aofe", "gt", *UPSCALED)
#: Bumped whenever the way an entry is computed changes, so old cache entries are not reused.
FEATURES_VERSION = 2


# ----------------------------------------------------------------------------- the aligned pair
@dataclass
class AlignedPair:
    """What the input is computed from: the aligned onset and apex crops of one sample, its onset
    landmarks in crop pixels, and the files they came from (for error messages and the cache)."""

    sample: Sample
    onset: np.ndarray  # (H, W, 3) uint8
    apex: np.ndarray
    landmarks: np.ndarray  # (68, 2) float
    sources: tuple[Path, ...]  # onset, apex, landmark file
    gt_file: Path | None = None  # SynthME ground truth, when the crops are SynthME's own frames


def _read_image(path: Path, sample: Sample, fix: str) -> np.ndarray:
    try:
        return load_image(path)
    except (OSError, ValueError) as exc:  # FileNotFoundError is an OSError
        raise DataError(f"{sample.key}: cannot read frame {path} ({exc}). {fix}") from None


def _synthme_fix(sample: Sample) -> str:
    clip = Path(sample.onset_path).parent
    root = clip.parent.parent.parent
    return (f"Delete the folder {clip} and run `{rebuild_command(root)}` again: it renders only the "
            "clips that are missing.")


def source_files(sample: Sample, prepared: str | Path | None = None) -> tuple[Path, Path, Path]:
    """The files an input is computed from: onset crop, apex crop, landmark file (``face.json`` of a
    prepared sample, the ground-truth ``.npz`` of a SynthME sample). The cache hashes them."""
    if prepared is not None:
        folder = sample_dir(Path(prepared), sample)
        return folder / "onset.png", folder / "apex.png", folder / "face.json"
    if sample.dataset != "synthme" or not sample.meta.get("gt_flow"):
        raise DataError(
            f"{sample.key}: the frames of a {sample.dataset!r} sample are not aligned faces, so the flow input needs "
            f"the crops of `hmrm prepare`. Run `hmrm prepare --dataset {sample.dataset} --root <the data set's folder> "
            "--out data/prepared` and pass prepared='data/prepared' (the --out folder)."
        )
    return Path(sample.onset_path), Path(sample.apex_path), Path(sample.meta["gt_flow"])


def load_aligned_pair(sample: Sample, prepared: str | Path | None = None) -> AlignedPair:
    """The aligned onset / apex crops and onset landmarks of ``sample``.

    With ``prepared`` (the ``--out`` folder of ``hmrm prepare``) the prepared crops are used; without
    it only SynthME samples work, since their frames are aligned faces already."""
    onset_file, apex_file, info_file = sources = source_files(sample, prepared)
    if prepared is not None:
        command = prepare_command(prepared, sample.dataset)
        fix = (f"Delete the folder {info_file.parent} and run `{command}` again: it prepares only the samples that "
               "are missing.")
        if not info_file.is_file():
            raise DataError(f"{sample.key} is not prepared: {info_file} is missing. Run `{command}` first (it resumes).")
        try:
            landmarks = np.asarray(json.loads(info_file.read_text())["landmarks"], dtype=np.float64)
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{sample.key}: {info_file} is unreadable or has no 'landmarks' ({exc!r}). {fix}") from None
        gt_file = None
    else:
        fix = _synthme_fix(sample)
        gt = _load_gt(sample)
        if "landmarks_onset" not in gt:
            raise DataError(f"{sample.key}: {info_file} has no 'landmarks_onset'. {fix}")
        landmarks, gt_file = np.asarray(gt["landmarks_onset"], dtype=np.float64), info_file
    onset = _read_image(onset_file, sample, fix)
    apex = _read_image(apex_file, sample, fix)
    return AlignedPair(sample, onset, apex, landmarks, sources, gt_file)


def _load_gt(sample: Sample) -> dict[str, np.ndarray]:
    try:
        return load_gt_flow(sample)
    except DataError:
        raise
    except Exception as exc:  # a truncated or corrupt .npz
        raise DataError(f"{sample.key}: cannot read the ground truth {sample.meta.get('gt_flow')} ({exc!r}). "
                        f"{_synthme_fix(sample)}") from None


# ----------------------------------------------------------------------------- flow -> input
@lru_cache(maxsize=2)
def _gru_aofe(sha256: str):
    """The shipped GRU-AOFE whose weights have this sha256 (loaded once per process; weights replaced
    on disk, say after retraining, have another hash and are loaded afresh)."""
    return load_pretrained()


def _gru_aofe_sha() -> str:
    return weight_info("gru_aofe")["sha256"]


def estimate_flow(onset: np.ndarray, apex: np.ndarray, method: str) -> np.ndarray:
    """Flow onset -> apex as (H, W, 2) float32 pixels with a classical method, ``gru_aofe`` or an
    upscaled variant (:data:`UPSCALED`)."""
    if method in UPSCALED:
        import cv2

        h, w = onset.shape[:2]
        big = [cv2.resize(np.ascontiguousarray(im), (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC) for im in (onset, apex)]
        flow = estimate_flow(big[0], big[1], UPSCALED[method])
        return (cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA) / 2).astype(np.float32)
    if method == "gru_aofe":
        return _gru_aofe(_gru_aofe_sha()).estimate(onset, apex)

    return classic_flow(onset, apex, method)


def resize_flow(flow: np.ndarray, size: int) -> np.ndarray:
    """Resize a (H, W, 2) flow to (size, size, 2), scaling u by ``size / W`` and v by ``size / H``.

    Shrinking uses area averaging (each output pixel is the mean flow of the input pixels it
    covers); enlarging uses bilinear interpolation."""
    import cv2

    f = np.ascontiguousarray(flow, dtype=np.float32)
    h, w = f.shape[:2]
    if (h, w) != (size, size):
        interp = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_LINEAR
        f = cv2.resize(f, (size, size), interpolation=interp)
    return (f * np.array([size / w, size / h], dtype=np.float32)).astype(np.float32)


def flow_channels(flow: np.ndarray, channels: Sequence[str] = DEFAULT_CHANNELS) -> np.ndarray:
    """Stack the named channels of a (H, W, 2) flow into (C, H, W) float32 (see :data:`CHANNELS`)."""
    _check_channels(channels)
    named = dict(zip(CHANNELS, flow_features(flow)))  # u, v, mag, strain: the order of CHANNELS
    return np.stack([named[c] for c in channels], 0).astype(np.float32)


def _check_channels(channels: Sequence[str]) -> None:
    bad = [c for c in channels if c not in CHANNELS]
    if bad or not channels:
        raise ValueError(f"unknown channel(s) {bad or list(channels)}; choose from {', '.join(CHANNELS)}")


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown flow method {method!r}; choose one of {', '.join(METHODS)}")


def _scaled_boxes(landmarks: np.ndarray, frame_hw: tuple[int, int], size: int) -> np.ndarray:
    h, w = frame_hw
    lm = np.asarray(landmarks, dtype=np.float64) * np.array([size / w, size / h])
    boxes = region_boxes(lm, size)
    return np.array([boxes[name] for name in REGION_NAMES], dtype=np.int64)


def _input_from_pair(pair: AlignedPair, method: str, size: int, channels: Sequence[str],
                     head_motion: str = "keep") -> tuple[np.ndarray, np.ndarray]:
    if method == "gt":
        if pair.gt_file is None:
            raise DataError(f"{pair.sample.key}: method 'gt' needs SynthME's ground-truth flow; it exists only for "
                            "SynthME samples read from their own frames (prepared=None).")
        flow = _load_gt(pair.sample)["flow"]
    else:
        flow = estimate_flow(pair.onset, pair.apex, method)
    hw = pair.onset.shape[:2]
    if flow.shape[:2] != hw:
        raise DataError(f"{pair.sample.key}: flow of shape {flow.shape} does not match the frames {pair.onset.shape} "
                        f"({pair.sources[0]}).")
    if head_motion == "remove":
        flow = remove_head_motion(flow, pair.landmarks)
    x = flow_channels(resize_flow(flow, size), channels)
    return x, _scaled_boxes(pair.landmarks, hw, size)


def flow_input(sample: Sample, method: str = "dis_tuned", size: int = DEFAULT_SIZE,
               channels: Sequence[str] = DEFAULT_CHANNELS, prepared: str | Path | None = None) -> np.ndarray:
    """The network input of one sample: (C, size, size) float32, no cache (see :class:`FlowCache`).

    ``method``: one of :data:`METHODS` (``gt`` = SynthME's exact flow, for teaching and upper bounds).
    ``prepared``: the ``hmrm prepare`` folder; needed for every data set but SynthME."""
    _check_method(method)
    _check_channels(channels)
    return _input_from_pair(load_aligned_pair(sample, prepared), method, size, tuple(channels))[0]


def region_boxes_for(sample: Sample, size: int = DEFAULT_SIZE, prepared: str | Path | None = None) -> np.ndarray:
    """Region boxes of ``sample`` in input coordinates: int (R, 4) rows ``(x0, y0, x1, y1)``
    (x1, y1 exclusive) in the order of :data:`~hmrm.face.regions.REGION_NAMES`, from the onset
    landmarks scaled to ``size``."""
    pair = load_aligned_pair(sample, prepared)
    return _scaled_boxes(pair.landmarks, pair.onset.shape[:2], size)


# ----------------------------------------------------------------------------- the cache
def _digest(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
        h.update(b"\0")
    return h.hexdigest()


class FlowCache:
    """One cached network input per sample, keyed by method, size, channels and sample key.

    ``get(sample)`` returns ``(x, boxes)``, computing and writing the entry if it is missing,
    unreadable or made from other source files. ``computed`` / ``reused`` / ``repaired`` count what
    happened since the cache was made."""

    def __init__(self, root: str | Path | None = None, method: str = "dis_tuned", size: int = DEFAULT_SIZE,
                 channels: Sequence[str] = DEFAULT_CHANNELS, prepared: str | Path | None = None,
                 head_motion: str = "keep"):
        _check_method(method)
        _check_channels(channels)
        if head_motion not in HEAD_MOTION:
            raise ValueError(f"unknown head_motion {head_motion!r}; choose one of {', '.join(HEAD_MOTION)}")
        self.head_motion = head_motion
        self.root = Path(root) if root is not None else cache_dir("features")
        self.method, self.size, self.channels = method, int(size), tuple(channels)
        self.prepared = prepared
        self.computed = self.reused = self.repaired = 0

    @property
    def tag(self) -> str:
        """The cache folder of these settings; a learned method's names its weights (the first 8
        hex digits of their sha256), so retrained weights never reuse old entries."""
        weights = ""
        if self.method == "gru_aofe":
            weights = f"-w{weight_info('gru_aofe')['sha256'][:8]}"
        stab = "-headremoved" if self.head_motion == "remove" else ""
        return f"{self.method}{weights}{stab}-s{self.size}-{'+'.join(self.channels)}-v{FEATURES_VERSION}"

    def path(self, sample: Sample) -> Path:
        return self.root / self.tag / f"{sample.dataset}-{self._origin(sample)}" / sample.subject / f"{sample.sample_id}.npz"

    def _origin(self, sample: Sample) -> str:
        """A short id of the folder the sources come from, so that two builds with the same sample
        keys (say a tiny and a full SynthME) keep separate entries instead of overwriting each other."""
        if self.prepared is not None:
            where = Path(self.prepared)
        elif sample.meta.get("gt_flow"):
            where = Path(sample.meta["gt_flow"]).parent.parent.parent  # <root>/gt_flow/<subject>/<sample>.npz
        else:
            where = Path(sample.onset_path).parent
        return hashlib.sha256(str(where.resolve()).encode()).hexdigest()[:8]

    def _key(self, sample: Sample) -> str:
        return f"{self.tag}|{sample.key}"

    def _read(self, path: Path, key: str, digest: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The entry if it is valid for ``key`` and ``digest``; None if it must be (re)computed."""
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                x, boxes, got_key, got_digest = z["x"], z["boxes"], str(z["key"]), str(z["digest"])
        except Exception as exc:  # truncated zip, wrong format, missing array ...
            warnings.warn(f"cache entry {path} is unreadable ({type(exc).__name__}: {exc}); recomputing it.", stacklevel=3)
            self.repaired += 1
            return None
        shape = (len(self.channels), self.size, self.size)
        if got_key != key or x.shape != shape or x.dtype != np.float32 or boxes.shape != (len(REGION_NAMES), 4):
            warnings.warn(f"cache entry {path} does not hold {key} with shape {shape}; recomputing it.", stacklevel=3)
            self.repaired += 1
            return None
        if got_digest != digest:  # the frames or landmarks changed since: a stale entry
            self.repaired += 1
            return None
        return x, boxes

    def get(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        path, key = self.path(sample), self._key(sample)
        try:
            digest = _digest(source_files(sample, self.prepared))
        except (OSError, DataError):
            digest = None  # a source is missing: load_aligned_pair below says which and how to fix it
        if digest is not None:
            hit = self._read(path, key, digest)
            if hit is not None:
                self.reused += 1
                return hit
        pair = load_aligned_pair(sample, self.prepared)
        digest = _digest(pair.sources)
        with single_threaded():  # the same bytes whatever the threads and workers
            x, boxes = _input_from_pair(pair, self.method, self.size, self.channels, self.head_motion)
        with atomic_path(path) as part:
            with open(part, "wb") as f:
                np.savez(f, x=x, boxes=boxes, key=np.array(key), digest=np.array(digest))
        self.computed += 1
        return x, boxes


class FlowInputs(NamedTuple):
    """Network inputs of a list of samples, in the order of that list."""

    x: np.ndarray  # (N, C, S, S) float32
    boxes: np.ndarray  # (N, R, 4) int64, REGION_NAMES order
    labels: np.ndarray  # (N,) int64, the samples' label_index


def _fill_one(args) -> None:
    root, method, size, channels, prepared, head_motion, sample = args
    FlowCache(root, method, size, channels, prepared, head_motion).get(sample)


def _fill_in_parallel(samples: Sequence[Sample], cache: FlowCache, workers: int, progress: bool) -> None:
    """Compute the entries of ``cache`` that are missing with ``workers`` processes (spawned: safe with torch)."""
    from tqdm.auto import tqdm

    missing = [s for s in samples if not cache.path(s).is_file()]
    if len(missing) < 2:
        return
    jobs = [(cache.root, cache.method, cache.size, cache.channels, cache.prepared, cache.head_motion, s) for s in missing]
    with worker_pool(min(workers, len(missing))) as pool:
        for _ in tqdm(pool.map(_fill_one, jobs), total=len(jobs), desc=f"flow inputs ({cache.tag}, {workers} processes)",
                      unit="sample", disable=not progress):
            pass


def build_flow_inputs(samples: Sequence[Sample], method: str = "dis_tuned", size: int = DEFAULT_SIZE,
                      cache_dir: str | Path | None = None, channels: Sequence[str] = DEFAULT_CHANNELS,
                      prepared: str | Path | None = None, progress: bool = True, workers: int = 0,
                      head_motion: str = "keep") -> FlowInputs:
    """Inputs, boxes and labels of every sample, each computed once and cached on disk.

    ``cache_dir``: the cache root (default ``$HMRM_CACHE/features``). Rows follow ``samples``, so
    ``[s.group for s in samples]`` are the LOSO groups. A sample that cannot be read stops the run
    with a message naming the file; every entry computed before it stays in the cache.
    ``workers`` > 1: the missing entries are computed by that many processes first (worth it for
    slow methods such as TV-L1; the entries are the same). ``head_motion="remove"``: subtract the
    head's affine motion from every flow first (:mod:`hmrm.flow.stabilize`)."""
    from tqdm.auto import tqdm

    unlabelled = [s.key for s in samples if s.label_index is None]
    if unlabelled:
        raise DataError(f"{len(unlabelled)} sample(s) have no class index (first {unlabelled[0]}); load them with a class "
                        "scheme, e.g. load_synthme(root, scheme='composite3').")
    cache = FlowCache(cache_dir, method, size, channels, prepared, head_motion)
    if workers and workers > 1:
        _fill_in_parallel(samples, cache, workers, progress)
    n, c = len(samples), len(cache.channels)
    x = np.empty((n, c, cache.size, cache.size), dtype=np.float32)
    boxes = np.empty((n, len(REGION_NAMES), 4), dtype=np.int64)
    bar = tqdm(samples, desc=f"flow inputs ({cache.tag})", unit="sample", disable=not progress)
    for i, s in enumerate(bar):
        x[i], boxes[i] = cache.get(s)
        bar.set_postfix(computed=cache.computed, reused=cache.reused, refresh=False)
    labels = np.array([s.label_index for s in samples], dtype=np.int64)
    return FlowInputs(x, boxes, labels)
