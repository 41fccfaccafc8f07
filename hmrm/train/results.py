"""Results tables: gather LOSO run folders into a paper-style table, an ablation table, and read the efficiency table.

::

    run folders  <- every folder under the roots holding config.json + metrics.json (run_loso's files):
                    runs/reproduce/<config>/ (hmrm reproduce) and runs/loso/<name>/ (hmrm loso)
    one row each <- data set, class scheme, model, flow, ablation, epochs, folds done / total,
                    honest UF1 / UAR (final epoch, pooled over folds),
                    best-epoch-on-test UF1 / UAR (OPTIMISTIC, in their own labelled columns),
                    the paper's UF1 / UAR where it reports them (HMRM, full network; docs/paper.md)
    PARTIAL      <- a run whose metrics.json does not cover every subject (an interrupted run, or FOLDS=N)

The paper's figures (:data:`PAPER_RESULTS`) are those of ``docs/paper.md`` ("Results reported (UF1 /
UAR)"): one pair per data set for the full HMRM. The paper reports no ablation or baseline figures,
so those cells stay blank. The paper figure is put beside a run only when the run is HMRM, full
network, on that data set with the class scheme of our paper config (``configs/loso_*.yaml``);
The paper names no class scheme, no input size and no batch size, and the paper used GRU-AOFE flow,
so even then the two numbers come from set-ups that may differ (the table says which flow we used).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from ..data.datasets import DEFAULT_SCHEME, DISPLAY_NAMES, LICENSED
from ..data.records import DataError
from ..markdown import markdown_table
from ..model import ABLATIONS
from ..resultfiles import REPO, ResultsTable, parse_results_markdown
from .stats import paired_difference, run_predictions

DEFAULT_ROOTS = ("runs/reproduce", "runs/loso")
EFFICIENCY_MD = REPO / "figures" / "efficiency.md"

#: UF1 / UAR of the full HMRM as reported by the paper (docs/paper.md, "Results reported"),
#: section "Results reported (UF1 / UAR)". Nothing else is reported there.
PAPER_RESULTS: dict[str, tuple[float, float]] = {
    "casme2": (0.9561, 0.9588),
    "samm": (0.8909, 0.9017),
    "composite": (0.8788, 0.8906),
    "smic": (0.7491, 0.7759),
}
PAPER_SOURCE = "the HMRM paper (Guo et al., 2025) as recorded in docs/paper.md, 'Results reported (UF1 / UAR)'"
#: The class scheme of our paper config per data set (configs/loso_*.yaml, each set's own scheme): the paper
#: figure is shown only for it.
PAPER_SCHEMES = {name: DEFAULT_SCHEME[name] for name in LICENSED}
PAPER_EPOCHS = 1000
DATASET_ORDER = (*LICENSED, "synthme")
ABLATION_ORDER = tuple(ABLATIONS)

HONEST_UF1, HONEST_UAR = "UF1 (honest)", "UAR (honest)"
UF1_CI, UAR_CI = "UF1 95% interval", "UAR 95% interval"
DELTA_UF1_CI = "ΔUF1 95% interval (paired)"
BEST_UF1, BEST_UAR = "UF1 best epoch on test (OPTIMISTIC)", "UAR best epoch on test (OPTIMISTIC)"
PAPER_UF1, PAPER_UAR = "paper UF1", "paper UAR"

RESULTS_CAPTION = (
    "LOSO results. UF1 / UAR (honest): the final epoch of every fold, predictions pooled over all held-out "
    "subjects (MEGC); their 95% intervals come from a bootstrap over the held-out subjects (hmrm.train.stats). "
    "The 'best epoch on test' columns pick, per held-out subject, the epoch that scored best on "
    "that same subject: they select on the test data, are OPTIMISTIC and are NOT results; they are shown only "
    "because some repositories report them. PARTIAL: not every subject was held out (an interrupted run or a "
    f"FOLDS=N quick look); its scores pool only the folds done. Paper UF1 / UAR: source {PAPER_SOURCE}, the full "
    "HMRM only, shown beside runs of the full HMRM on the same data set with our paper config's class scheme; "
    "blank where the paper gives no figure. The paper used GRU-AOFE flow and "
    f"{PAPER_EPOCHS} epochs and names no class scheme, input size or batch size: compare with care. SynthME is "
    "our synthetic set; the paper never used it.")
ABLATION_CAPTION = (
    "Ablations of HMRM, per data set: honest pooled UF1 / UAR (final epoch) and the change against the full "
    "network of the same data set, class scheme, flow and epochs (blank when no such full run exists), with the "
    "paired 95% interval of the UF1 change (the same held-out subjects resampled for both runs); a change whose "
    "interval contains 0 is not shown to be real. "
    f"Source of the paper column: {PAPER_SOURCE}; it reports the full network only, so every ablation's paper "
    "cell is blank. PARTIAL rows pool only the folds done.")


# ----------------------------------------------------------------------------- gathering
def find_run_dirs(roots: Iterable[str | Path] | None = None) -> list[Path]:
    """Every LOSO run folder under ``roots`` (default :data:`DEFAULT_ROOTS`, relative to the working
    directory): a folder with a ``config.json`` written by :func:`hmrm.train.loso.run_loso` (its
    ``config`` names a model and its ``data`` a fingerprint). Missing roots are skipped."""
    roots = DEFAULT_ROOTS if roots is None else roots
    found = set()
    for root in map(Path, roots):
        if not root.is_dir():
            continue
        for cfg in [root / "config.json", *root.rglob("config.json")]:
            if cfg.is_file() and _is_loso_config(cfg):
                found.add(cfg.parent.resolve())
    return sorted(found)


def _is_loso_config(path: Path) -> bool:
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(rec, dict) and "model" in rec.get("config", {}) and "fingerprint" in rec.get("data", {})


def dataset_key(data: dict) -> str:
    """``composite`` when the inputs pool several data sets, else the one data set's name."""
    datasets = list(data.get("datasets") or [])
    if len(datasets) > 1:
        return "composite"
    return datasets[0] if datasets else "?"


def run_record(run_dir: str | Path, relative_to: str | Path | None = None) -> dict:
    """One row of the results table for a run folder (see the module docstring)."""
    run_dir = Path(run_dir)
    rec = json.loads((run_dir / "config.json").read_text())
    cfg, data = rec["config"], rec.get("data", {})
    mpath = run_dir / "metrics.json"
    metrics = json.loads(mpath.read_text()) if mpath.is_file() else {}
    key = dataset_key(data)
    ablation = cfg.get("ablation") or "full"
    if cfg.get("model") != "hmrm":
        ablation = ""
    done = int(metrics.get("folds_done", 0))
    total = int(metrics.get("folds_total", data.get("n_subjects", 0)))
    complete = bool(metrics.get("complete")) and done == total
    honest = metrics.get("honest") or {}
    best = metrics.get("best_epoch_on_test") or {}
    ci = honest.get("interval") or {}
    paper = (PAPER_RESULTS.get(key) if cfg.get("model") == "hmrm" and ablation == "full"
             and data.get("scheme") == PAPER_SCHEMES.get(key) else None)
    try:
        name = str(run_dir.resolve().relative_to(Path(relative_to).resolve())) if relative_to else str(run_dir)
    except ValueError:
        name = str(run_dir)
    return {
        "data set": DISPLAY_NAMES.get(key, key), "scheme": data.get("scheme") or "", "model": cfg.get("model"),
        "flow": cfg.get("flow"), "ablation": ablation, "epochs": int(metrics.get("epochs", cfg.get("epochs", 0))),
        "folds": f"{done}/{total}", "status": "complete" if complete else "PARTIAL",
        HONEST_UF1: honest.get("uf1"), HONEST_UAR: honest.get("uar"),
        UF1_CI: _interval_text(ci.get("uf1")), UAR_CI: _interval_text(ci.get("uar")),
        BEST_UF1: best.get("uf1"), BEST_UAR: best.get("uar"),
        PAPER_UF1: paper[0] if paper else None, PAPER_UAR: paper[1] if paper else None,
        "device": rec.get("environment", {}).get("device", ""), "seed": cfg.get("seed"), "run": name,
        "_key": key, "_dir": str(run_dir.resolve()),
    }


def _interval_text(interval) -> str:
    return "" if not interval else f"[{interval[0]:.2f}, {interval[1]:.2f}]"


def _sort_key(row: dict) -> tuple:
    key = row["_key"]
    d = DATASET_ORDER.index(key) if key in DATASET_ORDER else len(DATASET_ORDER)
    a = ABLATION_ORDER.index(row["ablation"]) if row["ablation"] in ABLATION_ORDER else len(ABLATION_ORDER)
    return d, key, row["model"] != "hmrm", row["model"], a, row["flow"] or "", -row["epochs"], row["run"]


def results_table(run_dirs: Sequence[str | Path] | None = None, roots: Iterable[str | Path] | None = None,
                  relative_to: str | Path | None = None) -> pd.DataFrame:
    """The paper-style results table, one row per run folder (``run_dirs``, or every run under
    ``roots``): see the module docstring and :data:`RESULTS_CAPTION`. Missing scores are NaN."""
    dirs = find_run_dirs(roots) if run_dirs is None else [Path(d) for d in run_dirs]
    rows = sorted((run_record(d, relative_to) for d in dirs), key=_sort_key)
    columns = ["data set", "scheme", "model", "flow", "ablation", "epochs", "folds", "status", HONEST_UF1,
               UF1_CI, HONEST_UAR, UAR_CI, BEST_UF1, BEST_UAR, PAPER_UF1, PAPER_UAR, "device", "seed", "run"]
    df = pd.DataFrame(rows, columns=columns + ["_key", "_dir"])
    for c in (HONEST_UF1, HONEST_UAR, BEST_UF1, BEST_UAR, PAPER_UF1, PAPER_UAR):
        df[c] = pd.to_numeric(df[c])
    out = df[columns]
    out.attrs["run_dirs"] = dict(zip(df["run"], df["_dir"]))  # where each row's folder is, for paired statistics
    return out


def ablation_table(results: pd.DataFrame) -> pd.DataFrame:
    """The HMRM rows of ``results`` by ablation, per data set, with the change against the full
    network of the same data set, scheme, flow and epochs (see :data:`ABLATION_CAPTION`)."""
    columns = ["data set", "scheme", "ablation", "flow", "epochs", "folds", "status", HONEST_UF1, HONEST_UAR,
               "ΔUF1 vs full", DELTA_UF1_CI, "ΔUAR vs full", PAPER_UF1, PAPER_UAR, "run"]
    df = results[results["model"] == "hmrm"].copy()
    if df.empty:
        return pd.DataFrame(columns=columns)
    group = ["data set", "scheme", "flow", "epochs"]
    full = (df[df["ablation"] == "full"].drop_duplicates(group).set_index(group)[[HONEST_UF1, HONEST_UAR, "run"]])
    idx = pd.MultiIndex.from_frame(df[group])
    ref = full.reindex(idx)
    df["ΔUF1 vs full"] = df[HONEST_UF1].to_numpy() - ref[HONEST_UF1].to_numpy()
    df["ΔUAR vs full"] = df[HONEST_UAR].to_numpy() - ref[HONEST_UAR].to_numpy()
    where = results.attrs.get("run_dirs", {})
    df[DELTA_UF1_CI] = [_paired_text(where.get(run, run), where.get(full_run, full_run))
                        for run, full_run in zip(df["run"], ref["run"])]
    order = {a: i for i, a in enumerate(ABLATION_ORDER)}
    df["_d"] = df["data set"].map({DISPLAY_NAMES.get(k, k): i for i, k in enumerate(DATASET_ORDER)}).fillna(99)
    df["_a"] = df["ablation"].map(order).fillna(99)
    df = df.sort_values(["_d", "data set", "scheme", "flow", "epochs", "_a", "run"],
                        ascending=[True, True, True, True, False, True, True])
    return df[columns].reset_index(drop=True)


def _paired_text(run, full_run) -> str:
    """The paired interval of UF1(run) - UF1(full run), or "" when it cannot be computed (no full
    run, the full run itself, or runs that did not predict the same samples)."""
    if not isinstance(full_run, str) or not isinstance(run, str) or run == full_run:
        return ""

    try:
        a, b = run_predictions(run), run_predictions(full_run)
        n_classes = 1 + max(max(a[1]), max(a[2]), max(b[1]), max(b[2]))
        return _interval_text(paired_difference(a, b, n_classes)["uf1"]["interval"])
    except (ValueError, OSError, DataError):   # e.g. a run with no finished fold yet
        return ""


# ----------------------------------------------------------------------------- efficiency
def read_efficiency(path: str | Path = EFFICIENCY_MD) -> tuple[pd.DataFrame, str]:
    """The efficiency table ``hmrm efficiency`` wrote (``figures/efficiency.md``): its first
    markdown table as a DataFrame (cells parsed by :func:`hmrm.resultfiles.parse_cell`: numbers
    without thousands separators; ``model`` without back-quotes) and the file's full text
    (conventions and notes included)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing; write it with `hmrm efficiency --out {path}`.")
    text = path.read_text()
    tables = parse_results_markdown(text)["tables"]
    if not tables:
        raise DataError(f"{path} holds no markdown table")
    df = ResultsTable(tables[0]).frame()
    first = df.columns[0]
    df[first] = df[first].astype(str).str.replace("`", "", regex=False)
    return df, text


# ----------------------------------------------------------------------------- markdown
def _cell(v, digits: int) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v).replace("|", "\\|")


def to_markdown(df: pd.DataFrame, caption: str | None = None, digits: int = 4) -> str:
    """``df`` as a markdown table (blank cells for missing values), the caption above it."""
    cols = list(df.columns)
    align = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in cols)
    rows = [[_cell(v, digits) for v in row] for row in df.itertuples(index=False)] or [[""] * len(cols)]
    return "\n".join(([caption, ""] if caption else []) + [markdown_table(cols, rows, align)]) + "\n"


def results_markdown(results: pd.DataFrame) -> str:
    """The results table in markdown, with :data:`RESULTS_CAPTION`."""
    return to_markdown(results, RESULTS_CAPTION)


def ablation_markdown(ablations: pd.DataFrame) -> str:
    """The ablation table in markdown, with :data:`ABLATION_CAPTION`."""
    return to_markdown(ablations, ABLATION_CAPTION)


def paper_results_from_markdown(text: str) -> dict[str, tuple[float, float]]:
    """The UF1 / UAR rows of docs/paper.md's "Results reported" table, keyed like :data:`PAPER_RESULTS`
    (to check that the copied figures still match their source)."""
    names = {v: k for k, v in DISPLAY_NAMES.items()}
    out = {}
    for m in re.finditer(r"^\|\s*([^|]+?)\s*\|\s*([0-9.]+)\s*\|\s*([0-9.]+)\s*\|\s*$", text, re.M):
        if m.group(1) in names:
            out[names[m.group(1)]] = (float(m.group(2)), float(m.group(3)))
    return out
