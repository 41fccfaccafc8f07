"""Training cost of HMRM sizes on this CPU: the numbers behind a demo-sized configuration.

    .venv/bin/python benchmarks/train_speed.py

For the default HMRM and a few smaller configurations: parameters, and the time of one training
step (forward, multi-scale loss, backward, AdamW) per sample at batch 32 on random inputs, with
the time it implies for a full 10-subject SynthME LOSO (144 training clips per fold) of 30 epochs.
"""
from __future__ import annotations

import time

import torch

from hmrm.model import build_model

CONFIGS = [{}, {"d_model": 64, "depth": 2}, {"d_model": 64, "depth": 2, "input_size": 64},
           {"d_model": 48, "depth": 1, "input_size": 64}]


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 32, mean of 2 steps after 1 warm-up\n")
    print("| configuration | parameters | train ms / sample | 10-fold SynthME LOSO, 30 epochs |")
    print("|---|---:|---:|---:|")
    for opts in CONFIGS:
        model = build_model("hmrm", **opts)
        s = opts.get("input_size", 112)
        x = torch.randn(32, 3, s, s)
        box = torch.tensor([[0, 0, s // 3, s // 3], [2 * s // 3, 0, s, s // 3], [s // 3, s // 3, 2 * s // 3, 2 * s // 3],
                            [s // 4, 2 * s // 3, 3 * s // 4, s]])
        boxes, y = box.expand(32, 4, 4), torch.randint(0, 3, (32,))
        opt = torch.optim.AdamW(model.parameters(), 5e-4)
        for i in range(3):
            if i == 1:
                t = time.perf_counter()
            loss = model.loss(model(x, boxes), y, torch.ones(3))
            opt.zero_grad()
            loss.backward()
            opt.step()
        dt = (time.perf_counter() - t) / 2 / 32
        name = ", ".join(f"{k}={v}" for k, v in opts.items()) or "default"
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"| {name} | {params:.2f} M | {1e3 * dt:.1f} | {dt * 144 * 30 * 10 / 60:.1f} min |")


if __name__ == "__main__":
    main()
