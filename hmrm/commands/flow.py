"""``hmrm flow train``: GRU-AOFE's pretraining."""
from __future__ import annotations

import sys
from pathlib import Path

from .args import NON_NEGATIVE, POSITIVE, Help, minutes


def add_flow(sub) -> None:
    fl = sub.add_parser("flow", help="optical flow: train GRU-AOFE", description="Optical flow commands.")
    fsub = fl.add_subparsers(dest="subcommand", metavar="FLOW_COMMAND")
    ft = fsub.add_parser("train", help="pretrain GRU-AOFE on generated pairs (resumable)", formatter_class=Help,
                         description="Pretrains the GRU-AOFE flow network on pairs generated on the fly: face-domain pairs "
                         "(data.generator: faces, hmrm.flow.facepairs) or textured layers (layers, hmrm.flow.synthetic); no "
                         "downloads, never SynthME's motion. The shipped weights are two runs: configs/flow_pretrain.yaml "
                         "(the GRU, into runs/flow_pretrain), then configs/flow_pretrain_refine.yaml (a refinement stage on "
                         "that frozen GRU, train.frozen_gru). Checkpoints every train.save_every steps into OUT; the same "
                         "command resumes. Writes OUT/gru_aofe.pt and gru_aofe.json at the end.")
    ft.add_argument("--config", type=Path, default=Path("configs/flow_pretrain.yaml"), help="YAML config")
    ft.add_argument("--out", type=Path, default=Path("runs/flow_pretrain"), help="run folder (checkpoint, log, weights)")
    ft.add_argument("--steps", type=POSITIVE, default=None, help="override train.steps of the config")
    ft.add_argument("--max-minutes", type=minutes, default=None, help="stop (with a checkpoint) after this many minutes")
    ft.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda; the data and maths do not change, "
                    "so a run can be continued on another device")
    ft.add_argument("--workers", type=NON_NEGATIVE, default=0,
                    help="data loader processes that generate pairs and warm starts ahead of the model (use most CPU cores on a GPU machine)")
    ft.add_argument("--quiet", action="store_true", help="no progress bar")
    ft.set_defaults(func=_cmd_flow_train)
    fl.set_defaults(func=lambda a: (fl.print_help(), 0)[1])


def _cmd_flow_train(args) -> int:
    from ..flow.train import load_config, train

    cfg = load_config(args.config)
    if args.steps:
        cfg["train"]["steps"] = args.steps
    cmd = f"hmrm flow train --config {args.config} --out {args.out}" + (f" --steps {args.steps}" if args.steps else "")
    try:
        res = train(cfg, args.out, max_minutes=args.max_minutes, progress=not args.quiet, command=cmd,
                    device=args.device, workers=args.workers)
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if res["finished"]:
        print(f"done: {res['step']} steps in {res['seconds'] / 60:.1f} min; weights {res['weights']}")
    else:
        print(f"stopped at step {res['step']} (--max-minutes); run the same command again to continue")
    return 0
