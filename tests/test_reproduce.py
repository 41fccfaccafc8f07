"""`hmrm reproduce`: configs map onto notebook 06's parameters, --dry-run plans, one end-to-end run that a
second call skips."""
import json

import cv2
import pytest

from fake_datasets import make_smic
from hmrm.cli import main
from hmrm.data.synthme import load_synthme
from hmrm.train.reproduce import CONFIG_DIR, NOTEBOOK, ReproduceError, load_config, notebook_parameters, plan

CONFIGS = sorted(CONFIG_DIR.glob("loso_*.yaml"))
PAPER = {"loso_casme2_5": ("casme2", "casme2_5"), "loso_samm5": ("samm", "samm5"), "loso_smic3": ("smic", "smic3"),
         "loso_composite3": ("composite", "composite3")}


def test_configs_map_onto_the_notebook_parameters():
    params = notebook_parameters()
    assert {"DATASET", "DATA_ROOT", "PREPARED", "CLASS_SCHEME", "FLOW_METHOD", "MODEL", "ABLATION", "MODEL_OPTIONS",
            "EPOCHS", "FOLDS", "BATCH_SIZE", "LR", "DEVICE", "SEED", "RUN_DIR"} <= set(params)
    assert {p.stem for p in CONFIGS} == {*PAPER, "loso_synthme_quick"}
    for path in CONFIGS:
        cfg = load_config(path, params)  # raises on a key that is not a parameter
        assert cfg and set(cfg) <= set(params), path.name
        if path.stem in PAPER:
            assert (cfg["DATASET"], cfg["CLASS_SCHEME"]) == PAPER[path.stem]
            assert (cfg["EPOCHS"], cfg["LR"], cfg["MODEL"], cfg["ABLATION"]) == (1000, 0.0005, "hmrm", "full")
            assert cfg["FOLDS"] is None and cfg["DATA_ROOT"] is None


def test_config_errors(tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("dataset: synthme\nepoch: 3\n")
    with pytest.raises(ReproduceError, match="'epoch' is not a parameter.*epochs"):
        load_config(bad)
    bad.write_text("epochs: 3\nEPOCHS: 4\n")
    with pytest.raises(ReproduceError, match="set twice"):
        load_config(bad)
    with pytest.raises(ReproduceError, match="does not exist.*loso_synthme_quick.yaml"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ReproduceError, match="requested from CASME II"):
        plan([CONFIG_DIR / "loso_casme2_5.yaml"], tmp_path)
    with pytest.raises(ReproduceError, match="hmrm prepare --dataset samm"):
        plan([CONFIG_DIR / "loso_samm5.yaml"], tmp_path, data_root=tmp_path)


def test_dry_run_lists_the_plan(tmp_path, capsys):
    args = ["reproduce", *map(str, CONFIGS), "--out", str(tmp_path / "o"), "--data-root", str(tmp_path),
            "--prepared", str(tmp_path / "p"), "--epochs", "7", "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    for path in CONFIGS:
        assert f"plan {path.stem}:" in out and str(tmp_path / "o" / path.stem) in out
    assert out.count("7 epochs") == len(CONFIGS) and not (tmp_path / "o").exists()
    runs = plan(CONFIGS, tmp_path / "o", data_root=tmp_path, prepared=tmp_path / "p")
    quick = next(r for r in runs if r.name == "loso_synthme_quick")
    assert quick.parameters["DATA_ROOT"] is None  # --data-root applies to the licensed sets only
    assert all(r.parameters["RUN_DIR"] == str(r.run_dir) for r in runs)
    assert main(["reproduce", str(tmp_path / "nope.yaml")]) == 2
    assert "configs/loso_casme2_5.yaml" in capsys.readouterr().err


def test_reproduce_end_to_end_and_skip(tmp_path, tiny_synthme, capsys):
    # a SMIC-HS tree (the licensed layout) whose clips are SynthME's faces: onset, then the apex twice
    root = tmp_path / "SMIC"
    for i, s in enumerate(load_synthme(tiny_synthme)):
        sub = f"s{int(s.subject[-2:])}"
        make_smic(root, [(sub, f"{sub}_{s.label[:2]}_{i:02d}", s.label)])  # placeholder frames, replaced below
        folder = root / "HS" / sub / "micro" / s.label / f"{sub}_{s.label[:2]}_{i:02d}"
        for n, src in zip(range(1000, 1003), (s.onset_path, s.apex_path, s.apex_path)):
            cv2.imwrite(str(folder / f"image{n:07d}.bmp"), cv2.imread(str(src)))
    prepared = tmp_path / "prepared"
    assert main(["prepare", "--dataset", "smic", "--root", str(root), "--out", str(prepared), "--quiet"]) == 0
    cfg = tmp_path / "smic_tiny.yaml"
    cfg.write_text("dataset: smic\nflow_method: farneback\nmodel: ststnet\ninput_size: 48\nbatch_size: 8\n"
                   "threads: 1\ndevice: cpu\n")
    args = ["reproduce", str(cfg), "--data-root", str(root), "--prepared", str(prepared), "--out",
            str(tmp_path / "runs"), "--epochs", "2"]
    assert main(args) == 0
    run = tmp_path / "runs" / "smic_tiny"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["complete"] and metrics["epochs"] == 2 and metrics["folds_total"] == 2
    executed = json.loads((run / NOTEBOOK.name).read_text())
    injected = next(c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    assert "EPOCHS = 2" in "".join(injected["source"])
    assert not any(o["output_type"] == "error" for c in executed["cells"] for o in c.get("outputs", []))
    assert (run / "confusion.png").is_file() and (run / "config.json").is_file()
    capsys.readouterr()
    before = (run / NOTEBOOK.name).stat().st_mtime_ns
    assert main(args) == 0
    assert "smic_tiny: already done, skipped" in capsys.readouterr().out
    assert (run / NOTEBOOK.name).stat().st_mtime_ns == before


def test_a_failing_notebook_names_its_executed_copy(tmp_path, tiny_synthme, capsys):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text(f"dataset: synthme\ndata_root: {tiny_synthme}\nmodel: ststnet\nmodel_options: {{bogus: 1}}\n"
                   "epochs: 1\nthreads: 1\ndevice: cpu\n")
    assert main(["reproduce", str(cfg), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "broken: the notebook failed (ValueError" in err and str(tmp_path / "runs" / "broken" / NOTEBOOK.name) in err
    assert not (tmp_path / "runs" / "broken" / "metrics.json").exists()


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for opt in ("CONFIG", "--data-root", "--prepared", "--out", "--device", "--epochs", "--dry-run"):
        assert opt in text
    assert "papermill" in text and "skipped" in text and "loso_casme2_5" in text
