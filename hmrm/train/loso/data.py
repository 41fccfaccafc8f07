"""The inputs of a LOSO run (:class:`LOSOData`: flow maps, region boxes, labels, subjects), their
fingerprint, and the leave-one-subject-out splits."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ...data.records import DataError, Sample
from ...features import DEFAULT_CHANNELS, DEFAULT_SIZE, build_flow_inputs


@dataclass
class LOSOData:
    """The inputs of a LOSO run, one row per sample: ``x`` (N, C, S, S) float32 flow maps,
    ``boxes`` (N, R, 4) region boxes, ``labels`` (N,) class indices, ``groups`` (the LOSO group,
    ``dataset/subject``), ``keys`` (sample keys), ``classes`` (class names), ``source`` (a free
    description: data set, scheme, flow method ...)."""

    x: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    groups: tuple[str, ...]
    keys: tuple[str, ...]
    classes: tuple[str, ...]
    source: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.x = np.ascontiguousarray(self.x, dtype=np.float32)
        self.boxes = np.ascontiguousarray(self.boxes, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.groups, self.keys, self.classes = tuple(self.groups), tuple(self.keys), tuple(self.classes)
        n = len(self.x)
        if not (len(self.boxes) == len(self.labels) == len(self.groups) == len(self.keys) == n):
            raise ValueError(f"x, boxes, labels, groups and keys must have one row per sample; got {n}, "
                             f"{len(self.boxes)}, {len(self.labels)}, {len(self.groups)}, {len(self.keys)}")
        if self.x.ndim != 4 or self.x.shape[-1] != self.x.shape[-2]:
            raise ValueError(f"x must be (N, C, S, S), got {self.x.shape}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in [0, {len(self.classes)}) for classes {self.classes}")
        if len(set(self.keys)) != n:
            raise ValueError("sample keys must be unique")

    @property
    def subjects(self) -> list[str]:
        """The LOSO groups, sorted: fold ``i`` holds out ``subjects[i]``."""
        return sorted(set(self.groups))

    def fingerprint(self) -> str:
        """sha256 of everything training reads: inputs, boxes, labels, groups, keys, classes."""
        h = hashlib.sha256()
        for arr in (self.x, self.boxes, self.labels):
            h.update(str(arr.shape).encode())
            h.update(arr.tobytes())
        h.update(json.dumps([self.groups, self.keys, self.classes]).encode())
        return h.hexdigest()

    def describe(self) -> dict:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {"fingerprint": self.fingerprint(), "n_samples": len(self.keys), "n_subjects": len(self.subjects),
                "classes": list(self.classes), "class_counts": {c: int(n) for c, n in zip(self.classes, counts)},
                "shape": list(self.x.shape[1:]), **self.source}

    @classmethod
    def from_samples(cls, samples: Sequence[Sample], flow: str = "dis_tuned", size: int = DEFAULT_SIZE,
                     channels: Sequence[str] = DEFAULT_CHANNELS, cache_dir: str | Path | None = None,
                     prepared: str | Path | None = None, classes: Sequence[str] | None = None,
                     progress: bool = True, workers: int = 0, head_motion: str = "keep") -> "LOSOData":
        """Flow inputs of ``samples`` (computed once and cached by :func:`hmrm.features.build_flow_inputs`,
        missing ones by ``workers`` processes when > 1). ``classes`` default to the scheme of a
        :class:`~hmrm.data.records.SampleSet`."""
        if len(samples) == 0:
            raise DataError("no samples to train on: the data set loaded empty (check --data-root and --scheme)")
        scheme = getattr(samples, "scheme", None)
        if classes is None:
            if scheme is not None:
                classes = scheme.classes
            else:
                names = {s.label_index: s.label for s in samples}
                classes = [names.get(i, str(i)) for i in range(max(names) + 1)]
        fi = build_flow_inputs(samples, method=flow, size=size, cache_dir=cache_dir, channels=channels,
                               prepared=prepared, progress=progress, workers=workers, head_motion=head_motion)
        datasets = sorted({s.dataset for s in samples})
        source = {"datasets": datasets, "scheme": getattr(scheme, "name", None), "flow": flow, "size": int(size),
                  "channels": list(channels), "head_motion": head_motion}
        return cls(fi.x, fi.boxes, fi.labels, [s.group for s in samples], [s.key for s in samples], classes, source)


def loso_splits(groups: Sequence[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(subject, train_idx, test_idx)`` for every subject in sorted order: test = that subject's
    rows, train = every other row."""
    g = np.asarray(list(groups), dtype=object)
    return [(s, np.flatnonzero(g != s), np.flatnonzero(g == s)) for s in sorted(set(g.tolist()))]
