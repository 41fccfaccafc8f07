"""Leave-one-subject-out (LOSO) training and evaluation, resumable and honest by construction.

One job per module: :mod:`.config` (what a run is), :mod:`.data` (its inputs and splits),
:mod:`.run_folder` (the folder and its checks), :mod:`.fold` (one fold's loop, on one screen, and its
steps), :mod:`.fold_parts` (what the loop is made of: seeds, the fold's tensors, an epoch's draws, the
state a checkpoint holds, the result record), :mod:`.workers` (folds side by side), :mod:`.stacked` (many folds as one batched network),
:mod:`.ray_engine` (folds as tasks on a Ray cluster), :mod:`.report` (pooled scores and tables),
:mod:`.harness` (``run_loso``, which ties them together, and ``RunOptions``, how a run is carried out).

::

    for each subject s (sorted):                 one fold
        train = every sample of the other subjects, test = the samples of s
        scale         <- per-channel RMS of the training inputs       (training fold only)
        class weights <- inverse class frequency of the training labels (training fold only)
        fresh model and AdamW, seeded from (seed, fold)
        for epoch 1 .. E (fixed, no early stopping):
            shuffle the training fold; MotionMix partners drawn from the training fold
            x / scale -> model -> class-weighted loss -> AdamW step
        predict s with the model of epoch E        <- the only prediction that is scored
    pool the predictions of every fold -> UF1, UAR, accuracy, confusion matrix (hmrm.train.metrics)

Choices (the paper gives none of them beyond AdamW, lr 5e-4 and 1000 epochs)
----------------------------------------------------------------------------
* **Standardisation.** Flows are sub-pixel and strain is smaller still, and the network does not
  normalise its input. Each channel is divided by its root mean square over the training fold
  (no centring: zero motion stays zero, the sign of a displacement is kept). MotionMix runs on
  the raw values, before scaling.
* **No choice looks at the test subject.** The epoch count is fixed; the held-out subject is
  predicted once, after the last epoch. With ``record_test_curve`` the held-out subject is also
  predicted after every epoch (eval mode, no gradient), only to print the "best epoch on test"
  figure other repositories report, labelled as optimistic. Training never reads it, and since
  every random draw is seeded per epoch (below) the trained weights are the same with it on or off.
* **Randomness.** The model's initial weights come from ``(seed, fold)``; the shuffle, the
  MotionMix draws and dropout of epoch ``e`` from ``(seed, fold, e)``. Nothing carries over from one
  epoch to the next but the weights and the optimiser, so a fold resumed from a checkpoint
  continues exactly as it would have run (bit for bit on the CPU; CUDA kernels are not all
  deterministic).
* **Defaults.** AdamW, lr 5e-4 (the paper), weight decay 0.01 (PyTorch's default; the paper gives
  none), batch 32, 100 epochs (the paper trains 1000; a CPU cannot), a constant learning rate,
  no label smoothing, no weight averaging. The recipe options (``schedule``, ``warmup_epochs``,
  ``label_smoothing``, ``ema``; :mod:`hmrm.train.recipe`) change that; the demo's recipe and the
  measurements behind it are in :mod:`hmrm.demo`.
* **Folds in parallel, one thread each.** On a CPU every fold trains with exactly one PyTorch
  thread (:data:`FOLD_THREADS`), and ``workers`` processes train different folds at the same
  time (default: one per CPU core). The small networks of a CPU run spend most of their time in
  small operations that two threads cannot split well, so two folds side by side train about
  twice as many samples per second as one fold on two threads (``benchmarks/train_speed.py``).
  Since a fold always runs on one thread and depends only on (seed, fold), the results are the
  same bits whatever the number of workers. On CUDA the folds run one after the other in the
  calling process.
* **Folds stacked.** ``engine="stacked"`` trains several folds at once as one batched network
  (``torch.func.vmap`` over their stacked weights), each with its own data, draws, optimiser and
  checkpoints (:mod:`.stacked`); for GPUs. The results agree with one-at-a-time training up to
  rounding.
* **Folds on a cluster.** ``engine="ray"`` makes every fold a Ray task (one CPU, one GPU on
  CUDA, one thread) on the machines of a Ray cluster, writing into the same run folder on a shared
  path; a fold whose worker dies is run again from its last checkpoint (:mod:`.ray_engine`). The
  results are the same bits as the local engine's.

The run folder
--------------
``config.json`` (the resolved configuration, a fingerprint of the inputs, the device and
selective-scan backend), ``folds/<subject>/checkpoint.pt`` (model, optimiser, epoch, RNG states;
after the last epoch only the final weights), ``folds/<subject>/result.json`` (written last: a fold
with it is done), ``predictions.csv``, ``metrics.json``, ``training.png`` and ``confusion.png``.
Every file is written atomically. Running the same call again skips finished folds and continues
a partial fold from its checkpoint; a folder made with another configuration or other inputs is
refused with a message saying what differs.
"""
from ..folds import fold_dirname
from .config import FOLD_THREADS, LOSOConfig, build_fold_model, recipe_config, resolve_environment
from .data import LOSOData, loso_splits
from .harness import RunOptions, run_loso
from .report import aggregate, read_run
from .run_folder import RunMismatchError, run_name
from .ray_engine import ENGINES, EngineError
from .workers import cpu_cores

__all__ = [
    "ENGINES", "EngineError", "FOLD_THREADS", "LOSOConfig", "LOSOData", "RunMismatchError", "RunOptions", "aggregate",
    "build_fold_model", "cpu_cores", "fold_dirname", "loso_splits", "read_run", "recipe_config",
    "resolve_environment", "run_loso", "run_name",
]
