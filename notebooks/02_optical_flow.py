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
SYNTHME_ROOT = ""          # a SynthME build; "": build the tiny preset into the hmrm cache
PAIRS = 6                  # SynthME pairs for the comparison table
METHODS = "zero,farneback,dis,dis_tuned,tvl1,gru_aofe"   # gru_aofe: the shipped weights (chapter 03)
SEED = 0

# %% [markdown]
# # 02 · Optical flow on faces
#
# HMRM does not look at pixels; it looks at **motion** between the onset and the apex frame. This
# chapter measures that motion with the classical estimators, scores each one against the exact flow
# that SynthME knows, shows what a recogniser is given (u, v, magnitude, optical strain), and gives you
# an explorer to look at flow yourself. Chapter 03 builds the learned estimator HMRM describes.
#
# **Brightness constancy.** Optical flow assumes a point keeps its brightness as it moves:
# $I_1(x) = I_2(x + F(x))$. Linearised, $I_x u + I_y v + I_t = 0$: one equation, two unknowns
# (the *aperture problem*), so every method adds a prior: smoothness (TV-L1, Farnebäck's local
# polynomials), patches (DIS), or what a network has learned.
#
# **Why micro-expressions are hard.** Apex motion is 0.1-2 px on a 256 px face, on smooth skin
# with few edges, under sensor noise of the same size as the signal's intensity change, and on top
# of head motion. Errors of 0.1 px matter.
#
# **Words this chapter uses.** *End-point error* (EPE): the length, in pixels, of the difference
# between an estimated and the true flow vector, here averaged over the face. *Backward warping*:
# building frame 1 again by reading frame 2 at $x + F(x)$ for every pixel $x$ (`hmrm.flow.warp_array`);
# with the true flow, brightness constancy says the result is frame 1.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from hmrm.data.synthme import load_frame, load_gt_flow, tiny_synthme
from hmrm.features import estimate_flow
from hmrm.flow import classic_flow, endpoint_error, flow_features, warp_array
from hmrm.flow.classic import to_grey
from hmrm.viz import add_flow_wheel, flow_to_color

samples = tiny_synthme(SYNTHME_ROOT or None, seed=SEED)   # 2 subjects x 4 clips, built once into the cache
print(samples.summary())

# %% [markdown]
# ## 1. Classical methods on exact ground truth
#
# SynthME knows the true flow of every pixel, so we can score each method in pixels on the face.
# `hmrm.flow.classic` documents each method's parameters; `dis_tuned` is DIS run down to full
# resolution with variational refinement, the strongest classical method we measured on faces.
# `gru_aofe` is the learned estimator of chapter 03, with the weights the project ships; `zero` (no
# motion at all) is the floor every method must beat.
#
# Look closely at the table before you trust it: these few pairs come from two subjects whose photos
# are sharp and well textured, where tuned DIS is already very accurate, and on them GRU-AOFE need
# not beat tuned DIS (the line under the table says which is ahead in your run). Over all SynthME
# subjects GRU-AOFE is ahead on average (chapter 03 ends with the benchmark's table, per subject too):
# it wins on the subjects where DIS errs most and loses on these two. One or two subjects never settle
# a comparison.

# %%
methods = [m.strip() for m in METHODS.split(",")]
rows = {m: [] for m in methods}
times = {m: [] for m in methods}
for m in set(methods) - {"zero"}:  # one untimed call each first: loading a model is not estimating
    estimate_flow(load_frame(samples[0].onset_path), load_frame(samples[0].apex_path), m)
for s in samples[:PAIRS]:
    a, b, g = load_frame(s.onset_path), load_frame(s.apex_path), load_gt_flow(s)
    for m in methods:
        t0 = time.perf_counter()
        f = np.zeros_like(g["flow"]) if m == "zero" else estimate_flow(a, b, m)
        times[m].append(time.perf_counter() - t0)
        rows[m].append(endpoint_error(f, g["flow"], g["face_mask"]))
print(f"{'method':<10} {'face EPE (px)':>14} {'ms / pair':>10}")
for m in methods:
    print(f"{m:<10} {np.mean(rows[m]):>14.3f} {1e3 * np.mean(times[m]):>10.1f}")
if {"gru_aofe", "dis_tuned"} <= set(methods):
    gru, dis = np.mean(rows["gru_aofe"]), np.mean(rows["dis_tuned"])
    print(f"on these {len(rows['dis_tuned'])} pairs GRU-AOFE is {'ahead of' if gru < dis else 'behind'} tuned DIS by "
          f"{100 * abs(gru - dis) / dis:.0f} % ({gru:.3f} vs {dis:.3f} px)")
assert np.mean(rows["dis_tuned"]) < np.mean(rows["zero"])

# %% [markdown]
# ## 2. What a recogniser sees
#
# A flow field is drawn as colour: the hue says the direction, the saturation the length (the wheel in
# the corner is the key). A recogniser is given more than the two components: `flow_features` adds the
# magnitude and the *optical strain*, how much the flow stretches or shears the skin locally (from the
# flow's spatial derivatives, so a rigid shift of the whole face has none). Below, ground truth and
# tuned DIS on the first pair, and the features of tuned DIS.

# %%
s = samples[0]
a, b, g = load_frame(s.onset_path), load_frame(s.apex_path), load_gt_flow(s)
face = g["face_mask"]
f = classic_flow(a, b, "dis_tuned")
feats = flow_features(f)   # u, v, magnitude, optical strain: what a recogniser sees
fig, axes = plt.subplots(1, 5, figsize=(17, 3.2), layout="constrained")
for ax, flow, name in ((axes[0], g["flow"], "ground truth"), (axes[1], f, "tuned DIS")):
    ax.imshow(flow_to_color(flow, 2.0)); ax.set_title(f"{name} (2 px = full colour)", fontsize=9)
    add_flow_wheel(ax, 2.0)
u_lim = float(np.abs(feats[0]).max())
for ax, k, name, unit in zip(axes[2:], (0, 2, 3), ("u (horizontal flow)", "magnitude", "optical strain"), ("px", "px", "px/px")):
    scale = dict(cmap="RdBu_r", vmin=-u_lim, vmax=u_lim) if k == 0 else dict(cmap="magma")
    im = ax.imshow(feats[k], **scale); ax.set_title(f"{name} of tuned DIS", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label=unit)
for ax in axes: ax.axis("off")
plt.show()

# %% [markdown]
# ## 3. Explore
#
# Pick a clip and a method, scrub the frame from onset to offset, switch the view, toggle the
# regions. At the apex the ground truth and the EPE appear. (In a static rendering of this notebook
# the controls do nothing; run it.)

# %%
from hmrm.viz.widgets import flow_explorer

explorer = flow_explorer(samples[:4], methods=("gru_aofe", "dis_tuned", "farneback", "dis"))
explorer

# %% [markdown]
# ## Check yourself
#
# Brightness constancy, tested on the first pair: backward-warping the apex frame by the true flow must
# give back the onset frame, so on the face the grey-level difference to the onset must shrink well
# below the difference between the two frames as they are. The next cell asserts that it drops to at most
# 70 % of it (what is left is mostly the sensor noise of both frames, which no warp can remove).
#
# Break it on purpose: warp with `-g["flow"]` instead of `g["flow"]` (the flow read the wrong way
# round). The motion is then doubled instead of undone and the assertion fails.

# %%
grey_a, grey_b = to_grey(a).astype(np.float32), to_grey(b).astype(np.float32)
unwarped = float(np.abs(grey_b - grey_a)[face].mean())
warped = float(np.abs(warp_array(grey_b, g["flow"]) - grey_a)[face].mean())
print(f"mean |apex - onset| on the face: {unwarped:.3f} grey levels as recorded, {warped:.3f} after warping "
      f"the apex back by the true flow")
assert warped < 0.7 * unwarped, "warping by the true flow should undo most of the difference between the frames"
print(f"self-check passed: the true flow explains {100 * (1 - warped / unwarped):.0f} % of the frame difference")

# %% [markdown]
# ## Exercises
#
# 1. **Which DIS setting matters below a pixel?** `hmrm.flow.classic.DIS_TUNED` lists the settings
#    that make `dis_tuned`, and `classic_flow(a, b, "dis_tuned", patch_size=12)` overrides one. On the
#    `PAIRS` SynthME pairs of section 1, change one setting at a time (finest scale, patch size and
#    stride, gradient-descent and variational-refinement iterations) and rank them by how much the
#    face EPE changes.
# 2. **Blinks.** Some clips of the tiny SynthME have an eye blink at onset or apex (`s.meta["blink"]`).
#    In the explorer (`flow_explorer(samples)` to offer every clip, not just the first four), or with
#    `estimate_flow`, compare each method's error on the eyes with its error on the rest of the face.
#    What does each method do with a blink?
# 3. **How much does a frame's brightness matter?** Multiply the apex frame by 1.05 (a light that got
#    5 % brighter between onset and apex, clipped to 0..255) and score `farneback`, `dis_tuned` and
#    `tvl1` on the first pair again. Which assumption of this chapter breaks, and which method suffers
#    most?
#
# The solutions are in `notebooks/solutions/02_optical_flow_solutions.ipynb`: open it after you have
# tried.
