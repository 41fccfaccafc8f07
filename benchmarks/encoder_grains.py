"""Which input size and patch sizes should HMRM's grained encoder use by default?

Builds the whole HMRM network (default width 192, depth 4, RFFS) for a few input sizes S and
patch-size tuples and prints, for each, the tokens per grain, trainable parameters, forward FLOPs
per sample (the convention of ``hmrm.efficiency``: multiply-add = 2 FLOPs, selective scan counted
as 9 B L D N per direction) and the CPU forward latency at batch 1 (median of ``--repeats`` after
one warm-up; the settings take turns, run by run, so that load from other processes affects them
alike). The numbers behind the defaults in ``hmrm/model/encoder.py``.

    .venv/bin/python benchmarks/encoder_grains.py [--repeats 5] [--threads 1] [--out FILE.md]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from hmrm.efficiency import count_flops, example_inputs
from hmrm.markdown import markdown_table
from hmrm.model import HMRM, count_parameters
from hmrm.resultfiles import write_results

SETTINGS = [(96, (8, 16)), (112, (8, 16)), (112, (7, 14)), (112, (4, 8, 16)), (128, (8, 16)), (224, (16, 32))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="also write the table to this markdown file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models, inputs, rows = [], [], []
    for size, patches in SETTINGS:
        model = HMRM(input_size=size, patch_sizes=patches).eval()
        x, boxes = example_inputs(1, size)
        flops = count_flops(model, x, boxes)
        models.append(model)
        inputs.append((x, boxes))
        tokens = " + ".join(str((size // p) ** 2) for p in patches)
        rows.append([size, patches, tokens, count_parameters(model), flops["total"]])
    times = [[] for _ in SETTINGS]
    with torch.inference_mode():
        for model, (x, b) in zip(models, inputs):                      # warm-up
            model(x, b)
        for _ in range(args.repeats):
            for i, (model, (x, b)) in enumerate(zip(models, inputs)):
                start = time.perf_counter()
                model(x, b)
                times[i].append(1e3 * (time.perf_counter() - start))
    lines = [f"HMRM (d_model 192, depth 4) by input size and grains; latency: batch 1, {args.threads} thread(s), "
             f"median of {args.repeats}", "",
             markdown_table(["S", "patches", "tokens", "parameters", "MFLOPs / sample", "CPU ms, batch 1"],
                            [[size, patches, tokens, f"{params:,}", f"{flops / 1e6:,.0f}", f"{statistics.median(t):.1f}"]
                             for (size, patches, tokens, params, flops), t in zip(rows, times)], "rllrrr")]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_results(args.out, text)


if __name__ == "__main__":
    main()
