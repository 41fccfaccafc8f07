"""Does GRU-AOFE's recurrent part learn to improve on its warm start? The scales that decide it.

    .venv/bin/python benchmarks/flow_scales.py [--root data/synthme_dev1] [--steps 400] [--variants ...] [--out FILE.md]

Trains GRU-AOFE with the refinement stage off, from tuned DIS, on fresh face-domain pairs
(:mod:`hmrm.flow.facepairs`, 96 px, batch 8, never SynthME) for ``--steps`` steps per variant, and
scores it every ``--score-every`` steps on every ``--stride``-th pair of a SynthME build that is not
reported (default: the development seed 1; make it with ``hmrm synthme --out data/synthme_dev1 --seed 1``).
A variant is ``delta_scale:flow_scale:max_warm_error``, optionally ``:temperature``:

* ``delta_scale`` multiplies the GRU's flow update (:class:`hmrm.flow.update.UpdateBlock`); RAFT's is 1;
* ``flow_scale`` multiplies the current flow where it enters the motion encoder; RAFT's is 1;
* ``max_warm_error`` > 0 restricts the loss to pixels where tuned DIS is within that many px of the
  truth (:func:`hmrm.flow.gru_aofe.flow_loss`); 0 counts every valid pixel;
* ``temperature`` (default 10) is the cosine attention's starting temperature
  (:class:`hmrm.flow.update.Attention`); with ``--entropy`` the attention's mean row entropy on the
  scored onset frames, relative to ``log(HW)``, is printed beside the EPE.

Printed per variant: the training-pair EPE of the warm start and of the last GRU iteration (mean over
the last 50 steps) and the face EPE on the scored pairs after each GRU iteration, beside tuned DIS's.
Reading it: at RAFT's scales an optimiser step moves the update by tenths of a pixel while the
corrections a face needs are hundredths, so the GRU jitters around its warm start; at 0.02 / 40 with
the loss on the micro-motion regime, its face EPE falls below DIS's and each iteration lowers it.
"""
from __future__ import annotations

import argparse
import time

DEFAULT_VARIANTS = "1:1:0.5,0.02:1:0.5,0.02:40:0,0.02:40:0.5"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="data/synthme_dev1", help="SynthME build to score on (not a reported seed)")
    ap.add_argument("--stride", type=int, default=8, help="score every N-th pair of --root")
    ap.add_argument("--steps", type=int, default=400, help="optimiser steps per variant")
    ap.add_argument("--score-every", type=int, default=200, help="score every N steps")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS,
                    help="comma-separated delta_scale:flow_scale:max_warm_error[:temperature]")
    ap.add_argument("--entropy", action="store_true", help="also print the attention's mean row entropy / log(HW)")
    ap.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (one-cycle schedule)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--out", default=None, help="also write the table (markdown, and its JSON twin) here")
    args = ap.parse_args()

    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from hmrm.data.synthme import load_frame, load_gt_flow, load_synthme
    from hmrm.flow.classic import classic_flow, to_grey
    from hmrm.flow.gru_aofe import GRUAOFE
    from hmrm.flow.overfit import attention_entropy
    from hmrm.flow.train import StepBatches, check_config, model_and_optimiser, train_step
    from hmrm.markdown import markdown_table

    torch.set_num_threads(args.threads)
    scored = []
    for s in load_synthme(args.root)[:: args.stride]:
        a, b = load_frame(s.onset_path), load_frame(s.apex_path)
        g = load_gt_flow(s)
        scored.append((a, b, g["flow"], g["face_mask"], classic_flow(a, b, "dis_tuned")))

    def score(model: GRUAOFE) -> tuple[list[float], float]:
        errs = [[float(np.linalg.norm(f - gt, axis=-1)[face].mean()) for f in model.estimate_all(a, b, init=dis)]
                for a, b, gt, face, dis in scored]
        if not args.entropy:
            return list(np.mean(errs, 0)), float("nan")
        was = model.training
        model.eval()
        entropy = np.mean([attention_entropy(model, torch.from_numpy(to_grey(a).astype(np.float32))[None, None])
                           for a, *_ in scored])
        model.train(was)
        return list(np.mean(errs, 0)), float(entropy)

    rows, dev = [], torch.device("cpu")
    for variant in args.variants.split(","):
        ds, fs, me, *temp = (float(v) for v in variant.split(":"))
        # the pretraining pieces themselves (hmrm.flow.train), with the refinement stage off
        cfg = check_config({
            "model": {"refine": False, "warm_start": "dis_tuned", "delta_scale": ds, "flow_scale": fs,
                      **({"attention_temperature": temp[0]} if temp else {})},
            "data": {"generator": "faces", "size": 96, "seed": 0, "layered_share": 0.0},
            "train": {"steps": args.steps, "batch": 8, "lr": args.lr, "max_warm_error": me, "weight_decay": 1e-4,
                      "gamma": 0.8, "clip": 1.0, "save_every": args.steps, "seed": 0}}, f"variant {variant}")
        model, opt, sched = model_and_optimiser(cfg, dev)
        batches = StepBatches(cfg)
        t0, recent = time.perf_counter(), []
        for step in tqdm(range(args.steps), desc=f"variant {variant}", unit="step"):
            _, epe_out, _, epe_warm = train_step(model, opt, sched, batches[step], cfg["train"], dev)
            recent = (recent + [(epe_warm, epe_out)])[-50:]
            if (step + 1) % args.score_every == 0 or step + 1 == args.steps:
                s, entropy = score(model)
                train = np.mean(recent, 0)
                row = [variant, step + 1, f"{time.perf_counter() - t0:.0f}", f"{train[0]:.4f}", f"{train[1]:.4f}",
                       " / ".join(f"{x:.4f}" for x in s), f"{100 * (min(s[1:]) / s[0] - 1):+.1f} %"] + ([f"{entropy:.3f}"] if args.entropy else [])
                rows.append(row)
                print(" | ".join(str(c) for c in row), flush=True)
    header = ["delta:flow scale:max warm error", "step", "seconds", "train EPE, DIS", "train EPE, GRU",
              "face EPE: DIS / iteration 1 / 2 (px)", "best iteration vs DIS"] + (
                  ["attention entropy / log(HW)"] if args.entropy else [])
    text = (f"GRU-AOFE with the refinement stage off, trained from tuned DIS on fresh 96 px face-domain pairs (batch 8, "
            f"AdamW lr {args.lr:g}, one-cycle, seed 0), scored on every {args.stride}th pair of `{args.root}` "
            f"(`benchmarks/flow_scales.py`). Train EPE: mean of the last 50 steps, all valid pixels.\n\n"
            + markdown_table(header, rows, "rr") + "\n")
    print(text)
    if args.out:
        from hmrm.resultfiles import write_results

        write_results(args.out, text)


if __name__ == "__main__":
    main()
