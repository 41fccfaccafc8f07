"""`hmrm reproduce`: configs map onto notebook 06's parameters, --dry-run plans, one end-to-end run that a
second call skips."""
import json
import shutil

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
    _paper_fixture("smic", root, tiny_synthme)
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
    data = tmp_path / "synthme"
    shutil.copytree(tiny_synthme, data)
    for frame in next(data.glob("frames/*/*")).glob("img*.png"):  # fails inside the notebook, not at planning
        frame.write_bytes(b"not a png")
    cfg = tmp_path / "broken.yaml"
    cfg.write_text(f"dataset: synthme\ndata_root: {data}\nmodel: ststnet\nflow_method: farneback\nepochs: 1\n"
                   "threads: 1\ndevice: cpu\n")
    assert main(["reproduce", str(cfg), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    failed = tmp_path / "runs" / "broken" / f"{NOTEBOOK.stem}.failed.ipynb"
    assert "broken: the notebook failed (DataError" in err and str(failed) in err and failed.is_file()
    assert not (tmp_path / "runs" / "broken" / "metrics.json").exists()
    assert not (tmp_path / "runs" / "broken" / NOTEBOOK.name).exists(), "a failed attempt is not the run's record"


@pytest.mark.parametrize("text, key, accepted", [
    ("epochs: ten", "epochs", "an integer >= 1"),
    ("lr: -1", "lr", "a number > 0"),
    ("model: hmrm\nmodel_options: {d_model: abc}", "model_options.d_model", "an integer >= 1"),
    ("workers: 0", "workers", "an integer >= 1"),
    ("class_scheme: five", "class_scheme", "one of"),
])
def test_a_bad_value_is_refused_at_planning_naming_file_and_key(tmp_path, text, key, accepted, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text + "\n")
    assert main(["reproduce", str(cfg), "--out", str(tmp_path / "runs"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"config {cfg}: {key}: must be {accepted}" in err
    assert not (tmp_path / "runs").exists()


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for opt in ("CONFIG", "--data-root", "--prepared", "--out", "--device", "--epochs", "--dry-run"):
        assert opt in text
    assert "papermill" in text and "skipped" in text and "loso_casme2_5" in text


def _faces_into(folder, numbers, pattern, onset_path, apex_path):
    """Replace a fixture clip's placeholder frames with a real aligned face: the onset, then the apex."""
    for i, n in enumerate(numbers):
        cv2.imwrite(str(folder / pattern.format(n)), cv2.imread(str(onset_path if i == 0 else apex_path)))


def _casme2_clips(root, rows, faces):
    """rows: (subject, filename, emotion); each clip gets frames 10-12: onset, apex, apex."""
    from fake_datasets import make_casme2

    make_casme2(root, [(sub, name, 10, 11, 12, emo) for sub, name, emo in rows])
    for (sub, name, _), s in zip(rows, faces):
        _faces_into(root / "CASME2_RAW_selected" / sub / name, (10, 11, 12), "img{}.jpg", s.onset_path, s.apex_path)


def _samm_clips(root, rows, faces):
    from fake_datasets import make_samm

    make_samm(root, [(sub, name, 100, 101, 102, emo) for sub, name, emo in rows])
    for (sub, name, _), s in zip(rows, faces):
        _faces_into(root / "SAMM" / sub / name, (100, 101, 102), f"{sub}_{{:05d}}.jpg", s.onset_path, s.apex_path)


def _smic_clips(root, rows, faces):
    for (sub, clip, cls), s in zip(rows, faces):
        make_smic(root, [(sub, clip, cls)])
        _faces_into(root / "HS" / sub / "micro" / cls / clip, (1000, 1001, 1002), "image{:07d}.bmp", s.onset_path, s.apex_path)


def _paper_fixture(dataset, root, synth):
    """A tree in the licensed layout of ``dataset`` whose clips show SynthME's faces and cover the
    config's classes; returns (clips, subjects)."""
    from hmrm.data.composite import composite_list

    faces = load_synthme(synth)
    if dataset == "casme2":
        emotions = ["happiness", "surprise", "disgust", "repression", "others"]
        rows = [(s.subject, f"EP0{i}_01", emotions[i % 5]) for i, s in enumerate(faces)]
        _casme2_clips(root, rows, faces)
    elif dataset == "samm":
        emotions = ["Happiness", "Anger", "Contempt", "Surprise", "Other"]
        rows = [(f"0{s.subject[-2:]}", f"0{s.subject[-2:]}_{i}_1", emotions[i % 5]) for i, s in enumerate(faces)]
        _samm_clips(root, rows, faces)
    elif dataset == "smic":
        rows = [(f"s{int(s.subject[-2:])}", f"s{int(s.subject[-2:])}_{s.label[:2]}_{i:02d}", s.label) for i, s in enumerate(faces)]
        _smic_clips(root, rows, faces)
    else:  # composite: a few listed clips of each source, under casme2/, samm/ and smic/
        listed = composite_list()
        pick = {d: [r for r in listed if r["dataset"] == d][:n] for d, n in (("casme2", 3), ("samm", 3), ("smic", 2))}
        casme = {"positive": "happiness", "surprise": "surprise", "negative": "disgust"}
        samm = {"positive": "Happiness", "surprise": "Surprise", "negative": "Anger"}
        _casme2_clips(root / "casme2", [(r["subject"], r["sample"], casme[r["label"]]) for r in pick["casme2"]], faces[:3])
        _samm_clips(root / "samm", [(r["subject"], r["sample"], samm[r["label"]]) for r in pick["samm"]], faces[3:6])
        smic = []
        for r in pick["smic"]:
            n, (_, code, k) = int(r["subject"][1:]), r["sample"].split("_")
            smic.append((f"s{n}", f"s{n}_{code}_{k}", r["label"]))
        _smic_clips(root / "smic", smic, faces[6:8])
        return sum(map(len, pick.values())), len({(r["dataset"], r["subject"]) for d in pick.values() for r in d})
    return len(rows), len({r[0] for r in rows})


@pytest.mark.filterwarnings("ignore:composite")
@pytest.mark.parametrize("config", ["loso_casme2_5", "loso_samm5", "loso_smic3", "loso_composite3"])
def test_paper_configs_run_end_to_end_on_fixture_trees(config, tmp_path, tiny_synthme):
    # the shipped paper config, unchanged but for --epochs: HMRM at full size on a licensed-layout tree
    dataset, scheme = PAPER[config]
    root = tmp_path / dataset
    clips, subjects = _paper_fixture(dataset, root, tiny_synthme)
    prepared = tmp_path / "prepared"
    assert main(["prepare", "--dataset", dataset, "--root", str(root), "--out", str(prepared), "--quiet"]) == 0
    assert main(["reproduce", str(CONFIG_DIR / f"{config}.yaml"), "--data-root", str(root), "--prepared", str(prepared),
                 "--out", str(tmp_path / "runs"), "--epochs", "1", "--device", "cpu"]) == 0
    run = tmp_path / "runs" / config
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["complete"] and metrics["folds_total"] == subjects and metrics["honest"]["n"] == clips
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["config"]["model"] == "hmrm" and cfg["config"]["model_overrides"] == {}
    assert len(metrics["classes"]) == (3 if scheme.endswith("3") else 5) and cfg["data"]["scheme"] == scheme
