"""Optical flow on SynthME: every onset -> apex pair against its exact ground truth.

    .venv/bin/python benchmarks/flow_bench.py [--root data/synthme] [--limit N] [--weights DIR]

For each method: end-point error (EPE) over the face (mean of per-pair means, and the 95th
percentile over all face pixels), EPE on the *expression* pixels (face pixels whose ground-truth
motion, after removing its best-fitting affine part, i.e. the head motion, is at least 0.1 px),
angular error, and CPU time per pair (after one untimed warm-up call per method). Frames are 256 px
aligned faces, the crop size GRU-AOFE uses. A second table gives the face EPE per subject, a third the
error by the size of the true motion (does a method shorten the larger motions?).
Writes a markdown table (``--table``) and a bar chart (``--figure``).

Besides the estimators, two kinds of reference rows say where GRU-AOFE's gain comes from:

* ``gru_only``: the shipped GRU-AOFE with its refinement stage switched off (warm start + GRU);
* ``dis_tuned_blur2`` / ``dis_tuned_blur4``: tuned DIS followed by a fixed Gaussian blur of the flow
  (sigma 2 px, the best of 1 / 2 / 4 on 40 generated pairs, i.e. chosen without SynthME; sigma 4 px,
  the best on SynthME itself, so that row is optimistic: it was tuned on the test data). They ask
  whether the refinement stage's learned rule beats the plain smoothing any one would try first.
"""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np

from hmrm.data.synthme import load_frame, load_gt_flow, load_synthme
from hmrm.flow import CLASSIC_METHODS, angular_error, classic_flow
from hmrm.flow.classic import to_grey
from hmrm.train.stats import ratio_interval
from hmrm.markdown import markdown_table
from hmrm.resultfiles import resolve, verdict

LABELS = {
    "zero": "zero (no motion)",
    "dis_tuned_blur2": "dis_tuned + blur sigma 2 (reference; sigma chosen on generated pairs)",
    "dis_tuned_blur4": "dis_tuned + blur sigma 4 (reference; sigma chosen on SynthME: OPTIMISTIC)",
    "refine_dis": "refinement stage alone on tuned DIS (ablation)",
    "gru_noattn": "GRU-AOFE without refinement, attention replaced by the motion features (ablation)",
    "gru_only": "GRU-AOFE without its refinement stage (ablation)",
    "gru_aofe": "**GRU-AOFE** (shipped weights)",
}
BLUR = {"dis_tuned_blur2": 2.0, "dis_tuned_blur4": 4.0}
LEARNED = ("refine_dis", "gru_noattn", "gru_only", "gru_aofe")  # all need the weights
REUSE_ORDER = ("gru_aofe", "gru_only", "gru_noattn", "refine_dis")  # computed in this order, sharing one pass
UNTIMED = ("gru_only", "gru_noattn", "refine_dis")  # parts of the network, not timed as a method is used
#: Paired differences over subjects printed under the table: (a, b, what a minus b asks)
PAIRED = (("gru_aofe", "dis_tuned", "full GRU-AOFE minus tuned DIS"),
          ("gru_only", "dis_tuned", "GRU-AOFE without refinement minus tuned DIS"),
          ("gru_only", "gru_noattn", "with attention minus without (refinement off)"),
          ("gru_aofe", "refine_dis", "full GRU-AOFE minus refinement alone on DIS"),
          ("gru_aofe", "gru_only", "full GRU-AOFE minus the GRU alone (the refinement stage after it)"))
METHODS = ("zero",) + CLASSIC_METHODS + tuple(BLUR) + LEARNED
#: The error-by-motion-size table: its bins (px of true motion) and the methods it shows
SIZE_BINS = (0.0, 0.3, 0.7, 1.2, 2.5, np.inf)
SIZE_METHODS = ("dis_tuned", "gru_only", "gru_aofe")


def _blurred(flow: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return np.dstack([cv2.GaussianBlur(flow[..., i], (0, 0), sigma, borderType=cv2.BORDER_REPLICATE) for i in range(2)])


def _affine_part(flow: np.ndarray, mask: np.ndarray) -> np.ndarray:
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    a = np.stack([np.ones(h * w), xs.ravel() / w, ys.ravel() / h], 1)
    coef, *_ = np.linalg.lstsq(a[mask.ravel()], flow.reshape(-1, 2)[mask.ravel()], rcond=None)
    return (a @ coef).reshape(h, w, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="data/synthme", help="SynthME build (make demo writes data/synthme)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from: {', '.join(METHODS)}")
    ap.add_argument("--weights", default=None, help="folder with NAME.pt/.json (default: the shipped weights' folder)")
    ap.add_argument("--name", default="gru_aofe", help="which weights of that folder (default: gru_aofe)")
    ap.add_argument("--table", default="", help="also write the markdown table (and its JSON twin) here; the "
                    "committed one is benchmarks/results/flow_parts/seed0.md, which `make figures` rewrites (default: print only, so "
                    "a reader's run leaves the committed figures alone)")
    ap.add_argument("--figure", default="", help="also draw the bar chart here (figures/flow_bench.png for the committed one)")
    ap.add_argument("--redraw", default="", help="only redraw --figure from this committed table (no flows computed)")
    args = ap.parse_args()
    if args.redraw:
        if not args.figure:
            ap.error("--redraw needs --figure")
        draw(resolve(args.redraw).read_text(), args.figure)
        return

    samples = load_synthme(args.root)[: args.limit]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        ap.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    model = None
    if set(LEARNED) & set(methods):
        from hmrm.flow.pretrained import load_pretrained

        try:
            model = load_pretrained(args.name, args.weights)
        except FileNotFoundError as exc:
            print(f"skipping {', '.join(LEARNED)}: {exc}")
            methods = [m for m in methods if m not in LEARNED]
    stats = {m: {"epe": [], "epe_move": [], "ae": [], "t": [], "all": []} for m in methods}
    # per size of the true motion: pixels, summed EPE and summed error along the true motion's direction
    by_size = {m: np.zeros((len(SIZE_BINS) - 1, 3)) for m in methods if m in SIZE_METHODS}
    iterations: list[list[float]] = []  # per pair: face EPE of the warm start and after each GRU iteration
    from tqdm.auto import tqdm

    cache: dict = {}  # the flows of one pair that several rows share (tuned DIS, one pass of the network)

    def run(m, a, b):
        if m == "zero":
            return np.zeros(a.shape[:2] + (2,), np.float32)
        if m == "gru_aofe":  # timed as used: tuned DIS, then the network with its refinement stage
            flows = model.estimate_all(a, b)
            cache["gru"] = flows
            return flows[-1]
        if m == "gru_only":
            flows = cache.get("gru") or model.estimate_all(a, b, refine=False)
            return flows[model.config.iters] if len(flows) > model.config.iters + 1 else flows[-1]
        if m == "gru_noattn":
            return model.estimate(a, b, refine=False, attention=False, init=cache.get("dis"))
        if m == "refine_dis":
            import torch

            dis = cache.get("dis")
            dis = classic_flow(a, b, "dis_tuned") if dis is None else dis
            t = lambda x: torch.from_numpy(np.ascontiguousarray(x))[None, None]  # noqa: E731
            with torch.no_grad():
                out = model.refiner(t(to_grey(a).astype(np.float32)), t(to_grey(b).astype(np.float32)),
                                    torch.from_numpy(dis).permute(2, 0, 1)[None])
            return out[0].permute(1, 2, 0).numpy()
        if m in BLUR:
            return _blurred(classic_flow(a, b, "dis_tuned"), BLUR[m])
        flow = classic_flow(a, b, m)
        if m == "dis_tuned":
            cache["dis"] = flow
        return flow

    # the learned rows after the classical ones, so that they reuse this pair's tuned DIS and network pass
    order = [m for m in methods if m not in LEARNED] + [m for m in REUSE_ORDER if m in methods]
    if model is not None and model.refiner is None:
        order = [m for m in order if m != "refine_dis"]
        methods = [m for m in methods if m != "refine_dis"]
    if samples:  # one untimed call each, so that no method's time includes thread-pool and allocator start-up
        first = load_frame(samples[0].onset_path), load_frame(samples[0].apex_path)
        for m in order:
            run(m, *first)
    for s in tqdm(samples, desc="flow benchmark", unit="pair"):
        a, b = load_frame(s.onset_path), load_frame(s.apex_path)
        g = load_gt_flow(s)
        gt, face = g["flow"], g["face_mask"]
        move = face & (np.linalg.norm(gt - _affine_part(gt, face), axis=-1) >= 0.1)
        size = np.linalg.norm(gt, axis=-1)  # the true motion's length, for the by-size table
        cache.clear()
        for m in order:
            t0 = time.perf_counter()
            f = run(m, a, b)
            dt = time.perf_counter() - t0
            err = np.linalg.norm(f - gt, axis=-1)
            st = stats[m]
            st["epe"].append(err[face].mean())
            st["epe_move"].append(err[move].mean() if move.any() else np.nan)
            st["ae"].append(angular_error(f, gt, face))
            st["t"].append(dt)
            st["all"].append(err[face])
            if m in by_size:
                along = ((f - gt) * gt).sum(-1) / np.maximum(size, 1e-6)
                for k, (lo, hi) in enumerate(zip(SIZE_BINS[:-1], SIZE_BINS[1:])):
                    sel = face & (size >= lo) & (size < hi)
                    by_size[m][k] += sel.sum(), err[sel].sum(), along[sel].sum()
        if "gru" in cache:
            iterations.append([float(np.linalg.norm(f - gt, axis=-1)[face].mean())
                               for f in cache["gru"][:model.config.iters + 1]])
    subjects = [s.subject for s in samples]
    names = sorted(set(subjects))
    members = {subj: np.array([i for i, x in enumerate(subjects) if x == subj]) for subj in names}

    def per_subject(values) -> tuple[np.ndarray, np.ndarray]:
        v = np.asarray(values, dtype=np.float64)
        return np.array([v[members[n]].sum() for n in names]), np.array([len(members[n]) for n in names], float)

    def interval(values) -> str:
        """The mean over pairs with its 95 % bootstrap interval over subjects."""
        sums, counts = per_subject(values)
        low, high = ratio_interval(sums, counts)
        return f"{sums.sum() / counts.sum():.4f} [{low:.4f}, {high:.4f}]"

    table = []
    for m in methods:
        st = stats[m]
        p95 = np.percentile(np.concatenate(st["all"]), 95)
        label = LABELS.get(m, m) if m != "gru_aofe" or not args.weights else f"**GRU-AOFE** (weights from {args.weights})"
        table.append([label, interval(st["epe"]), f"{p95:.4f}", f"{np.nanmean(st['epe_move']):.4f}",
                      f"{np.mean(st['ae']):.3f}", "—" if m in UNTIMED else f"{1e3 * np.mean(st['t']):.1f}"])
    lines = [f"Flow on SynthME ({args.root}, {len(samples)} onset->apex pairs of {len(names)} subjects, 256 px faces; "
             f"weights {args.name}{'' if not args.weights else ' from ' + args.weights}). Face EPE: mean over pairs "
             "with its 95 % bootstrap interval over subjects. CPU time: the whole method as used (GRU-AOFE includes "
             "its tuned-DIS warm start); the ablations are parts of one pass and not timed.", "",
             markdown_table(["method", "face EPE mean [95 % interval]", "face EPE p95", "expression-pixel EPE",
                             "angular error (deg)", "CPU ms / pair"], table)]
    rows = []
    for a, b, what in PAIRED:
        if a in stats and b in stats:
            diff = np.asarray(stats[a]["epe"]) - np.asarray(stats[b]["epe"])
            sums, counts = per_subject(diff)
            low, high = ratio_interval(sums, counts)
            base = np.mean(stats[b]["epe"])
            rows.append([what, f"{diff.mean():+.4f} [{low:+.4f}, {high:+.4f}]", f"{diff.mean() / base:+.1%}",
                         verdict([low, high])])
    if rows:
        lines += ["", "Paired differences of face EPE (negative: the first is better), 95 % bootstrap interval over "
                  "subjects, the same subjects resampled for both rows", "",
                  markdown_table(["difference", "EPE (px) [95 % interval]", "relative", "verdict"], rows)]
    if iterations:
        its = np.asarray(iterations)
        rows = [[("0 (the warm start, tuned DIS)" if model.config.warm_start else "0 (zero flow)") if k == 0 else str(k),
                 interval(its[:, k]), "" if k == 0 else f"{np.mean(its[:, k] - its[:, k - 1]):+.4f}",
                 "" if k == 0 else f"{np.mean(its[:, k] < its[:, k - 1]):.0%}"] for k in range(its.shape[1])]
        lines += ["", "Face EPE after each GRU iteration (refinement stage off)", "",
                  markdown_table(["iteration", "face EPE mean [95 % interval]", "change from the one before",
                                  "pairs improved"], rows)]
    # per subject: the mean hides who gains and who loses
    shown = [m for m in methods if m != "zero"]
    both = "gru_aofe" in shown and "dis_tuned" in shown
    table = []
    for subj in names:
        idx = members[subj]
        cells = [subj] + [f"{np.mean([stats[m]['epe'][i] for i in idx]):.4f}" for m in shown]
        if both:
            cells.append(f"{sum(stats['gru_aofe']['epe'][i] < stats['dis_tuned']['epe'][i] for i in idx)}/{len(idx)}")
        table.append(cells)
    lines += ["", "Face EPE mean per subject" + (" (last column: pairs where GRU-AOFE beats tuned DIS)" if both else ""), "",
              markdown_table(["subject", *shown] + (["GRU-AOFE better"] if both else []), table)]
    if by_size:
        rows = []
        counts = next(iter(by_size.values()))[:, 0]  # the same pixels for every method
        for k, (lo, hi) in enumerate(zip(SIZE_BINS[:-1], SIZE_BINS[1:])):
            n = counts[k]
            cells = [f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">= {lo:g}", f"{n / max(counts.sum(), 1):.1%}"]
            for m in by_size:
                cells += [f"{by_size[m][k, 1] / max(n, 1):.4f}", f"{by_size[m][k, 2] / max(n, 1):+.4f}"]
            rows.append(cells)
        lines += ["", "Face EPE by the size of the true motion, over all face pixels of all pairs, with the mean error along "
                  "the true motion's direction (negative: the estimate is too short)", "",
                  markdown_table(["true motion (px)", "share of face pixels"]
                                 + [h for m in by_size for h in (f"{m} EPE", f"{m} along")], rows)]
    text = "\n".join(lines)
    print(text)
    if args.table:
        from hmrm.resultfiles import write_results

        Path(args.table).parent.mkdir(parents=True, exist_ok=True)
        write_results(Path(args.table), text + "\n")
    if args.figure:
        draw(text, args.figure)


def _key(label: str) -> str:
    """The method name of a table row's label."""
    if label.replace("*", "").startswith("GRU-AOFE ("):  # the full network's row names its weights
        return "gru_aofe"
    return next((k for k, v in LABELS.items() if v == label), label)


def draw(text: str, path: str) -> None:
    """The bar chart of a benchmark's markdown (the text just printed, or a committed results file's):
    face and expression-pixel EPE per method, and the CPU time of the methods that are timed. Drawn from
    the table's rounded values, so the same table draws the same figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hmrm.resultfiles import ResultsFile, parse_results_markdown

    res = ResultsFile(Path("printed"), parse_results_markdown(text))
    t = res.table("method")
    methods = [_key(r["method"]) for r in t.rows()]
    face = [t.value(k, "face EPE mean").value for k in range(len(t))]
    move = [t.value(k, "expression-pixel EPE") for k in range(len(t))]
    timed = [(m, t.value(k, "CPU ms / pair")) for k, m in enumerate(methods) if m not in UNTIMED]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [len(methods), max(len(timed), 1)]})
    pos = np.arange(len(methods))
    axes[0].bar(pos - 0.2, face, 0.4, label="face")
    axes[0].bar(pos + 0.2, move, 0.4, label="expression pixels")
    top = 1.35 * max([f for f, m in zip(face, methods) if m != "zero"] or face)  # "zero" would flatten the rest
    axes[0].set_ylim(0, top)
    for x, y in zip(pos, face):
        axes[0].text(x - 0.2, min(y, 0.8 * top), f"{y:.3f}", ha="center", va="bottom", fontsize=7, rotation=90,
                     color="white" if y > top else "black")
    axes[0].set_ylabel("EPE (px)" + ("; the zero bar is cut" if "zero" in methods else ""))
    axes[0].legend(loc="upper right")
    axes[0].set_xticks(pos, methods, rotation=35, ha="right")
    axes[1].bar(np.arange(len(timed)), [ms for _, ms in timed], color="grey")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("CPU ms per pair (log)")
    axes[1].set_xticks(np.arange(len(timed)), [m for m, _ in timed], rotation=35, ha="right")
    axes[1].set_title("methods as used (the ablations are parts of one pass)", fontsize=9)
    n = re.search(r"(\d+) onset->apex pairs", " ".join(res.text))
    fig.suptitle(f"Optical flow on SynthME{f', {n.group(1)} pairs' if n else ''}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"figure written to {path}")

if __name__ == "__main__":
    main()
