"""Training and evaluation: the leave-one-subject-out harness and its scores.

* :mod:`hmrm.train.metrics` - UF1, UAR, accuracy and confusion matrix pooled over folds (MEGC);
* :mod:`hmrm.train.loso` - ``LOSOConfig``, ``run_loso`` (resumable, honest: fixed epochs, the final
  epoch's predictions pooled over every held-out subject);
* :mod:`hmrm.train.reproduce` - ``hmrm reproduce``: the LOSO job notebook run with papermill once per config;
* :mod:`hmrm.train.results` - run folders gathered into the results and ablation tables (with the
  paper's reported figures beside ours), and the efficiency table read back.
"""
from .loso import (
    LOSOConfig, LOSOData, LOSOResult, RunMismatchError, aggregate, build_fold_model, fold_dirname, format_metrics,
    loso_splits, read_run, resolve_environment, run_loso, run_name,
)
from .metrics import accuracy, confusion, evaluate, per_class, scores_from_confusion, uar, uf1

__all__ = [
    "LOSOConfig", "LOSOData", "LOSOResult", "RunMismatchError", "accuracy", "aggregate", "build_fold_model",
    "confusion", "evaluate", "fold_dirname", "format_metrics", "loso_splits", "per_class", "read_run",
    "resolve_environment", "run_loso", "run_name", "scores_from_confusion", "uar", "uf1",
]
