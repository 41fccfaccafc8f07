"""How far is the estimated apex from the true one? Measured on SynthME, whose apex is known.

    .venv/bin/python benchmarks/apex_estimation.py [--root data/synthme] [--limit N]

Prints the error distribution (estimated - true, in frames) overall and per composite class, and
the same for the naive "middle of onset..offset" rule that some repositories use for SMIC.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from hmrm.data.apex import estimate_apex
from hmrm.data.synthme import load_synthme


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="data/synthme", help="a SynthME build (make demo writes data/synthme)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N clips")
    args = ap.parse_args()
    samples = load_synthme(args.root)[: args.limit]
    t0 = time.perf_counter()
    est = np.array([estimate_apex(s.frames, s.onset, s.offset) - s.apex for s in samples])
    dt = (time.perf_counter() - t0) / len(samples)
    mid = np.array([(s.onset + s.offset) // 2 - s.apex for s in samples])
    labels = np.array([s.label for s in samples])

    def row(name, e):
        a = np.abs(e)
        return f"| {name:<22} | {len(e):>4} | {a.mean():>6.2f} | {np.median(a):>6.1f} | {(a <= 1).mean():>6.0%} | {(a <= 3).mean():>6.0%} | {e.mean():>+6.2f} |"

    print(f"Apex estimation on {args.root}: {len(samples)} clips, {1e3 * dt:.0f} ms per clip")
    print("| method / class         |    n | mean|e| | med|e| | |e|<=1 | |e|<=3 |  bias |")
    print("|---|---|---|---|---|---|---|")
    print(row("DIS-affine (ours)", est))
    for c in sorted(set(labels)):
        print(row(f"  ours, {c}", est[labels == c]))
    print(row("middle of the clip", mid))


if __name__ == "__main__":
    main()
