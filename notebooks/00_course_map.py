# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
# Parameters (papermill can override these)
CHECK_ENVIRONMENT = True
SELF_CHECK_PHOTO = "obama_2"   # the face-bank photo of the self-check
SHIFT_PX = (0.5, -0.3)         # (dx, dy) motion the self-check makes and measures, in pixels

# %% [markdown]
# # 00 · Course map
#
# This course rebuilds **HMRM** (Guo et al., 2025), a micro-expression recognition network, from
# its parts, and evaluates it honestly. Every chapter explains one idea, runs in a few minutes on a
# laptop CPU with its default parameters, and imports the real code from the `hmrm` package, which
# is tested on its own.
#
# **What a micro-expression is.** A brief (under half a second), low-intensity facial movement that
# leaks an emotion someone tries to hide. At the resolution of the data sets (faces of 150-300 px)
# the motion between the *onset* frame (neutral) and the *apex* frame (peak) is often below one
# pixel. Recognising it is mostly a question of measuring tiny motion well, and of not fooling
# yourself with a small, imbalanced data set.
#
# ## The data flow, one module per arrow
#
# ```
# raw frames or a SynthME clip
#   -> hmrm.face      detect (MTCNN) -> 68 landmarks (dlib) -> similarity alignment -> crop + regions
#   -> hmrm.flow      onset -> apex optical flow (GRU-AOFE, or TV-L1 / Farneback / DIS)
#   -> hmrm.augment   MotionMix (training folds only)
#   -> hmrm.model     grained patches -> bidirectional Mamba encoder -> region fusion (RFFS) -> heads
#   -> hmrm.train     leave-one-subject-out (LOSO) -> pooled predictions -> UF1 / UAR
# ```
#
# ## Chapters
#
# | chapter | idea | status |
# | --- | --- | --- |
# | 00 course map | this page, and a check of your installation | ready |
# | 01 faces and SynthME | face alignment, facial regions, action units, the synthetic data set with exact flow | ready |
# | 02 optical flow on faces | brightness constancy, classical estimators scored on exact motion, flow features, an explorer | ready |
# | 03 GRU-AOFE | correlation volumes, the attention-guided GRU, the refinement stage, training, the benchmark, and which part earns the gain | ready (trained weights ship in `hmrm/flow/weights/gru_aofe.pt`) |
# | 04 MotionMix | region mixing between flow maps of one class | ready |
# | 05 the selective scan | state-space models, sequential, parallel and fused scans | ready |
# | 06 the bidirectional Mamba block | the block around the scan, both directions over image patches | ready |
# | 07 encoder and RFFS | multi-grain patches, the convolutional stem of the demo's network, the grained Mamba encoder, region fusion | ready |
# | 08 LOSO training | leave-one-subject-out training, the recipe field by field, honest scores | ready |
# | 09 results and efficiency | what the evidence says: every committed comparison with its verdict, your runs beside the paper's figures, efficiency | ready |
# | 10 beyond the paper | the paper's named limits measured on SynthME: calibrated confidence, explanations checked against true action units, the cost of an estimated apex, head-motion compensation, small faces and a resolution-aware flow | ready |
#
# Every chapter that builds a part of HMRM ends with a box, **the paper says / this course chose**:
# what the paper specifies, what it leaves open and we chose, why, and what each choice measured,
# read from the committed results (`hmrm.choices`). The paper's own record is `docs/paper.md`.
#
# ## Data
#
# The licensed data sets (CASME II, SAMM, SMIC-HS) cannot be downloaded without a licence. The course
# therefore ships **SynthME**: micro-expressions rendered from real face photographs, with the exact
# motion known for every pixel. Chapter 01 shows how it is made.
#
# ## Is your installation complete?
#
# `hmrm doctor` (also `make doctor`) checks every component. Optional parts (CUDA, the mamba-ssm
# kernel) are reported as INFO: nothing in the course requires them. It also checks the GRU-AOFE
# weights that ship with the package (`hmrm/flow/weights/gru_aofe.pt`, with their sha256, training
# command and time in `gru_aofe.json` beside them); the cell after it prints that record.

# %%
from hmrm.doctor import run_doctor

status = run_doctor() if CHECK_ENVIRONMENT else 0
assert status == 0, "a required component is missing: see the FAIL lines above"

# %%
from hmrm.flow.pretrained import weight_info

info = weight_info("gru_aofe")
print(f"shipped GRU-AOFE weights: {info['file']}, sha256 {info['sha256'][:12]}..., {info['steps']} training steps "
      f"in {info['train_seconds'] / 60:.0f} min on {info['device']}\n  made by: {info['command']}")

# %% [markdown]
# ## Check yourself
#
# The whole course is about motion below one pixel, so the check of this chapter asks whether your
# installation can measure one. The next cell aligns a face-bank photo (as chapter 01 explains),
# moves it by `SHIFT_PX` pixels with `hmrm.flow.warp_array` (bicubic resampling), measures the motion
# back with tuned DIS (`classic_flow(face, moved, "dis_tuned")`, chapter 02) and asserts that the
# median measured vector is within 0.05 px of the true one. The figure shows how little changes in
# the image (the colour bar is in grey levels), and the measured flow coloured by the wheel in its corner.
#
# Break it on purpose: swap the two frames, `classic_flow(moved, face, "dis_tuned")`, and run it
# again. Flow is measured *from* the first frame *to* the second; swapped, it points the other way
# and the assertion fails.

# %%
import matplotlib.pyplot as plt
import numpy as np

from hmrm.data import facebank
from hmrm.data.synthme import prepare_bank_faces
from hmrm.face import align_face
from hmrm.flow import classic_flow, warp_array
from hmrm.flow.classic import to_grey
from hmrm.viz import add_flow_wheel, flow_to_color

photo = next(p for p in facebank.fetch_face_bank(verbose=False) if p.photo.photo_id == SELF_CHECK_PHOTO)
landmarks = prepare_bank_faces([photo], verbose=False)[0].landmarks   # 68 points, cached beside the photo
face = to_grey(align_face(facebank.load_photo(photo), landmarks, size=256).image).astype(np.float32)
shift = np.broadcast_to(np.asarray(SHIFT_PX, np.float32), face.shape + (2,))
moved = warp_array(face, -shift)      # moved(x) = face(x - shift): the content moves by +shift
flow = classic_flow(face, moved, "dis_tuned")
measured = np.median(flow[32:-32, 32:-32].reshape(-1, 2), axis=0)   # away from the border

fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
axes[0].imshow(face, cmap="gray"); axes[0].set_title("aligned face")
im = axes[1].imshow(np.abs(moved - face), cmap="magma")
axes[1].set_title(f"|moved - face|, shift {SHIFT_PX} px"); fig.colorbar(im, ax=axes[1], fraction=0.046, label="grey levels")
axes[2].imshow(flow_to_color(flow, max_mag=1.0)); axes[2].set_title("measured flow (1 px = full colour)")
add_flow_wheel(axes[2], 1.0)   # the colour key: hue = direction, the rim = 1 px
for ax in axes:
    ax.axis("off")
plt.show()

error = np.abs(measured - np.asarray(SHIFT_PX))
assert error.max() < 0.05, f"measured {measured.round(3)} px for a true motion of {SHIFT_PX} px"
print(f"self-check passed: a motion of {SHIFT_PX} px measured as ({measured[0]:.3f}, {measured[1]:.3f}) px, "
      f"error at most {error.max():.3f} px")

# %% [markdown]
# ## Exercises
#
# 1. **How small a motion can you measure?** Repeat the check with shifts of 0.05, 0.1, 0.25, 0.5, 1
#    and 2 px (horizontal), with tuned DIS and with Farnebäck, and plot the measured against the true
#    shift. Then add sensor noise of 2 grey levels (independently to each frame, as SynthME does) and
#    repeat. Below which shift does the relative error of tuned DIS pass 20 %?
# 2. **The shipped weights.** Read `weight_info("gru_aofe")`, check the file's sha256 yourself
#    (`hmrm.utils.sha256_file`), load the model with `hmrm.flow.pretrained.load_pretrained()`, count
#    its parameters, and measure the self-check's shift with it (`model.estimate(face, moved)`): is it
#    closer to `SHIFT_PX` than tuned DIS on this noise-free pair?
#
# The solutions are in `notebooks/solutions/00_course_map_solutions.ipynb`: open it after you have tried.
