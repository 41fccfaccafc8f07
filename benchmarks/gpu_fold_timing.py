"""How long does a composite-sized LOSO fold take at the paper's settings? Time a few folds, extrapolate.

Inputs are random: ``--samples`` flow maps (default 442, the MEGC2019 composite), ``--classes``
classes (3), spread over ``--subjects`` subjects (68), 3 x 112 x 112 with fixed region boxes
(:func:`hmrm.efficiency.example_inputs`). The first ``--folds`` folds of a LOSO run
(:func:`hmrm.train.loso.run_loso`, the real harness: MotionMix, the per-epoch held-out prediction,
checkpoints every 5 epochs) train for ``--epochs`` epochs each, with the default HMRM
(``--set key=value`` overrides its options), batch 32, AdamW lr 5e-4, in a temporary run folder.

The time of each epoch is taken between calls of run_loso's ``stop`` hook (asked after every epoch
but a fold's last). The first epoch of a fold (warm-up: kernel selection, allocation) is reported
apart; "steady" is the mean of the later ones. Extrapolated: seconds per fold at 1000 epochs (the
paper's) = first + 999 x steady, and the whole LOSO = that x the number of subjects (every fold
trains on nearly all samples, so folds cost about the same).

    .venv/bin/python benchmarks/gpu_fold_timing.py --device cuda --epochs 5 --folds 2
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hmrm.utils import pick_device


def random_data(samples: int, classes: int, subjects: int, size: int = 112, seed: int = 0):
    """A :class:`hmrm.train.loso.LOSOData` of random flow maps: every subject has at least one sample."""
    from hmrm.efficiency import example_inputs
    from hmrm.train.loso import LOSOData

    if subjects > samples:
        raise ValueError(f"--subjects ({subjects}) cannot exceed --samples ({samples})")
    rng = np.random.default_rng(seed)
    x, boxes = example_inputs(samples, size, 3, seed=seed)
    groups = rng.permutation(np.arange(samples) % subjects)
    labels = rng.permutation(np.arange(samples) % classes)
    return LOSOData(x.numpy(), boxes.numpy(), labels, [f"random/sub{g:03d}" for g in groups],
                    [f"clip{i:04d}" for i in range(samples)], [f"class{c}" for c in range(classes)],
                    {"datasets": ["random"], "flow": "dis_tuned"})


def _value(text: str):
    import yaml

    return yaml.safe_load(text)


def time_folds(device: str = "cuda", epochs: int = 5, folds: int = 2, samples: int = 442, classes: int = 3,
               subjects: int = 68, batch_size: int = 32, lr: float = 5e-4, model: str = "hmrm",
               overrides: dict | None = None, input_size: int = 112, amp: bool = False,
               target_epochs: int = 1000) -> dict:
    """Train the first ``folds`` folds for ``epochs`` epochs; return the timings and extrapolations."""
    from hmrm.train.loso import LOSOConfig, RunOptions, run_loso

    if epochs < 3:
        raise ValueError("--epochs must be at least 3 (the first epoch is a warm-up, the last is not marked)")
    data = random_data(samples, classes, subjects, input_size)
    config = LOSOConfig(model=model, model_overrides=overrides or {}, epochs=epochs, batch_size=batch_size, lr=lr,
                        input_size=input_size, device=device, amp=amp, folds=folds)
    marks: dict[str, list[float]] = {}

    def stop(subject: str, epoch: int) -> bool:
        marks.setdefault(subject, []).append(time.perf_counter())
        return False

    with tempfile.TemporaryDirectory() as tmp:
        res = run_loso(data, config, Path(tmp) / "run", RunOptions(progress=False, stop=stop, figures=False))
        fold_seconds = {}
        for d in sorted((Path(tmp) / "run" / "folds").iterdir()):
            r = json.loads((d / "result.json").read_text())
            fold_seconds[r["subject"]] = r["seconds"]
        env = json.loads((Path(tmp) / "run" / "config.json").read_text())["environment"]
    # marks[subject][k] = end of epoch k + 1, for every epoch but the last (the hook is not asked then);
    # their differences are the epochs 2 .. E-1. A fold's seconds (result.json) = first epoch + the
    # E-1 later ones (the last taken as a steady one) + the final prediction (small).
    steady = [d for t in marks.values() for d in np.diff(t).tolist()]
    steady_s = float(np.mean(steady))
    first = [total - steady_s * (epochs - 1) for total in fold_seconds.values()]
    first_s = float(np.mean(first))
    per_fold = first_s + (target_epochs - 1) * steady_s
    n_subjects = len(data.subjects)
    return {"device": env["device"], "device_name": env.get("device_name", ""), "scan_backend": env["scan_backend"],
            "amp": env["amp"], "folds_timed": len(fold_seconds), "epochs": epochs, "fold_seconds": fold_seconds,
            "first_epoch_s": first_s, "steady_epoch_s": steady_s, "per_sample_ms": 1e3 * steady_s / (samples * (1 - 1 / subjects)),
            "fold_at_target_s": per_fold, "loso_at_target_s": per_fold * n_subjects, "subjects": n_subjects,
            "target_epochs": target_epochs, "complete": res.complete}


def _hours(s: float) -> str:
    return f"{s:,.0f} s = {s / 3600:,.2f} h"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    p.add_argument("--epochs", type=int, default=5, help="epochs per timed fold, at least 3 (default 5)")
    p.add_argument("--folds", type=int, default=2, help="folds to time (default 2)")
    p.add_argument("--samples", type=int, default=442, help="samples (default 442, the MEGC2019 composite)")
    p.add_argument("--classes", type=int, default=3, help="classes (default 3)")
    p.add_argument("--subjects", type=int, default=68, help="subjects, one fold each (default 68)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--model", default="hmrm", help="hmrm (default) or ststnet")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a model option, e.g. --set d_model=32 (YAML value); default: the paper's HMRM")
    p.add_argument("--input-size", type=int, default=112)
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only; the paper says nothing of it)")
    p.add_argument("--target-epochs", type=int, default=1000, help="epochs to extrapolate to (default 1000, the paper)")
    args = p.parse_args(argv)
    try:
        pick_device(args.device)
    except RuntimeError as exc:
        print(f"no CUDA device: this benchmark times GPU training (pass --device cpu for a CPU run); {exc}", file=sys.stderr)
        return 2
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key] = _value(value)
    r = time_folds(args.device, args.epochs, args.folds, args.samples, args.classes, args.subjects, args.batch_size,
                   args.lr, args.model, overrides, args.input_size, args.amp, args.target_epochs)
    print(f"device {r['device']} {r['device_name']}, scan backend {r['scan_backend']}, amp {r['amp']}")
    print(f"model {args.model} {overrides or '(defaults)'}, {args.samples} samples, {args.classes} classes, "
          f"{r['subjects']} subjects, batch {args.batch_size}, AdamW lr {args.lr}, input {args.input_size} px")
    for subject, s in r["fold_seconds"].items():
        print(f"  fold {subject}: {r['epochs']} epochs in {s:.2f} s")
    print(f"first epoch (warm-up): {r['first_epoch_s']:.3f} s")
    print(f"seconds per epoch (steady): {r['steady_epoch_s']:.3f} s ({r['per_sample_ms']:.2f} ms per training sample)")
    print(f"extrapolated per fold at {r['target_epochs']} epochs: {_hours(r['fold_at_target_s'])}")
    print(f"extrapolated whole LOSO ({r['subjects']} folds x {r['target_epochs']} epochs): "
          f"{_hours(r['loso_at_target_s'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
