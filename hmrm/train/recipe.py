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

from ..markdown import markdown_table
from ..model.encoder import STEM_NAMES

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


def describe_config(config) -> list[tuple[str, str, str]]:
    """The training recipe of a :class:`~hmrm.train.loso.LOSOConfig`, field by field: ``(field,
    value, what it does)``, one sentence each, for the fields a run's training depends on (the
    optimiser, the schedule, weight averaging, label smoothing, where MotionMix applies ...)."""
    c = config
    over = dict(c.model_overrides)
    rows: list[tuple[str, str, str]] = []
    if c.model == "hmrm":
        stem = {"conv": "a convolutional stem before the patches"}.get(over.get("stem", "patch"),
                                                                         f"the {STEM_NAMES['patch']}")
        size = ", ".join(f"{k} {over[k]}" for k in ("d_model", "depth") if k in over) or "the paper's width and depth"
        net = f"HMRM with {stem}, {size}" + (f", ablation {c.ablation}" if c.ablation else "") + " (chapter 07)"
    else:
        extra = {k: v for k, v in over.items() if k != "weighted_loss"}
        net = {"ststnet": "STSTNet, the baseline (chapter 07)"}.get(c.model, c.model) + (f", with {extra}" if extra else "")
    rows.append(("model", c.model, f"the network: {net}; a fresh one per fold, initialised from the seed"))
    rows.append(("flow, input_size", f"{c.flow}, {c.input_size}",
                 f"the onset-to-apex flow from `{c.flow}`, shrunk to {c.input_size} x {c.input_size} px; every input "
                 "is divided by the per-channel RMS of the fold's training clips"))
    rows.append(("epochs", str(c.epochs), f"every fold trains exactly {c.epochs} epochs, and the model after the last "
                                          "one predicts its held-out subject once; nothing is chosen on that subject"))
    rows.append(("batch_size", str(c.batch_size), f"{c.batch_size} training clips per optimiser step, in an order "
                                                  "shuffled anew every epoch"))
    rows.append(("optimiser, weight_decay", f"AdamW, {c.weight_decay:g}",
                 f"torch.optim.AdamW; besides the gradient step, every weight shrinks by lr x {c.weight_decay:g} of itself "
                 "at each step (decoupled weight decay)"))
    if c.schedule == "cosine":
        sched = (f"peak rate {c.lr:g}: a linear warm-up over the first {c.warmup_epochs} epoch(s), then a half cosine "
                 "down towards zero at the last step, so the scored last epochs take small steps")
    else:
        sched = f"the same rate {c.lr:g} from the first step to the last"
    rows.append(("lr, schedule", f"{c.lr:g}, {c.schedule}", sched))
    rows.append(("label_smoothing", f"{c.label_smoothing:g}",
                 f"each target keeps {1 - c.label_smoothing:g} on its class and spreads {c.label_smoothing:g} over all "
                 "classes, which keeps the network from growing over-confident on few clips"
                 if c.label_smoothing else "off: one-hot targets"))
    rows.append(("ema", f"{c.ema:g}",
                 f"an exponential moving average of the weights (decay {c.ema:g} per step, so roughly the last "
                 f"{round(1 / (1 - c.ema))} steps) predicts, not the last weights" if c.ema else
                 "off: the last weights predict"))
    if c.mixes:
        mix = (f"each training clip, with probability {c.motionmix_p:g} per epoch, gets the eye and mouth regions of "
               "another training clip of its class (chapter 04); the held-out subject is never mixed and never lends")
    else:
        mix = ("off" + (" (the no_motionmix ablation)" if c.ablation == "no_motionmix" else f" (p {c.motionmix_p:g})")
               + ": training clips are used as they are")
    rows.append(("motionmix_p", f"{c.motionmix_p:g}", mix))
    loss = ("the multi-scale cross-entropy: the fused head plus one head per grain, with class weights from the "
            "fold's training clips" if c.model == "hmrm" and c.ablation != "plain_ce" else
            "a cross-entropy on the network's logits" + (", class-weighted" if over.get("weighted_loss") else ""))
    rows.append(("loss", "", loss))
    rows.append(("seed", str(c.seed), "every random draw of epoch e of fold f (order, MotionMix, dropout) depends only "
                                      "on (seed, f, e): a rerun, or a resumed run, gives the same numbers"))
    rows.append(("folds", str(c.folds), "every subject is held out once: a LOSO result" if c.folds is None else
                 f"only the first {c.folds} subjects' folds: a quick look, not a LOSO result"))
    return rows


def config_markdown(config) -> str:
    """:func:`describe_config` as a markdown table."""
    return markdown_table(["field", "value", "what it does"], [list(r) for r in describe_config(config)])
