"""The main job (``make demo``, ``hmrm demo``): HMRM on SynthME, beside the field's baseline and the oracle.

::

    SynthME (data/synthme, 10 subjects x 16 clips, 3 classes)
        -> flow onset->apex, three ways, computed once and cached:
               learned  GRU-AOFE (the shipped weights; tuned DIS while none ship, and the table says so)
               TV-L1    the field's default (OpenCV)
               truth    the exact flow SynthME was rendered with
        -> leave-one-subject-out training, quick settings (small HMRM, 64 px inputs, fixed epochs):
               HMRM     on the learned flow        the main row
               STSTNet  on TV-L1 flow              what most papers compare against
               HMRM     on the true flow           the oracle: what better flow could still buy
               STSTNet  on the learned flow        diagnostic rows: with the baseline they put STSTNet
               STSTNet  on the true flow            on all three flows, so the network's part and the
                                                   flow's part of a difference can be told apart
        -> figures/demo_results.md (the table), figures/demo_confusion.png, figures/demo_training.png,
           and the table in README.md between the ``demo-results`` markers.

Every score is honest: the final epoch of every fold, predictions pooled over all ten held-out
subjects (MEGC UF1 / UAR); nothing is chosen by looking at a held-out subject. Each row is an
ordinary :func:`hmrm.train.loso.run_loso` folder under ``runs/demo/``, so an interrupted demo
continues where it stopped, and a finished one only redraws its table.

Why the quick settings: the paper's HMRM (d_model 192, depth 4, 112 px, 1000 epochs) costs about
0.4 s per training sample per epoch on a 2-core CPU, some five hours for one SynthME LOSO at 30
epochs (``benchmarks/train_speed.py``); the demo must finish in minutes. The same code runs the
paper's settings (``hmrm reproduce configs/loso_*.yaml``).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .utils import atomic_write_text

README_BEGIN = "<!-- demo-results:begin (written by `make demo`; do not edit by hand) -->"
README_END = "<!-- demo-results:end -->"

#: The quick HMRM of the demo: one Mamba block per direction, 48 channels, 64 px inputs with
#: grains 8 and 16 px (8x8 and 4x4 tokens). See the module docstring for why it is small.
DEMO_HMRM = {"d_model": 48, "depth": 1}
DEMO_INPUT_SIZE = 64
#: Fixed epochs per fold, chosen by the time budget (the demo must finish in about 15 minutes on
#: two CPU cores), not by any score; the learning rate is the paper's (5e-4).
DEMO_EPOCHS = 40


FLOW_NAMES = {"gru_aofe": "GRU-AOFE flow", "dis_tuned": "tuned DIS flow", "tvl1": "TV-L1 flow",
              "gt": "ground-truth flow", "dis": "DIS flow", "farneback": "Farneback flow"}
ROLE_NOTES = {"main": "the main row", "baseline": "the field's usual baseline", "oracle": "oracle: exact flow",
              "diagnostic": "diagnostic: swaps one part"}


@dataclass(frozen=True)
class DemoRow:
    """One line of the demo table: a model on a flow. ``role``: main, baseline, oracle or diagnostic."""

    key: str
    model: str
    flow: str
    role: str
    overrides: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{'HMRM' if self.model == 'hmrm' else 'STSTNet'} on {FLOW_NAMES[self.flow]}"


def learned_flow() -> tuple[str, str]:
    """The flow method the demo calls "learned" and why: ``gru_aofe`` when weights ship with the
    package, otherwise tuned DIS (GRU-AOFE's warm start, and the best classical method on SynthME)."""
    from .flow.pretrained import weight_info

    try:
        weight_info("gru_aofe")
        return "gru_aofe", "GRU-AOFE flow (shipped weights)"
    except FileNotFoundError:
        return "dis_tuned", ("tuned DIS flow: no GRU-AOFE weights in hmrm/flow/weights/ (they ship with the "
                             "project: restore gru_aofe.pt and gru_aofe.json from git), so the learned row uses "
                             "GRU-AOFE's warm start, the best classical method on SynthME (figures/flow_bench.md)")


def demo_rows(learned: str, diagnostics: bool = True) -> list[DemoRow]:
    """The rows; a row's key (its run folder) names its flow, so rows on tuned DIS (a checkout
    without weights) and on GRU-AOFE live side by side."""
    rows = [DemoRow(f"hmrm_{learned}", "hmrm", learned, "main", DEMO_HMRM),
            DemoRow("ststnet_tvl1", "ststnet", "tvl1", "baseline"),
            DemoRow("hmrm_truth", "hmrm", "gt", "oracle", DEMO_HMRM)]
    if diagnostics:
        rows += [DemoRow(f"ststnet_{learned}", "ststnet", learned, "diagnostic"),
                 DemoRow("ststnet_truth", "ststnet", "gt", "diagnostic")]
    return rows


def run_demo(root: str | Path = "data/synthme", out: str | Path = "runs/demo", figures: str | Path | None = "figures",
             readme: str | Path | None = "README.md", epochs: int = DEMO_EPOCHS, input_size: int = DEMO_INPUT_SIZE,
             diagnostics: bool = True, device: str = "auto", seed: int = 0, cache_dir: str | Path | None = None,
             progress: bool = True, workers: int | None = None, ablations: bool = False, log=print) -> dict:
    """Run (or continue) every demo row and write the table and figures. Returns the summary that
    ``out/summary.json`` holds. ``workers``: processes that compute the flows (default: one per CPU core).
    ``ablations``: also run the paper's HMRM ablations on the learned flow (``out/ablations/<name>``,
    about 4 minutes each on 2 cores) and write ``demo_ablations.md``."""
    from .data.synthme import load_synthme
    from .train.loso import LOSOConfig, LOSOData, run_loso

    root, out = Path(root), Path(out)
    t_start = time.perf_counter()
    samples = load_synthme(root)
    learned, why = learned_flow()
    rows = demo_rows(learned, diagnostics)
    log(f"SynthME: {len(samples)} clips, {len({s.subject for s in samples})} subjects ({root})")
    log(f"learned flow: {why}")
    inputs: dict[str, LOSOData] = {}
    for flow in dict.fromkeys(r.flow for r in rows):
        t0 = time.perf_counter()
        inputs[flow] = LOSOData.from_samples(samples, flow, input_size, cache_dir=cache_dir, progress=progress,
                                             workers=0 if flow == "gt" else (workers or os.cpu_count() or 1))
        log(f"flow inputs {FLOW_NAMES[flow]}: {time.perf_counter() - t0:.0f} s (cached after the first run)")
    results = []
    for i, r in enumerate(rows, 1):
        log(f"[{i}/{len(rows)}] {r.label} ({ROLE_NOTES[r.role]}) -> {out / r.key}")
        cfg = LOSOConfig(model=r.model, flow=r.flow, model_overrides=dict(r.overrides), epochs=epochs,
                         input_size=input_size, device=device, seed=seed)
        t0 = time.perf_counter()
        res = run_loso(inputs[r.flow], cfg, out / r.key, progress=progress, figures=True)
        h = res.metrics["honest"]
        best = res.metrics.get("best_epoch_on_test") or {}
        results.append({"key": r.key, "label": r.label, "role": r.role, "model": r.model, "flow": r.flow,
                        "uf1": h["uf1"], "uar": h["uar"], "accuracy": h["accuracy"],
                        "best_uf1": best.get("uf1"), "best_uar": best.get("uar"),
                        "seconds": sum(f.get("seconds", 0.0) for f in _fold_results(out / r.key)),
                        "confusion": h["confusion"], "classes": h["classes"]})
        log(f"      UF1 {h['uf1']:.4f}  UAR {h['uar']:.4f}  ({time.perf_counter() - t0:.0f} s)")
    ablation_md = None
    if ablations:
        from .model import ABLATIONS
        from .train.results import ablation_table, results_table, to_markdown

        main = next(r for r in rows if r.role == "main")
        names = [a for a in ABLATIONS if a != "full"]
        where = {name: out / "ablations" / main.flow / name for name in names}
        for i, name in enumerate(names, 1):
            log(f"[ablation {i}/{len(names)}] HMRM ({name}) on {FLOW_NAMES[main.flow]} -> {where[name]}")
            cfg = LOSOConfig(model="hmrm", ablation=name, flow=main.flow, model_overrides=dict(main.overrides),
                             epochs=epochs, input_size=input_size, device=device, seed=seed)
            res = run_loso(inputs[main.flow], cfg, where[name], progress=progress, figures=True)
            log(f"      UF1 {res.metrics['honest']['uf1']:.4f}  UAR {res.metrics['honest']['uar']:.4f}")
        table = ablation_table(results_table([out / main.key, *where.values()],
                                             relative_to=out.parent if out.is_absolute() else None))
        caption = (f"HMRM ablations on SynthME at the demo settings ({epochs} epochs, {input_size} px, HMRM {DEMO_HMRM}, "
                   f"{FLOW_NAMES[main.flow]}): honest pooled UF1 / UAR (final epoch of every fold) and the change "
                   "against the full network. `hmrm demo --ablations` runs them.")
        ablation_md = to_markdown(table.drop(columns=["paper UF1", "paper UAR"]), caption)
    summary = {"learned_flow": learned, "learned_flow_note": why, "epochs": epochs, "input_size": input_size,
               "lr": LOSOConfig().lr,
               "hmrm_options": DEMO_HMRM, "seed": seed, "n_samples": len(samples),
               "n_subjects": len({s.subject for s in samples}), "rows": results,
               "checks": demo_checks(results), "wall_seconds_this_call": round(time.perf_counter() - t_start, 1)}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    table = demo_markdown(summary)
    if figures is not None:
        figures = Path(figures)
        atomic_write_text(figures / "demo_results.md", table + "\n")
        if ablation_md is not None:
            atomic_write_text(figures / "demo_ablations.md", ablation_md + "\n")
        plot_demo_confusions(results, figures / "demo_confusion.png")
        plot_demo_training([out / r["key"] for r in results], [r["label"] for r in results], figures / "demo_training.png")
    if readme is not None and Path(readme).is_file():
        update_readme(readme, table)
    log("")
    log(table)
    if ablation_md is not None:
        log("")
        log(ablation_md)
    return summary


def _fold_results(run_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((run_dir / "folds").glob("*/result.json"))]


def demo_checks(rows: Sequence[dict]) -> list[dict]:
    """The issue's two targets, measured: the main row beats STSTNet on TV-L1 by at least 0.05 UF1,
    and comes within 0.05 UF1 of HMRM on the true flow."""
    by = {r["role"]: r for r in rows if r["role"] != "diagnostic"}
    main, base, oracle = by["main"], by["baseline"], by["oracle"]
    gain, gap = main["uf1"] - base["uf1"], oracle["uf1"] - main["uf1"]
    return [{"what": f"{main['label']} - {base['label']} (target >= +0.05 UF1)", "value": round(gain, 4),
             "met": gain >= 0.05},
            {"what": f"{oracle['label']} - {main['label']} (target <= 0.05 UF1)",
             "value": round(gap, 4), "met": gap <= 0.05}]


def demo_markdown(summary: dict) -> str:
    rows = summary["rows"]
    lines = [f"SynthME, leave-one-subject-out over {summary['n_subjects']} subjects ({summary['n_samples']} clips), "
             f"{summary['epochs']} epochs (fixed), AdamW lr {summary['lr']:g} (the paper's), batch 32, "
             f"{summary['input_size']} px flow inputs (u, v, strain), seed {summary['seed']}; "
             f"HMRM quick size {summary['hmrm_options']}.",
             "",
             "| model and flow | role | UF1 | UAR | accuracy | best epoch on test UF1 (OPTIMISTIC) | CPU s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        best = "-" if r["best_uf1"] is None else f"{r['best_uf1']:.4f}"
        lines.append(f"| {r['label']} | {ROLE_NOTES[r['role']]} | {r['uf1']:.4f} | {r['uar']:.4f} | "
                     f"{r['accuracy']:.4f} | {best} | {r['seconds']:.0f} |")
    lines += ["",
              "UF1 / UAR / accuracy: honest (final epoch of every fold, predictions pooled over all held-out subjects). "
              "The best-epoch-on-test column selects on the test subject, is optimistic and is NOT a result; it is "
              "shown because other repositories report it. CPU s: training time summed over folds.",
              ""]
    for c in summary["checks"]:
        lines.append(f"- {c['what']}: {c['value']:+.4f} -> {'met' if c['met'] else 'NOT met'}")
    if summary["learned_flow"] != "gru_aofe":
        lines.append(f"- Learned flow: {summary['learned_flow_note']}.")
    return "\n".join(lines)


def plot_demo_confusions(rows: Sequence[dict], out: str | Path | None = None):
    """One confusion matrix per demo row, side by side (counts; colour = fraction of the true class)."""
    from matplotlib.figure import Figure

    from .viz.plots import _save, draw_confusion

    fig = Figure(figsize=(3.1 * len(rows), 3.4), layout="constrained")
    axes = fig.subplots(1, len(rows), squeeze=False)[0]
    for i, (ax, r) in enumerate(zip(axes, rows)):
        draw_confusion(ax, r["confusion"], r["classes"], f"{r['label']}\nUF1 {r['uf1']:.3f}  UAR {r['uar']:.3f}",
                       ylabels=i == 0, fontsize=8)
    fig.suptitle("SynthME LOSO, honest (final epoch, pooled over subjects)", fontsize=10)
    _save(fig, out)
    return fig


def plot_demo_training(run_dirs: Sequence[Path], labels: Sequence[str], out: str | Path | None = None):
    """Left: mean training loss over folds per row. Right: the pooled held-out UF1 at every epoch, a
    diagnostic only (the reported figure is the final epoch's, starred)."""
    import numpy as np
    from matplotlib.figure import Figure

    from .viz.plots import _save

    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    for i, (d, label) in enumerate(zip(run_dirs, labels)):
        colour = f"C{i}"
        folds = _fold_results(Path(d))
        losses = [[e["loss"] for e in f["history"]] for f in folds if f["history"]]
        if losses:
            n = min(map(len, losses))
            ax.plot(np.arange(1, n + 1), np.mean([v[:n] for v in losses], 0), color=colour, label=label)
        m = json.loads((Path(d) / "metrics.json").read_text())
        curve = (m.get("test_curve_diagnostic") or {}).get("uf1")
        if curve:
            ax2.plot(np.arange(1, len(curve) + 1), curve, color=colour, lw=1, alpha=0.8)
            ax2.plot([len(curve)], [m["honest"]["uf1"]], "*", color=colour, ms=11)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (mean over folds)")
    ax.legend(fontsize=8)
    ax.set_title("training loss, mean over folds (HMRM's sums its fused head and one head per grain,\n"
                 "so its scale is about three times STSTNet's single cross-entropy)", fontsize=9)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("pooled UF1 of the held-out subjects")
    ax2.set_ylim(0, 1)
    ax2.set_title("held-out UF1 per epoch: diagnostic only, never used to pick an epoch\n"
                  "(star: the reported final-epoch UF1)", fontsize=9)
    _save(fig, out)
    return fig


def update_readme(readme: str | Path, table: str) -> bool:
    """Put ``table`` between the demo markers of ``readme`` (atomically). Returns False, changing
    nothing, when the markers are missing."""
    path = Path(readme)
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        return False
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    atomic_write_text(path, head + README_BEGIN + "\n" + table + "\n" + README_END + tail)
    return True
