"""Optical flow: warping, errors and flow features (:mod:`.ops`), classical estimators
(:mod:`.classic`); the learned GRU-AOFE estimator arrives with chapter 03."""
from .classic import METHODS as CLASSIC_METHODS
from .classic import classic_flow
from .ops import angular_error, backward_warp, endpoint_error, flow_features, optical_strain, warp_array

__all__ = ["CLASSIC_METHODS", "angular_error", "backward_warp", "classic_flow", "endpoint_error", "flow_features",
           "optical_strain", "warp_array"]
