"""Optical flow on SynthME: every onset -> apex pair against its exact ground truth.

    .venv/bin/python benchmarks/flow_bench.py [--root data/synthme] [--limit N] [--weights DIR]

For each method: end-point error (EPE) over the face (mean of per-pair means, and the 95th
percentile over all face pixels), EPE on the *expression* pixels (face pixels whose ground-truth
motion, after removing its best-fitting affine part, i.e. the head motion, is at least 0.1 px),
angular error, and CPU time per pair. Frames are 256 px aligned faces, the crop size GRU-AOFE uses.
Writes a markdown table (``--table``) and a bar chart (``--figure``).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from hmrm.data.synthme import load_frame, load_gt_flow, load_synthme
from hmrm.flow import CLASSIC_METHODS, angular_error, classic_flow


def _affine_part(flow: np.ndarray, mask: np.ndarray) -> np.ndarray:
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    a = np.stack([np.ones(h * w), xs.ravel() / w, ys.ravel() / h], 1)
    coef, *_ = np.linalg.lstsq(a[mask.ravel()], flow.reshape(-1, 2)[mask.ravel()], rcond=None)
    return (a @ coef).reshape(h, w, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="data/synthme", help="SynthME build (make demo writes data/synthme)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    ap.add_argument("--methods", default=",".join(("zero",) + CLASSIC_METHODS + ("gru_aofe",)),
                    help="comma-separated: zero, tvl1, farneback, dis, dis_tuned, gru_aofe")
    ap.add_argument("--weights", default=None, help="folder with gru_aofe.pt/.json (default: the shipped weights)")
    ap.add_argument("--table", default="figures/flow_bench.md", help="markdown output")
    ap.add_argument("--figure", default="figures/flow_bench.png", help="bar chart output ('' for none)")
    args = ap.parse_args()

    samples = load_synthme(args.root)[: args.limit]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    model = None
    if "gru_aofe" in methods:
        from hmrm.flow.pretrained import load_pretrained

        try:
            model = load_pretrained("gru_aofe", args.weights)
        except FileNotFoundError as exc:
            print(f"skipping gru_aofe: {exc}")
            methods.remove("gru_aofe")
    stats = {m: {"epe": [], "epe_move": [], "ae": [], "t": [], "all": []} for m in methods}
    for s in samples:
        a, b = load_frame(s.onset_path), load_frame(s.apex_path)
        g = load_gt_flow(s)
        gt, face = g["flow"], g["face_mask"]
        move = face & (np.linalg.norm(gt - _affine_part(gt, face), axis=-1) >= 0.1)
        for m in methods:
            t0 = time.perf_counter()
            if m == "zero":
                f = np.zeros_like(gt)
            elif m == "gru_aofe":
                f = model.estimate(a, b)
            else:
                f = classic_flow(a, b, m)
            dt = time.perf_counter() - t0
            err = np.linalg.norm(f - gt, axis=-1)
            st = stats[m]
            st["epe"].append(err[face].mean())
            st["epe_move"].append(err[move].mean() if move.any() else np.nan)
            st["ae"].append(angular_error(f, gt, face))
            st["t"].append(dt)
            st["all"].append(err[face])
    lines = [f"Flow on SynthME ({args.root}, {len(samples)} onset->apex pairs, 256 px faces)", "",
             "| method | face EPE mean | face EPE p95 | expression-pixel EPE | angular error (deg) | CPU ms / pair |",
             "|---|---|---|---|---|---|"]
    for m in methods:
        st = stats[m]
        p95 = np.percentile(np.concatenate(st["all"]), 95)
        lines.append(f"| {m} | {np.mean(st['epe']):.4f} | {p95:.4f} | {np.nanmean(st['epe_move']):.4f} | "
                     f"{np.mean(st['ae']):.3f} | {1e3 * np.mean(st['t']):.1f} |")
    text = "\n".join(lines)
    print(text)
    if args.table:
        Path(args.table).parent.mkdir(parents=True, exist_ok=True)
        Path(args.table).write_text(text + "\n")
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        pos = np.arange(len(methods))
        axes[0].bar(pos - 0.2, [np.mean(stats[m]["epe"]) for m in methods], 0.4, label="face")
        axes[0].bar(pos + 0.2, [np.nanmean(stats[m]["epe_move"]) for m in methods], 0.4, label="expression pixels")
        axes[0].set_xticks(pos, methods)
        axes[0].set_ylabel("EPE (px)")
        axes[0].legend()
        axes[1].bar(methods, [1e3 * np.mean(stats[m]["t"]) for m in methods], color="grey")
        axes[1].set_yscale("log")
        axes[1].set_ylabel("CPU ms per pair (log)")
        for ax in axes:
            ax.tick_params(axis="x", rotation=30)
        fig.suptitle(f"Optical flow on SynthME, {len(samples)} pairs")
        fig.tight_layout()
        fig.savefig(args.figure, dpi=100)
        print(f"figure written to {args.figure}")


if __name__ == "__main__":
    main()
