"""Results tables from run folders (hmrm.train.results) and the CPU path of benchmarks/gpu_fold_timing.py."""
import importlib.util
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hmrm.train.loso import LOSOConfig, LOSOData, RunOptions, run_loso
from hmrm.train import results as R

REPO = Path(__file__).resolve().parents[1]
PAPER_MD = REPO / "docs" / "paper.md"


def _tiny_data(n=8, subjects=2, size=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3, size, size)).astype(np.float32)
    boxes = np.tile(np.array([[2, 2, 10, 10], [12, 2, 20, 10], [8, 8, 16, 16], [6, 14, 18, 22]]), (n, 1, 1))
    return LOSOData(x, boxes, np.arange(n) % 3, [f"synthme/sub{i % subjects:02d}" for i in range(n)],
                    [f"k{i}" for i in range(n)], ("negative", "positive", "surprise"),
                    {"datasets": ["synthme"], "scheme": "composite3", "flow": "gt"})


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """One real run_loso folder (STSTNet, 2 subjects, 2 epochs): the files the tables read."""
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("real") / "run"
    cfg = LOSOConfig(model="ststnet", epochs=2, batch_size=4, flow="gt", input_size=24, device="cpu")
    res = run_loso(_tiny_data(), cfg, run, RunOptions(progress=False, figures=False))
    assert res.complete
    return run


def _variant(src: Path, dst: Path, dataset, scheme, model="hmrm", ablation=None, partial=False, uf1=None):
    """A copy of a real run folder with its data set / model / ablation relabelled (run_loso's format)."""
    shutil.copytree(src, dst)
    rec = json.loads((dst / "config.json").read_text())
    rec["config"].update(model=model, ablation=ablation)
    rec["data"].update(datasets=dataset if isinstance(dataset, list) else [dataset], scheme=scheme)
    (dst / "config.json").write_text(json.dumps(rec))
    m = json.loads((dst / "metrics.json").read_text())
    if partial:
        m.update(complete=False, folds_done=1, partial_note="PARTIAL: 1 of 2 subjects held out")
    if uf1 is not None:
        m["honest"]["uf1"] = uf1
    (dst / "metrics.json").write_text(json.dumps(m))
    return dst


@pytest.fixture()
def runs(real_run, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(real_run, root / "loso" / "synthme-ststnet-gt-e2-seed0")
    rep = root / "reproduce"
    _variant(real_run, rep / "loso_casme2_5", "casme2", "casme2_5", uf1=0.5)
    _variant(real_run, rep / "casme2_no_rffs", "casme2", "casme2_5", ablation="no_rffs", uf1=0.4)
    _variant(real_run, rep / "casme2_ststnet", "casme2", "casme2_5", model="ststnet")
    _variant(real_run, rep / "casme2_as_composite3", "casme2", "composite3")
    _variant(real_run, rep / "loso_composite3", ["casme2", "samm", "smic"], "composite3", partial=True)
    (root / "flow_pretrain").mkdir()
    (root / "flow_pretrain" / "config.json").write_text(json.dumps({"epochs": 3}))  # not a LOSO run: ignored
    return root


def test_gathers_every_run_folder_into_the_results_table(runs, real_run):
    dirs = R.find_run_dirs([runs / "reproduce", runs / "loso", runs / "missing"])
    assert len(dirs) == 6 and not any("folds" in d.parts for d in dirs)
    df = R.results_table(roots=[runs], relative_to=runs)
    assert len(df) == 6
    assert list(df["data set"]) == ["CASME II"] * 4 + ["Composite", "SynthME"]
    real = json.loads((real_run / "metrics.json").read_text())
    syn = df[df["data set"] == "SynthME"].iloc[0]
    assert (syn["model"], syn["flow"], syn["ablation"], syn["epochs"], syn["folds"], syn["status"]) == (
        "ststnet", "gt", "", 2, "2/2", "complete")
    assert syn[R.HONEST_UF1] == pytest.approx(real["honest"]["uf1"])
    assert syn[R.HONEST_UAR] == pytest.approx(real["honest"]["uar"])
    assert syn[R.BEST_UF1] == pytest.approx(real["best_epoch_on_test"]["uf1"])  # its own labelled column
    assert syn["run"] == "loso/synthme-ststnet-gt-e2-seed0"


def test_every_row_carries_its_interval_over_subjects(runs, real_run):
    table = R.results_table(roots=[runs], relative_to=runs)
    ci = json.loads((real_run / "metrics.json").read_text())["honest"]["interval"]
    assert set(table[R.UF1_CI]) == {f"[{ci['uf1'][0]:.2f}, {ci['uf1'][1]:.2f}]"}
    assert "95% interval" in R.results_markdown(table)


def test_paper_column_only_where_paper_md_has_a_figure(runs):
    df = R.results_table(roots=[runs], relative_to=runs).set_index("run")
    full = df.loc["reproduce/loso_casme2_5"]
    assert (full[R.PAPER_UF1], full[R.PAPER_UAR]) == (0.9561, 0.9588)
    comp = df.loc["reproduce/loso_composite3"]
    assert (comp[R.PAPER_UF1], comp[R.PAPER_UAR]) == (0.8788, 0.8906)
    for run in ("reproduce/casme2_no_rffs", "reproduce/casme2_ststnet", "reproduce/casme2_as_composite3",
                "loso/synthme-ststnet-gt-e2-seed0"):  # no ablation, baseline, other-scheme or SynthME figure
        assert math.isnan(df.loc[run, R.PAPER_UF1]) and math.isnan(df.loc[run, R.PAPER_UAR]), run
    md = R.results_markdown(df.reset_index())
    assert "docs/paper.md" in md.splitlines()[0] and "OPTIMISTIC" in md
    lines = md.splitlines()
    head = [c.strip() for c in next(ln for ln in lines if ln.startswith("| run")).strip("|").split("|")]
    row = [c.strip() for c in next(ln for ln in lines if "casme2_ststnet" in ln).strip("|").split("|")]
    assert row[head.index(R.PAPER_UF1)] == row[head.index(R.PAPER_UAR)] == ""  # blank, not invented


def test_paper_figures_are_those_of_the_projects_paper_notes():
    assert R.paper_results_from_markdown(PAPER_MD.read_text()) == R.PAPER_RESULTS


def test_partial_runs_are_marked(runs):
    df = R.results_table(roots=[runs], relative_to=runs).set_index("run")
    comp = df.loc["reproduce/loso_composite3"]
    assert (comp["status"], comp["folds"]) == ("PARTIAL", "1/2")
    assert (df.drop(index="reproduce/loso_composite3")["status"] == "complete").all()
    assert "| PARTIAL |" in R.results_markdown(df.reset_index())
    # a run with no finished fold yet: config.json only
    started = runs / "loso" / "started"
    started.mkdir()
    shutil.copy(runs / "reproduce" / "loso_casme2_5" / "config.json", started / "config.json")
    row = R.results_table(roots=[runs], relative_to=runs).set_index("run").loc["loso/started"]
    assert row["status"] == "PARTIAL" and row["folds"] == "0/2" and math.isnan(row[R.HONEST_UF1])


def test_ablation_table(runs):
    ab = R.ablation_table(R.results_table(roots=[runs], relative_to=runs))
    assert list(zip(ab["data set"], ab["ablation"])) == [("CASME II", "full"), ("CASME II", "no_rffs"),
                                                         ("CASME II", "full"), ("Composite", "full")]
    no_rffs = ab[ab["ablation"] == "no_rffs"].iloc[0]
    assert no_rffs["ΔUF1 vs full"] == pytest.approx(-0.1) and math.isnan(no_rffs[R.PAPER_UF1])
    assert ab.iloc[0][R.PAPER_UF1] == 0.9561 and ab.iloc[0]["ΔUF1 vs full"] == 0
    # the copies predict the same samples as the full run: a paired interval (of 0, being copies), none for the full row
    assert no_rffs[R.DELTA_UF1_CI] == "[0.00, 0.00]" and ab.iloc[0][R.DELTA_UF1_CI] == ""
    assert "ablation" in R.ablation_markdown(ab) and "paper" in R.ABLATION_CAPTION
    empty = R.ablation_table(R.results_table(roots=[runs / "loso"]))
    assert empty.empty and "ΔUF1 vs full" in empty.columns


def test_a_run_that_has_not_finished_a_fold_is_a_partial_row_and_breaks_no_table(runs, real_run):
    """A run folder that is still training its first folds (config.json, no result.json yet) is a PARTIAL
    row with no scores; the ablation table beside it still builds (it has no paired interval)."""
    fresh = _variant(real_run, runs / "reproduce" / "casme2_single_grain", "casme2", "casme2_5", ablation="single_grain")
    (fresh / "metrics.json").unlink()
    shutil.rmtree(fresh / "folds")
    df = R.results_table(roots=[runs], relative_to=runs)
    row = df[df["run"] == "reproduce/casme2_single_grain"].iloc[0]
    assert row["status"] == "PARTIAL" and math.isnan(row[R.HONEST_UF1])
    ab = R.ablation_table(df)
    assert ab[ab["ablation"] == "single_grain"].iloc[0][R.DELTA_UF1_CI] == ""


def test_no_runs_gives_an_empty_table(tmp_path):
    df = R.results_table(roots=[tmp_path / "none"])
    assert df.empty and R.HONEST_UF1 in df.columns
    assert R.results_markdown(df).count("\n|") == 3


def test_read_efficiency(tmp_path):
    df, text = R.read_efficiency()
    assert "hmrm" in list(df["model"]) and df["parameters"].dtype.kind == "i"
    assert text.startswith("# Efficiency")
    (tmp_path / "e.md").write_text("# t\n\nnote\n\n| model | parameters | ms |\n|---|---:|---:|\n| `a` | 1,234 | 2.5 |\n"
                                   "| `b`* | 7 | 3 (0.1) |\n\n\\* note\n")
    df, _ = R.read_efficiency(tmp_path / "e.md")
    assert list(df["model"]) == ["a", "b*"] and list(df["parameters"]) == [1234, 7]
    assert list(df["ms"]) == [2.5, "3 (0.1)"]  # each cell parsed on its own: a number, or its text
    with pytest.raises(Exception, match="hmrm efficiency"):
        R.read_efficiency(tmp_path / "missing.md")


def _timing_module():
    spec = importlib.util.spec_from_file_location("gpu_fold_timing", REPO / "benchmarks" / "gpu_fold_timing.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fold_timing_cpu_path(capsys):
    torch.set_num_threads(1)
    mod = _timing_module()
    r = mod.time_folds("cpu", epochs=3, folds=2, samples=12, classes=3, subjects=4, batch_size=4,
                       overrides={"d_model": 8, "depth": 1}, input_size=32, target_epochs=10)
    assert r["folds_timed"] == 2 and r["subjects"] == 4 and r["device"] == "cpu" and not r["complete"]
    assert r["steady_epoch_s"] > 0
    assert r["fold_at_target_s"] == pytest.approx(r["first_epoch_s"] + 9 * r["steady_epoch_s"])
    assert r["loso_at_target_s"] == pytest.approx(4 * r["fold_at_target_s"])
    assert mod.main(["--device", "cpu", "--epochs", "3", "--folds", "1", "--samples", "8", "--subjects", "2",
                     "--batch-size", "4", "--model", "ststnet", "--input-size", "24"]) == 0
    out = capsys.readouterr().out
    assert "seconds per epoch (steady)" in out and "extrapolated whole LOSO (2 folds x 1000 epochs)" in out
    with pytest.raises(ValueError, match="at least 3"):
        mod.time_folds("cpu", epochs=2)
    with pytest.raises(SystemExit):
        mod.main(["--help"])
    assert "--epochs" in capsys.readouterr().out
    if not torch.cuda.is_available():
        assert mod.main(["--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err
