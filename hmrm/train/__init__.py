"""Training and evaluation: the leave-one-subject-out harness and its scores.

* :mod:`hmrm.train.metrics` - UF1, UAR, accuracy and confusion matrix pooled over folds (MEGC);
* :mod:`hmrm.train.folds` - what a run folder holds: a fold's folder, its ``result.json``, the pooled predictions;
* :mod:`hmrm.train.stats` - intervals over subjects (bootstrap) and paired differences between runs;
* :mod:`hmrm.train.calibration` - temperature scaling of the pooled predictions, reliability;
* :mod:`hmrm.train.recipe` - the learning-rate schedule and weight averaging;
* :mod:`hmrm.train.loso` - ``LOSOConfig``, ``run_loso`` (resumable, honest: fixed epochs, the final
  epoch's predictions pooled over every held-out subject): the one public spelling of the training API;
* :mod:`hmrm.train.reproduce` - ``hmrm reproduce``: the LOSO job notebook run with papermill once per config;
* :mod:`hmrm.train.results` - run folders gathered into the results and ablation tables (with the
  paper's reported figures beside ours), and the efficiency table read back;
* :mod:`hmrm.train.seeds` - one run repeated over training seeds.

The package itself imports nothing, so that reaching one of its light modules (the metrics, the run
folder's files) does not load the training stack.
"""
