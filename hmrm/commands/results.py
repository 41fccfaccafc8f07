"""``hmrm efficiency``, ``hmrm calibrate`` and ``hmrm explain``: what a network costs, and what finished runs say
about their confidence and their regions."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .args import DEFAULT_SYNTHME, NON_NEGATIVE, POSITIVE, Help, default_of, fraction


def add_efficiency(sub) -> None:
    from ..efficiency import DEFAULT_BATCHES, write_efficiency

    e = sub.add_parser(
        "efficiency", help="parameters, FLOPs and CPU latency of HMRM, its ablations and the baselines",
        formatter_class=Help,
        description="Builds HMRM (default configuration), every ablation (single grain, unidirectional Mamba, no "
        "RFFS, plain cross-entropy; no_motionmix is the same network) and the baselines (STSTNet), and measures "
        "each: trainable parameters; forward FLOPs per sample (one multiply-add = 2 FLOPs; dense operations by "
        "torch's FlopCounterMode, each selective scan counted explicitly as 9*B*L*D*N per direction, never twice; "
        "optical flow not included); CPU latency of one forward pass (median of --repeats runs after --warmup "
        "runs, the models taking turns, at each --batch size). Writes a markdown table atomically to --out and "
        "prints it. Latency depends on the machine and its load: compare rows of one table only.")
    e.add_argument("--out", type=Path, default=None,
                   help="also write the table (markdown, and its JSON twin) to this file; without it the table is "
                   "only printed, so a reader's run leaves the committed figures/efficiency.md alone (`make figures` "
                   "rewrites that one)")
    e.add_argument("--batch", type=POSITIVE, nargs="+", default=list(DEFAULT_BATCHES), help="batch sizes to time (one column each)")
    e.add_argument("--repeats", type=POSITIVE, default=default_of(write_efficiency, "repeats"),
                   help="timed forward passes per model and batch size (the median is reported)")
    e.add_argument("--warmup", type=NON_NEGATIVE, default=default_of(write_efficiency, "warmup"),
                   help="untimed forward passes before timing")
    e.add_argument("--input-size", type=POSITIVE, default=default_of(write_efficiency, "input_size"),
                   help="side S of the flow maps (3 x S x S)")
    e.add_argument("--threads", type=POSITIVE, default=None, help="CPU threads for torch (default: torch's choice, reported in the table)")
    e.add_argument("--quiet", action="store_true", help="do not print one line per model while measuring")
    e.set_defaults(func=_cmd_efficiency)


def _cmd_efficiency(args) -> int:
    import torch

    from ..efficiency import write_efficiency

    if args.threads:
        torch.set_num_threads(args.threads)
    cmd = "hmrm efficiency " + " ".join(
        ([f"--out {args.out}"] if args.out else []) + ["--batch " + " ".join(str(b) for b in args.batch),
         f"--repeats {args.repeats}", f"--warmup {args.warmup}", f"--input-size {args.input_size}"]
        + ([f"--threads {args.threads}"] if args.threads else []))
    text = write_efficiency(args.out, input_size=args.input_size, batches=args.batch, repeats=args.repeats,
                            warmup=args.warmup, command=cmd, progress=None if args.quiet else print)
    print(text)
    if args.out:
        print(f"written to {args.out} and its JSON twin {Path(args.out).with_suffix('.json')}")
    return 0


def add_calibrate(sub) -> None:
    from ..train.calibration import calibrate_run

    c = sub.add_parser(
        "calibrate", help="calibrated probabilities, ECE and a reliability diagram for finished LOSO runs",
        formatter_class=Help,
        description="Temperature scaling of a LOSO run's held-out predictions: each held-out subject's clips get "
        "a temperature fitted on the other subjects' held-out predictions, so the test subject's labels are never "
        "used. Writes calibration.json (ECE, NLL, Brier before and after, ECE's 95% interval over subjects), "
        "calibrated_predictions.csv (with a low-confidence flag) and reliability.png into each run folder, and "
        "prints the before/after table. The predicted class does not change, so UF1 and UAR do not either.")
    c.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR",
                   help="LOSO run folders (the --run-dir of hmrm loso, runs/demo/* after make demo)")
    c.add_argument("--threshold", type=fraction, default=default_of(calibrate_run, "threshold"),
                   help="flag predictions whose calibrated top probability is below this")
    c.add_argument("--bins", type=POSITIVE, default=default_of(calibrate_run, "n_bins"), help="confidence bins of the ECE")
    c.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    c.add_argument("--no-figure", action="store_true", help="do not draw reliability.png")
    c.set_defaults(func=_cmd_calibrate)


def _cmd_calibrate(args) -> int:
    from ..train.calibration import calibrate_run, calibration_table

    summaries = {}
    for run in args.runs:
        summaries[run.name] = calibrate_run(run, threshold=args.threshold, n_bins=args.bins, figure=not args.no_figure)
        print(f"{run}: calibration.json, calibrated_predictions.csv" + ("" if args.no_figure else ", reliability.png"),
              file=sys.stderr)
    table = calibration_table(summaries)
    print(table)
    if args.out:
        from ..resultfiles import write_results

        cmd = "hmrm calibrate " + " ".join(str(r) for r in args.runs) + f" --threshold {args.threshold} --bins {args.bins}"
        twin = write_results(args.out, f"Calibration of LOSO runs (`{cmd}`)\n\n{table}\n")
        print(f"written to {args.out} and {twin}", file=sys.stderr)
    return 0


def add_explain(sub) -> None:
    e = sub.add_parser(
        "explain", help="region maps of what drove each prediction, checked against SynthME's true action units",
        formatter_class=Help,
        description="For every held-out clip of a finished LOSO run on SynthME, with the fold that held its "
        "subject out: the RFFS attention each facial region receives (HMRM) and a gradient-x-input saliency map "
        "of the predicted class (every model). Counts how often each map's top region is one the clip's true "
        "action units moved, against chance, with a 95% interval over subjects. Writes explanations.json and "
        "explanations.png into each run folder and prints the table.")
    e.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="LOSO run folders trained on SynthME")
    e.add_argument("--synthme", type=Path, default=DEFAULT_SYNTHME, help="the SynthME folder the runs trained on")
    e.add_argument("--cache-dir", type=Path, default=None, help="flow cache (default: the hmrm cache, as hmrm loso)")
    e.add_argument("--figure-clips", type=POSITIVE, default=4, help="clips drawn in explanations.png")
    e.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=_cmd_explain)


def _cmd_explain(args) -> int:

    from ..data.synthme import load_synthme
    from ..explain import explain_figure, explain_run, explanation_table
    from ..train.loso import LOSOData
    from ..utils import atomic_write_text

    samples = load_synthme(args.synthme)
    summaries = {}
    for run in args.runs:
        rec = json.loads((run / "config.json").read_text())
        data = LOSOData.from_samples(samples, rec["config"]["flow"], rec["config"]["input_size"],
                                     channels=rec["config"]["channels"], cache_dir=args.cache_dir, progress=not args.quiet)
        expl = explain_run(run, data, samples, progress=not args.quiet)
        summaries[run.name] = s = expl.summary()
        atomic_write_text(run / "explanations.json", json.dumps(s, indent=2) + "\n")
        explain_figure(expl, samples, data.classes, args.figure_clips, run / "explanations.png")
        print(f"{run}: explanations.json, explanations.png", file=sys.stderr)
    table = explanation_table(summaries)
    print(table)
    if args.out:
        cmd = "hmrm explain " + " ".join(str(r) for r in args.runs) + f" --synthme {args.synthme}"
        from ..resultfiles import write_results

        write_results(args.out, f"Explanations of LOSO runs against SynthME's true action units (`{cmd}`)\n\n{table}\n")
    return 0
