"""The scores of a LOSO run: the finished folds' predictions pooled into ``metrics.json`` (honest
final-epoch UF1 / UAR with the interval over subjects, and the labelled best-epoch-on-test figure),
``predictions.csv``, the figures, the table the CLI prints, and a run folder read back."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ...data.records import DataError
from ...utils import atomic_write_text
from ...viz.plots import plot_confusion, plot_training
from .. import metrics as M
from ..calibration import calibrate_folds
from ..folds import pooled
from ..stats import bootstrap_scores
from .config import LOSOConfig
from .data import LOSOData

BEST_EPOCH_NOTE = ("OPTIMISTIC, NOT A RESULT: for each held-out subject the epoch with the highest accuracy on that "
                   "same subject, as some repositories report. It selects on the test data; the honest figure is "
                   "the final epoch's.")


def _best_epoch(curve: list[list[int]], truth: list[int]) -> tuple[int, list[int]] | None:
    """Epoch (1-based, earliest on ties) with the highest accuracy on the held-out subject."""
    if not curve:
        return None
    t = np.asarray(truth)
    accs = [float((np.asarray(p) == t).mean()) for p in curve]
    best = int(np.argmax(accs))
    return best + 1, curve[best]


def aggregate(results: Sequence[dict], classes: Sequence[str], n_subjects: int, epochs: int) -> dict:
    """metrics.json from the finished folds' results (see the module docstring)."""
    results = sorted(results, key=lambda r: r["subject"])
    p = pooled(results)
    truth, pred, groups = p.truth, p.pred, p.groups
    done = len(results)
    out: dict = {"complete": done == n_subjects, "folds_done": done, "folds_total": n_subjects,
                 "subjects_done": [r["subject"] for r in results], "classes": list(classes), "epochs": epochs}
    if done < n_subjects:
        out["partial_note"] = (f"PARTIAL: {done} of {n_subjects} subjects held out; the scores below pool only these "
                               "folds and are not a full LOSO result.")
    if not results:
        return out
    ev = M.evaluate(truth, pred, classes, groups)
    per_fold = ev.pop("per_fold")
    out["honest"] = {"what": f"predictions of the final epoch ({epochs}) of every fold, pooled (MEGC UF1 / UAR)", **ev}
    if done >= 2:  # how far the score could move with other subjects (hmrm.train.stats)

        out["honest"]["interval"] = bootstrap_scores(truth, pred, groups, len(classes))
    best = {r["subject"]: _best_epoch(r.get("test_curve") or [], r["true"]) for r in results}
    for f in per_fold:
        b = best[f["subject"]]
        f["best_epoch_on_test"] = b[0] if b else None
    out["per_fold"] = per_fold
    out["per_fold_mean"] = {"what": "plain mean of the per-fold scores: a diagnostic, not the MEGC definition",
                            **out["honest"].pop("per_fold_mean")}
    if all(b is not None for b in best.values()):
        bpred = [p for r in results for p in best[r["subject"]][1]]
        s = M.evaluate(truth, bpred, classes)
        out["best_epoch_on_test"] = {"warning": BEST_EPOCH_NOTE, "uf1": s["uf1"], "uar": s["uar"],
                                     "accuracy": s["accuracy"], "confusion": s["confusion"],
                                     "epoch_per_subject": {k: v[0] for k, v in best.items()}}
        n_ep, k = min(len(r["test_curve"]) for r in results), len(classes)
        curve = {"uf1": [], "uar": []}
        t = np.asarray(truth)
        for e in range(n_ep):  # NumPy from the confusion matrix: sklearn per epoch is slow for 1000 epochs
            pe = np.asarray([p for r in results for p in r["test_curve"][e]])
            s = M.scores_from_confusion(np.bincount(t * k + pe, minlength=k * k).reshape(k, k))
            curve["uf1"].append(s["uf1"])
            curve["uar"].append(s["uar"])
        out["test_curve_diagnostic"] = {"warning": "pooled held-out scores at every epoch; for plots only, never for "
                                        "choosing an epoch", **curve}
    else:
        out["best_epoch_on_test"] = None
    return out


def _calibration(results: Sequence[dict]):
    """Temperature scaling of the pooled predictions (:mod:`hmrm.train.calibration`), or None while
    fewer than two subjects are done (a temperature is fitted on the other subjects)."""
    if len(results) < 2:
        return None

    return calibrate_folds(results)


def _predictions_csv(results: Sequence[dict], classes: Sequence[str], cal=None) -> str:
    """One row per held-out clip; with ``cal``, its calibrated confidence and low-confidence flag."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", "subject", "fold", "true", "predicted", "true_index", "predicted_index",
                *[f"p_{c}" for c in classes], "calibrated_confidence", "low_confidence"])
    i = 0
    for r in sorted(results, key=lambda r: r["subject"]):
        for key, t, p, pr in zip(r["keys"], r["true"], r["pred"], r["probs"]):
            extra = [f"{cal.calibrated[i].max():.6f}", int(cal.low_confidence[i])] if cal is not None else ["", ""]
            w.writerow([key, r["subject"], r["fold"], classes[t], classes[p], t, p, *[f"{v:.6f}" for v in pr], *extra])
            i += 1
    return buf.getvalue()


def write_outputs(run_dir: Path, results: list[dict], data: LOSOData, config: LOSOConfig, figures: bool) -> dict:
    """Write metrics.json and predictions.csv (and the figures, with ``figures``) for the folds done so far."""
    metrics = aggregate(results, data.classes, len(data.subjects), config.epochs)
    cal = _calibration(results)
    if cal is not None:
        s = cal.summary(n_resamples=2_000)
        metrics["calibration"] = {"what": s["what"], "see": "hmrm calibrate RUN_DIR (reliability diagram, full table)",
                                  **{k: {m: s[k][m] for m in ("ece", "ece_interval", "nll", "brier")}
                                     for k in ("raw", "calibrated")},
                                  "temperature_median": s["temperature"]["median"], "low_confidence": s["low_confidence"]}
    atomic_write_text(run_dir / "predictions.csv", _predictions_csv(results, data.classes, cal))
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if figures and results:
        h = metrics["honest"]
        name = config.model + (f" ({config.ablation})" if config.ablation else "")
        scope = "" if metrics["complete"] else f", PARTIAL {metrics['folds_done']}/{metrics['folds_total']} subjects"
        title = f"{name}, flow {config.flow}, epoch {config.epochs}: UF1 {h['uf1']:.3f}, UAR {h['uar']:.3f}{scope}"
        plot_confusion(h["confusion"], data.classes, title, run_dir / "confusion.png")
        curve = metrics.get("test_curve_diagnostic")
        plot_training({r["subject"]: [e["loss"] for e in r["history"]] for r in results},
                      {k: curve[k] for k in ("uf1", "uar")} if curve else None, h["uf1"], title,
                      run_dir / "training.png")
    return metrics


@dataclass
class LOSOResult:
    """What :func:`run_loso` returns: ``metrics`` (the content of metrics.json), ``finished`` (every
    fold asked for is done; False after a stop), ``complete`` (every subject of the data is done: a
    full LOSO), ``run_dir``."""

    run_dir: Path
    metrics: dict
    finished: bool

    @property
    def complete(self) -> bool:
        return bool(self.metrics.get("complete"))

    def table(self) -> str:
        return format_metrics(self.metrics)


def format_metrics(metrics: dict) -> str:
    """The metrics table the CLI prints: honest pooled scores, the labelled best-epoch-on-test
    figure, and one line per fold."""
    lines = []
    if not metrics.get("folds_done"):
        return "no fold finished yet"
    if not metrics["complete"]:
        lines.append(metrics["partial_note"])
    h = metrics["honest"]
    lines += [f"{'':48s} {'UF1':>7s} {'UAR':>7s} {'acc':>7s} {'n':>5s}",
              f"{'honest: final epoch, pooled over folds':48s} {h['uf1']:7.4f} {h['uar']:7.4f} {h['accuracy']:7.4f} {h['n']:5d}"]
    ci = h.get("interval")
    if ci:
        lines.append(f"{'  95% interval over subjects (bootstrap)':48s} [{ci['uf1'][0]:.2f}, {ci['uf1'][1]:.2f}] "
                     f"[{ci['uar'][0]:.2f}, {ci['uar'][1]:.2f}]")
    b = metrics.get("best_epoch_on_test")
    if b:
        lines.append(f"{'best epoch on test (optimistic, NOT a result)':48s} {b['uf1']:7.4f} {b['uar']:7.4f} "
                     f"{b['accuracy']:7.4f} {h['n']:5d}")
    pm = metrics["per_fold_mean"]
    lines.append(f"{'mean of per-fold scores (not MEGC)':48s} {pm['uf1']:7.4f} {pm['uar']:7.4f} {pm['accuracy']:7.4f}")
    c = metrics.get("calibration")
    if c:
        lc = c["low_confidence"]
        lines.append(f"calibration: ECE {c['raw']['ece']:.3f} raw, {c['calibrated']['ece']:.3f} after temperature "
                     f"scaling (median T {c['temperature_median']:.2f}, fitted without the test subject); "
                     f"{lc['flagged']}/{lc['of']} predictions flagged low-confidence (< {lc['threshold']})")
    lines.append("")
    lines.append("confusion (rows true, columns predicted): " + ", ".join(h["classes"]))
    for name, row in zip(h["classes"], h["confusion"]):
        lines.append(f"  {name:>12s} " + " ".join(f"{v:5d}" for v in row))
    lines.append("")
    lines.append(f"{'subject':24s} {'n':>4s} {'acc':>7s} {'UF1':>7s} {'UAR':>7s}  best epoch on test")
    for f in metrics["per_fold"]:
        be = f["best_epoch_on_test"]
        lines.append(f"{f['subject']:24s} {f['n']:4d} {f['accuracy']:7.4f} {f['uf1']:7.4f} {f['uar']:7.4f}  "
                     + ("-" if be is None else str(be)))
    if b:
        lines.append("")
        lines.append("best epoch on test: " + b["warning"])
    return "\n".join(lines)


def read_run(run_dir: str | Path) -> LOSOResult:
    """The scores of a run folder as written (no training)."""
    run_dir = Path(run_dir)
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise DataError(f"{path} is missing: {run_dir} is not a LOSO run folder, or no fold has finished yet.")
    metrics = json.loads(path.read_text())
    return LOSOResult(run_dir, metrics, metrics.get("complete", False))
