"""Scores of a LOSO run: UF1, UAR, accuracy and the confusion matrix, pooled over all folds.

Micro-expression papers report two class-balanced scores, because the data sets are small and
imbalanced (the MEGC2019 composite set is 57 / 25 / 19 % negative / positive / surprise, so always
answering "negative" is 57 % accurate):

* **UF1** (unweighted F1, macro F1): the mean over classes of ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)``;
* **UAR** (unweighted average recall, balanced accuracy): the mean over classes of
  ``recall_c = TP_c / (TP_c + FN_c)``.

**Pooled, as MEGC defines them.** The predictions of every held-out subject are gathered first,
and the scores are computed once on that pool. A held-out subject usually shows only one or two
classes, so per-fold scores are noisy and depend on how missing classes are treated; their mean
is a different number from the pooled one. :func:`evaluate` reports per-fold figures beside the
pooled ones, for diagnosis, and labels their mean as such.

**Classes absent from the truth or the predictions** (in a pool this only happens on partial
runs, in a single fold it is the rule):

* a class that occurs in neither the truth nor the predictions has ``F1 = 0/0`` and no recall;
  it is left out of both means (it says nothing about the classifier);
* a class that is predicted but never true has ``F1 = 0`` (every prediction of it is a false
  positive) and counts in UF1; it has no recall and is left out of UAR (its false positives
  already lower the recall of the true classes);
* a class that is true but never predicted has ``F1 = 0`` and ``recall = 0``; it counts in both.

So UF1 averages over the classes present in the truth *or* the predictions, UAR over those present
in the truth. On a full LOSO every class occurs in the truth, and both are plain means over all
classes. The scores are computed with scikit-learn (``f1_score`` / ``recall_score`` with
``average="macro"`` and the class lists above); :func:`scores_from_confusion` recomputes them from a
confusion matrix with plain NumPy, as an independent check the tests use.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def _as_labels(y) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"labels must be a 1-D sequence of class indices, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise ValueError("labels must be integer class indices")
        a = a.astype(np.int64)
    return a.astype(np.int64)


def _pair(y_true, y_pred, n_classes: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    t, p = _as_labels(y_true), _as_labels(y_pred)
    if len(t) != len(p):
        raise ValueError(f"y_true and y_pred differ in length: {len(t)} and {len(p)}")
    if len(t) == 0:
        raise ValueError("no predictions to score")
    k = int(max(t.max(), p.max()) + 1) if n_classes is None else int(n_classes)
    if min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= k:
        raise ValueError(f"labels must lie in [0, {k}), got values from {min(t.min(), p.min())} to {max(t.max(), p.max())}")
    return t, p, k


def scored_classes(y_true, y_pred) -> tuple[list[int], list[int]]:
    """The classes UF1 averages over (in the truth or the predictions) and those UAR averages
    over (in the truth), following the rules of the module docstring."""
    t, p = _as_labels(y_true), _as_labels(y_pred)
    return sorted(set(t.tolist()) | set(p.tolist())), sorted(set(t.tolist()))


def confusion(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """(K, K) counts, row = true class, column = predicted class (scikit-learn's layout)."""
    from sklearn.metrics import confusion_matrix

    t, p, k = _pair(y_true, y_pred, n_classes)
    return confusion_matrix(t, p, labels=list(range(k)))


def uf1(y_true, y_pred, n_classes: int | None = None) -> float:
    """Unweighted F1: mean per-class F1 over the classes in the truth or the predictions."""
    from sklearn.metrics import f1_score

    t, p, _ = _pair(y_true, y_pred, n_classes)
    labels, _ = scored_classes(t, p)
    return float(f1_score(t, p, labels=labels, average="macro", zero_division=0.0))


def uar(y_true, y_pred, n_classes: int | None = None) -> float:
    """Unweighted average recall: mean per-class recall over the classes in the truth."""
    from sklearn.metrics import recall_score

    t, p, _ = _pair(y_true, y_pred, n_classes)
    _, labels = scored_classes(t, p)
    return float(recall_score(t, p, labels=labels, average="macro", zero_division=0.0))


def accuracy(y_true, y_pred) -> float:
    """Fraction of correct predictions (dominated by the largest class; report it beside UF1/UAR)."""
    from sklearn.metrics import accuracy_score

    t, p, _ = _pair(y_true, y_pred, None)
    return float(accuracy_score(t, p))


def per_class(y_true, y_pred, n_classes: int | None = None) -> dict[str, list]:
    """Precision, recall, F1, support (true count) and predicted count of every class, as lists
    indexed by class. An undefined value (0/0) is NaN."""
    from sklearn.metrics import precision_recall_fscore_support

    t, p, k = _pair(y_true, y_pred, n_classes)
    prec, rec, f1, support = precision_recall_fscore_support(t, p, labels=list(range(k)), zero_division=np.nan)
    return {"precision": [float(v) for v in prec], "recall": [float(v) for v in rec], "f1": [float(v) for v in f1],
            "support": [int(v) for v in support], "predicted": [int((p == c).sum()) for c in range(k)]}


def scores_from_confusion(cm) -> dict[str, float]:
    """UF1, UAR and accuracy from a confusion matrix (rows true, columns predicted) with NumPy only,
    by the rules of the module docstring. An independent check of :func:`uf1` / :func:`uar`."""
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.sum() <= 0:
        raise ValueError(f"need a square confusion matrix with at least one count, got shape {cm.shape}")
    tp = np.diag(cm)
    true_n, pred_n = cm.sum(1), cm.sum(0)
    in_f1, in_rec = (true_n + pred_n) > 0, true_n > 0
    f1 = 2 * tp[in_f1] / (true_n[in_f1] + pred_n[in_f1])  # 2TP + FP + FN = true count + predicted count
    recall = tp[in_rec] / true_n[in_rec]
    return {"uf1": float(f1.mean()), "uar": float(recall.mean()), "accuracy": float(tp.sum() / cm.sum())}


def _scores(t: np.ndarray, p: np.ndarray, k: int) -> dict:
    return {"n": int(len(t)), "uf1": uf1(t, p, k), "uar": uar(t, p, k), "accuracy": accuracy(t, p)}


def evaluate(y_true, y_pred, classes: Sequence[str], groups: Sequence[str] | None = None) -> dict:
    """Every score of a set of predictions, JSON-ready.

    Pooled: ``n``, ``uf1``, ``uar``, ``accuracy``, ``confusion`` (rows true, columns predicted),
    ``per_class`` {class name: precision, recall, f1, support, predicted}, and the classes each
    mean was taken over (``uf1_classes``, ``uar_classes``). With ``groups`` (one LOSO group per
    prediction) also ``per_fold``: a list of ``{subject, n, accuracy, uf1, uar, classes}`` in sorted
    subject order, and ``per_fold_mean``: their plain means (a diagnostic, *not* the MEGC score).
    """
    k = len(classes)
    t, p, _ = _pair(y_true, y_pred, k)
    f1_cls, rec_cls = scored_classes(t, p)
    pc = per_class(t, p, k)
    out = {**_scores(t, p, k), "confusion": confusion(t, p, k).tolist(), "classes": list(classes),
           "uf1_classes": [classes[c] for c in f1_cls], "uar_classes": [classes[c] for c in rec_cls],
           "per_class": {name: {key: pc[key][c] for key in pc} for c, name in enumerate(classes)}}
    if groups is not None:
        g = np.asarray(list(groups), dtype=object)
        if len(g) != len(t):
            raise ValueError(f"groups has {len(g)} entries for {len(t)} predictions")
        folds = []
        for subject in sorted(set(g.tolist())):
            m = g == subject
            folds.append({"subject": subject, **_scores(t[m], p[m], k),
                          "classes": sorted({classes[c] for c in t[m].tolist()})})
        out["per_fold"] = folds
        out["per_fold_mean"] = {key: float(np.mean([f[key] for f in folds])) for key in ("uf1", "uar", "accuracy")}
    return out
