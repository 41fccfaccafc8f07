"""One LOSO fold: :meth:`Fold.run` is the whole training loop on one screen, and the methods below
it are the steps it takes; the pieces they are made of (seeds, the fold's tensors, an epoch's draws,
the state a checkpoint holds, the result record) are in :mod:`.fold_parts`.

What a fold may read: its training subjects for everything it learns or computes (input scale, class
weights, MotionMix partners), and its held-out subject only in :meth:`Fold.predict` (eval mode, no
gradient), for the one prediction that is scored after the last epoch (and, as a labelled diagnostic
that nothing reads, after every epoch with ``record_test_curve``). Every random draw is seeded from
(seed, fold, epoch), so a fold resumed from its checkpoint continues exactly as it would have run.
"""
from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ...checkpoint import save_checkpoint
from ...utils import atomic_write_text
from ..folds import fold_dir
from ..recipe import lr_factor
from .config import LOSOConfig
from .data import LOSOData
from .fold_parts import EpochDraws, FoldState, FoldTensors, Stopped, fold_result, new_state, resume_state, save_state
from .run_folder import RUN_FORMAT

__all__ = ["Fold", "make_fold"]

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


class Fold:
    """Training and prediction of one fold; see the module docstring for what it may read."""

    def __init__(self, data: LOSOData, index: int, subject: str, train_idx, test_idx, config: LOSOConfig,
                 env: dict, folder: Path):
        self.data, self.index, self.subject, self.config, self.env, self.folder = data, index, subject, config, env, folder
        self.device = torch.device(env["device"])
        self.train_idx, self.test_idx = train_idx, test_idx
        self.train = FoldTensors.of(data, train_idx, self.device)  # from the training subjects only
        self.amp_dtype = AMP_DTYPES.get(env["amp"])

    def run(self, progress: bool = False, stop: Callable[[str, int], bool] | None = None) -> dict:
        """Train the fold to its last epoch (continuing its checkpoint), predict the held-out subject
        once, and write ``result.json``. ``stop(subject, epoch)`` may pause it (:class:`Stopped`)."""
        cfg, n = self.config, len(self.train_idx)
        state = self.begin()                                    # a fresh network, or the checkpoint's
        t0 = time.perf_counter() - state.seconds
        state.model.train()
        bar = tqdm(range(state.start + 1, cfg.epochs + 1), initial=state.start, total=cfg.epochs,
                   desc=f"  {self.subject}", unit="epoch", leave=False, disable=not progress)
        try:
            for epoch in bar:
                draws = self.epoch_draws(epoch)                 # the epoch's order, MotionMix, dropout seed
                torch.manual_seed(draws.torch_seed)             # the dropout masks
                loss_sum, correct = 0.0, 0
                for step in range(draws.steps):
                    xb, bb, yb = self.batch(draws, epoch, step, state.opt)  # learning rate set, clips mixed
                    loss, logits = self.train_step(state, xb, bb, yb)       # forward, loss, backward, AdamW
                    loss_sum += float(loss) * len(yb)
                    correct += int((logits.argmax(1) == yb).sum())
                rec = {"epoch": epoch, "loss": loss_sum / n, "train_accuracy": correct / n}
                bar.set_postfix(loss=f"{rec['loss']:.3f}", refresh=False)
                if self.end_epoch(state, rec, t0, stop):        # test curve, history, checkpoint, stop hook
                    break
        finally:
            bar.close()
        return self.finish(state, t0)                           # the one scored prediction, result.json

    def epoch_draws(self, epoch: int) -> EpochDraws:
        """Everything random in epoch ``epoch`` (1-based), from (seed, fold, epoch)."""
        return EpochDraws.of(self.config, self.index, epoch, len(self.train_idx))

    def batch(self, draws: EpochDraws, epoch: int, step: int, opt):
        """Step ``step`` (0-based) of an epoch: sets ``opt``'s learning rate from the step counter and
        returns the batch (inputs, boxes, labels) in the epoch's order, MotionMix applied with
        partners from the training fold only."""
        cfg, steps, t = self.config, draws.steps, self.train
        factor = lr_factor(cfg.schedule, (epoch - 1) * steps + step, cfg.epochs * steps, cfg.warmup_epochs * steps)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * factor
        idx = draws.order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        it = torch.from_numpy(idx).to(self.device)
        xb, bb, yb = t.x[it], t.boxes[it], t.labels[it]
        if draws.mix is not None:
            xb = draws.mix(xb, bb, yb, pool=(t.x, t.boxes, t.labels_np), index=idx)
        return xb, bb, yb

    def train_step(self, state: FoldState, xb, bb, yb) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step on a batch: the scaled inputs through the network, the class-weighted
        loss, its gradient, the AdamW step and the weight average's update; the loss and the logits."""
        with self._autocast():
            out = state.model(xb / self.train.scale_t, bb)
        if self.amp_dtype is not None:  # the loss in float32, outside autocast
            out = {**out, "logits": out["logits"].float(),
                   "grain_logits": {k: v.float() for k, v in (out.get("grain_logits") or {}).items()}}
        loss = state.model.loss(out, yb, self.train.class_weights.to(self.device),
                                label_smoothing=self.config.label_smoothing)
        state.opt.zero_grad(set_to_none=True)
        if state.scaler is not None:
            state.scaler.scale(loss).backward()
            state.scaler.step(state.opt)
            state.scaler.update()
        else:
            loss.backward()
            state.opt.step()
        if state.ema is not None:
            state.ema.update_parameters(state.model)
        return loss.detach(), out["logits"].detach()

    # the only place the held-out subject is read: prediction in eval mode, no gradient
    def predict(self, model) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(self.data.x[self.test_idx]).to(self.device) / self.train.scale_t
        b = torch.from_numpy(self.data.boxes[self.test_idx]).to(self.device)
        was_training = model.training
        model.eval()
        probs = []
        with torch.no_grad(), self._autocast():
            for i in range(0, len(x), self.config.batch_size):
                logits = model(x[i:i + self.config.batch_size], b[i:i + self.config.batch_size])["logits"]
                probs.append(torch.softmax(logits.float(), -1).cpu())
        model.train(was_training)
        p = torch.cat(probs).numpy()
        return p.argmax(1), p

    def begin(self) -> FoldState:
        """A fresh network, optimiser, scaler and weight average, continued from the fold's checkpoint
        when an unfinished one is there."""
        state = new_state(self.config, self.index, len(self.data.classes), self.data.x.shape[1], self.device,
                          self.amp_dtype)
        resume_state(self.folder / "checkpoint.pt", state, self.subject, self.device)
        return state

    def end_epoch(self, state: FoldState, rec: dict, t0: float, stop: Callable[[str, int], bool] | None) -> bool:
        """Book-keeping after an epoch: the diagnostic test curve, the history, the periodic
        checkpoint, the stop hook (raises :class:`Stopped` after a checkpoint). True after the last epoch."""
        cfg, epoch = self.config, rec["epoch"]
        if cfg.record_test_curve:  # diagnostic only: nothing below reads it
            pred, _ = self.predict(state.scored)
            state.test_curve.append(pred.tolist())
            rec["test_accuracy_diagnostic"] = float((pred == self.data.labels[self.test_idx]).mean())
        state.history.append(rec)
        state.seconds = time.perf_counter() - t0
        if epoch == cfg.epochs:
            return True
        saved = epoch % cfg.checkpoint_every == 0
        if saved:
            save_state(self.folder / "checkpoint.pt", state, self.subject, epoch)
        if stop is not None and stop(self.subject, epoch):
            if not saved:
                save_state(self.folder / "checkpoint.pt", state, self.subject, epoch)
            raise Stopped
        return False

    def finish(self, state: FoldState, t0: float) -> dict:
        """Predict the held-out subject with the final network (the honest prediction), keep its
        weights (the averaged ones with EMA) and write ``result.json``, which marks the fold done."""
        pred, probs = self.predict(state.scored)
        state.seconds = time.perf_counter() - t0
        save_checkpoint(self.folder / "checkpoint.pt", {"model": state.scored}, format=RUN_FORMAT, subject=self.subject,
                        epoch=self.config.epochs, final=True)
        result = fold_result(self, state, pred, probs)
        atomic_write_text(self.folder / "result.json", json.dumps(result) + "\n")  # last: marks the fold done
        return result

    def train_side(self) -> dict:
        """What the fold computed from its training data (the leakage test compares these)."""
        t = self.train
        return {"scale": [float(v) for v in t.scale], "class_weights": [float(v) for v in t.class_weights],
                "n_train": int(len(self.train_idx)),
                "train_class_counts": np.bincount(t.labels_np, minlength=len(self.data.classes)).tolist(),
                "train_subjects": len(set(self.data.groups[i] for i in self.train_idx))}

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)


def make_fold(data: LOSOData, config: LOSOConfig, env: dict, run_dir: Path, index: int, subject: str, train_idx,
              test_idx) -> Fold:
    """The :class:`Fold` of split ``index`` (held-out ``subject``) of a run in ``run_dir``, in its own folder."""
    return Fold(data, index, subject, train_idx, test_idx, config, env, fold_dir(run_dir, subject))
