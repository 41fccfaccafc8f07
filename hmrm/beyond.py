"""Beyond the paper: the limits HMRM's authors name, measured on SynthME where the truth is known.

Each experiment trains the demo's networks (HMRM and STSTNet with the demo's recipes, chosen on a
development SynthME; :data:`hmrm.demo.DEMO_RECIPES`) by honest LOSO on *variants* of the same
clips, one run folder per (variant, model), and compares every variant with the reference one by a
paired bootstrap over held-out subjects (:func:`hmrm.train.stats.paired_difference`): the same
clips, the same subjects, only one thing changed.

* :func:`apex_experiment` - the apex frame: the true one against the shipped estimator
  (:func:`hmrm.data.apex.estimate_apex`, residual flow after removing the head's affine motion), a
  frame-difference estimate (:func:`estimate_apex_difference`) and the "middle of onset..offset"
  rule some repositories use where no apex is annotated.
* :func:`head_motion_experiment` - head motion kept or removed from the flow
  (:mod:`hmrm.flow.stabilize`) on a SynthME whose head moves more than its face (``--preset head``),
  with the flow's error against the expression-only truth (:func:`head_motion_flow_errors`).
* :func:`lowres_experiment` - SMIC-HS-sized faces (``--preset lowres``) against the default size,
  and a resolution-aware flow as a remedy, with the flow's error relative to the true motion at
  both sizes (:func:`flow_accuracy`).

``hmrm beyond apex|head-motion|lowres`` runs them; chapter 10 teaches them. Calibration and
explanations read finished runs: :mod:`hmrm.train.calibration` (``hmrm calibrate``) and
:mod:`hmrm.explain` (``hmrm explain``).
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .data.apex import _grey, estimate_apex
from .data.records import DataError
from .data.synthme import load_synthme
from .data.synthme.load import load_gt_flow
from .demo import recipe
from .features import estimate_flow, load_aligned_pair, resize_flow
from .flow import endpoint_error
from .flow.stabilize import remove_head_motion
from .markdown import format_interval, markdown_table
from .model import MODELS
from .resultfiles import write_results
from .train.loso import LOSOData, RunOptions, recipe_config, run_loso
from .train.stats import paired_difference, ratio_interval, run_predictions
from .utils import atomic_write_text
from .utils import cache_dir as default_cache



def estimate_apex_difference(frames, onset: int = 0, offset: int | None = None, width: int = 128,
                             centre: float = 0.7, smooth: int = 3) -> int:
    """Apex by frame difference: the frame whose grey levels differ most (mean absolute difference
    over the central part of the frame) from the onset frame, after smoothing over ``smooth``
    frames. No flow, so about 50 times faster than :func:`hmrm.data.apex.estimate_apex`, and blind
    to what moved: a head turn or a blink counts like an expression."""
    offset = len(frames) - 1 if offset is None else offset
    if not 0 <= onset <= offset < len(frames):
        raise ValueError(f"need 0 <= onset <= offset < {len(frames)}, got {onset}, {offset}")
    ref = _grey(Path(frames[onset]), width).astype(np.float32)
    h, w = ref.shape
    my, mx = round(h * (1 - centre) / 2), round(w * (1 - centre) / 2)
    curve = np.array([np.abs(_grey(Path(p), width).astype(np.float32) - ref)[my:h - my, mx:w - mx].mean()
                      for p in frames[onset:offset + 1]])
    if smooth > 1 and len(curve) >= smooth:
        curve = np.convolve(curve, np.ones(smooth) / smooth, mode="same")
    return onset + int(np.argmax(curve))


def _estimate_apex_flow(frames, onset, offset):
    return estimate_apex(frames, onset, offset)


#: Apex estimators compared by :func:`apex_experiment`: name -> ``f(frames, onset, offset)`` (None: the true apex).
APEX_ESTIMATORS: dict[str, Callable | None] = {
    "true": None,
    "flow_residual": _estimate_apex_flow,
    "frame_difference": estimate_apex_difference,
    "middle": lambda frames, onset, offset: (onset + offset) // 2,
}


def apex_estimates(samples, estimators: Sequence[str], cache: str | Path, progress: bool = True) -> dict[str, list[int]]:
    """Apex per sample for each estimator, cached in the JSON file ``cache`` (written atomically
    after every clip, so an interrupted run loses nothing)."""
    from tqdm.auto import tqdm

    cache = Path(cache)
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    out = {}
    for name in estimators:
        f = APEX_ESTIMATORS[name]
        if f is None:
            out[name] = [s.apex for s in samples]
            continue
        got = []
        for s in tqdm(samples, desc=f"apex by {name}", disable=not progress):
            k = f"{name}|{s.key}|{len(s.frames)}|{s.onset}|{s.offset}"
            if k not in known:
                known[k] = int(f(s.frames, s.onset, s.offset))
                atomic_write_text(cache, json.dumps(known, indent=0, sort_keys=True))
            got.append(known[k])
        out[name] = got
    return out


def variant_runs(variants: dict[str, dict], out: str | Path, flow: str, models: Sequence[str] = MODELS,
                 epochs: int | None = None, input_size: int = 64, seed: int = 0, cache_dir: str | Path | None = None,
                 progress: bool = True, workers: int | None = 1, log=print) -> list[dict]:
    """Train each model on each variant (run folders ``out/<variant>/<model>``, resumable) and compare
    every variant with the first one, paired over subjects. A variant is ``{"samples": [...]}`` plus
    optionally ``"head_motion"`` (see :class:`~hmrm.train.loso.LOSOConfig`) and ``"flow"`` (instead of
    ``flow``). A variant on other clips than the reference's (another SynthME build) is not paired:
    its row has ``"difference": None`` and is read against the reference by the two intervals. Returns one row per
    (model, variant): UF1 / UAR with their intervals and the paired difference from the reference."""
    out = Path(out)
    base = Path(cache_dir) if cache_dir is not None else default_cache("features")
    names = list(variants)
    rows = []
    for name in names:
        # one cache folder per variant: the cache is keyed by sample, and variants share sample keys
        v = variants[name]
        head, vflow = v.get("head_motion", "keep"), v.get("flow", flow)
        data = LOSOData.from_samples(v["samples"], vflow, input_size, cache_dir=base / f"variant-{name}",
                                     progress=progress, workers=workers or 0, head_motion=head)
        for model in models:
            t0 = time.perf_counter()
            cfg = recipe_config(model, recipe(model, epochs), vflow, input_size, seed=seed, head_motion=head)
            m = run_loso(data, cfg, out / name / model, RunOptions(progress=progress, figures=False, workers=workers)).metrics
            h = m["honest"]
            row = {"model": model, "variant": name, "uf1": h["uf1"], "uar": h["uar"],
                   "uf1_interval": h["interval"]["uf1"], "uar_interval": h["interval"]["uar"], "run": str(out / name / model)}
            if name != names[0]:
                try:
                    d = paired_difference(run_predictions(out / name / model), run_predictions(out / names[0] / model),
                                          len(data.classes))
                    row["difference"] = {k: d[k] for k in ("uf1", "uar")}
                except ValueError:  # other clips: no pairing
                    row["difference"] = None
            rows.append(row)
            log(f"{model} on {name}: UF1 {h['uf1']:.4f} UAR {h['uar']:.4f} ({time.perf_counter() - t0:.0f} s)")
    return rows


def variant_table(rows: Sequence[dict], extra: dict[str, dict[str, str]] | None = None,
                  extra_header: Sequence[str] = ()) -> str:
    """Markdown: one line per (model, variant), the reference first, with the paired differences;
    ``extra[variant]`` adds columns (``extra_header``) such as the apex error."""
    lines = []
    for r in sorted(rows, key=lambda r: MODELS.index(r["model"]) if r["model"] in MODELS else 99):
        d = r.get("difference")
        first = "reference" if "difference" not in r else "not paired: other clips"
        lines.append(["HMRM" if r["model"] == "hmrm" else "STSTNet", r["variant"],
                      *[(extra or {}).get(r["variant"], {}).get(h, "") for h in extra_header],
                      format_interval(r["uf1"], r["uf1_interval"]), format_interval(r["uar"], r["uar_interval"]),
                      first if d is None else format_interval(d["uf1"]["difference"], d["uf1"]["interval"], True),
                      "" if d is None else format_interval(d["uar"]["difference"], d["uar"]["interval"], True)])
    return markdown_table(["model", "variant", *extra_header, "UF1 [95%]", "UAR [95%]", "ΔUF1 vs reference [95%, paired]",
                           "ΔUAR [95%, paired]"], lines)


def _samples(root) -> tuple[list, str]:
    """SynthME samples from a folder (or given as a list), and how to name them in a table."""
    if isinstance(root, (str, Path)):
        return load_synthme(root), str(root)
    return root, f"{len(root)} SynthME clips"


def _write_results(out: Path, stem: str, summary: dict, md: str, table) -> dict:
    """``out/<stem>.json`` and ``out/<stem>.md`` (and ``table`` with its JSON twin), atomically; the
    summary with its table."""
    atomic_write_text(out / f"{stem}.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(out / f"{stem}.md", md)
    if table is not None:
        write_results(table, md)
    return {**summary, "table": md}


def apex_experiment(root="data/synthme", out: str | Path = "runs/beyond/apex",
                    estimators: Sequence[str] = tuple(APEX_ESTIMATORS), flow: str = "dis_tuned",
                    models: Sequence[str] = MODELS, epochs: int | None = None, input_size: int = 64,
                    cache_dir: str | Path | None = None, progress: bool = True, workers: int | None = 1,
                    table: str | Path | None = None, log=print) -> dict:
    """The UF1 cost of each apex estimator against the true apex (the first of ``estimators``
    should be ``"true"``) on the SynthME folder ``root`` (or its loaded samples). Writes
    ``out/apex.json`` and ``out/apex.md`` (and the table to ``table``); returns the summary."""
    if flow == "gt":
        raise ValueError("flow 'gt' is SynthME's exact flow to the TRUE apex; an estimated apex needs an "
                         "estimated flow (dis_tuned, gru_aofe, tvl1, ...)")
    unknown = [e for e in estimators if e not in APEX_ESTIMATORS]
    if unknown:
        raise ValueError(f"unknown apex estimator(s) {unknown}; choose from {', '.join(APEX_ESTIMATORS)}")
    out = Path(out)
    samples, where = _samples(root)
    apex = apex_estimates(samples, estimators, out / "apex_estimates.json", progress)
    true = np.array([s.apex for s in samples])
    errors = {}
    for name, a in apex.items():
        e = np.abs(np.asarray(a) - true)
        errors[name] = {"mean_abs_error": float(e.mean()), "median_abs_error": float(np.median(e)),
                        "within_2": float((e <= 2).mean())}
    variants = {name: {"samples": [dataclasses.replace(s, apex=int(a)) for s, a in zip(samples, apex[name])]}
                for name in estimators}
    rows = variant_runs(variants, out, flow, models, epochs, input_size, cache_dir=cache_dir, progress=progress,
                        workers=workers, log=log)
    extra = {n: {"apex error (frames, mean)": f"{e['mean_abs_error']:.2f}",
                 "within 2 frames": f"{e['within_2']:.0%}"} for n, e in errors.items()}
    text = variant_table(rows, extra, ["apex error (frames, mean)", "within 2 frames"])
    summary = {"data": where, "flow": flow, "epochs": epochs, "n_samples": len(samples), "errors": errors,
               "rows": rows}
    md = (f"Apex: the true apex against estimated ones; {flow} flow, LOSO on {where}, the demo's recipes"
          f"{'' if epochs is None else f' with {epochs} epochs'}. Paired differences: the same clips and subjects "
          f"resampled for both rows.\n\n{text}\n")
    return _write_results(out, "apex", summary, md, table)


def head_motion_flow_errors(samples, methods: Sequence[str] = ("gt", "dis_tuned", "gru_aofe"),
                            progress: bool = True) -> list[dict]:
    """Mean end-point error on the face against SynthME's expression-only flow, for each flow method
    as estimated and with the head's motion removed (:func:`hmrm.flow.stabilize.remove_head_motion`),
    with 95 % intervals over subjects (the difference paired). ``gt`` is SynthME's exact flow,
    head motion included: its row measures the compensation alone."""
    from tqdm.auto import tqdm

    subjects = sorted({s.group for s in samples})
    rows = []
    for method in methods:
        err = {k: np.zeros(len(subjects)) for k in ("keep", "remove", "head", "expression")}
        n = np.zeros(len(subjects))
        for s in tqdm(samples, desc=f"flow errors ({method})", disable=not progress):
            gt = load_gt_flow(s)
            if "flow_expression" not in gt:
                raise DataError(f"{s.meta.get('gt_flow')} has no expression-only flow (a SynthME built before it was "
                                "stored): rebuild the set into a new folder with `hmrm synthme --preset head --out DIR`")
            pair = load_aligned_pair(s)
            flow = gt["flow"] if method == "gt" else estimate_flow(pair.onset, pair.apex, method)
            i = subjects.index(s.group)
            err["keep"][i] += endpoint_error(flow, gt["flow_expression"], gt["face_mask"])
            err["remove"][i] += endpoint_error(remove_head_motion(flow, pair.landmarks), gt["flow_expression"],
                                               gt["face_mask"])
            err["head"][i] += endpoint_error(gt["flow"], gt["flow_expression"], gt["face_mask"])
            err["expression"][i] += endpoint_error(np.zeros_like(flow), gt["flow_expression"], gt["face_mask"])
            n[i] += 1
        row = {"method": method, "clips": int(n.sum())}
        for k in ("keep", "remove", "head", "expression"):
            row[k] = float(err[k].sum() / n.sum())
            row[f"{k}_interval"] = ratio_interval(err[k], n)
        row["difference"] = row["remove"] - row["keep"]
        row["difference_interval"] = ratio_interval(err["remove"] - err["keep"], n)
        rows.append(row)
    return rows


def head_motion_warning(errors: Sequence[dict], where: str) -> str | None:
    """A warning when the build's heads barely move: the experiment then measures little (the
    ``head`` preset moves the head several times as far as the expressions)."""
    head, expression = errors[0]["head"], errors[0]["expression"]
    if head >= 2 * expression:
        return None
    return (f"the heads of {where} move {head:.3f} px on average, no more than twice their expressions "
            f"({expression:.3f} px), so removing head motion has little to remove and this measures little. The "
            "head-motion SynthME is built with `hmrm synthme --preset head --out data/synthme_head`.")


def head_motion_experiment(root="data/synthme_head", out: str | Path = "runs/beyond/head_motion",
                           flow: str = "dis_tuned", error_methods: Sequence[str] = ("gt", "dis_tuned", "gru_aofe"),
                           models: Sequence[str] = MODELS, epochs: int | None = None, input_size: int = 64,
                           cache_dir: str | Path | None = None, progress: bool = True, workers: int | None = 1,
                           table: str | Path | None = None, log=print) -> dict:
    """Head-motion compensation on a SynthME whose head moves more than its faces (``hmrm synthme
    --preset head``): flow EPE against the expression-only truth with and without it, and LOSO
    UF1 / UAR of each model on ``flow`` with ``head_motion`` keep and remove, paired over subjects."""
    out = Path(out)
    samples, where = _samples(root)
    errors = head_motion_flow_errors(samples, error_methods, progress)
    warning = head_motion_warning(errors, where)
    if warning:
        log(f"warning: {warning}")
    epe = markdown_table(
        ["flow", "expression (mean size)", "head motion (mean size)", "EPE as estimated [95%]", "EPE, head motion removed [95%]",
         "difference [95%, paired]"],
        [[e["method"], f"{e['expression']:.3f}", f"{e['head']:.3f}", format_interval(e["keep"], e["keep_interval"]),
          format_interval(e["remove"], e["remove_interval"]),
          format_interval(e["difference"], e["difference_interval"], signed=True)] for e in errors])
    rows = variant_runs({"keep": {"samples": samples}, "remove": {"samples": samples, "head_motion": "remove"}}, out,
                        flow, models, epochs, input_size, cache_dir=cache_dir, progress=progress, workers=workers,
                        log=log)
    loso = variant_table(rows)
    md = (f"Head motion: LOSO on {where}, {flow} flow, the demo's recipes"
          f"{'' if epochs is None else f' with {epochs} epochs'}.{f' Warning: {warning}' if warning else ''}"
          "\n\nFlow end-point error on the face against the "
          f"expression-only flow (pixels, {errors[0]['clips']} clips; intervals over subjects):\n\n{epe}\n\n"
          f"Recognition, head motion kept (reference) and removed (paired over subjects):\n\n{loso}\n")
    summary = {"data": where, "flow": flow, "epochs": epochs, "errors": errors, "rows": rows}
    return _write_results(out, "head_motion", summary, md, table)


def flow_accuracy(samples, methods: Sequence[str] = ("dis_tuned", "dis_tuned_x2"), input_size: int = 64,
                  progress: bool = True) -> list[dict]:
    """How well each flow method recovers SynthME's exact flow, in the frame's pixels and as the
    network sees it: ``epe`` (end-point error on the face, frame pixels), ``motion`` (mean size of
    the true flow there), ``relative`` (``epe / motion``: comparable across face sizes, since every
    SynthME motion scales with the face) and ``input_epe`` (the error after both flows are shrunk to
    the network's ``input_size``, in input pixels), each with a 95 % interval over subjects."""
    import cv2
    from tqdm.auto import tqdm

    subjects = sorted({s.group for s in samples})
    keys = ("epe", "motion", "input_epe", "input_motion")
    rows = []
    for method in methods:
        acc = {k: np.zeros(len(subjects)) for k in keys}
        n = np.zeros(len(subjects))
        for s in tqdm(samples, desc=f"flow accuracy ({method})", disable=not progress):
            gt = load_gt_flow(s)
            pair = load_aligned_pair(s)
            flow = gt["flow"] if method == "gt" else estimate_flow(pair.onset, pair.apex, method)
            mask = gt["face_mask"]
            small = cv2.resize(mask.astype(np.uint8), (input_size, input_size), interpolation=cv2.INTER_NEAREST) > 0
            true_small = resize_flow(gt["flow"], input_size)
            i = subjects.index(s.group)
            acc["epe"][i] += endpoint_error(flow, gt["flow"], mask)
            acc["motion"][i] += endpoint_error(np.zeros_like(flow), gt["flow"], mask)
            acc["input_epe"][i] += endpoint_error(resize_flow(flow, input_size), true_small, small)
            acc["input_motion"][i] += endpoint_error(np.zeros_like(true_small), true_small, small)
            n[i] += 1
        row = {"method": method, "clips": int(n.sum()), "size": int(gt["flow"].shape[0]), "input_size": input_size}
        for k in keys:
            row[k] = float(acc[k].sum() / n.sum())
            row[f"{k}_interval"] = ratio_interval(acc[k], n)
        row["relative"] = row["epe"] / row["motion"]
        row["relative_interval"] = ratio_interval(acc["epe"], acc["motion"])
        rows.append(row)
    return rows


def flow_accuracy_table(rows: Sequence[dict], labels: Sequence[str] | None = None) -> str:
    """A markdown table of :func:`flow_accuracy` rows (``labels`` name the data each row was measured on)."""
    labels = labels or [""] * len(rows)
    return markdown_table(
        ["data", "flow", "face (px)", "true motion (px)", "EPE (px) [95%]", "EPE / motion [95%]",
         "EPE at the network's input (input px) [95%]"],
        [[label, r["method"], str(r["size"]), f"{r['motion']:.3f}", format_interval(r["epe"], r["epe_interval"]),
          format_interval(r["relative"], r["relative_interval"]),
          format_interval(r["input_epe"], r["input_epe_interval"])] for label, r in zip(labels, rows)])


def lowres_experiment(root="data/synthme", lowres_root="data/synthme_lowres", out: str | Path = "runs/beyond/lowres",
                      flow: str = "dis_tuned", remedy: str = "dis_tuned_x2", models: Sequence[str] = MODELS,
                      epochs: int | None = None, input_size: int = 64, cache_dir: str | Path | None = None,
                      progress: bool = True, workers: int | None = 1, table: str | Path | None = None,
                      log=print) -> dict:
    """Low-resolution faces (``hmrm synthme --preset lowres``: SMIC-HS-like 136 px faces, half the
    frames) against the default SynthME, and a remedy: ``remedy`` flow (default: tuned DIS on frames
    enlarged 2x) on the low-resolution clips, paired with the plain flow on the same clips."""
    out = Path(out)
    (low, low_where), (full, full_where) = _samples(lowres_root), _samples(root)
    variants = {"lowres": {"samples": low}, f"lowres_{remedy}": {"samples": low, "flow": remedy},
                "default_size": {"samples": full}}
    accuracy = [*flow_accuracy(low, (flow, remedy), input_size, progress),
                *flow_accuracy(full, (flow, remedy), input_size, progress)]
    epe = flow_accuracy_table(accuracy, ["low resolution"] * 2 + ["default size"] * 2)
    rows = variant_runs(variants, out, flow, models, epochs, input_size, cache_dir=cache_dir, progress=progress,
                        workers=workers, log=log)
    text = variant_table(rows)
    md = (f"Low resolution: a SMIC-HS-like SynthME ({low_where}, 136 px faces, half the frames) against the "
          f"default SynthME ({full_where}, 256 px).\n\nFlow accuracy against SynthME's exact flow, on the face "
          f"(intervals over subjects; the network sees the flow shrunk to {input_size} px):\n\n{epe}\n\n"
          f"Recognition: LOSO with {flow} flow on the low-resolution clips (reference), the same clips with "
          f"{remedy} flow (paired), and the default SynthME (paired when its subjects and labels match the "
          f"low-resolution build's, as with the same seed); the demo's recipes"
          f"{'' if epochs is None else f' with {epochs} epochs'}.\n\n{text}\n")
    summary = {"flow": flow, "remedy": remedy, "epochs": epochs, "accuracy": accuracy, "rows": rows}
    return _write_results(out, "lowres", summary, md, table)
