"""The MEGC2019 composite set: 442 clips of 68 subjects from SMIC-HS, CASME II and SAMM, in three
classes (negative 250, positive 109, surprise 83).

The list of samples and their labels is shipped with the package
(``hmrm/data/resources/megc2019_composite.csv``, from the MEGC2019 challenge's composite
protocol). The clips themselves are read by the three parsers, so each data set's root is needed.
Subjects stay apart per data set (``Sample.group`` is ``dataset/subject``), so LOSO over the
composite set has 68 folds.
"""
from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

from .apex import ApexCache
from .casme2 import load_casme2
from .classes import COMPOSITE3
from .records import SampleSet
from .samm import load_samm
from .smic import load_smic

N_SAMPLES, N_SUBJECTS = 442, 68
CLASS_COUNTS = {"negative": 250, "positive": 109, "surprise": 83}


def composite_list() -> list[dict]:
    """The 442 rows ``dataset, subject, sample, label`` of the composite protocol."""
    text = resources.files("hmrm.data").joinpath("resources/megc2019_composite.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


def load_composite(casme2_root: str | Path, samm_root: str | Path, smic_root: str | Path,
                   apex_cache: ApexCache | None = None, estimate_apex: bool = True, casme2_frames: str = "auto") -> SampleSet:
    """The composite set as :class:`~hmrm.data.records.Sample` records labelled negative /
    positive / surprise. Listed samples that a data set does not provide are in ``.skipped``."""
    wanted = composite_list()
    # read every clip the parsers know, under a scheme that keeps all emotions (labels come from the list)
    everything = {
        "casme2": load_casme2(casme2_root, scheme=_ALL, frames=casme2_frames, apex_cache=apex_cache, estimate_apex=estimate_apex),
        "samm": load_samm(samm_root, scheme=_ALL, apex_cache=apex_cache, estimate_apex=estimate_apex),
        "smic": load_smic(smic_root, scheme=_ALL, apex_cache=apex_cache, estimate_apex=estimate_apex),
    }
    index = {(s.dataset, s.subject, s.sample_id): s for ss in everything.values() for s in ss}
    samples, skipped, fixes = [], [], []
    for ss in everything.values():
        fixes += ss.fixes
    skipped_keys = {k for ss in everything.values() for k, _ in ss.skipped}
    reasons = {k: why for ss in everything.values() for k, why in ss.skipped}
    for row in wanted:
        key = (row["dataset"], row["subject"], row["sample"])
        s = index.get(key)
        k = "/".join(key)
        if s is None:
            skipped.append((k, reasons.get(k, f"not in the {row['dataset']} annotations or folders") if k in skipped_keys
                            else f"not in the {row['dataset']} annotations or folders"))
            continue
        s.label = row["label"]
        s.label_index = COMPOSITE3.index(row["label"])
        s.meta["composite_label"] = row["label"]
        samples.append(s)
    if skipped:
        import warnings

        warnings.warn(f"composite: {len(skipped)} of {len(wanted)} listed samples missing, first: {skipped[0][0]} ({skipped[0][1]})", stacklevel=2)
    return SampleSet(samples, skipped, {}, COMPOSITE3, fixes)


def check_composite(samples: SampleSet) -> list[str]:
    """Differences between a loaded composite set and the protocol (empty when it matches)."""
    problems = []
    if len(samples) != N_SAMPLES:
        problems.append(f"{len(samples)} samples, the protocol has {N_SAMPLES}")
    if len(samples.groups) != N_SUBJECTS:
        problems.append(f"{len(samples.groups)} subjects, the protocol has {N_SUBJECTS}")
    if samples.class_counts() != CLASS_COUNTS:
        problems.append(f"class counts {samples.class_counts()}, the protocol has {CLASS_COUNTS}")
    return problems


class _AllEmotions:
    """A scheme that keeps every row (its label is the raw emotion); the composite list labels them."""

    name = "all"
    classes: tuple = ()

    def label(self, emotion: str) -> str:
        return emotion or "unknown"

    def problem(self, emotion) -> None:  # the MEGC2019 list labels the clips, not the sheets' emotion cells
        return None

    def index(self, label: str) -> int:
        return -1


_ALL = _AllEmotions()
