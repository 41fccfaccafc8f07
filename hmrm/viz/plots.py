"""Figures of LOSO runs: the confusion matrix and the training curves of one run, and the demo's
side-by-side confusion matrices and training curves of several.

Every function draws on a :class:`matplotlib.figure.Figure` they create themselves (no pyplot, so
they never change the backend of a notebook) and return it; ``out`` also writes it atomically.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..face.regions import REGION_NAMES
from ..utils import atomic_path


def save_figure(fig, out: str | Path | None, dpi: int = 120) -> None:
    """Write ``fig`` to ``out`` atomically (the format from its suffix, PNG by default); nothing when None."""
    if out is None:
        return

    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=Path(out).suffix.lstrip(".") or "png")


def plotted(values, decimals: int = 3) -> np.ndarray:
    """``values`` rounded for drawing, so that a figure's bytes do not depend on the last bits of
    floating-point sums (which differ between machines and thread counts): 3 decimals are far below a
    pixel on any axis this package draws losses or scores on."""
    return np.round(np.asarray(values, dtype=np.float64), decimals)


def draw_confusion(ax, cm, classes: Sequence[str], title: str = "", ylabels: bool = True, fontsize: float | None = None):
    """Draw a confusion matrix on ``ax``: counts in the cells, colour = fraction of the true class
    (row). Returns the image (for a colour bar)."""
    cm = np.asarray(cm, dtype=np.int64)
    rows = cm.sum(1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    k = len(classes)
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{cm[i, j]}", ha="center", va="center", color="white" if frac[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), classes, rotation=30, ha="right", fontsize=fontsize)
    ax.set_yticks(range(k), classes if ylabels else [""] * k, fontsize=fontsize)
    ax.set_xlabel("predicted", fontsize=fontsize)
    if ylabels:
        ax.set_ylabel("true", fontsize=fontsize)
    if title:
        ax.set_title(title, fontsize=9 if fontsize is None else fontsize)
    return im


def plot_confusion(cm, classes: Sequence[str], title: str = "", out: str | Path | None = None):
    """Confusion matrix: counts in the cells, colour = fraction of the true class (row)."""
    from matplotlib.figure import Figure

    k = len(classes)
    fig = Figure(figsize=(1.8 + 0.9 * k, 1.2 + 0.8 * k), layout="constrained")
    ax = fig.add_subplot()
    im = draw_confusion(ax, cm, classes, title)
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of the true class")
    save_figure(fig, out)
    return fig


def plot_reliability(summary: Mapping, title: str = "", out: str | Path | None = None):
    """Reliability diagram of a :func:`hmrm.train.calibration.calibrate_run` summary: per confidence
    bin, the share right against the mean confidence, before and after temperature scaling (the
    diagonal is perfect calibration; marker area = clips in the bin)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.6, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key in zip(axes, ("raw", "calibrated")):
        s, r = summary[key], summary[key]["reliability"]
        lo, up = np.asarray(r["lower"]), np.asarray(r["upper"])
        acc = np.array([np.nan if a is None else a for a in r["accuracy"]])
        conf = np.array([np.nan if c is None else c for c in r["confidence"]])
        ax.bar(lo, np.nan_to_num(acc), width=up - lo, align="edge", color="#9ecae1", edgecolor="white",
               label="share right")
        ax.scatter(conf, acc, s=12 + 4 * np.asarray(r["count"]), color="#08519c", zorder=3, clip_on=False,
                   label="bin: mean confidence (area: clips)")
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect calibration")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top probability)",
               title=f"{key}: ECE {s['ece']:.3f} [{s['ece_interval'][0]:.2f}, {s['ece_interval'][1]:.2f}]")
    axes[0].set_ylabel("share of predictions right")
    axes[0].legend(loc="upper left", fontsize=7, markerscale=0.4)
    if title:
        fig.suptitle(f"{title} (median T = {summary['temperature']['median']:.2f})")
    save_figure(fig, out)
    return fig


def plot_explanations(faces: Sequence[np.ndarray], expl, rows: Sequence[int], classes: Sequence[str],
                      out: str | Path | None = None):
    """Per chosen clip (an index into :class:`hmrm.explain.Explanations`): the aligned onset face with
    the gradient-saliency map over it and the four region boxes, the top region of each map named
    and the regions the true action units moved drawn solid (others dashed)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(2.6 * len(rows), 3.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(rows)))
    for ax, i, face in zip(axes, rows, faces):
        size = face.shape[0]
        sal = expl.saliency[i]
        k = size / sal.shape[0]
        ax.imshow(face.mean(-1) if face.ndim == 3 else face, cmap="gray")
        ax.imshow(sal, cmap="inferno", alpha=0.55, extent=(0, size, size, 0))
        for r, (x0, y0, x1, y1) in enumerate(expl.boxes[i]):
            moved = REGION_NAMES[r] in expl.moved[i]
            ax.add_patch(Rectangle(
                (x0 * k, y0 * k), (x1 - x0) * k, (y1 - y0) * k, fill=False, lw=1.2,
                ls="-" if moved else "--", color="#41ab5d" if moved else "#cccccc"))
        top_s = REGION_NAMES[int(expl.saliency_regions[i].argmax())]
        top_a = "" if expl.attention_regions is None else REGION_NAMES[int(expl.attention_regions[i].argmax())]
        ax.set_title(f"AU {expl.aus[i]}: {classes[expl.truth[i]]} -> {classes[expl.pred[i]]}\n"
                     f"saliency: {top_s}" + (f", attention: {top_a}" if top_a else ""), fontsize=8)
        ax.axis("off")
    save_figure(fig, out)
    return fig


def plot_training(losses: Mapping[str, Sequence[float]], curve: Mapping[str, Sequence[float]] | None = None,
                  honest: float | None = None, title: str = "", out: str | Path | None = None):
    """Left: training loss per epoch of every fold (thin) and their mean (thick). Right, when
    ``curve`` is given: pooled scores of the held-out subjects at every epoch ({name: values}),
    a diagnostic that is labelled as such; ``honest`` marks the reported final-epoch UF1."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10 if curve else 5.5, 3.8), layout="constrained")
    ax = fig.add_subplot(1, 2 if curve else 1, 1)
    series = [np.asarray(v, dtype=float) for v in losses.values() if len(v)]
    for v in series:
        ax.plot(np.arange(1, len(v) + 1), v, lw=0.7, alpha=0.35, color="tab:blue")
    if series:
        n = min(len(v) for v in series)
        ax.plot(np.arange(1, n + 1), np.mean([v[:n] for v in series], 0), lw=2, color="tab:blue", label="mean over folds")
        ax.legend(fontsize=8)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.set_title("training loss (each fold thin)", fontsize=9)
    if curve:
        ax2 = fig.add_subplot(1, 2, 2)
        for name, values in curve.items():
            ax2.plot(np.arange(1, len(values) + 1), values, label=f"pooled {name.upper()} of the held-out subjects")
        if honest is not None:
            n = max(len(v) for v in curve.values())
            ax2.plot([n], [honest], "k*", ms=11, label=f"reported: UF1 of the final epoch, {honest:.3f}")
        ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.set_xlabel("epoch")
        ax2.set_ylim(0, 1)
        ax2.set_title("held-out subjects per epoch: diagnostic only,\nnever used to pick an epoch", fontsize=9)
        ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, out)
    return fig


def plot_demo_confusions(rows: Sequence[dict], out: str | Path | None = None):
    """One confusion matrix per demo row, side by side (counts; colour = fraction of the true class)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.1 * len(rows), 3.4), layout="constrained")
    axes = fig.subplots(1, len(rows), squeeze=False)[0]
    for i, (ax, r) in enumerate(zip(axes, rows)):
        draw_confusion(ax, r["confusion"], r["classes"], f"{r['label']}\nUF1 {r['uf1']:.3f}  UAR {r['uar']:.3f}",
                       ylabels=i == 0, fontsize=8)
    fig.suptitle("SynthME LOSO, honest (final epoch, pooled over subjects)", fontsize=10)
    save_figure(fig, out)
    return fig


def plot_demo_training(rows: Sequence[Mapping], out: str | Path | None = None):
    """Left: mean training loss over folds per demo row. Right: the pooled held-out UF1 at every epoch,
    a diagnostic only (the reported figure is the final epoch's, starred). Each row: ``label``,
    ``losses`` (one list of per-epoch losses per fold), ``curve`` (pooled held-out UF1 per epoch, or
    None) and ``uf1`` (the honest score)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    for i, row in enumerate(rows):
        colour = f"C{i}"
        losses = [v for v in row["losses"] if v]
        if losses:
            n = min(map(len, losses))
            # rounded far below a pixel: a loss that differs in its last bits between machines (the same
            # table, other float rounding in training) then draws the same bytes
            ax.plot(np.arange(1, n + 1), plotted(np.mean([v[:n] for v in losses], 0)), color=colour, label=row["label"])
        curve = row["curve"]
        if curve:
            curve = plotted(curve)
            ax2.plot(np.arange(1, len(curve) + 1), curve, color=colour, lw=1, alpha=0.8)
            ax2.plot([len(curve)], plotted([row["uf1"]]), "*", color=colour, ms=11)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (mean over folds)")
    ax.legend(fontsize=8)
    ax.set_title("training loss, mean over folds (HMRM's sums its fused head and one head per grain,\n"
                 "about three times STSTNet's single cross-entropy; label smoothing keeps a recipe's above 0)",
                 fontsize=9)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("pooled UF1 of the held-out subjects")
    ax2.set_ylim(0, 1)
    ax2.set_title("held-out UF1 per epoch: diagnostic only, never used to pick an epoch\n"
                  "(star: the reported final-epoch UF1)", fontsize=9)
    save_figure(fig, out)
    return fig
