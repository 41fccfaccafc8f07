"""Can GRU-AOFE's recurrent part learn at all? Overfit a few fixed generated pairs, and watch each part's gradient.

    .venv/bin/python benchmarks/flow_overfit.py [--pairs 8] [--size 64] [--steps 300] [--every 50] [--out FILE.md]

A network that cannot fit one small batch has a defect; one that can, but does not improve on faces,
was trained on the wrong data or for too short. This script trains GRU-AOFE with the refinement stage
off on ``--pairs`` fixed pairs of :mod:`hmrm.flow.synthetic` (never SynthME), twice: from zero flow and
from its warm start (tuned DIS), with AdamW, and prints every ``--every`` steps:

* the mean end-point error after each GRU iteration (against the pairs' exact flow), beside the error
  of no motion and of the warm start;
* the gradient norm of each part (feature and context encoders, attention, motion encoder,
  aggregation, ConvGRU, flow head, upsampling mask), and the aggregation's gain ``gamma``, through
  which alone the attention receives its gradient.

Reading it: the error falling far below the warm start's means the GRU *can* learn a residual; an
attention gradient orders of magnitude below the other parts' means the attention cannot learn at
that rate (its output enters scaled by ``gamma``, which starts at zero, through a softmax over every
pixel, which starts uniform).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

PARTS = ("fnet", "cnet", "attention", "update.encoder", "update.aggregate", "update.gru", "update.flow_head",
         "update.mask_head")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=8, help="fixed generated pairs to fit")
    ap.add_argument("--size", type=int, default=64, help="side of each pair (a multiple of 16)")
    ap.add_argument("--steps", type=int, default=300, help="optimiser steps per start")
    ap.add_argument("--every", type=int, default=50, help="print every N steps")
    ap.add_argument("--iters", type=int, default=4, help="GRU iterations while training")
    ap.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the tables (markdown, and their JSON twin) here")
    args = ap.parse_args()

    import torch

    from hmrm.flow.classic import classic_flow
    from hmrm.flow.gru_aofe import GRUAOFE, FlowConfig, sequence_loss
    from hmrm.flow.synthetic import PairConfig, PairDataset
    from hmrm.markdown import markdown_table

    torch.set_num_threads(args.threads)
    x1, x2, flow, valid = PairDataset(PairConfig(size=args.size), seed=args.seed).batch(0, args.pairs)

    def epe(pred) -> float:
        return float((torch.linalg.vector_norm(pred - flow, dim=1) * valid).sum() / valid.sum())

    warm = torch.stack([torch.from_numpy(classic_flow(a[0].numpy(), b[0].numpy(), "dis_tuned")).permute(2, 0, 1)
                        for a, b in zip(x1, x2)])
    floor = {"no motion": epe(torch.zeros_like(flow)), "tuned DIS (the warm start)": epe(warm)}
    sections = [f"GRU-AOFE (refinement stage off) fitted to {args.pairs} fixed generated pairs of {args.size} px, "
                f"AdamW lr {args.lr:g}, {args.iters} GRU iterations, seed {args.seed} "
                f"(`benchmarks/flow_overfit.py`). Reference errors: "
                + ", ".join(f"{k} {v:.4f} px" for k, v in floor.items()) + "."]
    print(sections[0])
    for start in ("zero flow", "warm start"):
        torch.manual_seed(args.seed)
        model = GRUAOFE(FlowConfig(warm_start="dis_tuned" if start == "warm start" else None, refine=False,
                                   iters=args.iters))
        init = warm if start == "warm start" else None
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-5)
        rows, t0 = [], time.perf_counter()
        for step in range(args.steps + 1):
            preds = model(x1, x2, init, iters=args.iters)
            loss = sequence_loss(preds, flow, valid)
            opt.zero_grad()
            loss.backward()
            if step % args.every == 0:
                norms = {k: 0.0 for k in PARTS}
                for name, p in model.named_parameters():
                    part = next((k for k in PARTS if name.startswith(k)), None)
                    if part and p.grad is not None:
                        norms[part] += float(p.grad.norm()) ** 2
                its = [epe(p.detach()) for p in preds]
                rows.append([step, f"{time.perf_counter() - t0:.0f}", " / ".join(f"{e:.4f}" for e in its),
                             f"{float(model.update.aggregate.gamma):+.4f}", *[f"{np.sqrt(v):.1e}" for v in norms.values()]])
                print(f"{start}, step {step}: EPE per iteration {rows[-1][2]}, gamma {rows[-1][3]}", flush=True)
            opt.step()
        table = markdown_table(["step", "seconds", "EPE after each GRU iteration (px)", "gamma",
                                *[f"grad {k.replace('update.', '')}" for k in PARTS]], rows, "rr")
        sections += [f"**From {start}**", table]
        print(table)
    if args.out:
        from hmrm.resultfiles import write_results

        write_results(args.out, "\n\n".join(sections) + "\n")


if __name__ == "__main__":
    main()
