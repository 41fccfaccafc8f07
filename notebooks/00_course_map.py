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
# | 02 optical flow with GRU attention | correlation volumes, recurrent refinement, sub-pixel accuracy | ready (pretrained weights not yet shipped) |
# | 03 MotionMix | region mixing between flow maps of one class | ready |
# | 04 Mamba and the selective scan | state-space models, sequential and parallel scans | ready |
# | 05 encoder and RFFS | multi-grain patches, bidirectional Mamba, region fusion | ready |
# | 06 LOSO training | the papermill-parameterised training run | ready |
# | 07 results and efficiency | the paper's tables beside ours | ready |
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
# kernel) are reported as INFO: nothing in the course requires them.

# %%
from hmrm.doctor import run_doctor

status = run_doctor() if CHECK_ENVIRONMENT else 0
assert status == 0, "a required component is missing: see the FAIL lines above"
