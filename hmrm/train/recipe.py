"""The training recipe's moving parts: the learning-rate schedule and weight averaging (EMA).

A LOSO fold trains for a fixed number of epochs (:mod:`hmrm.train.loso`). Within that budget the
*recipe* decides how far a network gets, and on small data sets it decides a lot:

* **Schedule** (``LOSOConfig.schedule``). ``"constant"``: the same learning rate from the first
  step to the last (the paper states only "AdamW, learning rate 0.0005"). ``"cosine"``: a linear
  warm-up over ``warmup_epochs`` (from ``lr / warmup steps`` up to ``lr``), then a half cosine
  from ``lr`` towards zero (reached one step after the last). A high peak rate learns fast; the
  decay lets the weights settle instead of bouncing around at the end, which matters because
  only the final epoch is scored.
* **EMA** (``LOSOConfig.ema``, a decay per step; 0 = off). An exponential moving average of the
  weights, updated after every optimiser step, is what predicts the held-out subject. It smooths
  out the last steps' noise the way a lower learning rate would, without slowing learning.

Both depend only on the step counter, so a fold resumed from a checkpoint continues exactly.
Which values the course uses, and the measurement behind them, is in :mod:`hmrm.demo`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

SCHEDULES = ("constant", "cosine")
#: keys of a recipe that are model options (the rest are :class:`~hmrm.train.loso.LOSOConfig` fields)
MODEL_KEYS = ("stem", "d_model", "depth", "weighted_loss")


def lr_factor(schedule: str, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """The learning rate of optimiser step ``step`` (0-based) as a fraction of the peak rate.

    >>> [round(lr_factor("cosine", s, 10, 2), 3) for s in range(10)]
    [0.5, 1.0, 1.0, 0.962, 0.854, 0.691, 0.5, 0.309, 0.146, 0.038]
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if schedule == "constant":
        return 1.0
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup_steps, span) / span))


def make_ema(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of ``model``'s weights (``decay`` per update), or None for
    ``decay == 0``. Call ``ema.update_parameters(model)`` after every optimiser step; the first
    call copies the weights. ``ema.module`` is the averaged network."""
    if decay == 0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def default_warmup(epochs: int, schedule: str) -> int:
    """Warm-up epochs when none are given: a tenth of the epochs (at least one, fewer than all) for the
    cosine schedule, none for the constant one."""
    return min(max(1, epochs // 10), epochs - 1) if schedule == "cosine" else 0


def recipe_config(model: str, recipe: dict, flow: str, input_size: int, **fields):
    """The :class:`~hmrm.train.loso.LOSOConfig` of a recipe: a flat dict of training choices
    (``lr``, ``schedule``, ``weight_decay``, ``label_smoothing``, ``ema``, ``motionmix_p``,
    ``epochs``) and model options (:data:`MODEL_KEYS`). A cosine schedule warms up over the first
    tenth of the epochs. ``fields`` adds other LOSOConfig fields (``seed``, ``device`` ...)."""
    from .loso import LOSOConfig

    over = {k: v for k, v in recipe.items() if k in MODEL_KEYS}
    rest = {k: v for k, v in recipe.items() if k not in MODEL_KEYS}
    warmup = default_warmup(rest["epochs"], rest.get("schedule", "constant"))
    return LOSOConfig(model=model, flow=flow, input_size=input_size, model_overrides=over, warmup_epochs=warmup,
                      **rest, **fields)
