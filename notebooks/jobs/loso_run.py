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
# Parameters: `hmrm reproduce` sets these from a configs/*.yaml (keys in either case); papermill -p overrides them
DATASET = "synthme"             # synthme, casme2, samm, smic or composite
DATA_ROOT = None                # folder of the data set, None with synthme: the tiny SynthME build in the hmrm cache
PREPARED = None                 # licensed sets: the --out folder of `hmrm prepare`
CLASS_SCHEME = None             # None: the default of the data set, casme2_5, samm5, smic3, or composite3 (synthme, composite)
FLOW_METHOD = "gt"              # gt (SynthME's exact flow, quick), dis_tuned, tvl1, farneback, dis, gru_aofe
MODEL = "ststnet"               # ststnet (small baseline, quick) or hmrm
ABLATION = "full"               # HMRM only: full, no_motionmix, single_grain, unidirectional, no_rffs, plain_ce
MODEL_OPTIONS = {}              # model keyword arguments, e.g. {"d_model": 32, "depth": 1} for a tiny HMRM
INPUT_SIZE = 112                # side of the flow maps the network sees
EPOCHS = 20                     # fixed epochs per fold (the paper: 1000)
FOLDS = None                    # None: every subject, a full LOSO. N: only the first N folds, a quick look
BATCH_SIZE = 32
LR = 0.0005                     # AdamW (peak) learning rate (the paper's)
WEIGHT_DECAY = 0.01             # AdamW weight decay, the PyTorch default (the paper gives none)
SCHEDULE = "constant"           # constant, or cosine (linear warm-up, then cosine decay)
WARMUP_EPOCHS = 0               # cosine only: epochs of linear warm-up
LABEL_SMOOTHING = 0.0           # label smoothing of the cross-entropy (0: off)
EMA = 0.0                       # decay per step of the weight average that predicts (0: off; e.g. 0.99)
MOTIONMIX_P = 0.5               # probability that a training sample is mixed (0: no MotionMix)
AMP = False                     # mixed precision on CUDA
DEVICE = "auto"                 # auto, cpu, cuda, cuda:N
THREADS = 0                     # CPU threads for torch outside the folds, 0 for the torch default
WORKERS = 1                     # processes training folds side by side on a CPU (None: one per core); same results
ENGINE = "local"                # local (this machine); stacked: STACK folds at once as one batched network (GPUs); ray: every fold a Ray task
RAY_ADDRESS = None              # ray: the cluster's address (HEAD:6379); None: a Ray instance on this machine with WORKERS CPUs
STACK = None                    # stacked: folds trained at once; None: what the free memory holds on CUDA, 2 on a CPU
SEED = 0
RUN_DIR = None                  # None: a folder under the hmrm cache named after the settings

# %% [markdown]
# # LOSO run (the job behind `hmrm reproduce`)
#
# This notebook is a job, not a lesson: `hmrm reproduce configs/<name>.yaml` executes it with
# papermill, one run per config, and keeps the executed copy beside the run's files. Chapter 08
# (`notebooks/08_loso_training.ipynb`) teaches what each step means. Every parameter above is
# checked before any training (`hmrm.train.reproduce.config_from_parameters`), and the run folder is
# resumable: executing the notebook again continues from the finished folds and checkpoints.

# %%
import json
from pathlib import Path

import torch
from IPython.display import Image, display

from hmrm.train.loso import RunOptions, run_loso
from hmrm.data.datasets import training_samples
from hmrm.train.loso import run_name
from hmrm.train.reproduce import config_from_parameters
from hmrm.utils import cache_dir

config = config_from_parameters(globals())  # refuses a bad value, naming its parameter
if THREADS:
    torch.set_num_threads(THREADS)
samples = training_samples(DATASET, DATA_ROOT, PREPARED, CLASS_SCHEME, seed=SEED)
print(f"{DATASET}: {samples.summary()}")
run_dir = Path(RUN_DIR) if RUN_DIR else cache_dir("loso_runs") / run_name(DATASET, config)
print(json.dumps(config.to_dict(), indent=1))
print("run folder:", run_dir)

# %%
result = run_loso(samples, config, run_dir, RunOptions(prepared=PREPARED, workers=WORKERS, engine=ENGINE, address=RAY_ADDRESS,
                  stack=STACK, progress=False))  # papermill shows no live bar
print(result.table())

# %%
for figure in ("confusion.png", "training.png"):
    if (run_dir / figure).is_file():
        display(Image(filename=str(run_dir / figure)))
