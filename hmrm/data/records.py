"""The sample record every data set loader returns, SynthME and the licensed sets alike."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Sample:
    """One micro-expression clip.

    ``frames`` is the ordered list of frame files; ``onset``, ``apex`` and ``offset`` are
    0-based indices into it (the data sets' own frame numbers stay in ``meta['frame_numbers']``
    where they differ). ``emotion`` is the raw annotation; ``label`` / ``label_index`` are its
    class under the scheme the loader was asked for.
    """

    dataset: str
    subject: str
    sample_id: str
    frames: tuple[Path, ...]
    onset: int
    apex: int
    offset: int
    emotion: str
    label: str | None = None
    label_index: int | None = None
    aus: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.frames = tuple(Path(f) for f in self.frames)
        n = len(self.frames)
        if not (0 <= self.onset <= self.apex <= self.offset < n):
            raise ValueError(
                f"{self.key}: need 0 <= onset <= apex <= offset < n_frames, got "
                f"onset={self.onset} apex={self.apex} offset={self.offset} n_frames={n}"
            )

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.subject}/{self.sample_id}"

    @property
    def group(self) -> str:
        """The LOSO group: one person. ``dataset/subject``, so that subjects of different data
        sets never merge in the composite set."""
        return f"{self.dataset}/{self.subject}"

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    @property
    def onset_path(self) -> Path:
        return self.frames[self.onset]

    @property
    def apex_path(self) -> Path:
        return self.frames[self.apex]


class DataError(RuntimeError):
    """Bad input: a missing root, a malformed annotation file, missing frames. Messages name the
    file and the fix."""


def unreadable_row(where: str, column: str, problem: str, lenient: bool, unreadable: list) -> None:
    """A row that cannot be read as written: an error naming file, line and column, or (``lenient``)
    a note in ``unreadable`` that the loader turns into one warning and the summary counts."""
    if not lenient:
        raise DataError(f"{where}, column {column!r}: {problem}. Fix the cell, or pass --lenient to skip such rows "
                        "with a warning.")
    unreadable.append((where, f"column {column!r}: {problem}"))


def warn_unreadable(unreadable: list, what: str) -> None:
    if unreadable:
        import warnings

        warnings.warn(f"{what}: {len(unreadable)} unreadable row(s) skipped (--lenient): "
                      + "; ".join(f"{w} ({why})" for w, why in unreadable[:3]) + (" ..." if len(unreadable) > 3 else ""),
                      stacklevel=3)


class SampleSet(list):
    """A list of :class:`Sample` that also remembers what the loader left out.

    ``skipped``: (sample key, reason) for rows whose frames are missing or unreadable.
    ``dropped``: raw emotion -> count of rows outside the chosen class scheme.
    ``fixes``: (sample key, what was changed, why / source) for annotation errors corrected on load.
    ``unreadable``: (file and line, why) for rows that cannot be read as written (an empty or unknown
    emotion) and were skipped because the loader was asked to be lenient; otherwise they are errors.
    """

    def __init__(self, samples=(), skipped=None, dropped=None, scheme=None, fixes=None, unreadable=None):
        super().__init__(samples)
        self.unreadable: list[tuple[str, str]] = list(unreadable or [])
        self.skipped: list[tuple[str, str]] = list(skipped or [])
        self.dropped: dict[str, int] = dict(dropped or {})
        self.scheme = scheme
        self.fixes: list[tuple[str, str, str]] = list(fixes or [])

    @property
    def groups(self) -> list[str]:
        """LOSO groups (``dataset/subject``), sorted."""
        return sorted({s.group for s in self})

    @property
    def subjects(self) -> list[str]:
        return sorted({s.subject for s in self})

    def class_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        if self.scheme is not None:
            counts = {c: 0 for c in self.scheme.classes}
        for s in self:
            counts[s.label] = counts.get(s.label, 0) + 1
        return counts

    def summary(self) -> str:
        parts = [f"{len(self)} samples, {len(self.groups)} subjects"]
        if self.scheme is not None:
            parts.append(", ".join(f"{k} {v}" for k, v in self.class_counts().items()))
        if self.dropped:
            parts.append(f"dropped outside scheme: {sum(self.dropped.values())} ({', '.join(f'{k} {v}' for k, v in sorted(self.dropped.items()))})")
        if self.fixes:
            parts.append(f"annotation fixes: {len(self.fixes)}")
        if self.skipped:
            parts.append(f"skipped (missing frames): {len(self.skipped)}")
        if self.unreadable:
            parts.append(f"UNREADABLE rows skipped (--lenient): {len(self.unreadable)}")
        return "; ".join(parts)
