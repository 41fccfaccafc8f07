"""What do this project's own choices for HMRM buy? Each one undone on the demo's HMRM, with paired intervals.

    .venv/bin/python benchmarks/choice_effects.py        # about 10 minutes on 2 cores per SynthME; resumable

The demo's HMRM (:data:`hmrm.demo.DEMO_RECIPES`, GRU-AOFE flow, 64 px) carries choices the paper
does not make or leaves open. Two of them are undone here, one at a time, everything else kept:

* ``linear patches``: the one-step linear patch embedding (``stem="patch"``, the paper-size
  network's default) instead of the demo's convolutional stem;
* ``MotionMix p 0.5``: MotionMix on half of the training clips (the library's default
  probability) instead of none, which is what the demo's recipe mixes.

Each variant is a full 10-subject LOSO run, scored like every row of the demo (final epoch, pooled),
and compared with the demo's HMRM on the *same* subjects: the paired 95 % interval of the difference
(:func:`hmrm.train.stats.paired_difference`). It runs on the demo's SynthME (seed 0) and on the
hold-out SynthME (seed 2), the two sets the demo reports; nothing is chosen from these numbers (the
recipe was chosen on seed 1 before). Writes ``benchmarks/results/choice_effects.md`` and its JSON
twin. The reference row on seed 0 is the demo's main row retrained: it must give the demo's figure.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hmrm.markdown import markdown_table
from hmrm.resultfiles import write_results

#: variant -> changes to the demo's HMRM recipe
VARIANTS = {"demo HMRM (reference)": {}, "linear patches": {"stem": "patch"}, "MotionMix p 0.5": {"motionmix_p": 0.5}}
FLOW = "gru_aofe"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--roots", type=Path, nargs="+", default=[Path("data/synthme"), Path("data/synthme_holdout")],
                   help="SynthME builds (default: the demo's, seed 0, and the hold-out one, seed 2; "
                        "`hmrm synthme --out data/synthme_holdout --seed 2` builds it)")
    p.add_argument("--out", type=Path, default=Path("runs/choice_effects"), help="parent of the run folders")
    p.add_argument("--table", type=Path, default=Path("benchmarks/results/choice_effects.md"), help="markdown table to write")
    p.add_argument("--workers", type=int, default=None, help="processes training folds (default: one per core)")
    args = p.parse_args()

    from hmrm.data.synthme import load_synthme
    from hmrm.demo import DEMO_INPUT_SIZE, describe_recipe, recipe
    from hmrm.train.loso import LOSOData, RunOptions, run_loso
    from hmrm.train.loso import recipe_config
    from hmrm.markdown import format_interval
    from hmrm.train.stats import paired_difference, run_predictions

    rows = []
    for root in args.roots:
        seed = json.loads((root / "manifest.json").read_text())["config"]["seed"]
        if seed == 1:
            raise SystemExit(f"{root} is the development SynthME (seed 1), where the recipes were chosen: "
                             "measure on the sets the demo reports")
        samples = load_synthme(root)
        data = LOSOData.from_samples(samples, FLOW, DEMO_INPUT_SIZE, workers=2, progress=False)
        dirs = {}
        for name, change in VARIANTS.items():
            run_dir = args.out / f"seed{seed}" / name.split(" (")[0].replace(" ", "_").replace(".", "")
            res = run_loso(data, recipe_config("hmrm", {**recipe("hmrm"), **change}, FLOW, DEMO_INPUT_SIZE), run_dir,
                           RunOptions(progress=False, figures=False, workers=args.workers))
            dirs[name] = run_dir
            h = res.metrics["honest"]
            print(f"seed {seed} {name}: UF1 {h['uf1']:.4f} UAR {h['uar']:.4f}", flush=True)
            row = [f"SynthME seed {seed}", name, format_interval(h["uf1"], h["interval"]["uf1"]),
                   format_interval(h["uar"], h["interval"]["uar"])]
            if change:
                d = paired_difference(run_predictions(run_dir), run_predictions(dirs["demo HMRM (reference)"]),
                                      len(data.classes))
                row += [format_interval(d["uf1"]["difference"], d["uf1"]["interval"], True),
                        format_interval(d["uar"]["difference"], d["uar"]["interval"], True)]
            else:
                row += ["reference", ""]
            rows.append(row)
    lines = [f"Our own choices for HMRM, undone one at a time on the demo's HMRM ({describe_recipe(recipe('hmrm'))}; "
             f"GRU-AOFE flow, {DEMO_INPUT_SIZE} px, 10-subject LOSO, training seed 0). Paired differences: the same "
             "held-out subjects resampled for the variant and the reference; a difference whose interval contains 0 "
             "is not shown to be real. `.venv/bin/python benchmarks/choice_effects.py` reruns it.", "",
             markdown_table(["data", "variant", "UF1 [95%]", "UAR [95%]", "ΔUF1 vs reference [95%, paired]",
                             "ΔUAR [95%, paired]"], rows)]
    twin = write_results(args.table, "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {args.table} and {twin}")


if __name__ == "__main__":
    main()
