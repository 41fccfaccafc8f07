"""SynthME: synthetic micro-expressions rendered from real face photographs, with exact
ground-truth optical flow.

How a clip is made
------------------
1. A bank photo is aligned (eyes on the template of a ``size`` crop). The photo is pre-scaled so
   that the alignment has unit scale; what is left is a rotation and a translation.
2. A set of action units (AUs) chosen by the clip's emotion becomes a dense displacement field
   over the face (:mod:`hmrm.data.au`), scaled so that its peak is ``peak_px`` pixels (0.5-2 px by
   default: micro intensity) and made asymmetric between the two sides.
3. For every frame ``t`` the face point at reference position ``x`` sits at
   ``Rigid_t(x + a_t * AU(x) + b_t * Blink(x))``: ``a_t`` is the onset -> apex -> offset profile,
   ``b_t`` a random eye blink, ``Rigid_t`` a slow head motion (translation, rotation, scale) of the
   same order as the expression itself.
4. Every frame, the onset included, is rendered in one resampling step from the pre-scaled photo
   (the motion is inverted by a fixed-point iteration), so no frame is sharper than another.
   Illumination drift and sensor noise are added last.
5. The ground-truth forward flow onset -> apex is computed from the same motion model for every
   pixel: warping the apex frame by it gives back the onset frame (noise and lighting aside).

On disk the set looks like a real data set: ``frames/<subject>/<sample>/img001.png ...``, one
``annotations.csv`` (subject, sample, onset, apex, offset, emotion, action units), the flows in
``gt_flow/<subject>/<sample>.npz``, and a ``manifest.json`` describing how it was made.

One job per module: :mod:`.config` (how a build is configured), :mod:`.faces` (the bank's photos
made ready), :mod:`.specs` (what each clip will be), :mod:`.render` (one clip and its exact flow),
:mod:`.build` (the folder on disk, by worker processes), :mod:`.load` (reading it back).
"""
from __future__ import annotations

from .build import build_synthme
from .config import PRESETS, SYNTHME_FLAGS, SynthConfig, rebuild_command
from .faces import RenderFace, prepare_bank_faces
from .load import load_frame, load_gt_flow, load_synthme, tiny_synthme
from .render import ClipMotion, render_clip, resample_photo, sample_field, temporal_profile
from .specs import ClipSpec, class_counts, make_specs, subject_id

__all__ = [
    "ClipMotion", "ClipSpec", "PRESETS", "RenderFace", "SYNTHME_FLAGS", "SynthConfig", "build_synthme",
    "class_counts", "load_frame", "load_gt_flow", "load_synthme", "make_specs", "prepare_bank_faces",
    "rebuild_command", "render_clip", "resample_photo", "sample_field", "subject_id", "temporal_profile",
    "tiny_synthme",
]
