# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
# Parameters (papermill can override these)
SYNTHME_ROOT = ""          # where the tiny SynthME is built; "": the hmrm cache
METHOD = "dis_tuned"       # flow of the inputs: tvl1, farneback, dis, dis_tuned, gru_aofe, gt
SIZE = 112                 # side of the network input (the encoder's patch sizes 8 and 16 divide it)
P = 0.5                    # MotionMix: probability that a training sample is mixed
MODE = "all"               # "all": every listed region from the partner; "random": a random subset per draw
FEATHER_PX = 3             # width of the soft edge of blend "feather", in input pixels
SEED = 0

# %% [markdown]
# # 04 · MotionMix: new training samples from the motion of two faces
#
# **Why augment at all.** Micro-expression data sets are tiny. CASME II has 247 clips (the HMRM paper's count; its coding sheet lists 255, chapter 01), SAMM 159,
# SMIC-HS 164; the MEGC2019 composite set has 442 clips of 68 people (250 negative, 109 positive,
# 83 surprise). A network with a few million weights sees each training clip hundreds of times and
# soon memorises faces instead of learning motion. The usual image augmentations help little on
# flow maps: colour jitter has no meaning for a displacement field, crops and rotations move the
# anatomy the alignment worked to fix, and a horizontal flip must also negate `u` and swap the
# subject's sides to stay a valid flow. MixUp and CutMix blend two samples *and their labels*, which
# invents in-between emotions that do not exist.
#
# **The idea of MotionMix.** A micro-expression is made of a few local movements: brows and lids
# (action units 1, 2, 4, 5, 7), lips (10, 12, 14, 15, 17, 20, 25). An *action unit* (AU) is one
# numbered movement of the Facial Action Coding System, e.g. AU12 pulls the lip corners up. Faces are aligned and landmarked,
# so we know where each person's eyes and mouth are. Two clips of the **same class** can lend each
# other their eye or mouth motion: one person's raised brows with another person's lip corners is
# still a plausible clip of that class, and its label is exact. HMRM describes it in one line:
# *landmark-guided patch mixing of the eye and mouth regions between two flow maps of the same
# class*. The rest (how regions are chosen, sizes, edges, probability) is ours to choose; this chapter
# shows our choices and checks them.
#
# You will:
# 1. turn SynthME clips into network inputs (u, v and optical strain at the input size), with a
#    disk cache;
# 2. see the regions on the flow;
# 3. read `motionmix` and mix a same-class pair, with hard and feathered edges;
# 4. check the invariants numerically (the same ones `tests/test_motionmix.py` tests);
# 5. mix a whole batch the way training does, and compare with what the paper says.

# %%
import inspect
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from hmrm.augment import MIX_REGIONS, MotionMix, motionmix, resize_patch
from hmrm.choices import choices_markdown
from hmrm.data.synthme import load_frame, load_gt_flow, tiny_synthme
from hmrm.face.regions import REGION_NAMES
from hmrm.features import build_flow_inputs
from hmrm.viz import add_flow_wheel, draw_regions, flow_to_color

samples = tiny_synthme(SYNTHME_ROOT or None, seed=SEED)   # 2 subjects x 4 clips, built once into the cache
print(samples.summary())

# %% [markdown]
# ## 1. From a clip to a network input
#
# `hmrm.features` computes, for every sample, the flow from the onset to the apex frame on the
# 256 px aligned face, where the motion is 0.5-2 px, and only then shrinks it to `SIZE` by area
# averaging. A displacement of 1 px at 256 px is `SIZE / 256` px at the input size, so the values are
# multiplied by that factor. Three channels are kept: horizontal and vertical motion `u`, `v`, and
# **optical strain**, the size of the local deformation $\sqrt{\epsilon_{xx}^2 + \epsilon_{yy}^2 + 2\epsilon_{xy}^2}$:
# skin pulled by a muscle deforms, a head that moves as a whole does not.
#
# `build_flow_inputs` computes each sample once and keeps it in a cache keyed by method, size,
# channels and sample (and a hash of the source files); a second call only reads. We build the
# inputs twice: with `METHOD`, and with SynthME's exact flow (`"gt"`) to see what the estimator
# loses. The loss is measured as the **end-point error** (EPE): the length of the difference between
# the estimated and the true displacement vector, averaged over the pixels.

# %%
t0 = time.perf_counter()
inputs = build_flow_inputs(samples, METHOD, SIZE, progress=False)
t1 = time.perf_counter()
inputs = build_flow_inputs(samples, METHOD, SIZE, progress=False)   # again: read from the cache
t2 = time.perf_counter()
exact = build_flow_inputs(samples, "gt", SIZE, progress=False)
print(f"x {inputs.x.shape}, boxes {inputs.boxes.shape}, labels {inputs.labels.tolist()}")
print(f"first call {t1 - t0:.2f} s (computes what the cache lacks), second call {t2 - t1:.2f} s (reads only)")
epe = np.sqrt(((inputs.x[:, :2] - exact.x[:, :2]) ** 2).sum(1)).mean()
print(f"{METHOD} vs exact flow at {SIZE} px: mean end-point error {epe:.3f} px "
      f"(mean true motion {np.sqrt((exact.x[:, :2] ** 2).sum(1)).mean():.3f} px)")

# self-check: the exact input is the ground truth shrunk to SIZE, values scaled by SIZE / 256
g = load_gt_flow(samples[0])["flow"]
assert np.isclose(exact.x[0, 0].mean(), g[..., 0].mean() * SIZE / g.shape[1], atol=2e-3)


# %% [markdown]
# How to read the pictures: a flow picture codes the direction of motion as a hue (the colour wheel in
# its corner: the colour at each angle of the wheel is motion in that direction) and the speed as
# saturation (white: still; full colour: the speed named in the title). The scalar maps `u`, `v`
# (in input pixels) and strain (pixels of displacement per pixel, px/px) carry a colour bar.

# %%
def show_flow(ax, flow, title, max_mag=None):
    """One (H, W, 2) flow as colour, with its wheel; full colour = max_mag px (default: the largest speed)."""
    m = max_mag or float(np.sqrt((flow ** 2).sum(-1)).max())
    ax.imshow(flow_to_color(flow, m)); add_flow_wheel(ax, round(float(m), 2), size=0.22)
    ax.set_title(f"{title}\nfull colour = {m:.2f} px", fontsize=8); ax.axis("off")


def show_input(ax_row, x, title, max_mag=None):
    """Flow colour, u, v and strain of one (C, S, S) input."""
    m = max_mag or np.abs(x[:2]).max()
    show_flow(ax_row[0], np.moveaxis(x[:2], 0, -1), title, m)
    for ax, k, name in zip(ax_row[1:], (0, 1), ("u", "v")):
        im = ax.imshow(x[k], cmap="coolwarm", vmin=-m, vmax=m); ax.set_title(name, fontsize=8)
        plt.colorbar(im, ax=ax, fraction=0.046, pad=0.02).set_label("px", fontsize=7)
    im = ax_row[3].imshow(x[2], cmap="magma"); ax_row[3].set_title("optical strain", fontsize=8)
    plt.colorbar(im, ax=ax_row[3], fraction=0.046, pad=0.02).set_label("px/px", fontsize=7)
    for ax in ax_row[1:]: ax.axis("off")

show = [int(np.flatnonzero(inputs.labels == c)[0]) for c in np.unique(inputs.labels)]  # one clip per class
fig, axes = plt.subplots(len(show), 6, figsize=(15, 2.6 * len(show)))
for row, i in zip(axes, show):
    s = samples[i]
    row[0].imshow(load_frame(s.onset_path)); row[0].set_title(f"{s.sample_id} onset\n{s.label} ({s.aus})", fontsize=8)
    row[0].axis("off")
    show_flow(row[1], np.moveaxis(exact.x[i, :2], 0, -1), "exact flow")
    show_input(row[2:], inputs.x[i], f"{METHOD} flow, {SIZE} px")
plt.tight_layout(); plt.show()

# %% [markdown]
# The whole face drifts a little (SynthME's head motion, as in real recordings); the expression
# sits on top of it in a few places. Strain ignores the drift and lights up where skin deforms.
#
# ## 2. The regions, on the flow
#
# The region boxes come from the onset landmarks (`hmrm.face.regions`), scaled to the input size:
# each eye box holds the eye *and its brow*, the mouth box the outer lips with a margin. The nose
# box overlaps both; MotionMix does not use it. The eye boxes never reach the mouth box; where
# the two brows nearly meet, the two eye boxes can share a column or two (then the region listed later
# wins).

# %%
fig, axes = plt.subplots(1, len(show), figsize=(3.2 * len(show), 3.4))
for ax, i in zip(axes, show):
    show_flow(ax, np.moveaxis(inputs.x[i, :2], 0, -1), f"{samples[i].sample_id} ({samples[i].label})")
    draw_regions(ax, dict(zip(REGION_NAMES, inputs.boxes[i].tolist())))
plt.tight_layout(); plt.show()

def overlap(b1, b2):
    return max(0, min(b1[2], b2[2]) - max(b1[0], b2[0])) * max(0, min(b1[3], b2[3]) - max(b1[1], b2[1]))

R, L, M = (REGION_NAMES.index(r) for r in ("right_eye", "left_eye", "mouth"))
assert all(overlap(b[R], b[M]) == 0 and overlap(b[L], b[M]) == 0 for b in inputs.boxes)
eyes = [overlap(b[R], b[L]) / ((b[R][2] - b[R][0]) * (b[R][3] - b[R][1])) for b in inputs.boxes]
print(f"eye boxes vs mouth box: no overlap; right vs left eye box: at most {max(eyes):.1%} of a box shared")
print("box sizes (w x h) of sample 0:", {n: f"{b[2] - b[0]}x{b[3] - b[1]}" for n, b in zip(REGION_NAMES, inputs.boxes[0])})

# %% [markdown]
# Look at where the motion is and where the boxes are. The boxes are tight: lip corners pulled down
# (AU15) or cheeks raised (AU6) move skin just outside the mouth and eye boxes, and raised brows
# reach above the eye boxes. Mixing by these boxes therefore cuts some movements in two. `grow`
# (a fraction of the box size added on every side) lets you enlarge them; we keep 0, the boxes the
# region fusion of the network uses too.
#
# ## 3. MotionMix on a pair
#
# This is the whole operation on one sample `a` and its partner `b`. For each region the partner's
# box is resized to `a`'s box (bilinear; displacement values are *not* rescaled, because both faces
# are aligned to the same eye distance, so a pixel is the same length on both: a box size
# difference is anatomy, not zoom) and written over it, or blended in with weights that ramp from
# the box edge inwards (`blend="feather"`). With `head_motion="match"` the partner's global drift
# (the median `u`, `v` of its whole map) is first replaced by the sample's own, so only its *local*
# motion moves over. (The input checks and that drift shift are two small helpers beside it in
# `hmrm/augment/motionmix.py`.)

# %%
print(inspect.getsource(motionmix))

# %%
# a same-class pair from two different people
labels = inputs.labels
pairs = [(i, j) for i in range(len(samples)) for j in range(len(samples)) if i != j and labels[i] == labels[j]]
a, b = next(((i, j) for i, j in pairs if samples[i].subject != samples[j].subject), pairs[0])
print(f"a = {samples[a].key} ({samples[a].emotion}, AUs {samples[a].aus})")
print(f"b = {samples[b].key} ({samples[b].emotion}, AUs {samples[b].aus}), same class: {samples[a].label}")
xa, xb, ba, bb = inputs.x[a], inputs.x[b], inputs.boxes[a], inputs.boxes[b]
hard = motionmix(xa, ba, xb, bb)
soft = motionmix(xa, ba, xb, bb, blend="feather", feather_px=FEATHER_PX)
matched = motionmix(xa, ba, xb, bb, head_motion="match", channels=("u", "v", "strain"))

m = np.abs(np.concatenate([xa[:2], xb[:2]])).max()
fig, axes = plt.subplots(5, 4, figsize=(12, 14))
for row, x, title in zip(axes, (xa, xb, hard, soft, matched),
                         ("a (before)", "partner b", "a mixed, hard", f"a mixed, feather {FEATHER_PX} px",
                          "a mixed, head motion matched")):
    show_input(row, x, title, m)
for name, box in zip(REGION_NAMES, ba):
    if name in MIX_REGIONS:
        for k in (2, 3, 4):
            draw_regions(axes[k, 0], {name: box}, labels=False)
for name, box in zip(REGION_NAMES, bb):
    if name in MIX_REGIONS:
        draw_regions(axes[1, 0], {name: box}, labels=False)
plt.tight_layout(); plt.show()


# %% [markdown]
# When the two clips drift differently, a hard paste leaves boxes of offset flow: a seam the
# network never sees at test time. We measure the seam as the mean jump of `(u, v)` across the box
# edges (between the pixel just inside and its neighbour just outside), next to the same jumps in the
# unmixed map. Matching the drift removes part of it; what is left comes from head rotation (a
# drift that varies over the face, which one median cannot remove) and from movements that the box
# edges cut. Feathering does not remove a seam, it spreads it over `FEATHER_PX` pixels, so its edge
# jump is small by construction.

# %%
from hmrm.augment import seam_jump

print(inspect.getsource(seam_jump))   # the measure, as the package defines it
seam = seam_jump

for name, x in (("unmixed a", xa), ("hard", hard), ("feather", soft), ("head motion matched", matched),
                ("matched + feather", motionmix(xa, ba, xb, bb, blend="feather", feather_px=FEATHER_PX,
                                                head_motion="match", channels=("u", "v", "strain")))):
    print(f"{name:<22} seam {seam(x, ba):.3f} px")

# %% [markdown]
# ## 4. The invariants, in numbers
#
# What must hold for every mix, and what `tests/test_motionmix.py` checks on random and SynthME
# inputs:
#
# * every pixel outside the mixed boxes is **bit for bit** the sample's own;
# * inside, a hard mix holds the partner's (resized) values; a feathered mix lies between the
#   sample's value and the partner's, pixel by pixel (a convex combination);
# * the label does not change and the partner always has the same label.

# %%
inside = np.zeros((SIZE, SIZE), bool)
partner_img = xa.copy()   # b's regions resized into a's boxes: what a hard mix must show there
for r in MIX_REGIONS:
    k = REGION_NAMES.index(r)
    x0, y0, x1, y1 = ba[k]
    bx0, by0, bx1, by1 = bb[k]
    inside[y0:y1, x0:x1] = True
    partner_img[:, y0:y1, x0:x1] = resize_patch(xb[:, by0:by1, bx0:bx1], y1 - y0, x1 - x0)
lo, hi = np.minimum(xa, partner_img), np.maximum(xa, partner_img)
checks = {
    "pixels outside the regions changed (hard)": int((hard[:, ~inside] != xa[:, ~inside]).sum()),
    "pixels outside the regions changed (feather)": int((soft[:, ~inside] != xa[:, ~inside]).sum()),
    "pixels inside not equal to the partner (hard)": int((hard[:, inside] != partner_img[:, inside]).sum()),
    "feathered values outside [own, partner]": int(((soft < lo - 1e-6) | (soft > hi + 1e-6)).sum()),
}
for k, v in checks.items():
    print(f"{k:<48} {v}")
print(f"share of the input that came from b: {inside.mean():.1%}")
assert all(v == 0 for v in checks.values())

# %% [markdown]
# ## 5. A training batch
#
# During training, `MotionMix` is applied to each batch of the **training folds only**. Training and
# testing follow **LOSO** (leave-one-subject-out): each *fold* holds one person out as the test
# subject and trains on all the others, so the test subject of a fold is never mixed, and never lends
# its motion. Each sample is mixed with
# probability `P`; its partner is drawn uniformly among the *other* samples of its class, from the
# batch or from a whole training fold passed as `pool`. A class with a single sample is never mixed.
# `mode="random"` takes a random non-empty subset of the regions per draw instead of all of them.
# The generator is seeded, so a run can be repeated exactly.

# %%
mm = MotionMix(p=P, mode=MODE, seed=SEED)
print(mm)
plan = mm.plan(inputs.labels)
print(f"{'sample':<26}{'label':<10}{'partner':<26}regions")
for i, s in enumerate(samples):
    j = plan.partner[i]
    print(f"{s.key:<26}{s.label:<10}{samples[j].key if j >= 0 else '-':<26}{', '.join(plan.regions[i]) or '-'}")
    assert j < 0 or (inputs.labels[j] == inputs.labels[i] and j != i)

labels_before = inputs.labels.copy()
x_aug = mm.apply(inputs.x, inputs.boxes, plan)
assert np.array_equal(inputs.labels, labels_before)
changed = [not np.array_equal(x_aug[i], inputs.x[i]) for i in range(len(samples))]
print(f"mixed {sum(changed)} of {len(samples)} samples; the others are returned unchanged")
assert changed == plan.mixed.tolist()
assert np.array_equal(MotionMix(p=0.0, seed=SEED)(inputs.x, inputs.boxes, inputs.labels), inputs.x)  # p = 0: identity
again = MotionMix(p=P, mode=MODE, seed=SEED)
assert np.array_equal(again(inputs.x, inputs.boxes, inputs.labels), x_aug)                         # same seed, same mix

# %% [markdown]
# How many distinct inputs can one class produce? With $n$ samples in a class and all three regions
# taken from one partner, each sample has $n - 1$ possible mixes; with `mode="random"` each partner
# gives 7 region subsets, $7(n-1)$ per sample. In the composite set's surprise class (83 clips) that is
# 82 or 574 variants of every surprise clip, most of them combining two people: the kind of
# variation a leave-one-subject-out test asks the network to cope with.
#
# ## 6. What the paper says, what we chose
#
# | question | paper | this course |
# |---|---|---|
# | what is mixed | "eye and mouth regions" of two flow maps | the `right_eye`, `left_eye` (each with its brow) and `mouth` boxes of `hmrm.face.regions`, from the onset landmarks |
# | partner | "of the same class" | uniform among the *other* samples of the class in the batch or training fold, any subject; a single-sample class is never mixed |
# | how often | not stated | each sample with probability `p` (`P` above; 0.5 by default) |
# | which regions per mix | not stated | all three (`mode="all"`), or a random non-empty subset (`mode="random"`) |
# | boxes of different size | not stated | partner patch resized bilinearly into the sample's box; displacement values unchanged (same alignment scale) |
# | edges | "patch mixing" | hard paste by default; `blend="feather"` ramps the weight over `feather_px` pixels |
# | head motion | not stated (the authors list global head motion as a limit) | pasted as it is by default; `head_motion="match"` swaps the partner's drift for the sample's own (an ablation to run) |
# | box size | "landmark-guided" | the landmark boxes as they are; `grow` enlarges them |
# | channels | flow maps | every input channel (u, v, strain) mixed alike, after the channels were computed (strain is not recomputed across the seam) |
# | label | unchanged (same class) | unchanged, by construction |
# | where | training | training folds only; the LOSO harness applies it to training batches |
# | in the demo | (the paper uses it in its full network) | not at all: the demo's recipe, chosen on a development SynthME, mixes nothing (`motionmix_p=0`) |
#
# **Does it help?** Nobody has shown it yet, here or, as far as `docs/paper.md` records, in the
# paper, which reports no ablation figures. Our recipe search varied MotionMix together with
# everything else and never alone, so it cannot say; the one paired measurement is
# `benchmarks/choice_effects.py`, which adds MotionMix to the demo's HMRM and compares on the same
# subjects. The box below reads what the committed tables say (`hmrm.choices`):

# %%
display(Markdown(choices_markdown("motionmix")))

# %% [markdown]
# ## Check yourself
#
# The next cell checks the promise of section 5 on the batch `x_aug` that `MotionMix` returned:
# every sample it mixed has a partner of its own class, and changed inside the partner's regions and
# nowhere else (measured with the landmark boxes of `inputs.boxes`). To see it fail on purpose, give
# the augmenter of section 5 bigger boxes, `mm = MotionMix(p=P, mode=MODE, seed=SEED, grow=0.25)`,
# and run section 5 and this cell again: the mix now reaches outside the landmark boxes and the
# assertion names the first sample that changed there.

# %%
mixed_ids = np.flatnonzero(plan.mixed)
assert len(mixed_ids) > 0, "nothing was mixed: raise P and run section 5 again"
for i in mixed_ids:
    j = plan.partner[i]
    region_mask = np.zeros((SIZE, SIZE), bool)
    for r in plan.regions[i]:
        x0, y0, x1, y1 = inputs.boxes[i][REGION_NAMES.index(r)]
        region_mask[y0:y1, x0:x1] = True
    assert inputs.labels[j] == inputs.labels[i], f"{samples[i].key} was mixed with another class"
    assert np.array_equal(x_aug[i][:, ~region_mask], inputs.x[i][:, ~region_mask]), (
        f"{samples[i].key} changed outside its regions")
    assert not np.array_equal(x_aug[i][:, region_mask], inputs.x[i][:, region_mask]), (
        f"{samples[i].key} is marked mixed but its regions did not change")
print(f"self-check passed: the {len(mixed_ids)} mixed samples changed only inside their partner's regions "
      f"({', '.join(samples[i].key for i in mixed_ids)})")

# %% [markdown]
# ## Exercises
#
# 1. **Seams against feather width.** Measure `seam` (section 3) of the pair `a`, `b` for
#    `feather_px` = 0 (a hard paste), 1, 2, 3, 4, 6 and 8, with the partner's head motion kept and
#    matched, and plot both curves. How does the edge jump shrink with the width? Does feathering
#    remove the offset between the two drifts, or only spread it over more pixels?
# 2. **How random is `mode="random"`?** Draw 300 plans with `MotionMix(p=1.0, mode="random",
#    seed=SEED)` and count how often each region subset is taken by a mixed sample. How many
#    different subsets appear, and why is the subset of all three regions about three times as
#    common as each of the others? (Read `MotionMix.plan`: first the number of regions, then which.)
# 3. **Mixing the nose too.** Mix `a` with `b` taking `regions=MIX_REGIONS + ("nose",)`, then
#    with the nose listed first, `("nose",) + MIX_REGIONS`. Where do the two results differ, and
#    why? Where would the seams of a nose-and-eyes mix fall, given that the nose box overlaps the
#    eye and mouth boxes? How much more of the input comes from `b`?
#
# The solutions are in `notebooks/solutions/04_motionmix_solutions.ipynb`: open it after trying.
