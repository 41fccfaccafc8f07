"""One LOSO fold: what it computes from its training subjects (input scale, class weights), its
epochs (every random draw seeded from (seed, fold, epoch)), its checkpoints, and the one prediction
of the held-out subject that is scored."""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from ...augment import MotionMix
from ...checkpoint import load_checkpoint, save_checkpoint
from ...model import class_weights
from ...utils import atomic_write_text
from ..recipe import lr_factor, make_ema
from .config import LOSOConfig, build_fold_model
from .data import LOSOData
from .run_folder import RUN_FORMAT

# seed streams: what a random draw is for (see _seed)
_INIT, _SHUFFLE, _MIX, _TORCH = range(4)


class Stopped(Exception):
    """Raised inside a fold when the stop hook asks for a pause (after a checkpoint)."""


def _seed(seed: int, fold: int, epoch: int, stream: int) -> int:
    """A 63-bit seed that depends only on (seed, fold, epoch, stream)."""
    state = np.random.SeedSequence([seed, fold, epoch, stream]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def _seed_torch(value: int) -> None:
    import torch

    torch.manual_seed(value)  # seeds every CUDA device too


def input_scale(x_train: np.ndarray) -> np.ndarray:
    """Per-channel RMS of a fold's training inputs (1 where a channel is all zero): what the fold
    divides every input by."""
    rms = np.sqrt((x_train.astype(np.float64) ** 2).mean(axis=(0, 2, 3)))
    return np.where(rms > 0, rms, 1.0).astype(np.float32)


class Fold:
    """Training and prediction of one fold; see the module docstring for what it may read."""

    def __init__(self, data: LOSOData, index: int, subject: str, train_idx, test_idx, config: LOSOConfig,
                 env: dict, folder: Path):
        import torch

        self.data, self.index, self.subject, self.config, self.env, self.folder = data, index, subject, config, env, folder
        self.device = torch.device(env["device"])
        self.train_idx, self.test_idx = train_idx, test_idx
        dev = self.device
        xtr = data.x[train_idx]
        # everything below is computed from the training fold only
        self.scale = input_scale(xtr)
        self.ytr_np = data.labels[train_idx]
        self.cw = class_weights(self.ytr_np, len(data.classes))
        self.xtr = torch.from_numpy(xtr).to(dev)
        self.btr = torch.from_numpy(data.boxes[train_idx]).to(dev)
        self.ytr = torch.from_numpy(self.ytr_np).to(dev)
        self.scale_t = torch.from_numpy(self.scale).to(dev).view(1, -1, 1, 1)
        self.amp_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(env["amp"])

    # the only place the held-out subject is read: prediction in eval mode, no gradient
    def predict(self, model) -> tuple[np.ndarray, np.ndarray]:
        import torch

        x = torch.from_numpy(self.data.x[self.test_idx]).to(self.device) / self.scale_t
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

    def _autocast(self):
        import contextlib

        import torch

        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def train_side(self) -> dict:
        """What the fold computed from its training data (the leakage test compares these)."""
        return {"scale": [float(v) for v in self.scale], "class_weights": [float(v) for v in self.cw],
                "n_train": int(len(self.train_idx)), "train_class_counts": np.bincount(self.ytr_np, minlength=len(self.data.classes)).tolist(),
                "train_subjects": len(set(self.data.groups[i] for i in self.train_idx))}

    def _new(self):
        import torch

        cfg = self.config
        _seed_torch(_seed(cfg.seed, self.index, 0, _INIT))
        model = build_fold_model(cfg, len(self.data.classes), self.data.x.shape[1]).to(self.device)
        # the fused AdamW: the same update in one pass over all weights instead of a dozen small
        # operations per weight tensor
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                fused=self.device.type in ("cpu", "cuda"))
        scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        return model, opt, scaler, make_ema(model, cfg.ema)

    def _save(self, path: Path, model, opt, scaler, ema, epoch: int, state: dict) -> None:
        save_checkpoint(path, {"model": model, "optimizer": opt, "scaler": scaler, "ema": ema}, rng=True,
                        format=RUN_FORMAT, subject=self.subject, epoch=epoch, final=False, **state)

    def _load(self, path: Path, model, opt, scaler, ema) -> dict | None:
        def unfinished_fold_of_this_run(ckpt: dict) -> None:
            if ckpt.get("final") or ckpt.get("format") != RUN_FORMAT or ckpt.get("subject") != self.subject:
                raise ValueError("not a checkpoint of an unfinished fold of this run")

        try:
            return load_checkpoint(path, {"model": model, "optimizer": opt, "scaler": scaler, "ema": ema}, self.device,
                                   optional=("scaler",), check=unfinished_fold_of_this_run)
        except Exception as exc:  # truncated file, other model ...
            warnings.warn(f"checkpoint {path} cannot be resumed ({type(exc).__name__}: {exc}); the fold "
                          f"{self.subject} starts again from epoch 0.", stacklevel=2)
            return None

    def epoch_draws(self, epoch: int) -> dict:
        """What epoch ``epoch`` (1-based) of this fold draws, all from (seed, fold, epoch): the
        shuffled order of the training fold, the MotionMix (None without), the torch seed of its
        dropout masks; and its optimiser steps."""
        cfg, n = self.config, len(self.train_idx)
        return {"order": np.random.default_rng(_seed(cfg.seed, self.index, epoch, _SHUFFLE)).permutation(n),
                "mix": MotionMix(p=cfg.motionmix_p, seed=_seed(cfg.seed, self.index, epoch, _MIX), channels=cfg.channels,
                                 **cfg.motionmix_options) if cfg.mixes else None,
                "torch_seed": _seed(cfg.seed, self.index, epoch, _TORCH), "steps": -(-n // cfg.batch_size)}

    def batch(self, draws: dict, epoch: int, step: int, opt):
        """Step ``step`` (0-based) of an epoch: sets ``opt``'s learning rate from the step counter and
        returns the batch (inputs, boxes, labels) in the epoch's order, MotionMix applied with
        partners from the training fold only."""
        import torch

        cfg, steps = self.config, draws["steps"]
        factor = lr_factor(cfg.schedule, (epoch - 1) * steps + step, cfg.epochs * steps, cfg.warmup_epochs * steps)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * factor
        idx = draws["order"][step * cfg.batch_size:(step + 1) * cfg.batch_size]
        it = torch.from_numpy(idx).to(self.device)
        xb, bb, yb = self.xtr[it], self.btr[it], self.ytr[it]
        if draws["mix"] is not None:
            xb = draws["mix"](xb, bb, yb, pool=(self.xtr, self.btr, self.ytr_np), index=idx)
        return xb, bb, yb

    def _epoch(self, epoch: int, model, opt, scaler, ema) -> dict:
        """Train one epoch (1-based) in place; its loss and training accuracy. Every random draw
        depends on (seed, fold, epoch), and the learning rate on the step counter only."""
        n = len(self.train_idx)
        draws = self.epoch_draws(epoch)
        _seed_torch(draws["torch_seed"])
        cw = self.cw.to(self.device)
        loss_sum, correct = 0.0, 0
        for step in range(draws["steps"]):
            xb, bb, yb = self.batch(draws, epoch, step, opt)
            with self._autocast():
                out = model(xb / self.scale_t, bb)
            if self.amp_dtype is not None:  # the loss in float32, outside autocast
                out = {**out, "logits": out["logits"].float(),
                       "grain_logits": {k: v.float() for k, v in (out.get("grain_logits") or {}).items()}}
            loss = model.loss(out, yb, cw, label_smoothing=self.config.label_smoothing)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            if ema is not None:
                ema.update_parameters(model)
            loss_sum += float(loss.detach()) * len(yb)
            correct += int((out["logits"].detach().argmax(1) == yb).sum())
        return {"epoch": epoch, "loss": loss_sum / n, "train_accuracy": correct / n}

    def begin(self) -> dict:
        """A fresh network, optimiser, scaler and weight average, continued from the fold's
        checkpoint when an unfinished one is there: ``{"model", "opt", "scaler", "ema", "scored",
        "state", "start", "resumed"}`` (``start``: epochs already done)."""
        model, opt, scaler, ema = self._new()
        state = {"history": [], "test_curve": [], "seconds": 0.0}
        ckpt = self._load(self.folder / "checkpoint.pt", model, opt, scaler, ema)
        start, resumed = 0, None
        if ckpt is not None:
            start = resumed = int(ckpt["epoch"])
            state = {k: ckpt[k] for k in state}
        return {"model": model, "opt": opt, "scaler": scaler, "ema": ema, "state": state, "start": start,
                "resumed": resumed, "scored": ema.module if ema is not None else model}  # scored: the network that predicts

    def end_epoch(self, run: dict, rec: dict, t0: float, stop: Callable[[str, int], bool] | None) -> bool:
        """Book-keeping after an epoch of ``run`` (from :meth:`begin`): the diagnostic test curve,
        the history, the periodic checkpoint, the stop hook (raises :class:`Stopped` after a
        checkpoint). True after the last epoch."""
        cfg, state, epoch = self.config, run["state"], rec["epoch"]
        if cfg.record_test_curve:  # diagnostic only: nothing below reads it
            pred, _ = self.predict(run["scored"])
            state["test_curve"].append(pred.tolist())
            rec["test_accuracy_diagnostic"] = float((pred == self.data.labels[self.test_idx]).mean())
        state["history"].append(rec)
        state["seconds"] = time.perf_counter() - t0
        if epoch == cfg.epochs:
            return True
        parts = (run["model"], run["opt"], run["scaler"], run["ema"])
        saved = epoch % cfg.checkpoint_every == 0
        if saved:
            self._save(self.folder / "checkpoint.pt", *parts, epoch, state)
        if stop is not None and stop(self.subject, epoch):
            if not saved:
                self._save(self.folder / "checkpoint.pt", *parts, epoch, state)
            raise Stopped
        return False

    def finish(self, run: dict, t0: float) -> dict:
        """Predict the held-out subject with the final network (the honest prediction), keep its
        weights (the averaged ones with EMA) and write ``result.json``, which marks the fold done."""
        cfg, state = self.config, run["state"]
        pred, probs = self.predict(run["scored"])
        state["seconds"] = time.perf_counter() - t0
        save_checkpoint(self.folder / "checkpoint.pt", {"model": run["scored"]}, format=RUN_FORMAT, subject=self.subject,
                        epoch=cfg.epochs, final=True)
        truth = self.data.labels[self.test_idx]
        result = {
            "format": RUN_FORMAT, "subject": self.subject, "fold": self.index, "epochs": cfg.epochs,
            "keys": [self.data.keys[i] for i in self.test_idx], "true": truth.tolist(), "pred": pred.tolist(),
            "probs": np.round(probs, 6).tolist(), "accuracy": float((pred == truth).mean()),
            "train_side": self.train_side(), "history": state["history"], "test_curve": state["test_curve"],
            "device": self.env["device"], "scan_backend": self.env["scan_backend"], "amp": self.env["amp"],
            "seconds": round(state["seconds"], 3), "resumed_from_epoch": run["resumed"],
        }
        atomic_write_text(self.folder / "result.json", json.dumps(result) + "\n")  # last: marks the fold done
        return result

    def run(self, progress: bool, stop: Callable[[str, int], bool] | None) -> dict:
        from tqdm.auto import tqdm

        cfg = self.config
        run = self.begin()
        start = run["start"]
        t0 = time.perf_counter() - run["state"]["seconds"]
        bar = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, desc=f"  {self.subject}", unit="epoch",
                   leave=False, disable=not progress)
        run["model"].train()
        try:
            for e in bar:
                rec = self._epoch(e + 1, run["model"], run["opt"], run["scaler"], run["ema"])
                bar.set_postfix(loss=f"{rec['loss']:.3f}", refresh=False)
                if self.end_epoch(run, rec, t0, stop):
                    break
        finally:
            bar.close()
        return self.finish(run, t0)
