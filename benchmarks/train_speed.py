"""Training speed on this CPU: samples per second of HMRM sizes, beside what the CPU can do.

    .venv/bin/python benchmarks/train_speed.py                       # the table, printed
    .venv/bin/python benchmarks/train_speed.py --out figures/train_speed.md

Two measurements per configuration, both at batch 32 on random inputs (speed does not depend on
the values):

* **step**: one training step (forward, loss, backward, AdamW) repeated; the median step time.
* **LOSO run**: :func:`hmrm.train.loso.run_loso` training all ten folds of a random 10-subject
  data set of 160 clips for 40 epochs, as a demo row of HMRM does (MotionMix, the held-out subject
  predicted after every epoch for the diagnostic curve, checkpoints, the folds side by side in
  one worker process per core where the package does that): training samples per second over
  the wall-clock time of the whole call, start-up of the processes included.

The yardstick, measured in the same run: the rate of a 1024 x 1024 float32 matrix product
(GFLOP/s), what the CPU reaches on the kind of work it does best. Each model's rate is its
training FLOPs per sample (three times the forward FLOPs of :func:`hmrm.efficiency.count_flops`,
the usual estimate for forward plus backward) times samples per second.

Works on older checkouts of the package too (``PYTHONPATH=<checkout> python benchmarks/train_speed.py``),
which is how the "before" figures of a speed-up are measured: same script, same machine, same run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hmrm.efficiency import count_flops, example_inputs
from hmrm.markdown import markdown_row, markdown_table
from hmrm.resultfiles import write_results
from hmrm.model import build_model

#: name -> (model, model options, LOSO options, time a whole LOSO run too). "hmrm_demo" is the HMRM
#: of the first demo (d48, depth 1, 64 px, linear patches), kept fixed so that before / after
#: compare like with like; "hmrm_demo_conv" is today's demo HMRM (convolutional stem). The larger
#: ones are timed per step only (a whole LOSO run of the paper's size takes hours on a CPU).
CONFIGS = {
    "hmrm_demo": ("hmrm", {"d_model": 48, "depth": 1, "input_size": 64}, {}, True),
    "hmrm_demo_conv": ("hmrm", {"d_model": 48, "depth": 1, "input_size": 64, "stem": "conv"}, {}, True),
    "hmrm_d64_depth2_112": ("hmrm", {"d_model": 64, "depth": 2, "input_size": 112}, {}, False),
    "hmrm_paper": ("hmrm", {"input_size": 112}, {}, False),
    "ststnet_64": ("ststnet", {}, {"input_size": 64}, True),
}
DEFAULT = ("hmrm_demo", "ststnet_64")


def matmul_gflops(repeats: int = 5, n: int = 1024) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def step_time(model_name: str, options: dict, size: int, repeats: int, batch: int = 32) -> tuple[float, float]:
    """(median seconds of one training step, forward FLOPs per sample)."""
    torch.manual_seed(0)
    model = build_model(model_name, **options)
    x, boxes = example_inputs(batch, size)
    y = torch.randint(0, 3, (batch,))
    flops = count_flops(model, x[:1], boxes[:1])["total"]
    opt = torch.optim.AdamW(model.parameters(), 5e-4)
    times = []
    for i in range(repeats + 2):
        t = time.perf_counter()
        loss = model.loss(model(x, boxes), y, torch.ones(3))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t)
    return statistics.median(times), flops


def loso_rate(model_name: str, options: dict, loso: dict, size: int, epochs: int, workers: int) -> float:
    """Training samples per second of a full LOSO run on a random 10-subject data set (160 clips,
    144 training clips per fold), wall clock of the whole call, ``workers`` processes. Older
    checkouts, whose ``run_loso`` has no ``workers``, train the folds one after the other with
    PyTorch's default threads."""
    import inspect

    from hmrm.train.loso import LOSOConfig, LOSOData, RunOptions, run_loso

    rng = np.random.default_rng(0)
    n = 160
    x, boxes = example_inputs(n, size)
    data = LOSOData(x.numpy(), boxes.numpy(), rng.integers(0, 3, n), [f"sub{i % 10:02d}" for i in range(n)],
                    [f"clip{i:03d}" for i in range(n)], ("negative", "positive", "surprise"))
    over = {k: v for k, v in options.items() if k != "input_size"}
    cfg = LOSOConfig(model=model_name, model_overrides=over, epochs=epochs, input_size=size, flow="gt",
                     **{k: v for k, v in loso.items() if k != "input_size"})
    kwargs = {"workers": workers} if "workers" in inspect.signature(run_loso).parameters else {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res = run_loso(data, cfg, Path(tmp) / "run", RunOptions(progress=False, figures=False, **kwargs))
        seconds = time.perf_counter() - t
    assert res.metrics["complete"]
    return 10 * 144 * epochs / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=list(DEFAULT), choices=list(CONFIGS), help="configurations to time")
    p.add_argument("--repeats", type=int, default=10, help="timed training steps per configuration (median)")
    p.add_argument("--epochs", type=int, default=40,
                   help="epochs of the timed LOSO run (0: skip it); 40, as a demo row of HMRM trains")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--label", default="", help="a word for the table's caption, e.g. before / after")
    p.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import hmrm

    gflops = matmul_gflops()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    lines = [f"Training speed{' (' + args.label + ')' if args.label else ''}: torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads, package at {Path(hmrm.__file__).parent}. Yardstick: a 1024 x 1024 "
             f"float32 matrix product runs at {gflops:.1f} GFLOP/s here.", "",
             markdown_table(["configuration", "parameters", "train MFLOPs / sample", "step ms (batch 32)",
                             "samples / s (step)", "GFLOP/s (share of matmul)",
                             f"samples / s (10-fold LOSO run, {cores} cores, wall clock)"], [], "lrrrrrr")]
    print("\n".join(lines), flush=True)
    for name in args.configs:
        model_name, options, loso, whole_run = CONFIGS[name]
        size = options.get("input_size", loso.get("input_size", 112))
        opts = options if model_name == "hmrm" else {}
        dt, flops = step_time(model_name, opts, size, args.repeats)
        params = sum(p.numel() for p in build_model(model_name, **opts).parameters())
        rate = 32 / dt
        achieved = 3 * flops * rate / 1e9
        fold = loso_rate(model_name, opts, loso, size, args.epochs, cores) if args.epochs and whole_run else float("nan")
        line = markdown_row([name, f"{params / 1e6:.3f} M", f"{3 * flops / 1e6:.1f}", f"{1e3 * dt:.1f}", f"{rate:.0f}",
                             f"{achieved:.2f} ({100 * achieved / gflops:.1f} %)", "-" if fold != fold else f"{fold:.0f}"])
        lines.append(line)
        print(line, flush=True)
    if args.out:
        write_results(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":  # the LOSO run spawns worker processes, which import this file
    main()
