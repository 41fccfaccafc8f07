"""The configuration of a LOSO run (:class:`LOSOConfig`, every field checked when it is made), the
network it builds for a fold, and the device, scan backend and precision this machine gives it."""
from __future__ import annotations

import json
import re
import sys
from dataclasses import MISSING, asdict, dataclass, field, fields

from ...augment import MotionMix
from ...features import CHANNELS, DEFAULT_CHANNELS, DEFAULT_SIZE, FLOW_METHODS
from ...flow.stabilize import HEAD_MOTION
from ...model import ABLATIONS, MODELS, build_model
from ...options import OptionError, at_least, between, check_fields, check_kwargs, one_of, positive
from ...ssm import resolve_backend
from ...utils import pick_device
from ..recipe import MODEL_KEYS, SCHEDULES, default_warmup

#: PyTorch threads of a fold trained on the CPU (see the package docstring).
FOLD_THREADS = 1


#: The largest input side a run accepts. Flow is measured on aligned faces of 256 px (prepared crops
#: of the licensed sets are no larger by default), so a larger input only interpolates, and the
#: network's activations grow with its square: 100000 px would ask for terabytes.
MAX_INPUT_SIZE = 1024


def _flag(group: str, help: str, default=MISSING, *, factory=MISSING, **cli):
    """A :class:`LOSOConfig` field that ``hmrm loso`` sets with a flag: its group of the ``--help``, its help
    text, its default (or ``factory``), and how the flag differs from ``--<field>`` (``flag``, ``invert``
    for a ``--no-...`` switch, ``kind="set"`` for ``--set KEY=VALUE``, ``cli_default``)."""
    meta = {"group": group, "help": help, **cli}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


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
    Inputs: ``flow`` (a method of :data:`hmrm.features.FLOW_METHODS`), ``input_size``, ``channels``,
    ``head_motion`` ("keep", or "remove": subtract the head's affine motion from every flow first;
    :mod:`hmrm.flow.stabilize`).
    Run: ``seed``, ``device`` ("auto", "cpu", "cuda", "cuda:1" ...), ``amp`` (mixed precision,
    CUDA only; ignored on the CPU), ``checkpoint_every`` (epochs), ``folds`` (train only the first N
    subjects' folds: a quick look, not a full LOSO), ``record_test_curve`` (predict the held-out
    subject after every epoch for the labelled best-epoch-on-test figure; never used in training).

    Each field made with :func:`_flag` is a flag of ``hmrm loso``, generated from the field: its help
    text and group, its type, its choices (:meth:`rules`) and its default, so a new field with a help
    text appears on the command line without being typed twice.
    """

    model: str = _flag("model", "network", "hmrm")
    ablation: str | None = _flag("model", "HMRM ablation of the paper's study (default: none, the full network)", None)
    model_overrides: dict = _flag("model", "model option, repeatable, e.g. --set d_model=32 --set depth=1 --set "
                                  "'patch_sizes=(8,)'", factory=dict, flag="--set", kind="set")
    epochs: int = _flag("training", "epochs per fold, fixed (no early stopping; the paper trains 1000)", 100)
    batch_size: int = _flag("training", "training batch size", 32)
    lr: float = _flag("training", "AdamW (peak) learning rate (default: the paper's)", 5e-4)
    weight_decay: float = _flag("training", "AdamW weight decay", 0.01)
    schedule: str = _flag("training", "learning-rate schedule: constant, or linear warm-up then cosine decay to zero",
                          "constant")
    warmup_epochs: int = _flag("training", "epochs of linear warm-up (cosine schedule only; default: a tenth of the "
                               "epochs)", 0, cli_default=None)
    label_smoothing: float = _flag("training", "label smoothing of the cross-entropy (0 = off)", 0.0)
    ema: float = _flag("training", "decay per step of the weight average that predicts the held-out subject (0 = off, "
                       "e.g. 0.99)", 0.0)
    motionmix: bool = _flag("training", "train without MotionMix", True, flag="--no-motionmix", invert=True)
    motionmix_p: float = _flag("training", "probability that a training sample is mixed", 0.5)
    motionmix_options: dict = field(default_factory=dict)
    flow: str = _flag("data", "optical flow onset->apex (gt: SynthME's exact flow; gru_aofe: the shipped network)",
                      "dis_tuned")
    input_size: int = _flag("data", "side of the flow maps the network sees", DEFAULT_SIZE)
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    head_motion: str = _flag("data", "remove: subtract the head's affine motion (fitted on stable face pixels) from "
                             "every flow", "keep")
    seed: int = _flag("training", "seed of weights, shuffles, MotionMix and dropout (default: 0)", 0)
    device: str = _flag("run", "auto (CUDA when available), cpu, cuda or cuda:N", "auto")
    amp: bool = _flag("run", "mixed precision on CUDA (bfloat16 where supported); ignored on the CPU", False)
    checkpoint_every: int = _flag("run", "write a resumable checkpoint every N epochs", 5)
    folds: int | None = _flag("run", "train only the first N subjects' folds: a quick look, NOT a full LOSO (the output "
                              "says so)", None)
    record_test_curve: bool = _flag("run", "do not predict the held-out subject after every epoch (then no "
                                    "best-epoch-on-test figure)", True, flag="--no-test-curve", invert=True)

    @classmethod
    def rules(cls) -> dict:
        """The accepted values of each field beyond its type (:mod:`hmrm.options`); the command line reads
        its choices from here."""
        return {
            "model": one_of(*MODELS), "ablation": one_of(*ABLATIONS), "epochs": at_least(1), "batch_size": at_least(1),
            "lr": positive(), "weight_decay": at_least(0), "schedule": one_of(*SCHEDULES), "warmup_epochs": at_least(0),
            "label_smoothing": between(0, 1, high_open=True), "ema": between(0, 1, high_open=True),
            "motionmix_p": between(0, 1), "flow": one_of(*FLOW_METHODS), "input_size": between(1, MAX_INPUT_SIZE),
            "channels": one_of(*CHANNELS), "head_motion": one_of(*HEAD_MOTION), "seed": at_least(0),
            "checkpoint_every": at_least(1), "folds": at_least(1)}

    def __post_init__(self) -> None:
        if isinstance(self.model, str):
            self.model = self.model.lower()
        if isinstance(self.channels, list):
            self.channels = tuple(self.channels)
        check_fields(self, self.rules())
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
    def field_defaults(cls) -> dict:
        """Every field that has a default, with it: what ``hmrm loso`` shows and uses, and what a field
        added after a run folder was made reads as there."""
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def _jsonable(obj):
    return json.loads(json.dumps(obj))


def resolve_environment(config: LOSOConfig) -> dict:
    """The device, selective-scan backend and precision this machine gives ``config``."""
    import torch

    device = pick_device(config.device)
    env = {"device": str(device), "torch": torch.__version__,
           "threads": FOLD_THREADS if device.type == "cpu" else torch.get_num_threads(), "python": sys.version.split()[0]}
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
    if config.model == "hmrm":
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
    over = dict(config.model_overrides)
    fixed = {"n_classes": n_classes, "in_channels": in_channels}
    if config.model == "hmrm":
        fixed.update(input_size=config.input_size)
        if config.ablation is not None:
            over["ablation"] = config.ablation
    for k, v in fixed.items():
        if k in over and over[k] != v:
            raise ValueError(f"model override {k}={over[k]!r} contradicts the data / run configuration ({k}={v!r})")
        over[k] = v
    return build_model(config.model, **over)


def recipe_config(model: str, recipe: dict, flow: str, input_size: int, **fields):
    """The :class:`LOSOConfig` of a recipe: a flat dict of training choices
    (``lr``, ``schedule``, ``weight_decay``, ``label_smoothing``, ``ema``, ``motionmix_p``,
    ``epochs``) and model options (:data:`hmrm.train.recipe.MODEL_KEYS`). A cosine schedule warms up over the first
    tenth of the epochs. ``fields`` adds other LOSOConfig fields (``seed``, ``device`` ...)."""
    over = {k: v for k, v in recipe.items() if k in MODEL_KEYS}
    rest = {k: v for k, v in recipe.items() if k not in MODEL_KEYS}
    warmup = default_warmup(rest["epochs"], rest.get("schedule", "constant"))
    return LOSOConfig(model=model, flow=flow, input_size=input_size, model_overrides=over, warmup_epochs=warmup,
                      **rest, **fields)
