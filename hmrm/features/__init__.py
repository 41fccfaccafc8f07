"""From a :class:`~hmrm.data.records.Sample` to the network's input: flow maps and region boxes.

One job per module: :mod:`.pairs` reads what an input is computed from (the aligned crops, the
landmarks, SynthME's exact flow), :mod:`.inputs` turns a pair into the input (the flow of one of
:data:`FLOW_METHODS`, resized, as channels, and the region boxes), :mod:`.cache` keeps every input on
disk and fills it in worker processes (:func:`build_flow_inputs`, what training calls).

For every sample the network sees one picture of motion: the optical flow from the onset frame
to the apex frame of the aligned face, resized to ``size`` x ``size`` and turned into a few
channels. Alongside it come the four region boxes (:data:`hmrm.face.regions.REGION_NAMES`) in the
same input coordinates, which MotionMix (:mod:`hmrm.augment`) and the region fusion of the model
use.

Where the aligned faces come from
---------------------------------
* **SynthME** frames are already 256 px aligned faces; the onset landmarks are stored with the
  ground truth (``gt_flow/<subject>/<sample>.npz``, key ``landmarks_onset``).
* **Licensed sets** are aligned by ``hmrm prepare``, which stores ``onset.png``, ``apex.png`` and
  ``face.json`` (landmarks in crop pixels) per sample; pass its ``--out`` folder as ``prepared``.
  A prepared folder may be given for SynthME too; it then wins over the raw frames.

Choices (the paper gives none of them)
--------------------------------------
* **Flow at full resolution, then resized.** Flow is estimated on the 256 px crop, where the
  motion is 0.5-2 px, and then area-averaged down to ``size``. Displacements are multiplied by the
  resize factor (``size / 256``), so values stay in pixels *of the input*: a 1 px shift at 256 px
  is 0.4375 px at 112. Area averaging also averages out some of the estimator's noise.
* **Default size 112.** 112 = 7 x 16 = 14 x 8, so both patch sizes of the grained encoder divide
  it (7 x 7 coarse and 14 x 14 fine tokens); 128 would give 8 x 8 and 16 x 16, i.e. 31 % more fine
  tokens and scan steps for little more detail than the flow carries once area-averaged.
* **Default channels u, v, optical strain.** Horizontal and vertical displacement keep the
  direction of the motion, strain (:func:`hmrm.flow.optical_strain`) measures local deformation,
  which skin moved by a muscle shows and a rigid head motion does not. This triple is the usual
  input of flow-based micro-expression networks; ``mag`` (the flow magnitude) is available too.
  Derived channels are computed on the resized flow, so strain is that of the flow the network
  sees. No normalisation is applied here: values are pixels (and strain is unitless).
* **Head motion kept, by default.** The paper states that HMRM does not handle global head motion;
  by default the flow goes in as estimated, head motion included, as in the paper. With
  ``head_motion="remove"`` the head's affine motion is subtracted first (:mod:`hmrm.flow.stabilize`;
  what that buys is measured in ``benchmarks/results/beyond_head_motion.md``).

The cache
---------
:class:`FlowCache` (:mod:`.cache`) keeps one ``.npz`` per sample under ``<root>/<method>-s<size>-<channels>-v<N>/
<dataset>-<id of the source folder>/<subject>/<sample>.npz`` (GRU-AOFE's folder also names the
weights, ``gru_aofe-w<sha256[:8]>-...``) holding the input, the boxes, the
sample key and a sha256 of the source files (frames and landmark file). An entry is reused when key and digest match; otherwise
(changed frames, rebuilt SynthME, unreadable file) it is recomputed with a warning naming the
file. Entries are written atomically, so an interrupted :func:`build_flow_inputs` resumes where it
stopped and never leaves half a file. Every entry is computed with one thread
(:func:`hmrm.utils.single_threaded`): GRU-AOFE's convolutions give other last bits on two threads
than on one, and a cache must not depend on which process of how many filled it.
"""

from .cache import FlowCache, build_flow_inputs
from .inputs import (CHANNELS, DEFAULT_CHANNELS, DEFAULT_SIZE, FLOW_METHODS, UPSCALED, estimate_flow, flow_channels,
    flow_input, region_boxes_for, resize_flow)
from .pairs import load_aligned_pair

__all__ = [
    "CHANNELS", "DEFAULT_CHANNELS", "DEFAULT_SIZE", "FLOW_METHODS", "UPSCALED", "FlowCache", "build_flow_inputs",
    "estimate_flow", "flow_channels", "flow_input", "load_aligned_pair", "region_boxes_for", "resize_flow",
]
