"""Can GRU-AOFE's learned parts learn? Fit a few fixed pairs and watch every part's gradient.

A network that cannot fit one small batch far below its starting error has a defect (a part cut off
from the gradient, a scale that drowns a signal); one that can, but does not improve on faces, was
trained on the wrong data or for too short. :func:`overfit` trains a model on fixed pairs and records,
every few steps, the end-point error after each GRU iteration, the attention's mean row entropy
(relative to ``log(HW)``, 1 for uniform rows), the aggregation gain ``gamma`` and the gradient norm of
each part (:data:`PARTS`). ``benchmarks/flow_overfit.py`` prints it as a table and chapter 03 runs a
small one as its self-check.

What it found: with GMA's attention (dot product, gain starting at 0) the attention's gradient stayed
1e-5 to 1e-3 while the other parts' were 0.1 to 6, the gain stayed near 0 and the rows uniform, so
the "attention" was a constant. The cosine attention with a learned temperature and a gain starting
at 1 (:class:`hmrm.flow.update.Attention`, :class:`~hmrm.flow.update.Aggregate`) gets gradients of
the other parts' order and peaked rows within tens of steps.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .gru_aofe import sequence_loss
from .update import row_entropy

PARTS = ("fnet", "cnet", "attention", "update.encoder", "update.aggregate", "update.gru", "update.flow_head",
         "update.mask_head")


@dataclass
class OverfitRecord:
    step: int
    seconds: float
    epe: list[float]  # after each GRU iteration
    gamma: float
    entropy: float  # mean attention row entropy / log(HW); NaN without attention
    grads: dict[str, float] = field(default_factory=dict)  # gradient norm of each part


def epe(pred: torch.Tensor, flow: torch.Tensor, valid: torch.Tensor) -> float:
    """Mean end-point error over the valid pixels."""
    return float((torch.linalg.vector_norm(pred - flow, dim=1) * valid).sum() / valid.sum())


def attention_entropy(model, img1: torch.Tensor) -> float:
    """Mean row entropy of the model's attention for frames ``img1``, relative to ``log(HW)``."""
    if model.attention is None:
        return float("nan")
    with torch.no_grad():
        ctx = model.cnet(model._norm(img1))[:, model.config.hidden:]
        return float(row_entropy(model.attention(torch.relu(ctx)))) / float(np.log(ctx.shape[2] * ctx.shape[3]))


def grad_norms(model) -> dict[str, float]:
    sq = {k: 0.0 for k in PARTS}
    for name, p in model.named_parameters():
        part = next((k for k in PARTS if name.startswith(k)), None)
        if part and p.grad is not None:
            sq[part] += float(p.grad.norm()) ** 2
    return {k: float(np.sqrt(v)) for k, v in sq.items()}


def overfit(model, img1, img2, flow, valid, init=None, steps: int = 300, lr: float = 1e-3, every: int = 50,
            iters: int | None = None, progress=None) -> list[OverfitRecord]:
    """Train ``model`` (its refinement stage is not used) with AdamW on the fixed batch for ``steps``
    steps; a record every ``every`` steps and after the last. ``progress(record)`` is called on each."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    model.train()
    records, t0 = [], time.perf_counter()
    for step in range(steps + 1):
        preds = model(img1, img2, init, iters=iters, refine=False)
        loss = sequence_loss(preds, flow, valid)
        opt.zero_grad()
        loss.backward()
        if step % every == 0 or step == steps:
            rec = OverfitRecord(step, time.perf_counter() - t0, [epe(p.detach(), flow, valid) for p in preds],
                                float(model.update.aggregate.gamma.detach()), attention_entropy(model, img1),
                                grad_norms(model))
            records.append(rec)
            if progress is not None:
                progress(rec)
        if step < steps:
            opt.step()
    return records
