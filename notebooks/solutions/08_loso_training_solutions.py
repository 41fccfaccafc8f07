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
# Parameters (papermill can override these): the same run as chapter 08's defaults
SUBJECTS = 3
FLOW_METHOD = "gt"
INPUT_SIZE = 64
EPOCHS = 40
SEED = 0
OTHER_SUBJECTS = [2, 4]         # exercise 3: the tiny SynthME with these numbers of subjects

# %% [markdown]
# # 08 · Solutions to the exercises
#
# Try the exercises of chapter 08 first. Each solution below reruns (or reuses, from the cache) the
# chapter's run and answers one exercise with the package's public functions.

# %%
import csv
import json
from pathlib import Path

import numpy as np

from hmrm.data.datasets import training_samples
from hmrm.demo import DEMO_RECIPES
from hmrm.train.loso import RunOptions, run_loso, run_name
from hmrm.train.metrics import uar, uf1
from hmrm.train.loso import recipe_config
from hmrm.utils import cache_dir


def chapter_run(subjects: int):
    """Chapter 08's run for a tiny SynthME of ``subjects`` subjects (resumed from the cache when it exists)."""
    samples = training_samples("synthme", seed=SEED, subjects=subjects)
    config = recipe_config("hmrm", {**DEMO_RECIPES["hmrm"], "epochs": EPOCHS}, flow=FLOW_METHOD,
                           input_size=INPUT_SIZE, seed=SEED)
    run_dir = cache_dir("loso_runs") / run_name(f"synthme_tiny{subjects}", config)
    return run_loso(samples, config, run_dir, RunOptions(progress=False))


result = chapter_run(SUBJECTS)
run_dir = Path(result.run_dir)

# %% [markdown]
# ## 1. Recompute the score from `predictions.csv`
#
# One row per clip: its true and its predicted class. UF1 is the mean over classes of the F1 score
# of each class, UAR the mean of the per-class recalls, both on the pooled predictions.

# %%
with open(run_dir / "predictions.csv", newline="") as f:
    rows = list(csv.DictReader(f))
print("columns:", list(rows[0]))
classes = result.metrics["classes"]
y_true = np.array([classes.index(r["true"]) for r in rows])
y_pred = np.array([classes.index(r["predicted"]) for r in rows])
f1s, recalls = [], []
for k in range(len(classes)):
    tp = np.sum((y_pred == k) & (y_true == k))
    fp, fn = np.sum((y_pred == k) & (y_true != k)), np.sum((y_pred != k) & (y_true == k))
    f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    recalls.append(tp / (tp + fn) if tp + fn else 0.0)
mine = {"uf1": float(np.mean(f1s)), "uar": float(np.mean(recalls))}
print(f"by hand: UF1 {mine['uf1']:.4f}, UAR {mine['uar']:.4f}")
print(f"package: UF1 {uf1(y_true, y_pred, len(classes)):.4f}, UAR {uar(y_true, y_pred, len(classes)):.4f}")
print(f"metrics.json: UF1 {result.metrics['honest']['uf1']:.4f}, UAR {result.metrics['honest']['uar']:.4f}")
assert abs(mine["uf1"] - result.metrics["honest"]["uf1"]) < 1e-9 and abs(mine["uar"] - result.metrics["honest"]["uar"]) < 1e-9

# %% [markdown]
# **Answer.** Yes: by hand, with `hmrm.train.metrics` and in `metrics.json` the three lines give the
# same UF1 and UAR (the assertion checks them to nine decimals). They agree because all three do the
# same thing: one confusion matrix of every fold's final-epoch predictions, F1 and recall per class on
# it, then the unweighted mean over classes.

# %% [markdown]
# ## 2. The optimistic number, by hand
#
# Each fold's `result.json` keeps its held-out predictions after every epoch (`test_curve`, beside the
# true classes in `true`), so its accuracy per epoch can be recomputed. Taking each
# fold's best epoch picks, for every subject, the moment that suited *that subject's* clips: it can
# only match or beat the last epoch on that fold, so it is never below the honest accuracy, and it
# is not a result because the test subject chose it.

# %%
honest_correct = best_correct = total = 0
for fold in sorted((run_dir / "folds").iterdir()):
    r = json.loads((fold / "result.json").read_text())
    truth = np.array(r["true"])
    curve = [float(np.mean(np.array(pred) == truth)) for pred in r["test_curve"]]
    n = len(truth)
    honest_correct += curve[-1] * n
    best_correct += max(curve) * n
    total += n
    print(f"{fold.name:18s} last epoch {curve[-1]:.3f}  best epoch {max(curve):.3f} (epoch {int(np.argmax(curve)) + 1})")
print(f"pooled accuracy: last epoch {honest_correct / total:.3f}, best epoch per fold {best_correct / total:.3f}")
assert best_correct >= honest_correct

# %% [markdown]
# **Answer.** The best epoch of a fold is chosen among all its epochs, the last one included, so on
# every fold its accuracy is at least the last epoch's, and so is the pooled figure (the assertion
# above). It is not a result because the held-out subject chose the epoch: with many epochs and a
# handful of test clips, some epoch suits those clips by chance, and reporting it measures that
# chance, not what the network would do on a new person.

# %% [markdown]
# ## 3. Interval and number of subjects
#
# *Rebuild the run with `SUBJECTS = 2` and `SUBJECTS = 4`. How does the width of the UF1 interval
# change, and why?*

# %%
widths = {}
for n in sorted({SUBJECTS, *OTHER_SUBJECTS}):
    res = chapter_run(n)
    m = res.metrics["honest"]
    lo, hi = m["interval"]["uf1"]
    widths[n] = hi - lo
    print(f"{n} subjects: UF1 {m['uf1']:.3f}, 95% interval [{lo:.3f}, {hi:.3f}], width {hi - lo:.3f}")
    assert lo <= m["uf1"] <= hi and m["interval"]["n_subjects"] == n

# %% [markdown]
# **Answer.** The bootstrap resamples *subjects*, so the width says how much the subjects disagree,
# and with two to four subjects that is almost all it says: there are only a handful of distinct
# resamples and each subject weighs a lot. One subject the model gets all right beside one it gets all
# wrong makes the interval wide, two alike make it narrow, whatever their number. More subjects narrow
# the interval only when they disagree about as much as before (then roughly as one over the square
# root of their number); with numbers this small, read the widths above as an illustration of that
# noise, not as a trend.
#
# Two subjects show it exactly. A resample draws two subjects with replacement, so it can only be
# {a, a}, {a, b} or {b, b}, with probabilities 1/4, 1/2 and 1/4; a pool of {a, a} scores like a alone
# (doubling every count leaves F1 and recall unchanged). With a quarter of the draws at each of the
# two single-subject scores, the two ends of the 95 % interval are simply the lowest and the highest of
# the three possible scores. The check below recomputes those three scores from `predictions.csv` and
# finds the interval the run reported.

# %%
from hmrm.train.stats import scores_of_confusions, subject_confusions

two = chapter_run(2)
with open(Path(two.run_dir) / "predictions.csv", newline="") as f:
    preds = list(csv.DictReader(f))
classes2 = two.metrics["classes"]
subjects, cms = subject_confusions([classes2.index(r["true"]) for r in preds],
                                   [classes2.index(r["predicted"]) for r in preds],
                                   [r["subject"] for r in preds], len(classes2))
possible = {"a alone": cms[0], "b alone": cms[1], "a and b": cms[0] + cms[1]}
scores = {name: float(scores_of_confusions(cm)["uf1"]) for name, cm in possible.items()}
print("the three pools a 2-subject resample can make:", {k: round(v, 4) for k, v in scores.items()})
low, high = two.metrics["honest"]["interval"]["uf1"]
assert abs(low - min(scores.values())) < 1e-9 and abs(high - max(scores.values())) < 1e-9, (low, high, scores)
print(f"the run's interval [{low:.4f}, {high:.4f}] is exactly [lowest, highest] of the three: exercise 3 checked")
