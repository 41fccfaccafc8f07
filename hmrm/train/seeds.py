"""One LOSO configuration, several training seeds: how much of a score is the luck of training.

The interval of :mod:`hmrm.train.stats` answers "how would the score move with other subjects?".
Training adds its own randomness: initial weights, the order of the batches, MotionMix's draws,
dropout. Running the same configuration with N seeds (``hmrm loso --seeds N``) measures it: each
seed is an ordinary run folder (``RUN_DIR/seed<S>/``), and ``RUN_DIR/seeds.json`` lists every seed's
pooled UF1 / UAR (with its interval over subjects) and their mean and standard deviation.

A difference between two configurations smaller than the seeds' standard deviation is not a
difference one seed can show.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..utils import atomic_write_text
from .loso import LOSOData, RunOptions, run_loso


def run_loso_seeds(samples_or_inputs, config, run_dir: str | Path, seeds: Sequence[int],
                   options: RunOptions | None = None) -> dict:
    """Run ``config`` once per seed into ``run_dir/seed<S>/`` (each resumable, with ``options``; see
    :func:`hmrm.train.loso.run_loso`) and write ``run_dir/seeds.json``.
    Returns its content: ``{"seeds": [{seed, uf1, uar, interval, complete, run_dir}], "mean": {uf1,
    uar}, "sd": {uf1, uar}}`` (sample standard deviation; None for one seed)."""
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
    run_dir, options = Path(run_dir), options or RunOptions()
    data = samples_or_inputs
    if not isinstance(data, LOSOData):  # build the inputs once for every seed
        data = LOSOData.from_samples(data, config.flow, config.input_size, config.channels,
                                     cache_dir=options.cache_dir, prepared=options.prepared, progress=options.progress)
    rows = []
    for seed in seeds:
        res = run_loso(data, replace(config, seed=seed), run_dir / f"seed{seed}", options)
        h = res.metrics.get("honest") or {}
        rows.append({"seed": seed, "uf1": h.get("uf1"), "uar": h.get("uar"), "interval": h.get("interval"),
                     "complete": res.complete, "run_dir": str(run_dir / f"seed{seed}")})
    done = [r for r in rows if r["uf1"] is not None]
    summary = {"what": "one LOSO configuration trained with several seeds; each score pooled over the folds of its seed",
               "seeds": rows, "mean": None, "sd": None}
    if done:
        summary["mean"] = {k: float(np.mean([r[k] for r in done])) for k in ("uf1", "uar")}
        summary["sd"] = ({k: float(np.std([r[k] for r in done], ddof=1)) for k in ("uf1", "uar")}
                         if len(done) > 1 else None)
    atomic_write_text(run_dir / "seeds.json", json.dumps(summary, indent=1) + "\n")
    return summary


def format_seeds(summary: dict) -> str:
    """The table ``hmrm loso --seeds`` prints."""
    lines = [f"{'seed':>6s} {'UF1':>7s} {'95% interval':>15s} {'UAR':>7s} {'95% interval':>15s}"]
    for r in summary["seeds"]:
        if r["uf1"] is None:
            lines.append(f"{r['seed']:6d}  not finished")
            continue
        ci = r.get("interval") or {"uf1": [np.nan, np.nan], "uar": [np.nan, np.nan]}
        lines.append(f"{r['seed']:6d} {r['uf1']:7.4f} [{ci['uf1'][0]:5.2f}, {ci['uf1'][1]:5.2f}] "
                     f"{r['uar']:7.4f} [{ci['uar'][0]:5.2f}, {ci['uar'][1]:5.2f}]"
                     + ("" if r["complete"] else "  PARTIAL"))
    if summary["mean"]:
        sd = summary["sd"]
        lines.append(f"{'mean':>6s} {summary['mean']['uf1']:7.4f}" + (f" +- {sd['uf1']:.4f} (sd)" if sd else "")
                     + f"   UAR {summary['mean']['uar']:.4f}" + (f" +- {sd['uar']:.4f} (sd)" if sd else ""))
    return "\n".join(lines)
