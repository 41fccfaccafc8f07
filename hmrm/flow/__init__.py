"""Optical flow: warping and error measures (:mod:`.ops`); flow estimators arrive with later chapters."""
from .ops import backward_warp, endpoint_error, warp_array

__all__ = ["backward_warp", "endpoint_error", "warp_array"]
