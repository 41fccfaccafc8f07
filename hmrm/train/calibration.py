"""How far to trust one prediction: temperature scaling fitted without the test subject, the
expected calibration error (ECE) before and after, a reliability diagram, and a low-confidence flag.

A network trained with cross-entropy on a hundred clips is usually *over-confident*: it says 0.95
where it is right two times in three. HMRM's paper reports no confidence at all. This module makes
the class probabilities of a LOSO run mean what they say, and measures whether they do.

**Temperature scaling** divides the logits by one number ``T`` before the softmax. ``T > 1`` softens
every prediction, ``T < 1`` sharpens it; the predicted class never changes, so UF1 and UAR are
untouched. ``T`` is the value that minimises the negative log-likelihood of labelled predictions
the model did not train on.

**Fitted on training folds only.** The clips of held-out subject *s* are scored with a temperature
``T_s`` fitted on the held-out predictions of the *other* subjects (each made by the fold that held
that subject out; cross-fitting). The labels of *s* are never looked at, so the calibrated
probabilities of *s* are as honest as its predictions. Fitting on the fold's own training clips
would not do: the network has nearly memorised them, its training predictions are far more
confident than its test predictions, and the fitted temperature would be far too low.

**Expected calibration error.** Sort the predictions into ``n_bins`` equal-width bins of their top
probability (the confidence); in each bin compare the mean confidence with the share that is
right; ECE is the clip-weighted mean absolute gap. 0 is perfect calibration. Its interval is a
bootstrap over held-out subjects, like every other score of this project (:mod:`hmrm.train.stats`).

**Low-confidence flag.** A prediction whose calibrated top probability is below ``threshold``
(default 0.5: less likely right than wrong) is flagged, for a person to review.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.records import DataError
from ..markdown import format_interval, markdown_table
from ..utils import atomic_write_text
from ..viz.plots import plot_reliability
from .folds import finished_folds, pooled
from .stats import CONFIDENCE, N_RESAMPLES, subject_interval

N_BINS = 10
LOW_CONFIDENCE = 0.5
#: The temperature is searched on this range (log scale); a value at either end is reported as such.
T_RANGE = (0.05, 20.0)
_EPS = 1e-12


def log_probs(probs) -> np.ndarray:
    """Logits (up to a per-row constant, which the softmax ignores) from stored probabilities."""
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), _EPS, None))


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def nll(probs, truth) -> float:
    """Mean negative log-likelihood of the true class."""
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(truth, dtype=np.int64)
    return float(-np.log(np.clip(p[np.arange(len(t)), t], _EPS, None)).mean())


def brier(probs, truth) -> float:
    """Mean squared distance between the probabilities and the one-hot truth (summed over classes)."""
    p = np.asarray(probs, dtype=np.float64)
    onehot = np.eye(p.shape[1])[np.asarray(truth, dtype=np.int64)]
    return float(((p - onehot) ** 2).sum(1).mean())


def _bin_sums(probs, truth, n_bins: int) -> np.ndarray:
    """(3, n_bins): clips, summed confidence and number right per confidence bin."""
    p = np.asarray(probs, dtype=np.float64)
    conf, right = p.max(1), (p.argmax(1) == np.asarray(truth)).astype(np.float64)
    b = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)
    return np.stack([np.bincount(b, minlength=n_bins).astype(np.float64),
                     np.bincount(b, conf, minlength=n_bins), np.bincount(b, right, minlength=n_bins)])


def _ece_of_sums(sums: np.ndarray) -> np.ndarray:
    """ECE from bin sums (..., 3, n_bins)."""
    return np.abs(sums[..., 1, :] - sums[..., 2, :]).sum(-1) / sums[..., 0, :].sum(-1)


def expected_calibration_error(probs, truth, n_bins: int = N_BINS) -> float:
    """Top-label ECE with ``n_bins`` equal-width confidence bins (see the module docstring)."""
    if len(truth) == 0:
        raise ValueError("ECE needs at least one prediction")
    return float(_ece_of_sums(_bin_sums(probs, truth, n_bins)))


def reliability(probs, truth, n_bins: int = N_BINS) -> dict[str, list]:
    """Per confidence bin: its edges, the number of clips, their mean confidence and accuracy
    (``None`` for empty bins); what a reliability diagram draws."""
    n, conf, right = _bin_sums(probs, truth, n_bins)
    edges = np.linspace(0, 1, n_bins + 1)
    mean = lambda s: [float(a / c) if c else None for a, c in zip(s, n)]  # noqa: E731
    return {"lower": edges[:-1].tolist(), "upper": edges[1:].tolist(), "count": n.astype(int).tolist(),
            "confidence": mean(conf), "accuracy": mean(right)}


def fit_temperature(logits, truth, bounds: tuple[float, float] = T_RANGE) -> float:
    """The temperature that minimises the NLL of ``truth`` under ``softmax(logits / T)``."""
    from scipy.optimize import minimize_scalar

    z, t = np.asarray(logits, dtype=np.float64), np.asarray(truth, dtype=np.int64)
    if len(t) == 0:
        raise ValueError("fitting a temperature needs at least one labelled prediction")

    def loss(log_t: float) -> float:
        zt = z / np.exp(log_t)
        zt = zt - zt.max(1, keepdims=True)
        return float((np.log(np.exp(zt).sum(1)) - zt[np.arange(len(t)), t]).mean())

    res = minimize_scalar(loss, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded",
                          options={"xatol": 1e-6})
    return float(np.exp(res.x))


def cross_fit_temperatures(logits, truth, groups: Sequence[str]) -> dict[str, float]:
    """One temperature per held-out subject, fitted on every other subject's predictions."""
    z, t, g = np.asarray(logits), np.asarray(truth), np.asarray(list(groups), dtype=object)
    subjects = sorted(set(g.tolist()))
    if len(subjects) < 2:
        raise ValueError("cross-fitted temperatures need the predictions of at least two held-out subjects")
    return {s: fit_temperature(z[g != s], t[g != s]) for s in subjects}


@dataclass
class Calibration:
    """Raw and calibrated probabilities of one run's pooled held-out predictions, and their scores."""
    keys: list[str]
    groups: list[str]
    truth: np.ndarray
    raw: np.ndarray
    calibrated: np.ndarray
    temperatures: dict[str, float]
    threshold: float
    n_bins: int

    @property
    def low_confidence(self) -> np.ndarray:
        return self.calibrated.max(1) < self.threshold

    def summary(self, n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict:
        """ECE, NLL and Brier score before and after, ECE's interval over subjects (each alone and
        the paired difference), the temperatures, and what the low-confidence flag catches."""
        subjects = sorted(set(self.groups))
        g = np.asarray(self.groups, dtype=object)
        per = {k: np.stack([_bin_sums(p[g == s], self.truth[g == s], self.n_bins) for s in subjects])
               for k, p in (("raw", self.raw), ("calibrated", self.calibrated))}

        def ece_stat(which):
            return lambda i, axis=-1: _ece_of_sums(per[which][np.moveaxis(i, axis, -1)].sum(-3))

        diff = lambda i, axis=-1: ece_stat("calibrated")(i, axis) - ece_stat("raw")(i, axis)  # noqa: E731
        # ECE is biased under resampling (a resample repeats subjects, and fewer distinct predictions per bin
        # mean larger gaps), so the percentile interval sits above the estimate; BCa corrects for that
        iv = lambda f: subject_interval(f, len(subjects), seed, n_resamples, CONFIDENCE, method="BCa")  # noqa: E731
        out: dict = {"what": "temperature scaling, one temperature per held-out subject fitted on the other "
                             "subjects' held-out predictions (the test subject's labels are never used)",
                     "n_bins": self.n_bins, "confidence": CONFIDENCE, "n_resamples": n_resamples,
                     "n_subjects": len(subjects),
                     "interval_method": "BCa bootstrap over held-out subjects (bias-corrected: ECE is biased under "
                                        "resampling); percentile where BCa cannot be computed"}
        for name, p in (("raw", self.raw), ("calibrated", self.calibrated)):
            out[name] = {"ece": expected_calibration_error(p, self.truth, self.n_bins), "ece_interval": iv(ece_stat(name)),
                         "nll": nll(p, self.truth), "brier": brier(p, self.truth),
                         "mean_confidence": float(p.max(1).mean()),
                         "reliability": reliability(p, self.truth, self.n_bins)}
        out["accuracy"] = float((self.raw.argmax(1) == self.truth).mean())
        out["ece_difference"] = {"difference": out["calibrated"]["ece"] - out["raw"]["ece"], "interval": iv(diff),
                                 "what": "calibrated minus raw, paired over the same resampled subjects"}
        t = np.array(list(self.temperatures.values()))
        out["temperature"] = {"median": float(np.median(t)), "min": float(t.min()), "max": float(t.max()),
                              "per_subject": self.temperatures}
        flag, right = self.low_confidence, self.calibrated.argmax(1) == self.truth
        out["low_confidence"] = {"threshold": self.threshold, "flagged": int(flag.sum()), "of": len(flag),
                                 "accuracy_flagged": float(right[flag].mean()) if flag.any() else None,
                                 "accuracy_unflagged": float(right[~flag].mean()) if (~flag).any() else None}
        return out


def calibrate(keys, truth, probs, groups, threshold: float = LOW_CONFIDENCE, n_bins: int = N_BINS) -> Calibration:
    """Calibrate pooled held-out predictions (``probs`` as the run stored them)."""
    raw = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.int64)
    if not (len(keys) == len(truth) == len(raw) == len(groups)):
        raise ValueError("keys, truth, probs and groups need one entry per prediction")
    z = log_probs(raw)
    temps = cross_fit_temperatures(z, truth, groups)
    t_row = np.array([temps[g] for g in groups])
    return Calibration(list(keys), list(groups), truth, raw, softmax(z / t_row[:, None]), temps, threshold, n_bins)


def calibrate_folds(folds: Sequence[dict], threshold: float = LOW_CONFIDENCE, n_bins: int = N_BINS) -> Calibration:
    """Calibrate the pooled held-out predictions of finished folds (their ``result.json`` records)."""
    p = pooled(folds)
    return calibrate(p.keys, p.truth, p.probs, p.groups, threshold, n_bins)


def read_run_probs(run_dir) -> tuple[list[str], list[int], list[list[float]], list[str], list[str]]:
    """``(keys, truth, probs, groups, classes)`` of a LOSO run folder's finished folds."""
    p = pooled(finished_folds(run_dir))
    return p.keys, p.truth, p.probs, p.groups, _classes(Path(run_dir), len(p.probs[0]))


def _classes(run_dir: Path, n: int) -> list[str]:
    """The class names in a run folder's ``config.json`` (``0``, ``1`` ... without one)."""
    config = Path(run_dir) / "config.json"
    classes = json.loads(config.read_text()).get("data", {}).get("classes") if config.exists() else None
    return classes or [str(i) for i in range(n)]


def calibrated_csv(cal: Calibration, classes: Sequence[str]) -> str:
    """The calibrated predictions file: raw and calibrated probabilities, temperature, flag."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", "subject", "true", "predicted", *[f"p_{c}" for c in classes],
                *[f"p_calibrated_{c}" for c in classes], "temperature", "confidence", "low_confidence"])
    for i, key in enumerate(cal.keys):
        p = cal.calibrated[i]
        w.writerow([key, cal.groups[i], classes[cal.truth[i]], classes[int(p.argmax())],
                    *[f"{v:.6f}" for v in cal.raw[i]], *[f"{v:.6f}" for v in p],
                    f"{cal.temperatures[cal.groups[i]]:.4f}", f"{p.max():.6f}", int(cal.low_confidence[i])])
    return buf.getvalue()


def calibrate_run(run_dir, threshold: float = LOW_CONFIDENCE, n_bins: int = N_BINS, figure: bool = True,
                  n_resamples: int = N_RESAMPLES) -> dict:
    """Calibrate a LOSO run folder: writes ``calibrated_predictions.csv``, ``calibration.json`` and
    (with ``figure``) ``reliability.png`` into it, atomically, and returns the summary."""
    run_dir = Path(run_dir)
    folds = finished_folds(run_dir)
    if len({r["subject"] for r in folds}) < 2:
        raise DataError(f"{run_dir} has {len(folds)} finished fold ({folds[0]['subject']}); calibration fits each "
                        "held-out subject's temperature on the other subjects' held-out predictions, so it needs at "
                        "least two finished folds. Finish the run first: run the command that made it again (its "
                        f"options are in {run_dir / 'config.json'}).")
    cal = calibrate_folds(folds, threshold, n_bins)
    classes = _classes(run_dir, len(cal.raw[0]))
    summary = cal.summary(n_resamples=n_resamples)
    atomic_write_text(run_dir / "calibrated_predictions.csv", calibrated_csv(cal, classes))
    atomic_write_text(run_dir / "calibration.json", json.dumps(summary, indent=2) + "\n")
    if figure:
        plot_reliability(summary, title=run_dir.name, out=run_dir / "reliability.png")
    return summary


def calibration_table(summaries: dict[str, dict]) -> str:
    """The before/after markdown table of several runs' summaries (name -> summary)."""
    rows = []
    for name, s in summaries.items():
        r, c, lc = s["raw"], s["calibrated"], s["low_confidence"]
        acc = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        rows.append([name, format_interval(r["ece"], r["ece_interval"], outward=True),
                     format_interval(c["ece"], c["ece_interval"], outward=True),
                     format_interval(s["ece_difference"]["difference"], s["ece_difference"]["interval"], signed=True,
                                     outward=True),
                     f"{r['nll']:.3f} -> {c['nll']:.3f}", f"{s['temperature']['median']:.2f}",
                     f"{lc['flagged']}/{lc['of']}", f"{acc(lc['accuracy_flagged'])} / {acc(lc['accuracy_unflagged'])}"])
    return markdown_table(["run", "ECE raw [95%]", "ECE calibrated [95%]", "ΔECE [95%, paired]", "NLL raw -> cal.",
                           "median T", "flagged", "accuracy flagged / not"], rows)
