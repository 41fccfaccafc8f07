"""``hmrm loso``: its flags, made from :class:`~hmrm.train.loso.LOSOConfig`'s fields, and the run."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .args import DEFAULT_SYNTHME, LENIENT_HELP, POSITIVE, Help, engine_options, machine_options, minutes


def add_loso(sub) -> None:
    lo = sub.add_parser(
        "loso", help="train and score a model with leave-one-subject-out cross-validation (resumable)",
        formatter_class=Help,
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
    from ..train.loso import LOSOConfig

    defaults = LOSOConfig.field_defaults()  # the command line shows and uses the configuration's own
    _loso_data_options(lo.add_argument_group("data"), defaults)
    _config_flags(lo.add_argument_group("model"), "model", defaults)
    _loso_training_options(lo.add_argument_group("training (fixed epochs; see hmrm.train.recipe)"), defaults)
    _loso_run_options(lo.add_argument_group("run folder and machine"), defaults)
    lo.set_defaults(func=_cmd_loso)


def _config_flag(f) -> str:
    """The ``hmrm loso`` flag of a :class:`~hmrm.train.loso.LOSOConfig` field: ``--`` + its name with dashes,
    unless the field's metadata names another (``--set``, ``--no-motionmix`` ...)."""
    return f.metadata.get("flag", "--" + f.name.replace("_", "-"))


def _config_fields() -> list:
    """The :class:`~hmrm.train.loso.LOSOConfig` fields that ``hmrm loso`` sets with a flag (those with a help text)."""
    from dataclasses import fields

    from ..train.loso import LOSOConfig

    return [f for f in fields(LOSOConfig) if "help" in f.metadata]


def _config_flags(g, group: str, defaults: dict) -> None:
    """One flag per :class:`~hmrm.train.loso.LOSOConfig` field of ``group``, in field order, made from the
    field itself: its help text and group (the field's metadata), its type (the annotation), its
    choices (:meth:`LOSOConfig.rules`) and its default."""
    import typing

    from ..train.loso import LOSOConfig

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
    from ..data.classes import SCHEMES
    from ..data.datasets import DATASET_NAMES

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
    g.add_argument("--seeds", type=POSITIVE, default=None, metavar="N",
                   help="run N training seeds (--seed, --seed + 1, ...) into RUN_DIR/seed<S>/ and report each pooled "
                   "score with its interval and their mean and standard deviation")


def _loso_run_options(g, defaults: dict) -> None:
    _config_flags(g, "run", defaults)
    g.add_argument("--run-dir", type=Path, default=None,
                   help="run folder (default: runs/loso/<dataset>-<model>[-<ablation>]-<flow>-e<epochs>-seed<seed>)")
    g.add_argument("--max-minutes", type=minutes, default=None, help="pause (with a checkpoint) after this many minutes")
    g.add_argument("--cache-dir", type=Path, default=None, help="flow input cache (default: $HMRM_CACHE/features)")
    machine_options(g, "processes that train folds side by side on a CPU, one thread each (default: one per core; "
                     "the results are the same bits whatever the number); with --engine ray and no --address, the "
                     "CPUs of the Ray instance started here")
    engine_options(g)


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

    from ..options import OptionError

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
    from ..options import OptionError
    from ..train.loso import LOSOConfig
    from ..train.recipe import default_warmup

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
    from ..data.datasets import training_samples
    from ..train.loso import EngineError, run_loso, run_name
    from ..utils import pick_device

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
    from ..options import OptionError
    from ..train.loso import RunMismatchError
    from ..train.loso.run_folder import mismatch_message

    try:
        if args.seeds:
            return _loso_seeds(samples, config, run_dir, seeds, args)
        res = run_loso(samples, config, run_dir, _run_options(args))
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


def _run_options(args):
    """The :class:`~hmrm.train.loso.RunOptions` of ``hmrm loso``'s run-folder and machine flags."""
    from ..train.loso import RunOptions

    return RunOptions(progress=not args.quiet, max_minutes=args.max_minutes, cache_dir=args.cache_dir,
                      prepared=args.prepared, workers=args.workers, engine=args.engine or "local",
                      address=args.address, stack=args.stack)


def _loso_seeds(samples, config, run_dir: Path, seeds: range, args) -> int:
    """``hmrm loso --seeds N``: the same configuration trained with N seeds into RUN_DIR/seed<S>/."""
    from ..train.seeds import format_seeds, run_loso_seeds

    summary = run_loso_seeds(samples, config, run_dir, seeds, _run_options(args))
    print(format_seeds(summary))
    print(f"\nrun folders: {run_dir}/seed<S>/; summary: {run_dir}/seeds.json")
    return 0
