import sys; from pathlib import Path; sys.path.insert(0, str(Path(__file__).parent))
from _nb import make
cells = [
("params", '''
# Parameters: papermill and `hmrm reproduce` override these, configs/*.yaml set them per run
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
LR = 0.0005                     # AdamW learning rate (the paper's)
WEIGHT_DECAY = 0.01             # AdamW weight decay, the PyTorch default (the paper gives none)
AMP = False                     # mixed precision on CUDA
DEVICE = "auto"                 # auto, cpu, cuda, cuda:N
THREADS = 0                     # CPU threads for torch, 0 for the torch default
SEED = 0
RUN_DIR = None                  # None: a folder under the hmrm cache named after the settings
'''),
("md", '''
# 06 · Leave-one-subject-out training

Chapters 01 to 05 built the parts: faces and SynthME, optical flow, MotionMix, the selective scan
and the grained Mamba encoder with RFFS. This chapter trains a network on them and scores it the
way the micro-expression literature does, with **leave-one-subject-out** (LOSO) cross-validation,
and with no choice that peeks at the test subject.

The cell above holds every setting. With its defaults the chapter trains the small STSTNet
baseline on the tiny SynthME build with its exact flow: about a minute on a laptop CPU. The paper's
settings live in `configs/loso_*.yaml`; `hmrm reproduce configs/loso_casme2_5.yaml --data-root ...`
runs this same notebook with them (papermill) and keeps the executed copy beside the run's files.

You will:
1. see the folds: one per subject;
2. read why the scores are pooled over folds, and why the number of epochs is fixed;
3. run `hmrm.train.run_loso` (resumable: run the cell again and finished folds are kept);
4. read the metrics table, the confusion matrix and the training curves, with the honest score
   beside the optimistic "best epoch on test" one.
'''),
("code", '''
import json
from pathlib import Path

import numpy as np
import torch
from IPython.display import Image, Markdown, display

from hmrm.train import LOSOConfig, loso_splits, run_loso
from hmrm.train.reproduce import loso_samples
from hmrm.utils import cache_dir

if THREADS:
    torch.set_num_threads(THREADS)
samples = loso_samples(DATASET, DATA_ROOT, PREPARED, CLASS_SCHEME, seed=SEED)
print(f"{DATASET}: {samples.summary()}")
'''),
("md", '''
## 1. One fold per subject

Micro-expression data sets are small (CASME II: 247 clips of 26 people) and a face is easy to
recognise: a model scored on clips of people it trained on partly learns *who* is moving, not
*how*. LOSO holds out one subject at a time: fold *s* trains on every other subject and predicts
the clips of *s* once. Every clip is predicted exactly once, by a model that never saw its
subject.
'''),
("code", '''
groups = [s.group for s in samples]
labels = np.array([s.label_index for s in samples])
classes = list(samples.scheme.classes)
print(f"{'held-out subject':24s} {'train':>6s} {'test':>5s}  test clips per class ({', '.join(classes)})")
for subject, train_idx, test_idx in loso_splits(groups):
    per_class = np.bincount(labels[test_idx], minlength=len(classes))
    print(f"{subject:24s} {len(train_idx):6d} {len(test_idx):5d}  {per_class.tolist()}")
'''),
("md", '''
## 2. Pooled UF1 and UAR, and a fixed number of epochs

**Pooled scores.** A held-out subject often has a handful of clips, some classes none at all: a
per-fold F1 is mostly noise. The MEGC protocol pools the predictions of every fold into one
confusion matrix and scores that: **UF1**, the unweighted mean over classes of the F1 score, and
**UAR**, the unweighted mean of the per-class recalls. Both weigh a rare class as much as a
frequent one, which plain accuracy does not.

**Fixed epochs.** Each fold trains for exactly `EPOCHS` epochs and the model of the *last* epoch
predicts the held-out subject. Picking, per fold, the epoch that scored best on that subject
selects on the test data: with many epochs and few test clips it inflates the score a lot. Some
published code does exactly that. The harness records the held-out accuracy after every epoch
only to print that figure beside the honest one, **labelled as optimistic**; training never reads
it.

Everything the network is normalised with (the per-channel scale of the flow maps, the class
weights of the loss, the MotionMix partners) comes from the training fold only.
'''),
("code", '''
config = LOSOConfig(
    model=MODEL, ablation=None if ABLATION in (None, "full") else ABLATION, model_overrides=MODEL_OPTIONS,
    epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LR, weight_decay=WEIGHT_DECAY, flow=FLOW_METHOD,
    input_size=INPUT_SIZE, seed=SEED, device=DEVICE, amp=AMP, folds=FOLDS)
if RUN_DIR:
    run_dir = Path(RUN_DIR)
else:
    name = "-".join([DATASET, MODEL] + ([ABLATION] if MODEL == "hmrm" else []) + [FLOW_METHOD, f"e{EPOCHS}", f"seed{SEED}"])
    run_dir = cache_dir("loso_runs") / name
print(json.dumps(config.to_dict(), indent=1))
print("run folder:", run_dir)
'''),
("md", '''
## 3. Train and score

`run_loso` computes (and caches) the flow maps, then trains one fresh model per fold. Each fold
writes a checkpoint every few epochs and a `result.json` when it is done, so an interrupted run
continues where it stopped when this cell runs again; a run folder made with other settings is
refused.
'''),
("code", '''
result = run_loso(samples, config, run_dir, prepared=PREPARED)
metrics = result.metrics
print(result.table())
'''),
("md", '''
## 4. Honest and optimistic, side by side

The first row is the result: the final epoch of every fold, pooled. The second is what selecting
the best epoch on each held-out subject would have reported. The gap between them is how much a
test-set epoch choice flatters a model; on a small data set it is large.
'''),
("code", '''
h, b = metrics["honest"], metrics.get("best_epoch_on_test")
rows = [("honest: final epoch, pooled", h)] + ([("best epoch on test (optimistic, NOT a result)", b)] if b else [])
table = "| | UF1 | UAR | accuracy |\\n|---|---|---|---|\\n"
table += "".join(f"| {name} | {m['uf1']:.3f} | {m['uar']:.3f} | {m['accuracy']:.3f} |\\n" for name, m in rows)
if not metrics["complete"]:
    table += f"\\n**{metrics['partial_note']}**\\n"
display(Markdown(table))
'''),
("md", '''
The confusion matrix pools every fold's final-epoch predictions (rows: true class). The training
figure shows each fold's training loss and, dashed, the pooled held-out UF1 / UAR per epoch: a
diagnostic to look at, never to choose an epoch with.
'''),
("code", '''
for figure in ("confusion.png", "training.png"):
    if (run_dir / figure).is_file():
        display(Image(filename=str(run_dir / figure)))
'''),
("md", '''
## 5. Where the run lives

Everything is in the run folder: `config.json` (settings, input fingerprint, device),
`folds/<subject>/` (checkpoint and result of each fold), `predictions.csv`, `metrics.json` and the
two figures. `hmrm.train.read_run(folder)` reads the scores back without training.
'''),
("code", '''
print(f"run folder: {run_dir.resolve()}")
for p in sorted(run_dir.iterdir()):
    print("  " + p.name + ("/" if p.is_dir() else ""))
'''),
]
make(cells, Path(__file__).resolve().parents[2] / "notebooks" / "06_loso_training.ipynb")
