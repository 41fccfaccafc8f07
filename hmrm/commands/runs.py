"""``hmrm demo`` (the main job on SynthME) and ``hmrm reproduce`` (the paper's tables, one notebook per config)."""
from __future__ import annotations

import sys
from pathlib import Path

from .args import DEFAULT_SYNTHME, NON_NEGATIVE, POSITIVE, Help, default_of, engine_options, machine_options


def add_demo(sub) -> None:
    from ..demo import run_demo

    dm = sub.add_parser(
        "demo", help="the main job: HMRM on SynthME beside STSTNet on TV-L1 and HMRM on the true flow (make demo)",
        formatter_class=Help,
        description="Leave-one-subject-out on SynthME with quick settings (a small HMRM, 64 px flow inputs, fixed "
        "epochs, each network with the recipe chosen on a development SynthME; minutes on a laptop CPU): HMRM on the learned flow (GRU-AOFE with the shipped weights; tuned DIS in a checkout without them), "
        "STSTNet on TV-L1 flow (the field's usual baseline), HMRM on the ground-truth flow (the oracle), and two "
        "diagnostic rows (STSTNet on the learned and on the true flow) that tell the network's part from the flow's. "
        "Every score comes with its 95% interval over subjects, and the key differences with paired intervals. "
        "Writes the table (FIGURES/demo_results.md and README.md), the "
        "confusion matrices and training curves. Every row is a resumable run folder under OUT: run it again to "
        "continue, or to redraw the table of a finished demo in seconds.",
        epilog="Scores are honest: final epoch of every fold, predictions pooled over all held-out subjects. The paper's "
        "settings run with `hmrm reproduce configs/loso_*.yaml`.")
    dm.add_argument("--root", type=Path, default=DEFAULT_SYNTHME, help="the SynthME build (`hmrm synthme --out ...`)")
    dm.add_argument("--out", type=Path, default=Path(default_of(run_demo, "out")), help="parent of the per-row run folders")
    dm.add_argument("--figures", type=Path, default=Path(default_of(run_demo, "figures")), help="where the table and figures go")
    dm.add_argument("--readme", type=Path, default=Path(default_of(run_demo, "readme")),
                    help="README whose demo-results markers receive the table")
    dm.add_argument("--no-figures", action="store_true", help="write neither table file nor figures")
    dm.add_argument("--no-readme", action="store_true", help="leave the README alone")
    dm.add_argument("--epochs", type=POSITIVE, default=None,
                    help="fixed epochs per fold for every row (default: each network's recipe; a new value needs a new --out)")
    dm.add_argument("--no-diagnostics", action="store_true", help="only the three main rows")
    dm.add_argument("--ablations", action="store_true",
                    help="also run the paper's HMRM ablations on the learned flow (about 4 minutes each on 2 cores) and "
                    "write FIGURES/demo_ablations.md")
    dm.add_argument("--device", default=default_of(run_demo, "device"), help="auto, cpu, cuda or cuda:N")
    dm.add_argument("--seed", type=NON_NEGATIVE, default=default_of(run_demo, "seed"), help="seed of every row")
    dm.add_argument("--cache-dir", type=Path, default=None, help="flow input cache (default: under $HMRM_CACHE)")
    machine_options(dm, "processes computing the flows and training folds (default: one per CPU core; the results do "
                     "not depend on it)")
    dm.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from ..train.loso import RunMismatchError

    try:
        summary = _run_demo(args)
    except RunMismatchError as exc:
        print(f"hmrm demo: error: {exc}\nWith hmrm demo, the run folders live under --out: pass another --out "
              f"(e.g. --out runs/demo-e{args.epochs}) or delete {args.out}.", file=sys.stderr)
        return 2
    print(f"\nrun folders under {args.out}; table and figures in {args.figures}/demo_results.md (and its JSON twin, "
          f"demo_results.json), demo_confusion.png, demo_training.png ({summary['wall_seconds_this_call']:.0f} s this call)")
    return 0


def _run_demo(args) -> dict:
    from ..demo import run_demo

    return run_demo(args.root, args.out, figures=None if args.no_figures else args.figures,
                    readme=None if args.no_readme else args.readme, epochs=args.epochs,
                    diagnostics=not args.no_diagnostics, device=args.device, seed=args.seed,
                    cache_dir=args.cache_dir, progress=not args.quiet, workers=args.workers,
                    ablations=args.ablations)


def add_reproduce(sub) -> None:
    rp = sub.add_parser(
        "reproduce", help="run the LOSO job notebook once per YAML config with papermill (resumable)",
        formatter_class=Help,
        description="For each CONFIG (a YAML of configs/, its keys the parameters of notebooks/jobs/loso_run.ipynb "
        "in either case: epochs: 1000 sets EPOCHS), executes that notebook with papermill into OUT/<config name>/: "
        "the executed loso_run.ipynb and the run's files beside it (config.json, folds/, predictions.csv, "
        "metrics.json, confusion.png, training.png). A config whose metrics.json already covers every fold asked "
        "for, with the same epochs, is skipped; an interrupted one continues from its finished folds and checkpoints. "
        "Everything is checked before any training: an unknown config key, a missing config file, a licensed data "
        "set without --data-root or --prepared.",
        epilog="Configs: loso_synthme_quick (SynthME, STSTNet, 20 epochs: under a minute on a CPU), loso_casme2_5, "
        "loso_samm5, loso_smic3, loso_composite3 (HMRM at the paper's settings: AdamW, lr 5e-4, 1000 epochs; a GPU "
        "job). Licensed sets: `hmrm prepare --dataset casme2 --root /data/CASME2 --out data/prepared`, then "
        "hmrm reproduce configs/loso_casme2_5.yaml --data-root /data/CASME2 --prepared data/prepared. "
        "Plan only: --dry-run.")
    rp.add_argument("configs", nargs="+", type=Path, metavar="CONFIG", help="YAML config(s), e.g. configs/loso_casme2_5.yaml")
    rp.add_argument("--data-root", type=Path, default=None,
                    help="the licensed data set's folder as distributed (composite: a folder holding casme2/, samm/, "
                    "smic/); applies to the configs of licensed sets, SynthME configs keep theirs")
    rp.add_argument("--prepared", type=Path, default=None, help="licensed sets: the --out folder of `hmrm prepare`")
    rp.add_argument("--out", type=Path, default=Path("runs/reproduce"), help="parent of the per-config run folders")
    rp.add_argument("--device", default=None, help="override DEVICE of every config: auto, cpu, cuda or cuda:N")
    rp.add_argument("--epochs", type=POSITIVE, default=None,
                    help="override EPOCHS of every config (a run folder made with other epochs is refused: use another --out)")
    rp.add_argument("--dry-run", action="store_true", help="list the planned runs and their state (todo, resume, done); run nothing")
    engine_options(rp)
    rp.set_defaults(func=_cmd_reproduce)


def _cmd_reproduce(args) -> int:
    from ..train.loso import EngineError
    from ..train.reproduce import reproduce

    try:
        runs = reproduce(args.configs, args.out, data_root=args.data_root, prepared=args.prepared, device=args.device,
                         epochs=args.epochs, dry_run=args.dry_run, engine=args.engine, address=args.address,
                         stack=args.stack)
    except EngineError as exc:
        print(f"hmrm reproduce: error: {exc}", file=sys.stderr)
        return 2
    if not args.dry_run:
        print(f"\nexecuted notebooks and run folders under {args.out}")
    return 0 if args.dry_run or all(r.state == "done" for r in runs) else 1
