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
# Parameters (papermill can override these): the same run as chapter 10's defaults
SUBJECTS = 3
FLOW_METHOD = "gt"
INPUT_SIZE = 64
EPOCHS = 40
SEED = 0
DEMO_RUNS = ""                  # exercises 2 and 3: "": runs/demo of this repository when `make demo` has made it, else the tiny run
THRESHOLDS = [0.4, 0.5, 0.6]

# %% [markdown]
# # 10 · Solutions to the exercises
#
# Try the exercises of chapter 10 first. Each solution reuses chapter 10's run from the cache (or
# trains it) and answers one exercise with the package's public functions.

# %%
from pathlib import Path

import numpy as np

from hmrm.data.datasets import training_samples
from hmrm.demo import DEMO_RECIPES
from hmrm.explain import explain_run
from hmrm.face.regions import REGION_NAMES
from hmrm.train.loso import LOSOData, RunOptions, run_loso, run_name
from hmrm.train.calibration import calibrate, calibration_table, read_run_probs
from hmrm.train.loso import recipe_config
from hmrm.train.results import REPO
from hmrm.utils import cache_dir

samples = training_samples("synthme", seed=SEED, subjects=SUBJECTS)


def tiny_run(**recipe_changes):
    """Chapter 10's run (chapter 08's), with recipe changes; resumed from the cache when it exists."""
    config = recipe_config("hmrm", {**DEMO_RECIPES["hmrm"], "epochs": EPOCHS, **recipe_changes}, flow=FLOW_METHOD,
                           input_size=INPUT_SIZE, seed=SEED)
    name = run_name(f"synthme_tiny{len(samples.subjects)}", config)
    suffix = "".join(f"-{k}{v}" for k, v in recipe_changes.items())
    return Path(run_loso(samples, config, cache_dir("loso_runs") / (name + suffix), RunOptions(progress=False)).run_dir)


# %% [markdown]
# ## 1. Where does over-confidence come from?
#
# *Train chapter 08's run with `label_smoothing` 0 instead of 0.1 and calibrate both. Which has the
# larger ECE before scaling, and which temperature does each get?*

# %%
summaries, confidence = {}, {}
for ls in (0.1, 0.0):
    run = tiny_run() if ls == 0.1 else tiny_run(label_smoothing=0.0)
    keys, truth, probs, groups, _ = read_run_probs(run)
    summaries[f"label smoothing {ls}"] = calibrate(keys, truth, probs, groups).summary(n_resamples=1000)
    confidence[ls] = float(np.asarray(probs).max(1).mean())
print(calibration_table(summaries))
print("mean top probability of the held-out predictions, before scaling:",
      {f"label smoothing {k}": round(v, 3) for k, v in confidence.items()})

# %% [markdown]
# **Answer.** Label smoothing 0.1 trains the network towards 0.9 + 0.1/3 on the labelled class and
# 0.1/3 on each other one, instead of 1 / 0 / 0: it cannot become fully sure, and a network that cannot
# be fully sure on its training clips is less sure on held-out ones too. Without it the raw
# probabilities are sharper (the printed mean top probability is higher), which is where
# over-confidence comes from: a network trained by cross-entropy on a few dozen clips drives its
# training loss towards zero by growing its logits, not by being right more often. So the run without
# label smoothing usually has the larger ECE before scaling and the higher temperature (more
# softening needed; compare the two rows). With a dozen clips these numbers move a lot from run to
# run, and the ECE intervals are wide: the comparison worth trusting is the same pair of runs on the
# full SynthME (two 160-clip runs), read by its paired interval. The check below asserts the
# mechanism, not the noisy ECE: without label smoothing the held-out predictions are more confident.

# %%
assert confidence[0.0] > confidence[0.1], "label smoothing should make the raw predictions less confident"
print("exercise 1 checked: the run without label smoothing is the more confident one")

# %% [markdown]
# ## 2. A better flag
#
# *On the full demo runs, how accurate are the flagged and the unflagged predictions at thresholds
# 0.4, 0.5 and 0.6? Which would you give a reviewer, and why must the threshold not be chosen on the
# same runs you report?*
#
# For each threshold: how many predictions are flagged, and how accurate the flagged and the other
# ones are. (Without `make demo`'s runs in `runs/demo`, the cell uses chapter 10's tiny run.)

# %%
demo = Path(DEMO_RUNS) if DEMO_RUNS else REPO / "runs" / "demo"
runs = [demo / "hmrm_gru_aofe", demo / "ststnet_tvl1"] if (demo / "hmrm_gru_aofe" / "folds").is_dir() else [tiny_run()]
flagged = {}
for run in runs:
    keys, truth, probs, groups, _ = read_run_probs(run)
    for t in sorted(THRESHOLDS):
        cal = calibrate(keys, truth, probs, groups, threshold=t)
        flag, right = cal.low_confidence, cal.calibrated.argmax(1) == cal.truth
        flagged[run.name, t] = flag
        acc = lambda m: f"{right[m].mean():.2f}" if m.any() else "-"  # noqa: E731
        print(f"{run.name:18s} threshold {t:.1f}: {flag.sum():3d}/{len(flag)} flagged, accuracy flagged {acc(flag)}, "
              f"not flagged {acc(~flag)}")

# %% [markdown]
# **Answer.** A higher threshold flags more predictions (every prediction flagged at 0.4 is flagged at
# 0.6 too), and the flagged ones are the less accurate group whenever the calibrated confidence means
# anything. A useful flag catches predictions much less accurate than the rest without flagging most
# of them; give a reviewer the threshold whose flagged group is clearly worse while the unflagged one
# still covers most clips, and say how many it flags. But that choice is a setting like the learning
# rate: picking the threshold whose accuracy gap looks best on the runs you then report selects on
# the test data, and the reported gap is flattered by the choice. Choose it on a development SynthME
# (or on other runs) and report it, fixed, on the demo's runs. The check asserts what must hold
# whatever the data: the flagged sets grow with the threshold, one inside the next.

# %%
for run in runs:
    for lo, hi in zip(sorted(THRESHOLDS), sorted(THRESHOLDS)[1:]):
        assert not (flagged[run.name, lo] & ~flagged[run.name, hi]).any(), f"{run.name}: a flag vanished at {hi}"
print("exercise 2 checked: every prediction flagged at a threshold is flagged at every higher one")

# %% [markdown]
# ## 3. A harder chance level
#
# *Score the saliency maps only on clips that move one or two regions. Is the map still better than
# chance?*
#
# Keep only the clips whose true action units move one or two of the four regions: the chance of a
# random region is then 1/4 or 1/2, and a map that merely prefers big-motion regions gets less free
# credit. (Without `make demo`'s runs and SynthME, the cell uses chapter 10's tiny run.)

# %%
run = runs[0]
if run.parent == demo:
    from hmrm.data.synthme import load_synthme

    run_samples = load_synthme(REPO / "data" / "synthme")
    data = LOSOData.from_samples(run_samples, "gru_aofe", 64, progress=False)
else:
    run_samples = samples
    data = LOSOData.from_samples(samples, FLOW_METHOD, INPUT_SIZE, progress=False)
expl = explain_run(run, data, run_samples, progress=False)
few = np.array([1 <= len(m) <= 2 for m in expl.moved])
hits = expl.hits("saliency")
chance = np.array([len(m) / len(REGION_NAMES) for m in expl.moved])
if few.any():
    print(f"{few.sum()} clips move one or two regions: saliency hit rate {hits[few].mean():.3f}, "
          f"chance {chance[few].mean():.3f}")
print(f"all {len(hits)} clips: saliency hit rate {hits.mean():.3f}, chance {chance.mean():.3f}")

# %% [markdown]
# **Answer.** On the subset the chance level drops (to at most one half), so a map has to point at
# the right region for real, not merely at a region that moves in most clips. Compare the printed hit
# rate with the printed chance on the subset: if it is still above, the map picks the moved regions
# more often than a random region would; if it falls to chance, the map's advantage over all clips
# came from clips where almost any region was right. Two cautions: the subset is smaller (fewer clips,
# fewer subjects), so its difference from chance needs its own interval over subjects before it counts
# (`hmrm.explain` computes one for the full set; the same bootstrap applies to the subset); and on the
# tiny run the subset may be empty or a handful of clips, which says nothing. The check asserts that
# the subset was selected as asked: its chance level is at most one half, and below the full set's
# unless every clip moves one or two regions.

# %%
if few.any():
    assert chance[few].max() <= 0.5 + 1e-12, "a clip of the subset moves more than two regions"
    assert chance[few].mean() <= chance.mean() + 1e-12, "the subset's chance level cannot exceed the full set's"
print(f"exercise 3 checked: {int(few.sum())} of {len(few)} clips in the subset, their chance at most one half")

# %% [markdown]
# ## 4. Which pixels to trust
#
# Fitting on the whole face lets the expression pull the fit: a raised brow or a smiling mouth
# looks, to a least-squares fit, like a bit of head rotation or scaling, which is then subtracted
# from *every* pixel, and part of the expression with it. The stable mask and the robust refits keep
# the fit on pixels where only the head moves.

# %%
from hmrm.data.synthme import SynthConfig, build_synthme, load_gt_flow, load_synthme
from hmrm.face.regions import face_mask
from hmrm.features import load_aligned_pair
from hmrm.flow import endpoint_error
from hmrm.flow.stabilize import fit_affine_flow, remove_head_motion

head_root = cache_dir("synthme_head_tiny_s2")
build_synthme(head_root, SynthConfig.preset("head", clips_per_subject=4, frames=(16, 16)), max_subjects=2,
              progress=False)
whole, stable = [], []
for s in load_synthme(head_root):
    gt, pair = load_gt_flow(s), load_aligned_pair(s)
    f, m = gt["flow"], gt["face_mask"]
    whole.append(endpoint_error(f - fit_affine_flow(f, face_mask(pair.landmarks, f.shape[0])), gt["flow_expression"], m))
    stable.append(endpoint_error(remove_head_motion(f, pair.landmarks), gt["flow_expression"], m))
print(f"error against the expression-only flow (exact flow, {len(whole)} clips): fit on the whole face "
      f"{np.mean(whole):.3f} px, on the stable pixels with robust refits {np.mean(stable):.3f} px")

# %% [markdown]
# **Answer.** The whole-face fit leaves the larger error against the expression-only flow (the two
# printed means). Including the eyes and mouth hurts because those are the pixels the expression
# moves most: least squares treats their motion as evidence about the head, and an affine field that
# absorbs part of a raised brow or a smile is then subtracted from every pixel, taking part of the
# expression with it. The stable mask keeps the fit on skin the expression barely moves, and the
# robust refits drop the pixels an action unit still reaches. The check asserts the comparison the
# answer rests on, on this build: the stable, robust fit is closer to the truth.

# %%
assert np.mean(stable) < np.mean(whole), "the stable-pixel fit should be closer to the expression-only flow"
print("exercise 4 checked")

# %% [markdown]
# ## 5. A remedy that works?
#
# Measure every candidate on the same small-face clips: below on the tiny build, and on all 160 clips
# of the full low-resolution SynthME with the same call (`flow_accuracy(load_synthme("data/synthme_lowres"),
# [...])`, about a minute), which is the measurement to trust: the tiny build's intervals rest on two
# subjects. A lead smaller than the intervals is no lead. Even a clear lead in flow error is only a
# candidate: a remedy for *recognition* needs a
# LOSO run on the same clips, paired over subjects, as `hmrm beyond lowres --remedy` does for the
# enlarged-frame flows.

# %%
from hmrm.beyond import flow_accuracy, flow_accuracy_table

low_root = cache_dir("synthme_lowres_tiny_s2")
build_synthme(low_root, SynthConfig.preset("lowres", clips_per_subject=4, frames=(8, 8)), max_subjects=2,
              progress=False)
rows = flow_accuracy(load_synthme(low_root), ["dis_tuned", "tvl1", "gru_aofe", "dis", "farneback"], progress=False)
print(flow_accuracy_table(rows, ["low resolution"] * len(rows)))
best = min(rows, key=lambda r: r["relative"])
print(f"smallest EPE / motion: {best['method']} {best['relative']:.3f} "
      f"[{best['relative_interval'][0]:.2f}, {best['relative_interval'][1]:.2f}]")
tuned = next(r for r in rows if r["method"] == "dis_tuned")
clear = best["method"] != "dis_tuned" and best["relative_interval"][1] < tuned["relative_interval"][0]
print(f"its lead over dis_tuned is {'larger' if clear else 'not larger'} than the intervals")

# %% [markdown]
# **Answer.** Read the printed line: the method with the smallest EPE / motion on these clips, and
# whether its interval clears tuned DIS's. On two subjects the intervals are wide, and a lead inside
# them is no lead; the same call on the full low-resolution SynthME is the measurement to trust.
# Before calling any flow a remedy for recognition, run what `hmrm beyond lowres --remedy METHOD`
# runs: both networks trained by LOSO on the small faces with that flow and with tuned DIS, compared
# paired over subjects, and read by the interval rule. The check asserts what makes the table
# readable at all: every interval holds its own estimate, and each relative error is the EPE divided
# by the true motion.

# %%
for r in rows:
    low, high = r["relative_interval"]
    assert low <= r["relative"] <= high, f"{r['method']}: {r['relative']:.3f} outside [{low:.3f}, {high:.3f}]"
    assert abs(r["relative"] - r["epe"] / r["motion"]) < 1e-12
print("exercise 5 checked")
