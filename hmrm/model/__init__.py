"""HMRM's recognition network and its baselines.

* :mod:`hmrm.model.encoder` - the grained (bidirectional) Mamba encoder;
* :mod:`hmrm.model.rffs` - region tokens of every grain fused by self-attention;
* :mod:`hmrm.model.loss` - class weights and the multi-scale weighted cross-entropy;
* :mod:`hmrm.model.hmrm` - ``HMRMConfig`` and ``HMRM``, with the ablation switches;
* :mod:`hmrm.model.baselines` - STSTNet.

``build_model("hmrm", **overrides)`` or ``build_model("ststnet")`` builds a network;
``ABLATIONS`` maps each ablation of the paper's study to its ``HMRMConfig`` overrides::

    build_model("hmrm", **ABLATIONS["single_grain"])
"""
from __future__ import annotations

from torch import nn

from ..options import at_least, check_kwargs
from .baselines import STSTNet
from .encoder import GrainedMambaEncoder, PatchEmbed
from .hmrm import HMRM, HMRMConfig, count_parameters
from .loss import class_weights, multiscale_loss
from .rffs import RFFS, pool_regions, region_token_mask

#: ablation name -> HMRMConfig overrides. "no_motionmix" builds the same network as "full": MotionMix
#: runs in the data pipeline, and the training configuration turns it off for this ablation
#: (:attr:`hmrm.train.loso.LOSOConfig.mixes`).
ABLATIONS: dict[str, dict] = {
    "full": {},
    "no_motionmix": {},
    "single_grain": {"patch_sizes": (8,)},
    "unidirectional": {"bidirectional": False},
    "no_rffs": {"rffs": False},
    "plain_ce": {"loss": "plain"},
}

MODELS = ("hmrm", "ststnet")


def build_model(name: str = "hmrm", **cfg) -> nn.Module:
    """Build ``"hmrm"`` (keywords: :class:`HMRMConfig` fields; ``ablation="no_rffs"`` applies one of
    :data:`ABLATIONS` first) or ``"ststnet"`` (keywords: :class:`STSTNet` arguments)."""
    key = name.lower()
    if key == "hmrm":
        ablation = cfg.pop("ablation", None)
        if ablation is not None:
            if ablation not in ABLATIONS:
                raise ValueError(f"unknown ablation {ablation!r}; choose one of {', '.join(ABLATIONS)}")
            cfg = {**ABLATIONS[ablation], **cfg}
        return HMRM(HMRMConfig().replace(**cfg))
    if key == "ststnet":
        rules = {"in_channels": at_least(1), "n_classes": at_least(2), "input_size": at_least(1), "filters": at_least(1)}
        return STSTNet(**check_kwargs(STSTNet.__init__, cfg, rules))
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


__all__ = [
    "ABLATIONS", "HMRM", "HMRMConfig", "MODELS", "RFFS", "GrainedMambaEncoder", "PatchEmbed", "STSTNet",
    "build_model", "class_weights", "count_parameters", "multiscale_loss", "pool_regions", "region_token_mask",
]
