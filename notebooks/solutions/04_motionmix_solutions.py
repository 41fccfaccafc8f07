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
# Parameters (papermill can override these): the same as chapter 04's
SYNTHME_ROOT = ""          # where the tiny SynthME is built; "": the hmrm cache
METHOD = "dis_tuned"       # flow of the inputs: tvl1, farneback, dis, dis_tuned, gru_aofe, gt
SIZE = 112                 # side of the network input
SEED = 0
N_PLANS = 300              # exercise 2: how many plans to draw

# %% [markdown]
# # Solutions · 04 MotionMix
#
# Solutions of the exercises at the end of `notebooks/04_motionmix.ipynb`. Try them there first.
# The first cell rebuilds what the exercises need from the chapter: the inputs, the same-class pair
# `a`, `b` from two different people, and the seam measure of section 3.

# %%
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np

from hmrm.augment import MIX_REGIONS, MotionMix, motionmix
from hmrm.data.synthme import tiny_synthme
from hmrm.face.regions import REGION_NAMES
from hmrm.features import build_flow_inputs

samples = tiny_synthme(SYNTHME_ROOT or None, seed=SEED)
inputs = build_flow_inputs(samples, METHOD, SIZE, progress=False)
labels = inputs.labels
pairs = [(i, j) for i in range(len(samples)) for j in range(len(samples)) if i != j and labels[i] == labels[j]]
a, b = next(((i, j) for i, j in pairs if samples[i].subject != samples[j].subject), pairs[0])
xa, xb, ba, bb = inputs.x[a], inputs.x[b], inputs.boxes[a], inputs.boxes[b]
print(f"a = {samples[a].key}, b = {samples[b].key}, class {samples[a].label}")


from hmrm.augment import seam_jump as seam   # the seam measure of chapter 04, section 3


# %% [markdown]
# ## Exercise 1 · Seams against feather width
#
# *Measure `seam` of the pair `a`, `b` for `feather_px` = 0 (a hard paste), 1, 2, 3, 4, 6 and 8, with
# the partner's head motion kept and matched, and plot both curves. How does the edge jump shrink
# with the width? Does feathering remove the offset between the two drifts, or only spread it?*
#
# `blend="feather"` with `feather_px=0` is a hard paste. Besides the jump at the box edge we measure
# the **total step**: the mean |(u, v)| difference between the pixel just outside each box and the
# first pixel inside where the ramp has reached the partner's value (`feather_px` pixels in; read
# `feather_weights`).

# %%
widths = [0, 1, 2, 3, 4, 6, 8]


def total_step(x, boxes, width, regions=MIX_REGIONS):
    """Mean |(u, v) just outside - (u, v) where the ramp reaches 1| along the left and right box edges."""
    d = int(np.ceil(width))                       # feather_weights reach 1 at d pixels from the edge
    steps = []
    for r in regions:
        x0, y0, x1, y1 = boxes[REGION_NAMES.index(r)]
        if x0 > 0: steps.append(np.abs(x[:2, y0:y1, x0 - 1] - x[:2, y0:y1, x0 + d]).sum(0))
        if x1 < SIZE: steps.append(np.abs(x[:2, y0:y1, x1] - x[:2, y0:y1, x1 - 1 - d]).sum(0))
    return float(np.concatenate(steps).mean())


curves = {}
for head in ("keep", "match"):
    mixes = [motionmix(xa, ba, xb, bb, blend="feather", feather_px=w, head_motion=head,
                       channels=("u", "v", "strain")) for w in widths]
    curves[head] = ([seam(x, ba) for x in mixes], [total_step(x, ba, w) for x, w in zip(mixes, widths)])
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for head, (edge, step) in curves.items():
    axes[0].plot(widths, edge, "o-", label=f"head motion {head}")
    axes[1].plot(widths, step, "o-", label=f"head motion {head}")
axes[0].axhline(seam(xa, ba), color="grey", ls=":", label="unmixed a")
axes[0].set_title("jump across the box edge (seam)"); axes[1].set_title("total step over the ramp")
for ax in axes:
    ax.set_xlabel("feather_px (0 = hard paste)"); ax.set_ylabel("mean |Δ(u, v)| (px)"); ax.legend(fontsize=8)
plt.tight_layout(); plt.show()
for head, (edge, step) in curves.items():
    print(f"head motion {head:<5}: seam " + ", ".join(f"{w} px {e:.3f}" for w, e in zip(widths, edge)))
    print(f"{'':<18} total step " + ", ".join(f"{w} px {s:.3f}" for w, s in zip(widths, step)))
edge_keep = curves["keep"][0]
assert all(e1 >= e2 for e1, e2 in zip(edge_keep, edge_keep[1:])), "a wider ramp gives a smaller edge jump"
assert np.allclose(edge_keep[1], edge_keep[0] / 2, rtol=0.1), "feather_px = 1: the edge pixel takes half the step"

# %% [markdown]
# **Answer.** The edge jump falls like 1 / (`feather_px` + 1): the edge pixel gets the partner's weight
# 1 / (`feather_px` + 1), so the ramp takes the step in `feather_px` + 1 pieces. The total step over
# the ramp shrinks far less (what it loses comes from the motion itself changing over those pixels):
# feathering spreads the offset between the two drifts over more pixels, it does not remove it. Only `head_motion="match"` removes part of the offset
# itself (its curves lie lower); the rest comes from motion that varies over the face.
#
# ## Exercise 2 · How random is `mode="random"`?
#
# *Draw 300 plans with `MotionMix(p=1.0, mode="random", seed=SEED)` and count how often each region
# subset is taken by a mixed sample. How many subsets appear, and why is the subset of all three
# regions about three times as common as each of the others?*

# %%
mm = MotionMix(p=1.0, mode="random", seed=SEED)
counts = Counter()
for _ in range(N_PLANS):
    plan = mm.plan(labels)
    counts.update(plan.regions[i] for i in np.flatnonzero(plan.mixed))
total = sum(counts.values())
for subset, n in counts.most_common():
    print(f"{' + '.join(subset):<32} {n:>5}  {n / total:.3f}")
print(f"{len(counts)} different subsets in {total} mixes")
assert len(counts) == 2 ** len(MIX_REGIONS) - 1
share_all = counts[tuple(MIX_REGIONS)] / total
assert abs(share_all - 1 / 3) < 0.05, share_all

# %% [markdown]
# **Answer.** Three regions have $2^3 - 1 = 7$ non-empty subsets, and all appear. `plan` first draws the *number*
# of regions k uniformly from 1, 2, 3, then k regions. There is one subset of size 3 but three of
# size 1 and three of size 2, so the full set gets probability 1/3 and each other subset
# 1/3 × 1/3 = 1/9: three times less. Drawing a subset uniformly among the 7 would give 1/7 each.
#
# ## Exercise 3 · Mixing the nose too
#
# *Mix `a` with `b` taking `regions=MIX_REGIONS + ("nose",)`, then with the nose first. Where do the
# two results differ, and why? Where would the seams fall? How much more of the input comes
# from `b`?*

# %%
nose_last = motionmix(xa, ba, xb, bb, regions=MIX_REGIONS + ("nose",))
nose_first = motionmix(xa, ba, xb, bb, regions=("nose",) + MIX_REGIONS)


def region_mask(boxes, regions):
    m = np.zeros((SIZE, SIZE), bool)
    for r in regions:
        x0, y0, x1, y1 = boxes[REGION_NAMES.index(r)]
        m[y0:y1, x0:x1] = True
    return m


nose, others = region_mask(ba, ("nose",)), region_mask(ba, MIX_REGIONS)
differ = (nose_last != nose_first).any(0)
print(f"share of the input from b: {others.mean():.1%} without the nose, {(others | nose).mean():.1%} with it")
print(f"pixels where the order matters: {differ.sum()}, all inside nose ∩ (eyes or mouth): "
      f"{bool((differ <= (nose & others)).all())} ({(nose & others).sum()} pixels in the overlap)")
print(f"seam along the nose box edges: {seam(nose_last, ba, ('nose',)):.3f} px (nose last), "
      f"{seam(nose_first, ba, ('nose',)):.3f} px (nose first)")
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
m = np.abs(xa[:2]).max()
for ax, x, title in zip(axes, (nose_last, nose_first), ("v, nose last", "v, nose first")):
    im = ax.imshow(x[1], cmap="coolwarm", vmin=-m, vmax=m); ax.set_title(title, fontsize=9); ax.axis("off")
    plt.colorbar(im, ax=ax, fraction=0.046).set_label("px")
axes[2].imshow(differ, cmap="gray"); axes[2].set_title("where the order matters", fontsize=9); axes[2].axis("off")
plt.tight_layout(); plt.show()
assert differ.any() and (differ <= (nose & others)).all()

# %% [markdown]
# **Answer.** Each region is `b`'s box resized into `a`'s box, and the later one overwrites the earlier where
# boxes overlap. The nose box overlaps the eye and mouth boxes, and `b`'s nose patch is resized with
# another scale than `b`'s eye patch, so the same face pixel of `b` lands in slightly different
# places: the two orders differ exactly in the overlaps. With the nose last, new seams run *through*
# the eye and mouth boxes along the nose box edges (inside the mixed area, between two of `b`'s
# patches); with the nose first, the eye and mouth boxes cut the nose patch. Either way, the nose
# adds the share of the input printed above, and one more set of edges the network never sees at
# test time.
