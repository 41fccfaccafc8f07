"""HMRM's loss: multi-scale, class-weighted cross-entropy.

Micro-expression data sets are small and imbalanced (the composite set is 57 / 25 / 19 %
negative / positive / surprise), and HMRM sees the face at several grains. The loss therefore has
one cross-entropy term per classifier head, each weighted by the inverse frequency of the true
class in the *training fold*::

    loss = sum_s  scale_weight[s] * CE_w(logits[s], labels)
    s in {fused, each grain};  CE_w = cross-entropy with class weights w (PyTorch's weighted mean)

The fused head (on the RFFS features) carries the prediction; the per-grain heads make each
grain's tokens discriminative on their own (deep supervision). The plain-CE ablation is
``F.cross_entropy(fused logits, labels)``: one head, no class weights.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F


def class_weights(labels: Sequence[int] | torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights, normalised so that the average *sample* weighs 1.

    ``w[c] = n / (k * n_c)``, with ``n`` the number of labels, ``n_c`` the count of class ``c`` and
    ``k`` the number of classes present. Then ``sum_c (n_c / n) * w[c] = 1``: the loss keeps its
    scale while every present class contributes the same total weight (``n / k``). This is
    scikit-learn's ``class_weight="balanced"`` rule. A class absent from the labels gets weight 0
    (it never occurs as a target, so its weight is never used). Compute it on the training fold
    only. Returns a float32 tensor of shape (n_classes,).

    >>> class_weights([0, 0, 0, 1], 3)
    tensor([0.6667, 2.0000, 0.0000])
    """
    y = torch.as_tensor(labels, dtype=torch.long).flatten()
    if y.numel() == 0:
        raise ValueError("class_weights needs at least one label")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got values from {int(y.min())} to {int(y.max())}")
    counts = torch.bincount(y, minlength=n_classes).float()
    present = counts > 0
    weights = torch.zeros(n_classes)
    weights[present] = y.numel() / (present.sum() * counts[present])
    return weights


def default_scale_weights(names: Sequence[str], grain_weight: float = 0.5) -> dict[str, float]:
    """``{"fused": 1.0, grain: grain_weight, ...}``: the fused head leads, each grain head helps."""
    return {"fused": 1.0, **{n: grain_weight for n in names}}


def multiscale_loss(outputs: Mapping, labels: torch.Tensor, class_weights: torch.Tensor | None = None,
                    scale_weights: Mapping[str, float] | None = None, return_terms: bool = False,
                    label_smoothing: float = 0.0):
    """``sum_s scale_weights[s] * CE(logits_s, labels; weight=class_weights)``.

    ``outputs`` is what :class:`hmrm.model.HMRM` returns: ``"logits"`` (fused, key ``"fused"`` in
    ``scale_weights``) and ``"grain_logits"`` ``{grain name: logits}``. ``scale_weights`` default:
    :func:`default_scale_weights`; a head whose weight is missing or 0 is left out. With
    ``return_terms`` also returns the unweighted cross-entropy of every head (detached).
    ``label_smoothing`` (0 = off) spreads that share of each target over all classes
    (``F.cross_entropy``'s argument), a training-recipe choice of :mod:`hmrm.train.loso`.
    """
    heads = {"fused": outputs["logits"], **dict(outputs.get("grain_logits") or {})}
    if scale_weights is None:
        scale_weights = default_scale_weights([n for n in heads if n != "fused"])
    unknown = set(scale_weights) - set(heads)
    if unknown:
        raise ValueError(f"scale_weights name heads the model does not have: {sorted(unknown)}; heads: {sorted(heads)}")
    weight = None if class_weights is None else class_weights.to(heads["fused"].device, heads["fused"].dtype)
    total, terms = heads["fused"].new_zeros(()), {}
    for name, logits in heads.items():
        w = float(scale_weights.get(name, 0.0))
        if w == 0.0:
            continue
        ce = F.cross_entropy(logits, labels, weight=weight, label_smoothing=label_smoothing)
        total = total + w * ce
        terms[name] = ce.detach()
    return (total, terms) if return_terms else total


def plain_loss(outputs: Mapping, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """The plain-CE ablation: unweighted cross-entropy of the fused logits."""
    return F.cross_entropy(outputs["logits"], labels, label_smoothing=label_smoothing)
