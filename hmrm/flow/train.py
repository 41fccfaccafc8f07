"""Pretraining GRU-AOFE on generated pairs: resumable, fixed step budget, atomic checkpoints.

``hmrm flow train --config configs/flow_pretrain.yaml --out runs/flow_pretrain`` trains for
``train.steps`` steps on generated pairs (``data.generator``: ``faces``, :mod:`hmrm.flow.facepairs`, or
``layers``, :mod:`hmrm.flow.synthetic`; pair ``i`` of step ``s`` is always the same, so a resumed run sees
the data an uninterrupted one would). The shipped weights are two such runs: the GRU
(``configs/flow_pretrain.yaml``), then a refinement stage trained on it frozen
(``configs/flow_pretrain_refine.yaml``, ``train.frozen_gru``). Every ``save_every`` steps
``checkpoint.pt`` is replaced atomically (model, optimiser, schedule, step, elapsed time) and a
line is added to ``log.csv``. ``--max-minutes`` stops early with a checkpoint; run the same
command again to continue. At the end ``gru_aofe.pt`` (weights only) and ``gru_aofe.json`` (sha256,
config, steps, wall time, command) are written: copy both into ``hmrm/flow/weights/`` to ship them.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
import yaml

from ..checkpoint import load_checkpoint, save_checkpoint
from ..options import OptionError, Rule, at_least, check_fields, check_value, one_of, positive
from ..utils import atomic_path, atomic_write_text, folder_lock, pick_device, sha256_file
from .classic import METHODS as CLASSIC
from .classic import classic_flow
from .facepairs import FacePairConfig, FacePairDataset
from .gru_aofe import ATTENTION_MODES, GRUAOFE, FlowConfig, flow_loss
from .pretrained import load_pretrained, weight_info
from .synthetic import PairConfig, PairDataset


def _sections() -> dict:
    """The ``data:`` and ``train:`` keys of a pretraining config: (type, accepted values, required)."""
    return {
        "data": {"size": (int, at_least(16), True), "seed": (int, at_least(0), True),
                 "generator": (str, one_of("layers", "faces"), False),
                 "face_share": (float, Rule(low=0, high=1), False), "layered_share": (float, Rule(low=0, high=1), False),
                 "bump_max_px": (float, positive(), False)},
        "train": {"steps": (int, at_least(1), True), "batch": (int, at_least(1), True), "lr": (float, positive(), True),
                  "refine_lr": (float, positive(), False), "refine_max_error": (float, positive(), False),
                  "max_warm_error": (float, at_least(0), False), "harm_weight": (float, at_least(0), False),
                  "harm_from_step": (int, at_least(0), False),
                  "weight_decay": (float, at_least(0), True), "gamma": (float, Rule(low=0, high=1, low_open=True), True),
                  "clip": (float, positive(), True), "save_every": (int, at_least(1), True),
                  "seed": (int, at_least(0), False), "frozen_gru": (str, None, False)},
    }


def check_config(cfg, path: str | Path = "config") -> dict:
    """Check every key and value of a pretraining config (``model:`` against :class:`FlowConfig`);
    a bad one raises :class:`~hmrm.options.OptionError` naming the file and the key."""
    if not isinstance(cfg, dict):
        raise OptionError(f"{path}", "must be a mapping with the sections model:, data:, train:")
    for section in ("model", "data", "train"):
        if not isinstance(cfg.get(section), dict):
            raise OptionError(f"{path}: {section}", "missing section (see configs/flow_pretrain.yaml)")
    for section, keys in _sections().items():
        for key in cfg[section]:
            if key not in keys:
                raise OptionError(f"{path}: {section}.{key}", f"unknown key; known: {', '.join(keys)}")
        for key, (hint, rule, required) in keys.items():
            if key in cfg[section]:
                cfg[section][key] = check_value(f"{path}: {section}.{key}", cfg[section][key], hint, rule)
            elif required:
                raise OptionError(f"{path}: {section}.{key}", "missing (see configs/flow_pretrain.yaml)")
    if cfg["data"]["size"] % 16:
        raise OptionError(f"{path}: data.size", f"must be a multiple of 16 (the encoder's stride), got {cfg['data']['size']}")
    known = {f.name for f in fields(FlowConfig)}
    for key in cfg["model"]:
        if key not in known:
            raise OptionError(f"{path}: model.{key}", f"unknown key; known: {', '.join(sorted(known))}")
    try:
        check_fields(FlowConfig(**cfg["model"]), {
            **{k: at_least(1) for k in ("feature_dim", "hidden", "context", "width", "levels", "radius", "iters",
                                        "refine_hidden")}, "warm_start": one_of(*CLASSIC),
            "attention": one_of(*ATTENTION_MODES), "attention_gain": at_least(0), "attention_temperature": positive(),
            "flow_scale": positive(), "delta_scale": positive()})
    except OptionError as exc:
        raise exc.renamed(f"{path}: model.{exc.key}") from None
    if cfg["train"].get("frozen_gru") and not cfg["model"].get("refine", True):
        raise OptionError(f"{path}: train.frozen_gru", "trains only the refinement stage, so it needs model.refine: true")
    return cfg


def load_config(path: str | Path) -> dict:
    """A pretraining config, every value checked (:func:`check_config`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config {path} not found; the shipped one is configs/flow_pretrain.yaml")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from None
    return check_config(cfg, path)


def warm_starts(f1: torch.Tensor, f2: torch.Tensor, method: str | None) -> torch.Tensor | None:
    """The classical ``method``'s flow for each pair of a batch ((N, 1, H, W) grey frames) as (N, 2, H, W),
    the warm start GRU-AOFE is trained and checked from; None without a method."""
    if not method:
        return None
    flows = [classic_flow(a[0].numpy(), b[0].numpy(), method) for a, b in zip(f1, f2)]
    return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).contiguous()


def pair_dataset(data: dict):
    """The pretraining pairs a config's ``data:`` section asks for: ``generator: layers`` (the default,
    :mod:`hmrm.flow.synthetic`'s layered pairs) or ``faces`` (:mod:`hmrm.flow.facepairs`, with
    ``face_share``, ``layered_share`` and ``bump_max_px``)."""
    if data.get("generator", "layers") == "layers":
        return PairDataset(PairConfig(size=data["size"]), seed=data["seed"])

    extra = {"face_share": data["face_share"]} if "face_share" in data else {}
    if "bump_max_px" in data:  # the largest peak displacement of a local deformation (the smallest stays)
        extra["bump_px"] = (FacePairConfig.bump_px[0], data["bump_max_px"])
    cfg = FacePairConfig(size=data["size"], **extra)
    return FacePairDataset(cfg, seed=data["seed"], layered_share=data.get("layered_share", 0.25))


class StepBatches(torch.utils.data.Dataset):
    """Item ``k`` is the whole batch of step ``k`` (frames, flow, valid, warm start), so data loader
    workers can make batches ahead of the model while a resumed run still sees exactly the data an
    uninterrupted one would."""

    def __init__(self, cfg: dict):
        self.data = pair_dataset(cfg["data"])
        self.batch, self.warm = cfg["train"]["batch"], cfg["model"].get("warm_start")
        self.steps = cfg["train"]["steps"]

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int):
        f1, f2, flow, valid = self.data.batch(step * self.batch, self.batch)
        init = warm_starts(f1, f2, self.warm)
        return f1, f2, flow, valid, (torch.zeros(0) if init is None else init)


def train(cfg: dict, out: str | Path, max_minutes: float | None = None, progress: bool = True, command: str = "",
          device: str = "auto", workers: int = 0) -> dict:
    """Train (or continue) the run in ``out``. ``device``: auto / cpu / cuda; ``workers``: data
    loader processes generating pairs and warm starts ahead of the model (0: in this process).
    Neither changes the data or the maths, so a run may be continued on another device. A second
    process on the same ``out`` is refused while one trains there."""
    with folder_lock(out, "flow training folder"):
        return _train(cfg, Path(out), max_minutes, progress, command, device, workers)


def model_and_optimiser(cfg: dict, dev):
    """A fresh GRU-AOFE (seeded), AdamW with the refinement stage as its own parameter group (a small
    per-pixel MLP: its own, higher learning rate) and the one-cycle schedule. With ``train.frozen_gru``
    (a weights folder) every part but the refinement stage comes from those weights and stays frozen,
    and only a fresh refinement stage trains: the second stage of a two-stage recipe."""
    tr = cfg["train"]
    torch.manual_seed(tr.get("seed", 0))
    model = GRUAOFE(FlowConfig(**cfg["model"])).to(dev)
    if tr.get("frozen_gru"):
        _load_frozen_gru(model, tr["frozen_gru"])
    groups = [] if tr.get("frozen_gru") else [
        {"params": [p for n, p in model.named_parameters() if not n.startswith("refiner.")], "lr": tr["lr"]}]
    if model.refiner is not None:
        groups.append({"params": list(model.refiner.parameters()), "lr": tr.get("refine_lr", tr["lr"])})
    opt = torch.optim.AdamW(groups, lr=tr["lr"], weight_decay=tr["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, [g["lr"] for g in groups], total_steps=tr["steps"] + 1, pct_start=0.05,
                                                anneal_strategy="linear", cycle_momentum=False)
    return model, opt, sched


def _load_frozen_gru(model: GRUAOFE, folder: str) -> None:
    """Every parameter but the refinement stage's from the (sha256-checked) weights in ``folder``, frozen."""
    from dataclasses import asdict

    source = load_pretrained("gru_aofe", folder)
    mine, theirs = asdict(model.config), asdict(source.config)
    differ = [k for k in mine if not k.startswith("refine") and mine[k] != theirs[k]]
    if differ:
        raise ValueError(f"train.frozen_gru: the weights in {folder} were made with another model ({', '.join(differ)} "
                         "differ); give the config's model: section the values of their gru_aofe.json")
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("refiner.")}
    model.load_state_dict(state, strict=False)
    for name, p in model.named_parameters():
        if not name.startswith("refiner."):
            p.requires_grad_(False)


def train_step(model, opt, sched, batch, tr: dict, dev, step: int = 0) -> tuple[float, float, float, float]:
    """One optimiser step on ``batch`` (the run's step number ``step``, counted from 0); the loss and the
    end-point errors of the output, of the GRU before the refinement stage, and of the warm start (NaN
    without one). The "do no harm" term (``train.harm_weight``) counts from step ``train.harm_from_step``
    on: from the first step it holds an untrained GRU at its warm start, whose every correction is
    still a guess (from scratch the GRU never left tuned DIS), so it refines a GRU that has learned."""
    f1, f2, flow, valid, init = batch
    f1, f2, flow, valid = (t.to(dev, non_blocking=True) for t in (f1, f2, flow, valid))
    init = init.to(dev, non_blocking=True) if init.numel() else None
    refined = model.refiner is not None
    preds = model(f1, f2, init)
    harm = tr.get("harm_weight", 0.0) if step >= tr.get("harm_from_step", 0) else 0.0
    loss = flow_loss(preds, flow, valid, tr["gamma"], refined, tr.get("refine_max_error", 1.0), init,
                     tr.get("max_warm_error", 0.0), harm)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), tr["clip"])
    opt.step()
    sched.step()
    with torch.no_grad():
        epe = lambda f: torch.linalg.vector_norm(f - flow, dim=1)[valid].mean().item()  # noqa: E731
        return loss.item(), epe(preds[-1]), epe(preds[-2] if refined else preds[-1]), epe(init) if init is not None else float("nan")


def _write_weights(model, out: Path, cfg: dict, step: int, seconds: float, dev, workers: int, command: str) -> Path:
    """``gru_aofe.pt`` (weights) and ``gru_aofe.json`` (sha256, config, steps, time, machine, command; for a second
    stage also the first stage's sha256, config, steps, time and command)."""
    weights = out / "gru_aofe.pt"
    model.cpu()
    with atomic_path(weights) as part:
        torch.save(model.to_checkpoint(), part)
    meta = {"file": weights.name, "sha256": sha256_file(weights), "config": cfg, "steps": step, "train_seconds": round(seconds),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(dev),
            "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "workers": workers,
            "command": command or " ".join(sys.argv)}
    if cfg["train"].get("frozen_gru"):  # a second stage: the weights record the first stage's recipe too

        first = weight_info("gru_aofe", cfg["train"]["frozen_gru"])
        meta["first_stage"] = {k: first[k] for k in ("sha256", "config", "steps", "train_seconds", "command") if k in first}
    atomic_write_text(out / "gru_aofe.json", json.dumps(meta, indent=1))
    return weights


def _train(cfg: dict, out: Path, max_minutes: float | None, progress: bool, command: str, device: str,
           workers: int) -> dict:
    from tqdm.auto import tqdm

    dev = pick_device(device)
    tr = cfg["train"]
    model, opt, sched = model_and_optimiser(cfg, dev)
    ckpt_path = out / "checkpoint.pt"
    parts = {"model": model, "opt": opt, "sched": sched}

    def same_config(ck: dict) -> None:
        if ck["cfg"] != cfg:
            raise ValueError(f"{ckpt_path} was made with another config; use another --out or delete it")

    ck = load_checkpoint(ckpt_path, parts, dev, check=same_config)
    step, elapsed = (ck["step"], ck["elapsed"]) if ck is not None else (0, 0.0)
    atomic_write_text(out / "config.json", json.dumps(cfg, indent=1))
    loader = torch.utils.data.DataLoader(
        StepBatches(cfg), batch_size=None, sampler=range(step, tr["steps"]), num_workers=workers,
        multiprocessing_context="spawn" if workers else None, prefetch_factor=4 if workers else None,
        pin_memory=dev.type == "cuda")
    log = out / "log.csv"
    if not log.exists():
        log.write_text("step,loss,epe_last,epe_gru,epe_warm_start,seconds\n")
    t_start, running = time.perf_counter(), []
    bar = tqdm(total=tr["steps"], initial=step, desc="GRU-AOFE pretraining", unit="step", disable=not progress)

    def save():
        save_checkpoint(ckpt_path, parts, cfg=cfg, step=step, elapsed=elapsed + time.perf_counter() - t_start)

    model.train()
    for batch in loader:
        running.append(train_step(model, opt, sched, batch, tr, dev, step))
        step += 1
        bar.update()
        bar.set_postfix(loss=f"{running[-1][0]:.3f}", epe=f"{running[-1][1]:.3f}", warm=f"{running[-1][3]:.3f}")
        if step % tr["save_every"] == 0 or step == tr["steps"]:
            lo, ep, epg, ep0 = np.mean(running, axis=0)
            running = []
            with open(log, "a") as f:
                f.write(f"{step},{lo:.5f},{ep:.5f},{epg:.5f},{ep0:.5f},{elapsed + time.perf_counter() - t_start:.1f}\n")
            save()
        if max_minutes is not None and (time.perf_counter() - t_start) > 60 * max_minutes and step < tr["steps"]:
            save()
            bar.close()
            return {"finished": False, "step": step}
    bar.close()
    total = elapsed + time.perf_counter() - t_start
    weights = _write_weights(model, out, cfg, step, total, dev, workers, command)
    return {"finished": True, "step": step, "weights": str(weights), "seconds": total}
