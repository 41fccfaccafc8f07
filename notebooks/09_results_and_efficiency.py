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
RUNS_ROOT = "runs"              # searched for LOSO run folders (hmrm reproduce: runs/reproduce/<config>/, hmrm loso: runs/loso/<name>/); relative to the repository
RUN_QUICK = True                # no run found: run configs/loso_synthme_quick.yaml into the hmrm cache (about a minute on a CPU) so the tables have a row
QUICK_CONFIG = "configs/loso_synthme_quick.yaml"
EFFICIENCY_MD = "figures/efficiency.md"  # written by `hmrm efficiency --out figures/efficiency.md`

# %% [markdown]
# # 09 · Results and efficiency
#
# Chapter 08 trained and scored one LOSO run (leave-one-subject-out: every person is held out once as
# the test subject while the network trains on the others); `hmrm reproduce` and `hmrm loso` leave
# one run folder each. This chapter gathers every run folder it finds into three tables:
#
# 1. the **results table**: one row per run (data set, model, flow, ablation, epochs, folds done),
#    our honest UF1 / UAR, the optimistic "best epoch on test" figures in their own labelled
#    columns, and the paper's reported figures beside ours where the paper gives them;
# 2. the **ablation table**: the HMRM runs by ablation, per data set, with the change against the
#    full network;
# 3. the **efficiency table**: parameters, FLOPs and CPU latency of HMRM, its ablations and the
#    baseline (`figures/efficiency.md`).
#
# Everything is read from files (`hmrm.train.results`); nothing is trained here, except, when no
# run exists at all, the quick SynthME config of chapter 08 (STSTNet, 20 epochs, tiny set), so
# that the tables are never empty.

# %%
from pathlib import Path

from IPython.display import Markdown, display

from hmrm.train import results as R
from hmrm.utils import cache_dir


def in_repo(path):
    path = Path(path)
    return path if path.is_absolute() else R.REPO / path


roots = [in_repo(RUNS_ROOT)]
found = R.find_run_dirs(roots)
print(f"{len(found)} run folder(s) under {roots[0]}")
if not found and RUN_QUICK:
    from hmrm.train.reproduce import reproduce

    quick_out = cache_dir("results_quick")
    print(f"no run yet: running {QUICK_CONFIG} into {quick_out} (a pipeline check, not a result)")
    reproduce([in_repo(QUICK_CONFIG)], out=quick_out)
    roots.append(quick_out)
    found = R.find_run_dirs(roots)
for d in found:
    print("  " + str(d))

# %% [markdown]
# ## How to read the tables
#
# **Honest UF1 / UAR.** Each fold trains for a fixed number of epochs and the model of the *last*
# epoch predicts the held-out subject once. The predictions of every fold are pooled into one
# confusion matrix and scored: that is the definition of MEGC (the Micro-Expression Grand Challenge,
# whose protocol the literature follows), and the only figure we call a result.
# Pooling matters because a held-out subject has a handful of clips, often none of some class: an
# F1 per fold is mostly noise, and the mean of such numbers is not what the literature reports.
# UF1 (mean F1 over classes) and UAR (mean recall over classes) weigh a rare class as much as a
# frequent one.
#
# **95 % intervals.** Beside each honest score, the interval a bootstrap over the held-out subjects
# gives (chapter 08, section 6): how far the score could move had other subjects of the same kind
# been recorded. With the few subjects of SynthME it is wide (read its width in the table); with the
# 26 subjects of CASME II it is narrower. Two rows whose intervals overlap widely are not shown to differ; the paired
# interval of a difference (below, for the ablations) is the fair test when two runs share their
# subjects.
#
# **Best epoch on test (OPTIMISTIC).** For each held-out subject, the epoch that scored best on that
# same subject. It selects on the test data, so it is not a result; it is shown in separate,
# labelled columns only because some published code reports it. The gap between the two columns
# is how much that choice flatters a model. (The epoch is picked by *accuracy*, so on a rare run its
# pooled UF1 can even come out below the honest one; exercise 1 looks for such rows.)
#
# **PARTIAL.** A run that has not held out every subject yet (interrupted, or a `FOLDS=N` quick
# look). Its scores pool the folds done only and are not a LOSO result.
#
# **The paper's figures.** `paper UF1` / `paper UAR` are the figures the paper reports for the full
# HMRM (its results table, recorded in `hmrm.train.results.PAPER_RESULTS`). They appear only beside runs of the full
# HMRM on the same data set with our paper config's class scheme, and stay blank everywhere else:
# the paper reports no ablation or baseline figures. Even where both appear, the set-ups may
# differ: the paper's GRU-AOFE was pretrained on FlyingChairs / FlyingThings, ours on generated pairs with
# a refinement stage added (README, Optical flow), and
# it names no class scheme, input size or batch size.
#
# **SynthME is not comparable.** SynthME is our synthetic data set (rendered faces, exact flow,
# a few subjects); the paper never used it. Its rows show that the pipeline runs end to end, and a
# quick run's scores on a tiny set are noise. No SynthME figure says anything about CASME II, SAMM,
# SMIC-HS or the composite.

# %%
results = R.results_table(roots=roots, relative_to=R.REPO)
display(Markdown(R.results_markdown(results)))

# %% [markdown]
# ## Ablations
#
# The paper's ablation study removes one part at a time: MotionMix (`no_motionmix`), the second
# grain (`single_grain`), the backward scan (`unidirectional`), region fusion (`no_rffs`) and the
# multi-scale loss (`plain_ce`). Run them with `hmrm reproduce` on a config with `ablation: <name>`
# (or `hmrm loso --ablation <name>`); each lands here as one row. The change is measured against the
# full network of the same data set, class scheme, flow and epochs, and is blank when there is no
# such run. Its paired interval resamples the same held-out subjects for the ablated and the full
# run: an ablation whose interval contains 0 has not been shown to matter on this data.

# %%
ablations = R.ablation_table(results)
display(Markdown(R.ablation_markdown(ablations)))
if ablations.empty:
    print("no HMRM run yet: the ablation table fills in as HMRM runs finish")

# %% [markdown]
# ## Efficiency
#
# The paper reports efficiency as parameters and FLOPs. `hmrm efficiency` measures both for HMRM,
# each ablation and STSTNet, and CPU latency besides; the file states its conventions (what a FLOP
# is, how the selective scan is counted) above the table. Latency depends on the machine: compare
# rows of one table only.

# %%
efficiency, text = R.read_efficiency(in_repo(EFFICIENCY_MD))
display(Markdown(text))   # the table with its conventions; `efficiency` holds it as a DataFrame

# %% [markdown]
# ## What the tables say
#
# The next cell reads its statements off the tables above, so they stay true as rows are added: per
# data set, the best honest score and its interval (compare it with the other rows' intervals, not
# with their point values); for each HMRM ablation, whether its paired interval shows that the part
# matters; and what HMRM costs against the baseline.

# %%
done = results[results["status"] == "complete"]
for dataset, rows in done.groupby("data set"):
    best = rows.loc[rows[R.HONEST_UF1].idxmax()]
    within = rows[rows["UF1 95% interval"].notna()]
    print(f"{dataset}: {len(rows)} complete run(s); best honest UF1 {best[R.HONEST_UF1]:.3f} "
          f"{best['UF1 95% interval']} ({best['model']} on {best['flow']} flow, {best['run']})")
paired = "ΔUF1 95% interval (paired)"
for _, a in ablations.iterrows() if not ablations.empty else []:
    if a["ablation"] == "full" or not a[paired]:
        continue
    lo, hi = (float(v) for v in a[paired].strip("[]").split(","))
    verdict = "the data show the part matters" if hi < 0 or lo > 0 else "not shown to matter on these subjects"
    print(f"{a['data set']} {a['ablation']} ({a['flow']}, {a['epochs']} epochs): ΔUF1 {a['ΔUF1 vs full']:+.3f} "
          f"{a[paired]}: {verdict}")
costs = efficiency.set_index("model")
if {"hmrm", "ststnet"} <= set(costs.index):
    h, b = costs.loc["hmrm"], costs.loc["ststnet"]
    print(f"HMRM has {h['parameters'] / b['parameters']:.0f}x the parameters and "
          f"{h['MFLOPs / sample'] / b['MFLOPs / sample']:.0f}x the FLOPs of STSTNet per sample")

# %% [markdown]
# ## Adding rows
#
# Every finished or interrupted run folder under `RUNS_ROOT` is a row: `hmrm reproduce configs/<name>.yaml`
# writes `runs/reproduce/<name>/`, `hmrm loso` writes `runs/loso/<name>/`, and `make demo` (`hmrm demo`)
# writes its five SynthME rows to `runs/demo/` (with `--ablations`, the ablation rows to
# `runs/demo/ablations/<flow>/`). Run this chapter again (or
# `hmrm.train.results.results_table()` from Python) to refresh the tables; nothing here writes to the
# run folders.

# %% [markdown]
# ## Check yourself
#
# The tables are only as good as the files they read. The next cell recomputes the honest UF1 and UAR
# of every row from the run's `predictions.csv` (one line per held-out clip: true and predicted class),
# pooled over all held-out subjects with `hmrm.train.metrics`, and asserts that they equal the table's.
# To see it fail on purpose, score one held-out subject only, as a per-fold figure would: add
# `preds = preds[preds["fold"] == 0]` after the line that reads the file, and run the cell again.

# %%
import numpy as np
import pandas as pd

from hmrm.train.metrics import uar, uf1

run_dirs = results.attrs["run_dirs"]          # table row -> its run folder
checked = 0
for _, row in results.iterrows():
    path = Path(run_dirs[row["run"]]) / "predictions.csv"
    if not path.is_file():
        continue
    preds = pd.read_csv(path)
    n_classes = sum(c.startswith("p_") for c in preds.columns)   # one probability column per class
    t, p = preds["true_index"], preds["predicted_index"]
    again = uf1(t, p, n_classes), uar(t, p, n_classes)
    assert np.allclose(again, (row[R.HONEST_UF1], row[R.HONEST_UAR])), (
        f"{row['run']}: UF1 / UAR from predictions.csv {again[0]:.4f} / {again[1]:.4f}, "
        f"in the table {row[R.HONEST_UF1]:.4f} / {row[R.HONEST_UAR]:.4f}")
    checked += 1
assert checked > 0, "no row has a predictions.csv to recompute"
print(f"self-check passed: the honest UF1 and UAR of {checked} of {len(results)} rows recompute "
      "from their predictions.csv")

# %% [markdown]
# ## Exercises
#
# 1. **How much does the optimistic column flatter?** For every complete row, compute the gap
#    best-epoch-on-test UF1 minus honest UF1. What are its median and largest values, per model? Are
#    there rows where the gap is negative, and how can that be (read the warning in a run's
#    `metrics.json`, key `best_epoch_on_test`)?
# 2. **Pooled against per-fold.** Take the first row's `predictions.csv`, compute UF1 for each
#    held-out subject on its own and average them, and compare with the pooled UF1 of the table
#    (and with `per_fold_mean` in the run's `metrics.json`). Which classes does each subject show,
#    and why is the mean of the per-subject scores a different number from the pooled score?
# 3. **What does each ablation save?** From the efficiency table (`R.read_efficiency`), compute for
#    every ablation the share of HMRM's parameters, FLOPs and batch-1 latency it keeps, and the share
#    of HMRM's FLOPs spent in the selective scan. Which ablation saves the most FLOPs, and why does
#    `no_rffs` save parameters but almost no FLOPs?
#
# The solutions are in `notebooks/solutions/09_results_and_efficiency_solutions.ipynb`: open it after
# trying.
