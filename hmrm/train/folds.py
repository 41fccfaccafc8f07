"""What a LOSO run folder holds, fold by fold, read back: a leaf that every engine, the report,
calibration, the statistics and the explanations share::

    <run folder>/config.json                 what the run is (hmrm.train.loso.run_folder)
    <run folder>/folds/<fold>/checkpoint.pt  the fold's last checkpoint (the final weights once it is done)
    <run folder>/folds/<fold>/result.json    a finished fold: its held-out predictions (keys, true, pred,
                                             probs), the subject, and how it ran

``<fold>`` is the held-out subject with ``/`` replaced (:func:`fold_dirname`). :func:`pooled` puts the
finished folds' predictions side by side in subject order, which is how every score is computed (MEGC:
predictions pooled over all folds, never averaged fold by fold).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..data.records import DataError


def fold_dirname(subject: str) -> str:
    """Folder name of a fold: the group with ``/`` replaced (``synthme/sub01`` -> ``synthme-sub01``)."""
    return subject.replace("/", "-").replace("\\", "-")


def fold_dir(run_dir: str | Path, subject: str) -> Path:
    """The folder of ``subject``'s fold in a run folder."""
    return Path(run_dir) / "folds" / fold_dirname(subject)


def read_fold_result(path: Path) -> dict | None:
    """A finished fold's ``result.json``; None when it is missing or unreadable (the fold is trained again)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        warnings.warn(f"{path} is unreadable; that fold is trained again.", stacklevel=3)
        return None


def finished_folds(run_dir) -> list[dict]:
    """The ``result.json`` of every finished fold of a run folder, in subject order; an error naming
    the folder when none has finished."""
    run_dir = Path(run_dir)
    results = [json.loads(p.read_text()) for p in sorted((run_dir / "folds").glob("*/result.json"))]
    if not results:
        raise DataError(f"{run_dir} has no finished fold (no {run_dir / 'folds'}/*/result.json): give a folder that a "
                        "LOSO run wrote (the --run-dir of hmrm loso, or runs/demo/<run> after make demo)")
    return sorted(results, key=lambda r: r["subject"])


@dataclass(frozen=True)
class Pooled:
    """The held-out predictions of several folds, clip by clip in subject order: the clip ``keys``,
    the ``truth`` and predicted class indices (``pred``), the class probabilities (``probs``) and
    each clip's subject (``groups``). Records without ``pred`` or ``probs`` (made by hand, for
    calibration alone) leave that list empty."""

    keys: list[str]
    truth: list[int]
    pred: list[int]
    probs: list[list[float]]
    groups: list[str]


def pooled(folds: Sequence[dict]) -> Pooled:
    """The predictions of finished folds (their ``result.json`` records) pooled, in subject order."""
    folds = sorted(folds, key=lambda r: r["subject"])
    return Pooled([k for r in folds for k in r["keys"]], [t for r in folds for t in r["true"]],
                  [p for r in folds for p in r.get("pred", [])], [p for r in folds for p in r.get("probs", [])],
                  [r["subject"] for r in folds for _ in r["true"]])
