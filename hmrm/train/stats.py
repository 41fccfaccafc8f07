"""How sure is a LOSO score? Bootstrap intervals over held-out subjects, alone and paired.

A LOSO run on SynthME scores 160 clips of 10 subjects. Had other subjects been recorded, the score
would differ, and by more than the clip count suggests: clips of one subject share a face, a
head-motion style and an intensity, so they succeed or fail together. The unit that was sampled
is the subject, so the bootstrap resamples **subjects**, not clips:

1. per held-out subject, the confusion matrix of its predictions (the final epoch's, as scored);
2. draw 10 subjects with replacement, add their confusion matrices, compute UF1 and UAR of that
   pool exactly as :mod:`hmrm.train.metrics` does (the MEGC definition);
3. repeat ``n_resamples`` times; the 2.5th and 97.5th percentiles are the 95 % interval.

**Paired differences.** Two rows of one table (say HMRM and STSTNet) were scored on the same
subjects. Their difference is resampled with the *same* draw of subjects for both, so that
what the subjects share (an easy face, a hard one) cancels: the interval of a difference is much
narrower than the two single intervals suggest. A difference whose interval excludes 0 is one
the data support; one whose interval contains 0 is not shown to be real, whatever its size.

How to read an interval: with 10 subjects it is wide (often +-0.1 UF1), and it describes the
spread over *subjects like these*; it says nothing about other data sets, and it does not cover
the randomness of training (weights, shuffles), which several seeds measure
(:func:`hmrm.train.loso.run_loso_seeds`). The resampling itself is
:func:`scipy.stats.bootstrap` (percentile method) with a fixed seed, so the same predictions
always give the same interval.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .folds import finished_folds, pooled

#: Resamples per interval: enough that the interval's ends move by less than 0.005 between seeds.
N_RESAMPLES = 10_000
CONFIDENCE = 0.95
METHOD = "bootstrap over held-out subjects (percentile, scipy.stats.bootstrap)"


def subject_confusions(truth: Sequence[int], pred: Sequence[int], groups: Sequence[str],
                       n_classes: int) -> tuple[list[str], np.ndarray]:
    """Sorted subjects and their confusion matrices, (S, K, K) counts (rows true, columns predicted)."""
    t, p = np.asarray(truth, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    g = np.asarray(list(groups), dtype=object)
    if not (len(t) == len(p) == len(g)) or len(t) == 0:
        raise ValueError(f"truth, pred and groups need one entry per prediction, got {len(t)}, {len(p)}, {len(g)}")
    subjects = sorted(set(g.tolist()))
    cms = np.zeros((len(subjects), n_classes, n_classes), dtype=np.int64)
    for i, s in enumerate(subjects):
        m = g == s
        np.add.at(cms[i], (t[m], p[m]), 1)
    return subjects, cms


def scores_of_confusions(cms: np.ndarray) -> dict[str, np.ndarray]:
    """UF1 and UAR of a stack of confusion matrices (..., K, K), by the rules of
    :func:`hmrm.train.metrics.scores_from_confusion` (classes absent from truth and predictions
    are left out of UF1, classes absent from the truth out of UAR)."""
    cms = np.asarray(cms, dtype=np.float64)
    tp = np.diagonal(cms, axis1=-2, axis2=-1)
    true_n, pred_n = cms.sum(-1), cms.sum(-2)
    in_f1, in_rec = (true_n + pred_n) > 0, true_n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(in_f1, 2 * tp / np.where(in_f1, true_n + pred_n, 1), 0.0)
        rec = np.where(in_rec, tp / np.where(in_rec, true_n, 1), 0.0)
    return {"uf1": f1.sum(-1) / in_f1.sum(-1), "uar": rec.sum(-1) / in_rec.sum(-1)}


def subject_interval(statistic, n_subjects: int, seed: int, n_resamples: int, confidence: float,
                     method: str = "percentile") -> list[float]:
    """The bootstrap interval of ``statistic(idx, axis)``, a vectorised function of resampled subject
    indices (``idx`` draws ``n_subjects`` of ``0..n_subjects-1`` with replacement). ``method``:
    ``"percentile"``, or ``"BCa"`` (bias-corrected and accelerated) for a statistic that resampling
    biases, such as the ECE; where BCa cannot be computed (a degenerate resample distribution) the
    percentile interval is returned."""
    import warnings

    from scipy.stats import bootstrap

    def interval(how: str) -> list[float]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # BCa's "cannot be calculated" on degenerate resamples: handled below
            res = bootstrap((np.arange(n_subjects),), statistic, n_resamples=n_resamples, confidence_level=confidence,
                            method=how, vectorized=True, random_state=np.random.default_rng(seed))
        return [float(res.confidence_interval.low), float(res.confidence_interval.high)]

    out = interval(method)
    if method != "percentile" and not np.all(np.isfinite(out)):
        out = interval("percentile")
    return out


def ratio_interval(sums: np.ndarray, counts: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = 0,
                   confidence: float = CONFIDENCE) -> list[float]:
    """The bootstrap interval over subjects of ``sum(sums) / sum(counts)``, from per-subject arrays
    (say the summed error of each subject's pairs and their number): a mean over items whose
    subjects, not the items, were sampled. NaN with fewer than two subjects (no spread to resample)."""
    sums, counts = np.asarray(sums, dtype=np.float64), np.asarray(counts, dtype=np.float64)
    if len(sums) < 2:
        return [float("nan"), float("nan")]

    def stat(i, axis=-1):
        i = np.moveaxis(i, axis, -1)
        return sums[i].sum(-1) / counts[i].sum(-1)

    return subject_interval(stat, len(sums), seed, n_resamples, confidence)


def bootstrap_scores(truth: Sequence[int], pred: Sequence[int], groups: Sequence[str], n_classes: int,
                     n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0) -> dict:
    """The interval of UF1 and UAR over held-out subjects: ``{"uf1": [low, high], "uar": [low,
    high], "confidence", "n_subjects", "n_resamples", "method"}`` (see the module docstring)."""
    subjects, cms = subject_confusions(truth, pred, groups, n_classes)
    out = {"confidence": confidence, "n_subjects": len(subjects), "n_resamples": n_resamples, "method": METHOD}
    for key in ("uf1", "uar"):
        def statistic(idx, axis=-1, key=key):
            return scores_of_confusions(cms[np.moveaxis(idx, axis, -1)].sum(-3))[key]

        out[key] = subject_interval(statistic, len(subjects), seed, n_resamples, confidence)
    return out


def paired_difference(a: tuple, b: tuple, n_classes: int, n_resamples: int = N_RESAMPLES,
                      confidence: float = CONFIDENCE, seed: int = 0) -> dict:
    """Score of ``a`` minus score of ``b`` with its paired interval over held-out subjects.

    ``a`` and ``b`` are ``(keys, truth, pred, groups)`` of two runs on the same samples (the order
    may differ). Returns ``{"uf1": {"difference", "interval"}, "uar": {...}, "confidence",
    "n_subjects", "n_resamples", "method"}``."""
    ka, kb = list(a[0]), list(b[0])
    if sorted(ka) != sorted(kb):
        raise ValueError("a paired difference needs both runs to predict the same samples; the sample keys differ")
    order = {k: i for i, k in enumerate(kb)}
    idx = np.array([order[k] for k in ka])
    tb, pb, gb = (np.asarray(list(v), dtype=object)[idx] for v in b[1:])
    if list(tb) != list(a[1]) or list(gb) != list(a[3]):
        raise ValueError("a paired difference needs both runs to have the same labels and subjects for every sample")
    subjects, ca = subject_confusions(a[1], a[2], a[3], n_classes)
    _, cb = subject_confusions(tb.astype(np.int64), pb.astype(np.int64), gb, n_classes)
    full_a, full_b = scores_of_confusions(ca.sum(0)), scores_of_confusions(cb.sum(0))
    out = {"confidence": confidence, "n_subjects": len(subjects), "n_resamples": n_resamples,
           "method": "paired " + METHOD}
    for key in ("uf1", "uar"):
        def statistic(i, axis=-1, key=key):
            i = np.moveaxis(i, axis, -1)
            return scores_of_confusions(ca[i].sum(-3))[key] - scores_of_confusions(cb[i].sum(-3))[key]

        out[key] = {"difference": float(full_a[key] - full_b[key]),
                    "interval": subject_interval(statistic, len(subjects), seed, n_resamples, confidence)}
    return out


def run_predictions(run_dir) -> tuple[list[str], list[int], list[int], list[str]]:
    """``(keys, truth, pred, groups)`` of a LOSO run folder's finished folds (the honest, final-epoch
    predictions), for :func:`paired_difference`."""
    p = pooled(finished_folds(run_dir))
    return p.keys, p.truth, p.pred, p.groups
