"""Augmentation of flow inputs: MotionMix (:mod:`.motionmix`), applied to training folds only."""
from .motionmix import MIX_REGIONS, MotionMix, feather_weights, grow_boxes, motionmix, resize_patch, seam_jump

__all__ = ["MIX_REGIONS", "MotionMix", "feather_weights", "grow_boxes", "motionmix", "resize_patch", "seam_jump"]
