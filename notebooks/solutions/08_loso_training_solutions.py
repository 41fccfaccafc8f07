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
from hmrm.train import run_loso, run_name
from hmrm.train.metrics import uar, uf1
from hmrm.train.recipe import recipe_config
from hmrm.utils import cache_dir


def chapter_run(subjects: int):
    """Chapter 08's run for a tiny SynthME of ``subjects`` subjects (resumed from the cache when it exists)."""
    samples = training_samples("synthme", seed=SEED, subjects=subjects)
    config = recipe_config("hmrm", {**DEMO_RECIPES["hmrm"], "epochs": EPOCHS}, flow=FLOW_METHOD,
                           input_size=INPUT_SIZE, seed=SEED)
    run_dir = cache_dir("loso_runs") / run_name(f"synthme_tiny{subjects}", config)
    return run_loso(samples, config, run_dir, progress=False)


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
# ## 3. Interval and number of subjects
#
# The bootstrap resamples subjects, so the width says how much the subjects disagree. With two to
# four subjects there are only a handful of distinct resamples and each subject weighs a lot: one
# subject the model gets all right beside one it gets all wrong makes the interval wide, two alike
# make it narrow, whatever their number. More subjects narrow the interval only when they disagree
# about as much as before (then roughly as one over the square root of their number); with numbers
# this small, read the widths below as an illustration of that noise, not of a trend.

# %%
for n in sorted({SUBJECTS, *OTHER_SUBJECTS}):
    m = chapter_run(n).metrics["honest"]
    lo, hi = m["interval"]["uf1"]
    print(f"{n} subjects: UF1 {m['uf1']:.3f}, 95% interval [{lo:.3f}, {hi:.3f}], width {hi - lo:.3f}")
