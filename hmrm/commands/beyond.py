"""``hmrm beyond``: the paper's named limits measured on SynthME (apex, head motion, low resolution)."""
from __future__ import annotations

import sys
from pathlib import Path

from .args import DEFAULT_SYNTHME, POSITIVE, Help, default_of


def add_beyond(sub) -> None:
    from ..beyond import APEX_ESTIMATORS, apex_experiment, head_motion_experiment, lowres_experiment
    from ..features import FLOW_METHODS, UPSCALED

    b = sub.add_parser("beyond", help="the paper's named limits, measured on SynthME (apex, head motion, low resolution)",
                       description="Experiments beyond the paper: each trains the demo's HMRM and STSTNet by LOSO on "
                       "variants of the same SynthME clips and compares every variant with the reference by a paired "
                       "bootstrap over subjects. Resumable: run folders under --out. Calibration and explanations "
                       "of finished runs are `hmrm calibrate` and `hmrm explain`.")
    bsub = b.add_subparsers(dest="subcommand", metavar="EXPERIMENT")
    a = bsub.add_parser("apex", formatter_class=Help, help="UF1 cost of an estimated apex against the true one",
                        description="Apex frame: the true one against estimates (flow_residual: the shipped "
                        "estimator; frame_difference; middle: the middle of onset..offset). Prints the apex error "
                        "of each and the LOSO UF1 / UAR of each model on each, with the paired difference from the "
                        "first estimator (keep 'true' first).")
    a.add_argument("--synthme", type=Path, default=DEFAULT_SYNTHME, help="a SynthME folder (hmrm synthme)")
    a.add_argument("--out", type=Path, default=default_of(apex_experiment, "out"), help="run folders and tables")
    a.add_argument("--estimators", nargs="+", choices=list(APEX_ESTIMATORS), default=list(APEX_ESTIMATORS),
                   help="apex estimators to compare, the reference first")
    _beyond_options(a, apex_experiment, [m for m in FLOW_METHODS if m != "gt"])
    a.set_defaults(func=_cmd_beyond_apex)
    h = bsub.add_parser("head-motion", formatter_class=Help, help="head-motion compensation: flow error and UF1",
                        description="On a SynthME whose head moves several times more than its face (build it with "
                        "`hmrm synthme --preset head --out data/synthme_head`): the flow's end-point error against the "
                        "expression-only truth, as estimated and with the head's affine motion removed "
                        "(hmrm.flow.stabilize), and the LOSO UF1 / UAR of each model with head motion kept and removed, "
                        "paired over subjects.")
    h.add_argument("--synthme", type=Path, default=default_of(head_motion_experiment, "root"),
                   help="a SynthME built with --preset head")
    h.add_argument("--out", type=Path, default=default_of(head_motion_experiment, "out"), help="run folders and tables")
    h.add_argument("--error-flows", nargs="+", choices=list(FLOW_METHODS), default=list(default_of(head_motion_experiment,
                   "error_methods")), help="flow methods whose error is measured (gt: the exact flow, head included)")
    _beyond_options(h, head_motion_experiment, list(FLOW_METHODS))
    h.set_defaults(func=_cmd_beyond_head)
    lo = bsub.add_parser("lowres", formatter_class=Help, help="low-resolution faces: the UF1 drop and a remedy",
                         description="Flow accuracy against SynthME's exact flow, and LOSO of each model, on a "
                         "SMIC-HS-like SynthME (build it with `hmrm synthme --preset lowres --out data/synthme_lowres`: "
                         "136 px faces, half the frames), on the same clips with a resolution-aware flow (--remedy; "
                         "paired), and on the default SynthME (paired when built with the same seed).")
    lo.add_argument("--synthme", type=Path, default=default_of(lowres_experiment, "root"), help="the default-size SynthME")
    lo.add_argument("--lowres", type=Path, default=default_of(lowres_experiment, "lowres_root"),
                    help="a SynthME built with --preset lowres")
    lo.add_argument("--out", type=Path, default=default_of(lowres_experiment, "out"), help="run folders and tables")
    lo.add_argument("--remedy", default=default_of(lowres_experiment, "remedy"), choices=list(UPSCALED),
                    help="flow on the low-resolution clips: estimated on frames enlarged 2x")
    _beyond_options(lo, lowres_experiment, [m for m in FLOW_METHODS if m != "gt"])
    lo.set_defaults(func=_cmd_beyond_lowres)


def _beyond_options(p, experiment, flows) -> None:
    """The options every ``hmrm beyond`` experiment shares: flow, models, epochs, size, cache, workers."""
    from ..beyond import MODELS

    p.add_argument("--table", type=Path, default=None, help="also write the markdown table here")
    p.add_argument("--flow", default=default_of(experiment, "flow"), choices=flows,
                   help="flow method the networks train on")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS), help="networks to train")
    p.add_argument("--epochs", type=POSITIVE, default=None, help="epochs instead of each recipe's (a quick look)")
    p.add_argument("--input-size", type=POSITIVE, default=default_of(experiment, "input_size"), help="input side")
    p.add_argument("--cache-dir", type=Path, default=None, help="flow cache (default: the hmrm cache)")
    p.add_argument("--workers", type=POSITIVE, default=1, help="processes for flows and folds (results do not depend on it)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _cmd_beyond_apex(args) -> int:
    from ..beyond import apex_experiment

    s = apex_experiment(args.synthme, args.out, estimators=args.estimators, flow=args.flow, models=args.models,
                        epochs=args.epochs, input_size=args.input_size, cache_dir=args.cache_dir,
                        progress=not args.quiet, workers=args.workers, table=args.table,
                        log=lambda m: print(m, file=sys.stderr))
    print(s["table"])
    print(f"written to {Path(args.out) / 'apex.md'} and apex.json", file=sys.stderr)
    return 0


def _cmd_beyond_head(args) -> int:
    from ..beyond import head_motion_experiment

    s = head_motion_experiment(args.synthme, args.out, flow=args.flow, error_methods=args.error_flows,
                               models=args.models, epochs=args.epochs, input_size=args.input_size,
                               cache_dir=args.cache_dir, progress=not args.quiet, workers=args.workers,
                               table=args.table, log=lambda m: print(m, file=sys.stderr))
    print(s["table"])
    return 0


def _cmd_beyond_lowres(args) -> int:
    from ..beyond import lowres_experiment

    s = lowres_experiment(args.synthme, args.lowres, args.out, flow=args.flow, remedy=args.remedy, models=args.models,
                          epochs=args.epochs, input_size=args.input_size, cache_dir=args.cache_dir,
                          progress=not args.quiet, workers=args.workers, table=args.table,
                          log=lambda m: print(m, file=sys.stderr))
    print(s["table"])
    return 0
