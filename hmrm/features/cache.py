"""The flow-input cache: one ``.npz`` per sample, reused while its sources are unchanged, written
atomically, filled by worker processes when asked (see :mod:`hmrm.features`)."""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..data.records import DataError, Sample
from ..face.regions import REGION_NAMES
from ..flow.pretrained import weight_info
from ..flow.stabilize import HEAD_MOTION
from ..utils import atomic_path, cache_dir, single_threaded, worker_pool
from .inputs import DEFAULT_CHANNELS, DEFAULT_SIZE, check_channels, check_method, input_from_pair
from .pairs import load_aligned_pair, source_files

#: Bumped whenever the way an entry is computed changes, so old cache entries are not reused.
FEATURES_VERSION = 2


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
        check_method(method)
        check_channels(channels)
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
            x, boxes = input_from_pair(pair, self.method, self.size, self.channels, self.head_motion)
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
