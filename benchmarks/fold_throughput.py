"""Folds per hour of one LOSO run under each way of training its folds, on this machine.

    .venv/bin/python benchmarks/fold_throughput.py                                  # the table, printed
    .venv/bin/python benchmarks/fold_throughput.py --out benchmarks/results/fold_throughput.md
    .venv/bin/python benchmarks/fold_throughput.py --device cuda --network paper --size 112 --epochs 5

Every row trains the same LOSO run (a random data set of SUBJECTS subjects x 16 clips, three
classes; the demo's HMRM network and recipe, or with ``--network paper`` the paper's HMRM with
AdamW at lr 5e-4; EPOCHS epochs; speed does not depend on the values) into a fresh run folder,
and measures the wall-clock time of the whole call, start-up included:

* **one at a time**: ``run_loso(..., workers=1)``, every fold in the calling process (one thread
  on the CPU);
* **local workers** (CPU only): ``workers=N`` spawned processes, one fold each at a time;
* **stacked** (always on CUDA, on the CPU with ``--stacked``): ``engine="stacked"``, every fold at
  once as one batched network (``torch.func.vmap``);
* **Ray** (CPU only here): ``engine="ray"``, every fold a Ray task on a Ray instance of N CPUs
  started by the call (its start-up and shut-down are in the time).

The local-worker and Ray rows must give the first row's predictions file byte for byte, the
stacked row its predicted classes and pooled scores (its probabilities agree up to rounding); a row
that differs stops the benchmark.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hmrm.demo import DEMO_RECIPES
from hmrm.markdown import markdown_table
from hmrm.resultfiles import write_results
from hmrm.train.loso import LOSOConfig, LOSOData, RunOptions, cpu_cores, run_loso
from hmrm.train.loso import recipe_config


def random_data(subjects: int, per_subject: int = 16, size: int = 64, seed: int = 0) -> LOSOData:
    rng = np.random.default_rng(seed)
    n = subjects * per_subject
    x = rng.normal(0, 0.3, (n, 3, size, size)).astype(np.float32)
    s = size / 64
    boxes = np.tile((np.array([[8, 10, 30, 26], [34, 10, 56, 26], [22, 24, 42, 40], [16, 40, 48, 58]]) * s).astype(int),
                    (n, 1, 1))
    groups = [f"sub{i // per_subject:02d}" for i in range(n)]
    keys = [f"{g}/c{i:03d}" for i, g in enumerate(groups)]
    return LOSOData(x, boxes, np.arange(n) % 3, groups, keys, ("negative", "positive", "surprise"), {"flow": "gt"})


def timed_run(data: LOSOData, config, **kw) -> tuple[float, dict, str]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = run_loso(data, config, Path(tmp) / "run", RunOptions(progress=False, figures=False, **kw))
        seconds = time.perf_counter() - t0
        assert res.finished
        return seconds, res.metrics["honest"], (Path(tmp) / "run" / "predictions.csv").read_text()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=8, help="subjects, one fold each")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--network", choices=["demo", "paper"], default="demo",
                    help="the demo's small HMRM and recipe, or the paper's HMRM (AdamW, lr 5e-4)")
    ap.add_argument("--size", type=int, default=64, help="input size in pixels (the paper: 112)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--workers", type=int, default=None, help="processes or Ray CPUs (default: this machine's cores)")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray row")
    ap.add_argument("--stacked", action="store_true",
                    help="on the CPU, add the stacked row (always there on CUDA); slow and memory-hungry on a CPU, "
                    "where it runs the pure-PyTorch scan instead of the compiled loops: 8 folds at 64 px need ~10 GB")
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = ap.parse_args()
    workers = args.workers or cpu_cores()
    data = random_data(args.subjects, size=args.size)
    if args.network == "demo":
        config = recipe_config("hmrm", {**DEMO_RECIPES["hmrm"], "epochs": args.epochs}, flow="gt", input_size=args.size,
                               record_test_curve=False, device=args.device)
    else:
        config = LOSOConfig(model="hmrm", epochs=args.epochs, flow="gt", input_size=args.size, record_test_curve=False,
                            device=args.device)
    cpu = args.device == "cpu"
    engines = [("one at a time", {"workers": 1}, "bits")]
    if cpu:
        engines.append((f"local workers ({workers})", {"workers": workers}, "bits"))
    if not cpu or args.stacked:
        engines.append(("stacked (every fold at once)", {"engine": "stacked", "stack": args.subjects}, "classes"))
    if cpu and not args.no_ray:
        engines.append((f"Ray, {workers} CPUs on this machine", {"engine": "ray", "workers": workers}, "bits"))
    rows, reference = [], None
    for name, kw, check in engines:
        seconds, honest, preds = timed_run(data, config, **kw)
        if reference is None:
            reference, base = (honest, preds), seconds
        elif (check == "bits" and preds != reference[1]) or honest != reference[0]:
            raise SystemExit(f"{name}: predictions differ from the one-at-a-time run's")
        folds_per_hour = args.subjects / seconds * 3600
        rows.append([name, f"{seconds:.1f}", f"{folds_per_hour:.0f}", f"{base / seconds:.2f}x"])
        print(f"{name}: {seconds:.1f} s, {folds_per_hour:.0f} folds per hour", flush=True)
    table = markdown_table(["engine", "wall-clock s (whole run)", "folds per hour", "speed-up"], rows)
    where = f"{cpu_cores()} CPU cores" if cpu else torch.cuda.get_device_name(0)
    text = (f"Folds per hour: a LOSO of {args.subjects} subjects x 16 random clips at {args.size} px, the "
            f"{'demo' if args.network == 'demo' else 'paper'}'s HMRM, {args.epochs} epochs per fold, {where}; the "
            f"predictions of every row agree (`benchmarks/fold_throughput.py`).\n\n{table}\n")
    print("\n" + text)
    if args.out:
        write_results(args.out, text)


if __name__ == "__main__":
    main()
