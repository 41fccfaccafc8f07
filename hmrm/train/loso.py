"""Leave-one-subject-out (LOSO) training and evaluation, resumable and honest by construction.

::

    for each subject s (sorted):                 one fold
        train = every sample of the other subjects, test = the samples of s
        scale         <- per-channel RMS of the training inputs       (training fold only)
        class weights <- inverse class frequency of the training labels (training fold only)
        fresh model and AdamW, seeded from (seed, fold)
        for epoch 1 .. E (fixed, no early stopping):
            shuffle the training fold; MotionMix partners drawn from the training fold
            x / scale -> model -> class-weighted loss -> AdamW step
        predict s with the model of epoch E        <- the only prediction that is scored
    pool the predictions of every fold -> UF1, UAR, accuracy, confusion matrix (hmrm.train.metrics)

Choices (the paper gives none of them beyond AdamW, lr 5e-4 and 1000 epochs)
----------------------------------------------------------------------------
* **Standardisation.** Flows are sub-pixel and strain is smaller still, and the network does not
  normalise its input. Each channel is divided by its root mean square over the training fold
  (no centring: zero motion stays zero, the sign of a displacement is kept). MotionMix runs on
  the raw values, before scaling.
* **No choice looks at the test subject.** The epoch count is fixed; the held-out subject is
  predicted once, after the last epoch. With ``record_test_curve`` the held-out subject is also
  predicted after every epoch (eval mode, no gradient), only to print the "best epoch on test"
  figure other repositories report, labelled as optimistic. Training never reads it, and since
  every random draw is seeded per epoch (below) the trained weights are the same with it on or off.
* **Randomness.** The model's initial weights come from ``(seed, fold)``; the shuffle, the
  MotionMix draws and dropout of epoch ``e`` from ``(seed, fold, e)``. Nothing carries over from one
  epoch to the next but the weights and the optimiser, so a fold resumed from a checkpoint
  continues exactly as it would have run (bit for bit on the CPU; CUDA kernels are not all
  deterministic).
* **Defaults.** AdamW, lr 5e-4 (the paper), weight decay 0.01 (PyTorch's default; the paper gives
  none), batch 32, 100 epochs (the paper trains 1000; a CPU cannot), a constant learning rate,
  no label smoothing, no weight averaging. The recipe options (``schedule``, ``warmup_epochs``,
  ``label_smoothing``, ``ema``; :mod:`hmrm.train.recipe`) change that; the demo's recipe and the
  measurements behind it are in :mod:`hmrm.demo`.
* **Folds in parallel, one thread each.** On a CPU every fold trains with exactly one PyTorch
  thread (:data:`FOLD_THREADS`), and ``workers`` processes train different folds at the same
  time (default: one per CPU core). The small networks of a CPU run spend most of their time in
  small operations that two threads cannot split well, so two folds side by side train about
  twice as many samples per second as one fold on two threads (``benchmarks/train_speed.py``).
  Since a fold always runs on one thread and depends only on (seed, fold), the results are the
  same bits whatever the number of workers. On CUDA the folds run one after the other in the
  calling process.

The run folder
--------------
``config.json`` (the resolved configuration, a fingerprint of the inputs, the device and
selective-scan backend), ``folds/<subject>/checkpoint.pt`` (model, optimiser, epoch, RNG states;
after the last epoch only the final weights), ``folds/<subject>/result.json`` (written last: a fold
with it is done), ``predictions.csv``, ``metrics.json``, ``training.png`` and ``confusion.png``.
Every file is written atomically. Running the same call again skips finished folds and continues
a partial fold from its checkpoint; a folder made with another configuration or other inputs is
refused with a message saying what differs.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..data.records import DataError, Sample
from ..options import OptionError
from ..features import DEFAULT_CHANNELS, DEFAULT_SIZE, METHODS
from ..utils import atomic_path, atomic_write_text, folder_lock, worker_pool
from . import metrics as M

#: Format of the run folder; bumped when its files change meaning.
RUN_FORMAT = 1
#: Config fields that may change between two calls on the same run folder: they do not change
#: what any fold computes (``device`` may change the last bits; a change is warned about and the
#: device of every fold is recorded).
FREE_FIELDS = ("folds", "checkpoint_every", "device")
#: PyTorch threads of a fold trained on the CPU (see the module docstring).
FOLD_THREADS = 1
BEST_EPOCH_NOTE = ("OPTIMISTIC, NOT A RESULT: for each held-out subject the epoch with the highest accuracy on that "
                   "same subject, as some repositories report. It selects on the test data; the honest figure is "
                   "the final epoch's.")
# seed streams: what a random draw is for (see _seed)
_INIT, _SHUFFLE, _MIX, _TORCH = range(4)


class RunMismatchError(DataError):
    """The run folder was made with another configuration or other inputs."""


class _Stopped(Exception):
    """Raised inside a fold when the stop hook asks for a pause (after a checkpoint)."""


# ----------------------------------------------------------------------------- configuration
@dataclass
class LOSOConfig:
    """Everything that defines a LOSO run.

    Model: ``model`` ("hmrm" or "ststnet"), ``ablation`` (a key of :data:`hmrm.model.ABLATIONS`;
    HMRM only), ``model_overrides`` (keyword arguments of the model, e.g. ``{"d_model": 32}``).
    Optimisation: ``epochs`` (fixed), ``batch_size``, ``lr`` (the peak rate), ``weight_decay``
    (AdamW), ``schedule`` ("constant" or "cosine", with ``warmup_epochs`` of linear warm-up),
    ``label_smoothing``, ``ema`` (decay per step of the weight average that predicts; 0 = off);
    see :mod:`hmrm.train.recipe`.
    Augmentation: ``motionmix``, ``motionmix_p``, ``motionmix_options`` (other
    :class:`hmrm.augment.MotionMix` arguments); the ``no_motionmix`` ablation turns it off.
    Inputs: ``flow`` (a method of :data:`hmrm.features.METHODS`), ``input_size``, ``channels``.
    Run: ``seed``, ``device`` ("auto", "cpu", "cuda", "cuda:1" ...), ``amp`` (mixed precision,
    CUDA only; ignored on the CPU), ``checkpoint_every`` (epochs), ``folds`` (train only the first N
    subjects' folds: a quick look, not a full LOSO), ``record_test_curve`` (predict the held-out
    subject after every epoch for the labelled best-epoch-on-test figure; never used in training).
    """

    model: str = "hmrm"
    ablation: str | None = None
    model_overrides: dict = field(default_factory=dict)
    epochs: int = 100
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.01
    schedule: str = "constant"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    ema: float = 0.0
    motionmix: bool = True
    motionmix_p: float = 0.5
    motionmix_options: dict = field(default_factory=dict)
    flow: str = "dis_tuned"
    input_size: int = DEFAULT_SIZE
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    checkpoint_every: int = 5
    folds: int | None = None
    record_test_curve: bool = True

    def __post_init__(self) -> None:
        from ..features import CHANNELS
        from ..model import ABLATIONS, MODELS
        from ..options import at_least, between, check_fields, one_of, positive
        from .recipe import SCHEDULES

        if isinstance(self.model, str):
            self.model = self.model.lower()
        if isinstance(self.channels, list):
            self.channels = tuple(self.channels)
        check_fields(self, {
            "model": one_of(*MODELS), "ablation": one_of(*ABLATIONS), "epochs": at_least(1), "batch_size": at_least(1),
            "lr": positive(), "weight_decay": at_least(0), "schedule": one_of(*SCHEDULES), "warmup_epochs": at_least(0),
            "label_smoothing": between(0, 1, high_open=True), "ema": between(0, 1, high_open=True),
            "motionmix_p": between(0, 1), "flow": one_of(*METHODS), "input_size": at_least(1),
            "channels": one_of(*CHANNELS), "seed": at_least(0), "checkpoint_every": at_least(1), "folds": at_least(1)})
        if not self.channels:
            raise OptionError("channels", f"must name at least one of {', '.join(CHANNELS)}")
        if self.ablation is not None and self.model != "hmrm":
            raise OptionError("ablation", f"applies to HMRM only, not to {self.model!r}")
        if self.warmup_epochs and self.schedule == "constant":
            raise OptionError("warmup_epochs", f"needs schedule 'cosine' (the constant schedule has no warm-up), got "
                                               f"{self.warmup_epochs}")
        if self.warmup_epochs >= self.epochs:
            raise OptionError("warmup_epochs", f"must be less than epochs ({self.epochs}), got {self.warmup_epochs}")
        if not (self.device in ("auto", "cpu") or re.fullmatch(r"cuda(:\d+)?", self.device)):
            raise OptionError("device", f"must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        self._check_model()

    def _check_model(self) -> None:
        """Build the network once on PyTorch's "meta" device (shapes only, no memory, no time), so a
        model option that does not build is refused here, before a run folder records it."""
        import torch

        from ..augment import MotionMix
        from ..options import check_kwargs

        check_kwargs(MotionMix.__init__, self.motionmix_options, prefix="motionmix_options.")
        try:
            MotionMix(p=self.motionmix_p, channels=self.channels, **self.motionmix_options)
        except (TypeError, ValueError) as exc:
            raise OptionError("motionmix_options", f"{self.motionmix_options} are refused by MotionMix: {exc}") from None
        try:
            with torch.device("meta"):
                build_fold_model(self, n_classes=3, in_channels=len(self.channels))
        except OptionError as exc:
            raise exc.renamed("model_overrides." + exc.key.removeprefix("model_overrides.")) from None
        except (TypeError, ValueError) as exc:
            key = "model_overrides" if self.model_overrides else "input_size"
            raise OptionError(key, f"{self.model_overrides or 'the default options'} do not build a {self.model} "
                                   f"network at {self.input_size} px: {exc}") from None

    @property
    def mixes(self) -> bool:
        """Whether training applies MotionMix (off with ``motionmix=False`` or the no_motionmix ablation)."""
        return self.motionmix and self.ablation != "no_motionmix" and self.motionmix_p > 0

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "LOSOConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown LOSOConfig field(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


def _jsonable(obj):
    return json.loads(json.dumps(obj))


# ----------------------------------------------------------------------------- data
@dataclass
class LOSOData:
    """The inputs of a LOSO run, one row per sample: ``x`` (N, C, S, S) float32 flow maps,
    ``boxes`` (N, R, 4) region boxes, ``labels`` (N,) class indices, ``groups`` (the LOSO group,
    ``dataset/subject``), ``keys`` (sample keys), ``classes`` (class names), ``source`` (a free
    description: data set, scheme, flow method ...)."""

    x: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    groups: tuple[str, ...]
    keys: tuple[str, ...]
    classes: tuple[str, ...]
    source: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.x = np.ascontiguousarray(self.x, dtype=np.float32)
        self.boxes = np.ascontiguousarray(self.boxes, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.groups, self.keys, self.classes = tuple(self.groups), tuple(self.keys), tuple(self.classes)
        n = len(self.x)
        if not (len(self.boxes) == len(self.labels) == len(self.groups) == len(self.keys) == n):
            raise ValueError(f"x, boxes, labels, groups and keys must have one row per sample; got {n}, "
                             f"{len(self.boxes)}, {len(self.labels)}, {len(self.groups)}, {len(self.keys)}")
        if self.x.ndim != 4 or self.x.shape[-1] != self.x.shape[-2]:
            raise ValueError(f"x must be (N, C, S, S), got {self.x.shape}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in [0, {len(self.classes)}) for classes {self.classes}")
        if len(set(self.keys)) != n:
            raise ValueError("sample keys must be unique")

    @property
    def subjects(self) -> list[str]:
        """The LOSO groups, sorted: fold ``i`` holds out ``subjects[i]``."""
        return sorted(set(self.groups))

    def fingerprint(self) -> str:
        """sha256 of everything training reads: inputs, boxes, labels, groups, keys, classes."""
        h = hashlib.sha256()
        for arr in (self.x, self.boxes, self.labels):
            h.update(str(arr.shape).encode())
            h.update(arr.tobytes())
        h.update(json.dumps([self.groups, self.keys, self.classes]).encode())
        return h.hexdigest()

    def describe(self) -> dict:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {"fingerprint": self.fingerprint(), "n_samples": len(self.keys), "n_subjects": len(self.subjects),
                "classes": list(self.classes), "class_counts": {c: int(n) for c, n in zip(self.classes, counts)},
                "shape": list(self.x.shape[1:]), **self.source}

    @classmethod
    def from_samples(cls, samples: Sequence[Sample], flow: str = "dis_tuned", size: int = DEFAULT_SIZE,
                     channels: Sequence[str] = DEFAULT_CHANNELS, cache_dir: str | Path | None = None,
                     prepared: str | Path | None = None, classes: Sequence[str] | None = None,
                     progress: bool = True, workers: int = 0) -> "LOSOData":
        """Flow inputs of ``samples`` (computed once and cached by :func:`hmrm.features.build_flow_inputs`,
        missing ones by ``workers`` processes when > 1). ``classes`` default to the scheme of a
        :class:`~hmrm.data.records.SampleSet`."""
        from ..features import build_flow_inputs

        if len(samples) == 0:
            raise DataError("no samples to train on: the data set loaded empty (check --data-root and --scheme)")
        scheme = getattr(samples, "scheme", None)
        if classes is None:
            if scheme is not None:
                classes = scheme.classes
            else:
                names = {s.label_index: s.label for s in samples}
                classes = [names.get(i, str(i)) for i in range(max(names) + 1)]
        fi = build_flow_inputs(samples, method=flow, size=size, cache_dir=cache_dir, channels=channels,
                               prepared=prepared, progress=progress, workers=workers)
        datasets = sorted({s.dataset for s in samples})
        source = {"datasets": datasets, "scheme": getattr(scheme, "name", None), "flow": flow, "size": int(size),
                  "channels": list(channels)}
        return cls(fi.x, fi.boxes, fi.labels, [s.group for s in samples], [s.key for s in samples], classes, source)


def loso_splits(groups: Sequence[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(subject, train_idx, test_idx)`` for every subject in sorted order: test = that subject's
    rows, train = every other row."""
    g = np.asarray(list(groups), dtype=object)
    return [(s, np.flatnonzero(g != s), np.flatnonzero(g == s)) for s in sorted(set(g.tolist()))]


def fold_dirname(subject: str) -> str:
    """Folder name of a fold: the group with ``/`` replaced (``synthme/sub01`` -> ``synthme-sub01``)."""
    return subject.replace("/", "-").replace("\\", "-")


# ----------------------------------------------------------------------------- randomness
def _seed(seed: int, fold: int, epoch: int, stream: int) -> int:
    """A 63-bit seed that depends only on (seed, fold, epoch, stream)."""
    state = np.random.SeedSequence([seed, fold, epoch, stream]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def _seed_torch(value: int) -> None:
    import torch

    torch.manual_seed(value)  # seeds every CUDA device too


# ----------------------------------------------------------------------------- environment
def resolve_environment(config: LOSOConfig) -> dict:
    """The device, selective-scan backend and precision this machine gives ``config``."""
    import torch

    from ..utils import pick_device

    device = pick_device(config.device)
    env = {"device": str(device), "torch": torch.__version__,
           "threads": FOLD_THREADS if device.type == "cpu" else torch.get_num_threads(), "python": sys.version.split()[0]}
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
    if config.model == "hmrm":
        from ..ssm import resolve_backend

        env["scan_backend"] = resolve_backend(config.model_overrides.get("backend", "auto"), device)
    else:
        env["scan_backend"] = None
    if config.amp and device.type == "cuda":
        env["amp"] = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    else:
        env["amp"] = "off" + (" (amp applies to CUDA only)" if config.amp else "")
    return env


def build_fold_model(config: LOSOConfig, n_classes: int, in_channels: int):
    """A fresh network for ``config`` (weights drawn from torch's current RNG)."""
    from ..model import build_model

    over = dict(config.model_overrides)
    fixed = {"n_classes": n_classes, "in_channels": in_channels}
    if config.model == "hmrm":
        fixed.update(input_size=config.input_size, motionmix=config.mixes)
        if config.ablation is not None:
            over["ablation"] = config.ablation
    for k, v in fixed.items():
        if k in over and over[k] != v:
            raise ValueError(f"model override {k}={over[k]!r} contradicts the data / run configuration ({k}={v!r})")
        over[k] = v
    return build_model(config.model, **over)


# ----------------------------------------------------------------------------- run folder
def _config_record(config: LOSOConfig, data: LOSOData, env: dict) -> dict:
    return {"format": RUN_FORMAT, "config": config.to_dict(), "motionmix_applied": config.mixes,
            "data": data.describe(), "environment": env}


def _differences(old: dict, new: dict) -> list[str]:
    diffs = []
    oc, nc = old.get("config", {}), new["config"]
    for k in sorted(set(oc) | set(nc)):
        if k in FREE_FIELDS:
            continue
        if oc.get(k) != nc.get(k):
            diffs.append(f"{k}: {json.dumps(oc.get(k))} there, {json.dumps(nc.get(k))} here")
    od, nd = old.get("data", {}), new["data"]
    if od.get("fingerprint") != nd["fingerprint"]:
        what = [f"{k}: {json.dumps(od.get(k))} there, {json.dumps(nd.get(k))} here"
                for k in ("n_samples", "n_subjects", "classes", "class_counts", "shape", "datasets", "scheme")
                if od.get(k) != nd.get(k)]
        diffs.append("the inputs differ (fingerprint of flow maps, boxes, labels and subjects)"
                     + (f": {'; '.join(what)}" if what else "; same sizes, other values (a rebuilt data set or flow cache?)"))
    if old.get("format") != RUN_FORMAT:
        diffs.append(f"run folder format {old.get('format')} there, {RUN_FORMAT} here")
    return diffs


def _open_run_dir(run_dir: Path, record: dict) -> None:
    path = run_dir / "config.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError as exc:
            raise RunMismatchError(f"{path} is unreadable ({exc}); delete {run_dir} to start over, or pass another "
                                   "run folder.") from None
        diffs = _differences(old, record)
        if diffs:
            raise RunMismatchError(
                f"{run_dir} holds a run made with another configuration:\n  " + "\n  ".join(diffs)
                + f"\nTo continue that run, repeat its options (they are in {path}). To start a new run, pass "
                f"another run folder (--run-dir), or delete {run_dir}.")
        if old.get("environment", {}).get("device") != record["environment"]["device"]:
            warnings.warn(f"{run_dir} was started on {old.get('environment', {}).get('device')} and continues on "
                          f"{record['environment']['device']}; each fold's result.json records where it ran.",
                          stacklevel=3)
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        warnings.warn(f"{path} is unreadable; that fold is trained again.", stacklevel=3)
        return None


# ----------------------------------------------------------------------------- one fold
class _Fold:
    """Training and prediction of one fold; see the module docstring for what it may read."""

    def __init__(self, data: LOSOData, index: int, subject: str, train_idx, test_idx, config: LOSOConfig,
                 env: dict, folder: Path):
        import torch

        from ..model import class_weights

        self.data, self.index, self.subject, self.config, self.env, self.folder = data, index, subject, config, env, folder
        self.device = torch.device(env["device"])
        self.train_idx, self.test_idx = train_idx, test_idx
        dev = self.device
        xtr = data.x[train_idx]
        # everything below is computed from the training fold only
        rms = np.sqrt((xtr.astype(np.float64) ** 2).mean(axis=(0, 2, 3)))
        self.scale = np.where(rms > 0, rms, 1.0).astype(np.float32)
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

        from .recipe import make_ema

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
        import torch

        ckpt = {"format": RUN_FORMAT, "subject": self.subject, "epoch": epoch, "final": False,
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "ema": ema.state_dict() if ema is not None else None,
                "rng": {"torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
                **state}
        with atomic_path(path) as tmp:
            torch.save(ckpt, tmp)

    def _load(self, path: Path, model, opt, scaler, ema) -> dict | None:
        import torch

        if not path.is_file():
            return None
        try:
            ckpt = torch.load(path, map_location=self.device, weights_only=True)
            if ckpt.get("final") or ckpt.get("format") != RUN_FORMAT or ckpt.get("subject") != self.subject:
                raise ValueError("not a checkpoint of an unfinished fold of this run")
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            if scaler is not None and ckpt.get("scaler"):
                scaler.load_state_dict(ckpt["scaler"])
            if ema is not None:
                ema.load_state_dict(ckpt["ema"])
            torch.set_rng_state(ckpt["rng"]["torch"].cpu())
            if ckpt["rng"]["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([s.cpu() for s in ckpt["rng"]["cuda"]])
        except Exception as exc:  # truncated file, other model ...
            warnings.warn(f"checkpoint {path} cannot be resumed ({type(exc).__name__}: {exc}); the fold "
                          f"{self.subject} starts again from epoch 0.", stacklevel=2)
            return None
        return ckpt

    def _epoch(self, epoch: int, model, opt, scaler, ema) -> dict:
        """Train one epoch (1-based) in place; its loss and training accuracy. Every random draw
        depends on (seed, fold, epoch), and the learning rate on the step counter only."""
        import torch

        from ..augment import MotionMix
        from .recipe import lr_factor

        cfg, dev = self.config, self.device
        n, bs = len(self.train_idx), cfg.batch_size
        steps = -(-n // bs)  # optimiser steps per epoch
        order = np.random.default_rng(_seed(cfg.seed, self.index, epoch, _SHUFFLE)).permutation(n)
        mix = MotionMix(p=cfg.motionmix_p, seed=_seed(cfg.seed, self.index, epoch, _MIX), channels=cfg.channels,
                        **cfg.motionmix_options) if cfg.mixes else None
        _seed_torch(_seed(cfg.seed, self.index, epoch, _TORCH))
        cw = self.cw.to(dev)
        loss_sum, correct = 0.0, 0
        for i in range(0, n, bs):
            factor = lr_factor(cfg.schedule, (epoch - 1) * steps + i // bs, cfg.epochs * steps, cfg.warmup_epochs * steps)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * factor
            idx = order[i:i + bs]
            it = torch.from_numpy(idx).to(dev)
            xb, bb, yb = self.xtr[it], self.btr[it], self.ytr[it]
            if mix is not None:  # partners from the training fold only
                xb = mix(xb, bb, yb, pool=(self.xtr, self.btr, self.ytr_np), index=idx)
            with self._autocast():
                out = model(xb / self.scale_t, bb)
            if self.amp_dtype is not None:  # the loss in float32, outside autocast
                out = {**out, "logits": out["logits"].float(),
                       "grain_logits": {k: v.float() for k, v in (out.get("grain_logits") or {}).items()}}
            loss = model.loss(out, yb, cw, label_smoothing=cfg.label_smoothing)
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
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((out["logits"].detach().argmax(1) == yb).sum())
        return {"epoch": epoch, "loss": loss_sum / n, "train_accuracy": correct / n}

    def run(self, progress: bool, stop: Callable[[str, int], bool] | None) -> dict:
        import torch
        from tqdm.auto import tqdm

        cfg = self.config
        ckpt_path = self.folder / "checkpoint.pt"
        model, opt, scaler, ema = self._new()
        scored = ema.module if ema is not None else model  # the network that predicts
        state = {"history": [], "test_curve": [], "seconds": 0.0}
        ckpt = self._load(ckpt_path, model, opt, scaler, ema)
        start, resumed = 0, None
        if ckpt is not None:
            start = resumed = int(ckpt["epoch"])
            state = {k: ckpt[k] for k in state}
        t0 = time.perf_counter() - state["seconds"]
        bar = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, desc=f"  {self.subject}", unit="epoch",
                   leave=False, disable=not progress)
        model.train()
        for e in bar:
            epoch = e + 1
            rec = self._epoch(epoch, model, opt, scaler, ema)
            if cfg.record_test_curve:  # diagnostic only: nothing below reads it
                pred, _ = self.predict(scored)
                state["test_curve"].append(pred.tolist())
                rec["test_accuracy_diagnostic"] = float((pred == self.data.labels[self.test_idx]).mean())
            state["history"].append(rec)
            state["seconds"] = time.perf_counter() - t0
            bar.set_postfix(loss=f"{rec['loss']:.3f}", refresh=False)
            if epoch == cfg.epochs:
                break
            saved = epoch % cfg.checkpoint_every == 0
            if saved:
                self._save(ckpt_path, model, opt, scaler, ema, epoch, state)
            if stop is not None and stop(self.subject, epoch):
                if not saved:
                    self._save(ckpt_path, model, opt, scaler, ema, epoch, state)
                bar.close()
                raise _Stopped
        bar.close()
        pred, probs = self.predict(scored)  # the honest prediction: the final epoch's model
        state["seconds"] = time.perf_counter() - t0
        with atomic_path(ckpt_path) as tmp:  # final weights only (the averaged ones with EMA)
            torch.save({"format": RUN_FORMAT, "subject": self.subject, "epoch": cfg.epochs, "final": True,
                        "model": scored.state_dict()}, tmp)
        truth = self.data.labels[self.test_idx]
        result = {
            "format": RUN_FORMAT, "subject": self.subject, "fold": self.index, "epochs": cfg.epochs,
            "keys": [self.data.keys[i] for i in self.test_idx], "true": truth.tolist(), "pred": pred.tolist(),
            "probs": np.round(probs, 6).tolist(), "accuracy": float((pred == truth).mean()),
            "train_side": self.train_side(), "history": state["history"], "test_curve": state["test_curve"],
            "device": self.env["device"], "scan_backend": self.env["scan_backend"], "amp": self.env["amp"],
            "seconds": round(state["seconds"], 3), "resumed_from_epoch": resumed,
        }
        atomic_write_text(self.folder / "result.json", json.dumps(result) + "\n")  # last: marks the fold done
        return result


# ----------------------------------------------------------------------------- pooling and outputs
def _best_epoch(curve: list[list[int]], truth: list[int]) -> tuple[int, list[int]] | None:
    """Epoch (1-based, earliest on ties) with the highest accuracy on the held-out subject."""
    if not curve:
        return None
    t = np.asarray(truth)
    accs = [float((np.asarray(p) == t).mean()) for p in curve]
    best = int(np.argmax(accs))
    return best + 1, curve[best]


def aggregate(results: Sequence[dict], classes: Sequence[str], n_subjects: int, epochs: int) -> dict:
    """metrics.json from the finished folds' results (see the module docstring)."""
    results = sorted(results, key=lambda r: r["subject"])
    truth = [t for r in results for t in r["true"]]
    pred = [p for r in results for p in r["pred"]]
    groups = [r["subject"] for r in results for _ in r["true"]]
    done = len(results)
    out: dict = {"complete": done == n_subjects, "folds_done": done, "folds_total": n_subjects,
                 "subjects_done": [r["subject"] for r in results], "classes": list(classes), "epochs": epochs}
    if done < n_subjects:
        out["partial_note"] = (f"PARTIAL: {done} of {n_subjects} subjects held out; the scores below pool only these "
                               "folds and are not a full LOSO result.")
    if not results:
        return out
    ev = M.evaluate(truth, pred, classes, groups)
    per_fold = ev.pop("per_fold")
    out["honest"] = {"what": f"predictions of the final epoch ({epochs}) of every fold, pooled (MEGC UF1 / UAR)", **ev}
    if done >= 2:  # how far the score could move with other subjects (hmrm.train.stats)
        from .stats import bootstrap_scores

        out["honest"]["interval"] = bootstrap_scores(truth, pred, groups, len(classes))
    best = {r["subject"]: _best_epoch(r.get("test_curve") or [], r["true"]) for r in results}
    for f in per_fold:
        b = best[f["subject"]]
        f["best_epoch_on_test"] = b[0] if b else None
    out["per_fold"] = per_fold
    out["per_fold_mean"] = {"what": "plain mean of the per-fold scores: a diagnostic, not the MEGC definition",
                            **out["honest"].pop("per_fold_mean")}
    if all(b is not None for b in best.values()):
        bpred = [p for r in results for p in best[r["subject"]][1]]
        s = M.evaluate(truth, bpred, classes)
        out["best_epoch_on_test"] = {"warning": BEST_EPOCH_NOTE, "uf1": s["uf1"], "uar": s["uar"],
                                     "accuracy": s["accuracy"], "confusion": s["confusion"],
                                     "epoch_per_subject": {k: v[0] for k, v in best.items()}}
        n_ep, k = min(len(r["test_curve"]) for r in results), len(classes)
        curve = {"uf1": [], "uar": []}
        t = np.asarray(truth)
        for e in range(n_ep):  # NumPy from the confusion matrix: sklearn per epoch is slow for 1000 epochs
            pe = np.asarray([p for r in results for p in r["test_curve"][e]])
            s = M.scores_from_confusion(np.bincount(t * k + pe, minlength=k * k).reshape(k, k))
            curve["uf1"].append(s["uf1"])
            curve["uar"].append(s["uar"])
        out["test_curve_diagnostic"] = {"warning": "pooled held-out scores at every epoch; for plots only, never for "
                                        "choosing an epoch", **curve}
    else:
        out["best_epoch_on_test"] = None
    return out


def _predictions_csv(results: Sequence[dict], classes: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", "subject", "fold", "true", "predicted", "true_index", "predicted_index",
                *[f"p_{c}" for c in classes]])
    for r in sorted(results, key=lambda r: r["subject"]):
        for key, t, p, pr in zip(r["keys"], r["true"], r["pred"], r["probs"]):
            w.writerow([key, r["subject"], r["fold"], classes[t], classes[p], t, p, *[f"{v:.6f}" for v in pr]])
    return buf.getvalue()


def _write_outputs(run_dir: Path, results: list[dict], data: LOSOData, config: LOSOConfig, figures: bool) -> dict:
    metrics = aggregate(results, data.classes, len(data.subjects), config.epochs)
    atomic_write_text(run_dir / "predictions.csv", _predictions_csv(results, data.classes))
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if figures and results:
        from ..viz.plots import plot_confusion, plot_training

        h = metrics["honest"]
        name = config.model + (f" ({config.ablation})" if config.ablation else "")
        scope = "" if metrics["complete"] else f", PARTIAL {metrics['folds_done']}/{metrics['folds_total']} subjects"
        title = f"{name}, flow {config.flow}, epoch {config.epochs}: UF1 {h['uf1']:.3f}, UAR {h['uar']:.3f}{scope}"
        plot_confusion(h["confusion"], data.classes, title, run_dir / "confusion.png")
        curve = metrics.get("test_curve_diagnostic")
        plot_training({r["subject"]: [e["loss"] for e in r["history"]] for r in results},
                      {k: curve[k] for k in ("uf1", "uar")} if curve else None, h["uf1"], title,
                      run_dir / "training.png")
    return metrics


# ----------------------------------------------------------------------------- the harness
@dataclass
class LOSOResult:
    """What :func:`run_loso` returns: ``metrics`` (the content of metrics.json), ``finished`` (every
    fold asked for is done; False after a stop), ``complete`` (every subject of the data is done: a
    full LOSO), ``run_dir``."""

    run_dir: Path
    metrics: dict
    finished: bool

    @property
    def complete(self) -> bool:
        return bool(self.metrics.get("complete"))

    def table(self) -> str:
        return format_metrics(self.metrics)


def format_metrics(metrics: dict) -> str:
    """The metrics table the CLI prints: honest pooled scores, the labelled best-epoch-on-test
    figure, and one line per fold."""
    lines = []
    if not metrics.get("folds_done"):
        return "no fold finished yet"
    if not metrics["complete"]:
        lines.append(metrics["partial_note"])
    h = metrics["honest"]
    lines += [f"{'':48s} {'UF1':>7s} {'UAR':>7s} {'acc':>7s} {'n':>5s}",
              f"{'honest: final epoch, pooled over folds':48s} {h['uf1']:7.4f} {h['uar']:7.4f} {h['accuracy']:7.4f} {h['n']:5d}"]
    ci = h.get("interval")
    if ci:
        lines.append(f"{'  95% interval over subjects (bootstrap)':48s} [{ci['uf1'][0]:.2f}, {ci['uf1'][1]:.2f}] "
                     f"[{ci['uar'][0]:.2f}, {ci['uar'][1]:.2f}]")
    b = metrics.get("best_epoch_on_test")
    if b:
        lines.append(f"{'best epoch on test (optimistic, NOT a result)':48s} {b['uf1']:7.4f} {b['uar']:7.4f} "
                     f"{b['accuracy']:7.4f} {h['n']:5d}")
    pm = metrics["per_fold_mean"]
    lines.append(f"{'mean of per-fold scores (not MEGC)':48s} {pm['uf1']:7.4f} {pm['uar']:7.4f} {pm['accuracy']:7.4f}")
    lines.append("")
    lines.append("confusion (rows true, columns predicted): " + ", ".join(h["classes"]))
    for name, row in zip(h["classes"], h["confusion"]):
        lines.append(f"  {name:>12s} " + " ".join(f"{v:5d}" for v in row))
    lines.append("")
    lines.append(f"{'subject':24s} {'n':>4s} {'acc':>7s} {'UF1':>7s} {'UAR':>7s}  best epoch on test")
    for f in metrics["per_fold"]:
        be = f["best_epoch_on_test"]
        lines.append(f"{f['subject']:24s} {f['n']:4d} {f['accuracy']:7.4f} {f['uf1']:7.4f} {f['uar']:7.4f}  "
                     + ("-" if be is None else str(be)))
    if b:
        lines.append("")
        lines.append("best epoch on test: " + b["warning"])
    return "\n".join(lines)


# ----------------------------------------------------------------------------- folds in worker processes
def _folds_in_workers(todo: list, n_workers: int, data: LOSOData, config: LOSOConfig, env: dict, run_dir: Path,
                      results: dict, deadline: float | None, bar) -> bool:
    """Train the folds of ``todo`` in ``n_workers`` spawned processes, adding each result to
    ``results`` (and the run folder's pooled files) as it arrives. False if one stopped at the
    deadline."""
    from concurrent.futures import FIRST_COMPLETED, wait

    finished = True
    with worker_pool(n_workers, _worker_init, (data, config, env, run_dir)) as pool:
        running = {pool.submit(_worker_fold, index, subject, train_idx, test_idx, deadline): subject
                   for index, subject, train_idx, test_idx in todo}
        try:
            while running:
                bar.set_postfix(training=",".join(sorted(running.values())[:n_workers]), refresh=True)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: running[f]):
                    subject = running.pop(future)
                    if future.cancelled():
                        continue
                    result = future.result()  # a fold's error is raised here, naming what went wrong
                    if result is None:  # past the deadline: folds that have not started stay to do
                        finished = False
                        for other in running:
                            other.cancel()
                        continue
                    results[subject] = result
                    _write_outputs(run_dir, list(results.values()), data, config, figures=False)
                    bar.update(1)
        except BaseException:
            for future in running:
                future.cancel()
            raise
    return finished



_WORKER: dict = {}


def _worker_init(data: LOSOData, config: LOSOConfig, env: dict, run_dir: Path) -> None:
    import torch

    torch.set_num_threads(FOLD_THREADS)
    _WORKER.update(data=data, config=config, env=env, run_dir=run_dir)


def _worker_fold(index: int, subject: str, train_idx, test_idx, deadline: float | None) -> dict | None:
    """Train one fold in a worker process; None when it stopped at the deadline (after a checkpoint)."""
    w = _WORKER
    fold = _Fold(w["data"], index, subject, train_idx, test_idx, w["config"], w["env"],
                 w["run_dir"] / "folds" / fold_dirname(subject))
    try:
        return fold.run(False, None if deadline is None else lambda *_: time.time() > deadline)
    except _Stopped:
        return None


def cpu_cores() -> int:
    """The CPU cores this process may use."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def fold_workers(requested: int | None, device: str, n_folds: int) -> int:
    """How many processes train folds: ``requested`` (None: one per CPU core), at most one per fold,
    and 1 (the calling process) on CUDA."""
    if not device.startswith("cpu") or n_folds < 2:
        return 1
    return max(1, min(requested or cpu_cores(), n_folds))


@contextlib.contextmanager
def _fold_threads():
    """Within the block, PyTorch uses :data:`FOLD_THREADS` threads (the number every fold trains with)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(FOLD_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_loso(samples_or_inputs, config: LOSOConfig, run_dir: str | Path, progress: bool = True,
             stop: Callable[[str, int], bool] | None = None, max_minutes: float | None = None,
             cache_dir: str | Path | None = None, prepared: str | Path | None = None,
             figures: bool = True, workers: int | None = 1) -> LOSOResult:
    """Run (or continue) a LOSO evaluation into ``run_dir`` and return its scores.

    ``samples_or_inputs``: a list of :class:`~hmrm.data.records.Sample` (their flow inputs are built
    with ``config.flow`` / ``input_size`` / ``channels``, cached under ``cache_dir``, from the crops in
    ``prepared`` for the licensed sets) or a :class:`LOSOData`. ``stop(subject, epoch)`` is asked after
    every epoch but a fold's last (after that epoch's periodic checkpoint, if any); True writes a
    checkpoint and returns (``finished=False``); ``max_minutes`` stops the
    same way once that much time has passed. Calling again with the same arguments continues.
    ``figures``: also draw ``training.png`` and ``confusion.png`` at the end. ``workers``: processes
    that train folds side by side on a CPU (1: every fold in the calling process; None: one per
    core; see the module docstring; the results do not depend on it). A ``stop`` hook runs every
    fold in the calling process.
    """
    if isinstance(samples_or_inputs, LOSOData):
        data = samples_or_inputs
        if data.x.shape[-1] != config.input_size:
            raise ValueError(f"the inputs are {data.x.shape[-1]} px but config.input_size is {config.input_size}")
        if data.source.get("flow") not in (None, config.flow):
            raise ValueError(f"the inputs were made with flow {data.source['flow']!r} but config.flow is {config.flow!r}")
    else:
        data = LOSOData.from_samples(samples_or_inputs, config.flow, config.input_size, config.channels,
                                     cache_dir=cache_dir, prepared=prepared, progress=progress)
    if data.x.shape[1] != len(config.channels):
        raise ValueError(f"the inputs have {data.x.shape[1]} channels but config.channels names {len(config.channels)}")
    try:  # before the run folder records the configuration
        build_fold_model(config, len(data.classes), data.x.shape[1])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the model options {config.model_overrides} do not build a {config.model} network: {exc}") from None
    run_dir = Path(run_dir)
    env = resolve_environment(config)
    with folder_lock(run_dir, "run folder"):  # one writer at a time; a second process is refused
        return _train_run(data, config, env, run_dir, progress, stop, max_minutes, figures, workers)


def _train_run(data: LOSOData, config: LOSOConfig, env: dict, run_dir: Path, progress: bool, stop, max_minutes,
               figures: bool, workers) -> LOSOResult:
    """The body of :func:`run_loso` once its inputs are checked and the run folder is locked."""
    _open_run_dir(run_dir, _config_record(config, data, env))
    from tqdm.auto import tqdm

    splits = loso_splits(data.groups)
    chosen = splits[: config.folds] if config.folds else splits
    results: dict[str, dict] = {}
    for subject, _, test_idx in splits:  # every finished fold in the folder counts, chosen or not
        r = _read_json(run_dir / "folds" / fold_dirname(subject) / "result.json")
        if r is not None and r.get("format") == RUN_FORMAT and r.get("keys") == [data.keys[i] for i in test_idx]:
            results[subject] = r
    deadline = None if max_minutes is None else time.monotonic() + 60 * max_minutes

    def halt(subject: str, epoch: int) -> bool:
        return (stop is not None and stop(subject, epoch)) or (deadline is not None and time.monotonic() > deadline)

    todo = [(i, *chosen[i]) for i in range(len(chosen)) if chosen[i][0] not in results]
    bar = tqdm(total=len(chosen), initial=len(chosen) - len(todo), desc="LOSO folds", unit="fold", disable=not progress)
    n_workers = 1 if stop is not None else fold_workers(workers, env["device"], len(todo))
    if n_workers > 1:
        finished = _folds_in_workers(todo, n_workers, data, config, env, run_dir, results,
                                     None if max_minutes is None else time.time() + 60 * max_minutes, bar)
    else:
        finished = True
        with _fold_threads() if env["device"] == "cpu" else contextlib.nullcontext():
            for index, subject, train_idx, test_idx in todo:
                bar.set_postfix(subject=subject, refresh=True)
                fold = _Fold(data, index, subject, train_idx, test_idx, config, env,
                             run_dir / "folds" / fold_dirname(subject))
                try:
                    results[subject] = fold.run(progress, halt)
                except _Stopped:
                    finished = False
                    break
                _write_outputs(run_dir, list(results.values()), data, config, figures=False)
                bar.update(1)
    bar.close()
    metrics = _write_outputs(run_dir, list(results.values()), data, config, figures=figures)
    return LOSOResult(run_dir, metrics, finished)


def read_run(run_dir: str | Path) -> LOSOResult:
    """The scores of a run folder as written (no training)."""
    run_dir = Path(run_dir)
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise DataError(f"{path} is missing: {run_dir} is not a LOSO run folder, or no fold has finished yet.")
    metrics = json.loads(path.read_text())
    return LOSOResult(run_dir, metrics, metrics.get("complete", False))
