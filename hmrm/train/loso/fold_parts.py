"""The pieces one LOSO fold's loop (:meth:`hmrm.train.loso.fold.Fold.run`) is made of, each small
enough to read alone:

* :func:`seed_of` - every random draw of a fold comes from (seed, fold, epoch, what it is for);
* :func:`input_scale` and :class:`FoldTensors` - the fold's training data on the device, and what it
  computes from its training subjects (input scale, class weights) and from nothing else;
* :class:`EpochDraws` - everything random in one epoch: the shuffled order, MotionMix, the dropout seed;
* :class:`FoldState` - the network, optimiser, scaler, weight average and history: what a checkpoint
  holds; :func:`new_state` makes a fresh one, :func:`save_state` and :func:`resume_state` write and
  read it;
* :func:`fold_result` - the ``result.json`` record that marks a fold done.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...augment import MotionMix
from ...checkpoint import load_checkpoint, save_checkpoint
from ...model import class_weights
from ..recipe import make_ema
from .config import LOSOConfig, build_fold_model
from .data import LOSOData
from .run_folder import RUN_FORMAT

# seed streams: what a random draw is for (see seed_of)
INIT, SHUFFLE, MIX, TORCH = range(4)


class Stopped(Exception):
    """Raised inside a fold when the stop hook asks for a pause (after a checkpoint)."""


def seed_of(seed: int, fold: int, epoch: int, stream: int) -> int:
    """A 63-bit seed that depends only on (seed, fold, epoch, stream)."""
    state = np.random.SeedSequence([seed, fold, epoch, stream]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def input_scale(x_train: np.ndarray) -> np.ndarray:
    """Per-channel RMS of a fold's training inputs (1 where a channel is all zero): what the fold
    divides every input by."""
    rms = np.sqrt((x_train.astype(np.float64) ** 2).mean(axis=(0, 2, 3)))
    return np.where(rms > 0, rms, 1.0).astype(np.float32)


@dataclass
class FoldTensors:
    """A fold's training clips on the device (``x``, ``boxes``, ``labels``; ``labels_np`` on the host)
    and what the fold computes from them alone: the input ``scale`` (``scale_t`` shaped to divide a
    batch) and the ``class_weights`` of its loss."""

    x: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    labels_np: np.ndarray
    scale: np.ndarray
    scale_t: torch.Tensor
    class_weights: torch.Tensor

    @classmethod
    def of(cls, data: LOSOData, train_idx, device: torch.device) -> "FoldTensors":
        x = data.x[train_idx]
        scale, labels = input_scale(x), data.labels[train_idx]
        return cls(torch.from_numpy(x).to(device), torch.from_numpy(data.boxes[train_idx]).to(device),
                   torch.from_numpy(labels).to(device), labels, scale,
                   torch.from_numpy(scale).to(device).view(1, -1, 1, 1), class_weights(labels, len(data.classes)))


@dataclass
class EpochDraws:
    """What epoch ``epoch`` of a fold draws, all from (seed, fold, epoch): the shuffled ``order`` of
    its training clips, its MotionMix (None without), the torch seed of its dropout masks; and the
    number of optimiser ``steps`` it takes."""

    order: np.ndarray
    mix: MotionMix | None
    torch_seed: int
    steps: int

    @classmethod
    def of(cls, config: LOSOConfig, fold: int, epoch: int, n_train: int) -> "EpochDraws":
        c = config
        return cls(np.random.default_rng(seed_of(c.seed, fold, epoch, SHUFFLE)).permutation(n_train),
                   MotionMix(p=c.motionmix_p, seed=seed_of(c.seed, fold, epoch, MIX), channels=c.channels,
                             **c.motionmix_options) if c.mixes else None,
                   seed_of(c.seed, fold, epoch, TORCH), -(-n_train // c.batch_size))


@dataclass
class FoldState:
    """Everything a fold carries from one epoch to the next, and a checkpoint holds: the network, its
    AdamW, the loss scaler (float16 only) and the weight average (EMA only); the epochs' ``history``,
    the diagnostic ``test_curve`` and the ``seconds`` spent; ``start``: the epochs already done;
    ``resumed``: the epoch it was resumed from (None for a fresh start)."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    ema: torch.optim.swa_utils.AveragedModel | None
    history: list = field(default_factory=list)
    test_curve: list = field(default_factory=list)
    seconds: float = 0.0
    start: int = 0
    resumed: int | None = None

    @property
    def scored(self) -> torch.nn.Module:
        """The network that predicts the held-out subject: the weight average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def parts(self) -> dict:
        return {"model": self.model, "optimizer": self.opt, "scaler": self.scaler, "ema": self.ema}


def new_state(config: LOSOConfig, fold: int, n_classes: int, in_channels: int, device: torch.device,
              amp_dtype: torch.dtype | None) -> FoldState:
    """A fresh network (its weights seeded from (seed, fold)), its AdamW, scaler and weight average."""
    torch.manual_seed(seed_of(config.seed, fold, 0, INIT))  # seeds every CUDA device too
    model = build_fold_model(config, n_classes, in_channels).to(device)
    # the fused AdamW: the same update in one pass over all weights instead of a dozen small operations per tensor
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                            fused=device.type in ("cpu", "cuda"))
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    return FoldState(model, opt, scaler, make_ema(model, config.ema))


def save_state(path: Path, state: FoldState, subject: str, epoch: int) -> None:
    """The checkpoint of an unfinished fold after ``epoch``, random-number generators included."""
    save_checkpoint(path, state.parts(), rng=True, format=RUN_FORMAT, subject=subject, epoch=epoch, final=False,
                    history=state.history, test_curve=state.test_curve, seconds=state.seconds)


def resume_state(path: Path, state: FoldState, subject: str, device: torch.device) -> None:
    """Continue ``state`` from the unfinished fold's checkpoint at ``path`` when there is one; one
    that cannot be resumed (truncated, another network's) is warned about and the fold starts again."""
    def unfinished_fold_of_this_run(ckpt: dict) -> None:
        if ckpt.get("final") or ckpt.get("format") != RUN_FORMAT or ckpt.get("subject") != subject:
            raise ValueError("not a checkpoint of an unfinished fold of this run")

    try:
        ckpt = load_checkpoint(path, state.parts(), device, optional=("scaler",), check=unfinished_fold_of_this_run)
    except Exception as exc:  # truncated file, other model ...
        warnings.warn(f"checkpoint {path} cannot be resumed ({type(exc).__name__}: {exc}); the fold "
                      f"{subject} starts again from epoch 0.", stacklevel=3)
        return
    if ckpt is not None:
        state.start = state.resumed = int(ckpt["epoch"])
        state.history, state.test_curve, state.seconds = ckpt["history"], ckpt["test_curve"], ckpt["seconds"]


def fold_result(fold, state: FoldState, pred: np.ndarray, probs: np.ndarray) -> dict:
    """The ``result.json`` record of a finished ``fold`` (a :class:`~hmrm.train.loso.fold.Fold`): its
    held-out clips with their truth, prediction and probabilities, what it computed from its training
    side, its history and how it ran."""
    truth = fold.data.labels[fold.test_idx]
    return {
        "format": RUN_FORMAT, "subject": fold.subject, "fold": fold.index, "epochs": fold.config.epochs,
        "keys": [fold.data.keys[i] for i in fold.test_idx], "true": truth.tolist(), "pred": pred.tolist(),
        "probs": np.round(probs, 6).tolist(), "accuracy": float((pred == truth).mean()),
        "train_side": fold.train_side(), "history": state.history, "test_curve": state.test_curve,
        "device": fold.env["device"], "scan_backend": fold.env["scan_backend"], "amp": fold.env["amp"],
        "seconds": round(state.seconds, 3), "resumed_from_epoch": state.resumed,
    }
