"""How fast is each selective-scan backend, forward and forward+backward?

Times ``hmrm.ssm.selective_scan`` on every backend that can run here, at batch 8, D 384, N 16
(a HMRM-sized encoder layer) and L = 49, 196, 784 (7x7, 14x14, 28x28 patch grids), and, for
comparison, the same recurrence through mambapy's Blelloch ``pscan`` (deltaA and deltaB_u built
the same way, ``pscan``, then the contraction with C). Inputs: delta in [0.01, 0.51], A in
[-2.1, -0.1], no D, z or delta bias (the same work for every contender).

"forward" is an inference call under ``torch.no_grad()``; "forward+backward" is a training step
of the scan alone (forward with autograd, then backward of a random upstream gradient). Each
time is the best of ``--repeats`` runs after one warm-up (``--sequential-repeats`` runs, no
warm-up, for the slow sequential loop); the contenders take turns, run by run, so that load from
other processes affects them alike. The sequential loop's backward grows as L^2, so its
forward+backward is skipped above ``--sequential-max-length`` (default 196). The ``triton`` row
is the compiled kernel on a GPU; on a CPU it appears only with ``--interpreter`` (Triton's CPU
interpreter, started with ``TRITON_INTERPRET=1``), labelled so, one run at L up to
``--interpreter-max-length``: a check that it runs and agrees, never a speed. Ratios are time
divided by the ``parallel`` backend's time: above 1 means ``parallel`` is faster. Torch uses its
default number of threads.

    .venv/bin/python benchmarks/scan_bench.py [--repeats 3] [--lengths 49 196 784] [--out figures/scan_bench.md]
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from hmrm.markdown import markdown_table
from hmrm.resultfiles import write_results
from hmrm.ssm.scan import available_backends, selective_scan
from hmrm.utils import pick_device

Inputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one, with the number of cores."""
    try:
        name = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        name = platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores"


def make_inputs(batch: int, dim: int, length: int, state: int, device: str) -> Inputs:
    g = torch.Generator().manual_seed(0)
    u = torch.randn(batch, dim, length, generator=g)
    delta = torch.rand(batch, dim, length, generator=g) * 0.5 + 0.01
    A = -(torch.rand(dim, state, generator=g) * 2 + 0.1)
    B, C = torch.randn(2, batch, state, length, generator=g)
    return tuple(t.to(device) for t in (u, delta, A, B, C))


def mambapy_pscan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """The recurrence through mambapy.pscan.pscan, which takes (batch, L, D, N) tensors."""
    from mambapy.pscan import pscan

    dt = delta.transpose(1, 2)                                                    # (b, l, d)
    deltaA = torch.exp(dt.unsqueeze(-1) * A)                                      # (b, l, d, n)
    deltaB_u = (dt * u.transpose(1, 2)).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(2)
    hs = pscan(deltaA, deltaB_u)
    return torch.matmul(hs, C.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)


def timed_ms(fn: Callable[[], None], device: str) -> float:
    """Wall time of one call, in milliseconds (waiting for the GPU where there is one)."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return 1e3 * (time.perf_counter() - t0)


def calls(scan: Callable[..., torch.Tensor], inputs: Inputs, device: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """The two things timed: an inference forward and a training step (forward + backward)."""
    leaves = [t.clone().requires_grad_() for t in inputs]
    up = torch.randn(inputs[0].shape, generator=torch.Generator().manual_seed(1)).to(device)

    def forward() -> None:
        with torch.no_grad():
            scan(*inputs)

    def train_step() -> None:
        scan(*leaves).backward(up)

    return forward, train_step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per fast contender, best kept (default 3)")
    ap.add_argument("--sequential-repeats", type=int, default=1, help="timed runs of the sequential loop (default 1)")
    ap.add_argument("--sequential-max-length", type=int, default=196,
                    help="longest L for the sequential forward+backward, which grows as L^2 (default 196)")
    ap.add_argument("--lengths", type=int, nargs="+", default=[49, 196, 784], help="sequence lengths (default 49 196 784)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--dim", type=int, default=384, help="channels D (default 384)")
    ap.add_argument("--state", type=int, default=16, help="state size N (default 16)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    ap.add_argument("--out", type=Path, help="also write the table to this markdown file (e.g. figures/scan_bench.md)")
    ap.add_argument("--interpreter", action="store_true",
                    help="on a CPU, add the Triton kernels through Triton's interpreter (correctness only, slow; sets "
                    "TRITON_INTERPRET=1 for this process)")
    ap.add_argument("--interpreter-max-length", type=int, default=49, help="longest L for the interpreter row (default 49)")
    args = ap.parse_args()
    if args.interpreter:
        os.environ["TRITON_INTERPRET"] = "1"  # before Triton is imported
    args.device = str(pick_device(args.device))

    usable = [b.name for b in available_backends() if b.available]
    on_gpu = args.device.startswith("cuda")
    backends = [b for b in ("sequential", "parallel", "fused", "triton", "mamba_ssm")
                if b in usable and (b != "mamba_ssm" or on_gpu) and (b != "fused" or not on_gpu)
                and (b != "triton" or on_gpu or args.interpreter)]
    interp = "triton (CPU interpreter: correctness only)"
    label = lambda b: interp if b == "triton" and not on_gpu else b  # noqa: E731
    contenders: list[tuple[str, Callable[..., torch.Tensor]]] = [
        (label(b), lambda *t, b=b: selective_scan(*t, backend=b)) for b in backends] + [("mambapy pscan", mambapy_pscan)]

    t_start = time.perf_counter()
    rows = []
    for length in args.lengths:
        inputs = make_inputs(args.batch, args.dim, length, args.state, args.device)
        slow = ("sequential", interp)
        runs = {name: args.sequential_repeats if name == "sequential" else 1 if name == interp else args.repeats
                for name, _ in contenders}
        if length > args.interpreter_max_length:
            runs[interp] = 0
        with_backward = {name: name != "sequential" or length <= args.sequential_max_length for name, _ in contenders}
        funcs = {name: calls(scan, inputs, args.device) for name, scan in contenders}
        for name, (forward, train_step) in funcs.items():     # warm-up of the fast contenders
            if name not in slow:
                forward(), train_step()
        # interleaved rounds: a burst of load from other processes hits every contender alike
        best: dict[str, list[float]] = {name: [math.inf, math.inf] for name in funcs}
        for r in range(max(runs.values())):
            for name, (forward, train_step) in funcs.items():
                if r < runs[name]:
                    best[name][0] = min(best[name][0], timed_ms(forward, args.device))
                    if with_backward[name]:
                        best[name][1] = min(best[name][1], timed_ms(train_step, args.device))
        times = {name: (fwd if runs[name] else None, fb if with_backward[name] and runs[name] else None)
                 for name, (fwd, fb) in best.items()}
        for name, (fwd, fb) in times.items():
            ref_fwd, ref_fb = times["parallel"]
            rows.append((length, name, fwd, fb, None if fwd is None else fwd / ref_fwd, None if fb is None else fb / ref_fb))
        if interp in funcs and runs[interp]:  # the interpreter row checks agreement, not speed
            with torch.no_grad():
                a, b = (selective_scan(*inputs, backend=n) for n in ("triton", "parallel"))
            print(f"L={length}: triton through the interpreter vs parallel, max |difference| {float((a - b).abs().max()):.2e}")
        print(f"L={length} done", flush=True)

    device = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"{cpu_name()}, {torch.get_num_threads()} torch threads"
    ms = lambda v: "skipped" if v is None else f"{v:.1f}"  # noqa: E731
    ratio = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731
    command = " ".join(["python", Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    lines = [
        f"Selective scan, batch {args.batch}, D {args.dim}, N {args.state}, float32, torch {torch.__version__}, {device}.",
        f"Made by `{command}`.",
        f"Best of {args.repeats} runs after a warm-up ({args.sequential_repeats} run(s), no warm-up, for `sequential`). "
        "Ratio = time / time of `parallel` (above 1: `parallel` is faster).",
        "",
        markdown_table(["L", "backend", "forward (ms)", "forward+backward (ms)", "forward ratio", "forward+backward ratio"],
                       [[length, name, ms(fwd), ms(fb), ratio(rf), ratio(rfb)] for length, name, fwd, fb, rf, rfb in rows],
                       "rlrrrr"),
    ]
    if any(fb is None for *_, fb, _, _ in rows):
        lines += ["", f"`sequential` forward+backward skipped above L = {args.sequential_max_length} "
                      "(its backward grows as L^2; `--sequential-max-length` to include it)."]
    table = "\n".join(lines)
    print()
    print(table)
    print(f"\n(benchmark wall time {time.perf_counter() - t_start:.0f} s)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_results(args.out, table + "\n")
        print(f"table written to {args.out}")


if __name__ == "__main__":
    main()
