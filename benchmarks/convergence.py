"""Do the demo's recipes train to convergence? Longer runs of both networks on the development SynthME.

    .venv/bin/python benchmarks/convergence.py          # about 15 minutes on 2 cores; resumable

Each network keeps the recipe the demo uses (:data:`hmrm.demo.DEMO_RECIPES`) and trains longer:
HMRM 1x, 2x and 4x its epochs, STSTNet 1x and 2x (a cosine schedule is stretched over the longer
run, so each length is its own run, not a continuation). Everything runs on the development
SynthME (seed 1), where the recipes were chosen; the demo's SynthME is not touched. Writes
``benchmarks/results/convergence.md`` (honest UF1 with its 95 % interval over subjects for every
length) and ``benchmarks/results/convergence.png`` (mean training loss per epoch, and the pooled
held-out UF1 per epoch, a diagnostic that never chooses anything, for the longest run of each
network, with the honest final-epoch UF1 of every length marked).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hmrm.markdown import markdown_table
from hmrm.resultfiles import write_results

#: network -> flows it is run on (those of its demo comparisons) and the epoch multiples
PLAN = {"hmrm": (("gru_aofe",), (1, 2, 4)), "ststnet": (("tvl1", "gru_aofe"), (1, 2))}
FLOW_NAMES = {"gru_aofe": "GRU-AOFE", "tvl1": "TV-L1"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=Path("data/synthme_dev"), help="the development SynthME (seed 1)")
    p.add_argument("--out", type=Path, default=Path("runs/convergence"), help="parent of the run folders")
    p.add_argument("--results", type=Path, default=Path("benchmarks/results"), help="where the table and figure go")
    p.add_argument("--workers", type=int, default=None, help="processes training folds (default: one per core)")
    args = p.parse_args()

    from matplotlib.figure import Figure

    from hmrm.data.synthme import load_synthme
    from hmrm.demo import DEMO_INPUT_SIZE, describe_recipe, recipe
    from hmrm.train.loso import LOSOData, RunOptions, run_loso
    from hmrm.train.loso import recipe_config
    from hmrm.markdown import format_interval

    manifest = json.loads((args.root / "manifest.json").read_text())
    if manifest["config"]["seed"] != 1:
        raise SystemExit(f"{args.root} is not the development SynthME (seed 1)")
    samples = load_synthme(args.root)
    inputs, rows = {}, []
    for model, (flows, multiples) in PLAN.items():
        base = recipe(model)["epochs"]
        for flow in flows:
            if flow not in inputs:
                inputs[flow] = LOSOData.from_samples(samples, flow, DEMO_INPUT_SIZE, workers=2, progress=False)
            for k in multiples:
                epochs = base * k
                run_dir = args.out / f"{model}_{flow}_e{epochs}"
                res = run_loso(inputs[flow], recipe_config(model, recipe(model, epochs), flow, DEMO_INPUT_SIZE), run_dir,
                               RunOptions(progress=False, figures=False, workers=args.workers))
                h = res.metrics["honest"]
                rows.append({"model": model, "flow": flow, "epochs": epochs, "uf1": h["uf1"], "uar": h["uar"],
                             "interval": h["interval"], "run_dir": run_dir, "metrics": res.metrics})
                print(f"{model} {flow} {epochs} epochs: UF1 {h['uf1']:.4f}", flush=True)
    lines = ["Longer training of the demo's recipes on the development SynthME (seed 1, 10-subject LOSO, "
             f"{DEMO_INPUT_SIZE} px): honest UF1 / UAR with their 95% intervals over subjects. "
             "`.venv/bin/python benchmarks/convergence.py` reruns it.", "",
             f"- HMRM: {describe_recipe(recipe('hmrm'))} (epochs as below)",
             f"- STSTNet: {describe_recipe(recipe('ststnet'))} (epochs as below)", "",
             markdown_table(["network", "flow", "epochs", "UF1 [95% interval]", "UAR [95% interval]"],
                            [["HMRM" if r["model"] == "hmrm" else "STSTNet", FLOW_NAMES[r["flow"]], r["epochs"],
                              format_interval(r["uf1"], r["interval"]["uf1"]),
                              format_interval(r["uar"], r["interval"]["uar"])] for r in rows], "llr")]
    args.results.mkdir(parents=True, exist_ok=True)
    write_results(args.results / "convergence.md", "\n".join(lines) + "\n")

    fig = Figure(figsize=(11, 4), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    for i, (model, (flows, _)) in enumerate(PLAN.items()):
        for j, flow in enumerate(flows):
            colour = f"C{2 * i + j}"
            mine = [r for r in rows if r["model"] == model and r["flow"] == flow]
            longest = max(mine, key=lambda r: r["epochs"])
            folds = [json.loads(p.read_text()) for p in sorted((longest["run_dir"] / "folds").glob("*/result.json"))]
            loss = np.mean([[e["loss"] for e in f["history"]] for f in folds], 0)
            label = f"{'HMRM' if model == 'hmrm' else 'STSTNet'} on {FLOW_NAMES[flow]}"
            ax.plot(np.arange(1, len(loss) + 1), loss, color=colour, label=f"{label}, {longest['epochs']} epochs")
            curve = longest["metrics"]["test_curve_diagnostic"]["uf1"]
            ax2.plot(np.arange(1, len(curve) + 1), curve, color=colour, lw=1, alpha=0.7)
            for n, r in enumerate(mine):
                ax2.errorbar([r["epochs"]], [r["uf1"]], yerr=[[r["uf1"] - r["interval"]["uf1"][0]],
                                                             [r["interval"]["uf1"][1] - r["uf1"]]],
                             fmt="*", ms=11, color=colour, capsize=3,
                             label=f"{label}: runs of {', '.join(str(m['epochs']) for m in mine)} epochs" if n == 0 else None)
    ax.set_xscale("log")
    ax.set_xlabel("epoch (log scale)")
    ax.set_ylabel("training loss, mean over folds")
    ax.set_title("training loss of the longest run of each network and flow\n(HMRM's loss sums three heads)",
                 fontsize=9)
    ax.legend(fontsize=7)
    ax2.set_xscale("log")
    ax2.set_xlabel("epoch (log scale)")
    ax2.set_ylabel("pooled UF1 of the held-out subjects")
    ax2.set_ylim(0.3, 1.0)
    ax2.set_title("lines: held-out UF1 per epoch of the longest run (diagnostic only)\n"
                  "stars: honest final-epoch UF1 of each run length, with its 95% interval", fontsize=9)
    ax2.legend(fontsize=7, loc="lower right")
    fig.suptitle("Development SynthME (seed 1): do longer runs of the demo's recipes help?", fontsize=10)
    from hmrm.utils import atomic_path

    with atomic_path(args.results / "convergence.png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
