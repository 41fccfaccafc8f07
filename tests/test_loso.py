"""`hmrm.train.loso`: folds, no leak from the held-out subject, exact resume, refused mismatches, a tiny run."""
import csv
import json
import re

import numpy as np
import pytest
import torch

from hmrm.options import OptionError
from hmrm.train.loso import LOSOConfig, LOSOData, RunMismatchError, RunOptions, fold_dirname, loso_splits
from hmrm.train.loso import read_run, run_loso

SIZE = 32
TINY = {"d_model": 16, "depth": 1, "n_heads": 2}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # also makes CPU results reproducible bit for bit
    yield
    torch.set_num_threads(before)


def _data(seed=0, subjects=3, per_subject=6):
    """Synthetic flow maps: class c shifts channel u by (c - 1) / 10 on top of noise; 4 fixed boxes."""
    rng = np.random.default_rng(seed)
    n = subjects * per_subject
    y = np.arange(n) % 3
    x = rng.normal(0, 0.1, (n, 3, SIZE, SIZE)).astype(np.float32)
    x[:, 0] += ((y - 1) * 0.1)[:, None, None]
    boxes = np.tile(np.array([[4, 4, 14, 12], [18, 4, 28, 12], [10, 10, 22, 20], [6, 20, 26, 30]]), (n, 1, 1))
    groups = [f"syn/s{i // per_subject}" for i in range(n)]
    keys = [f"syn/s{i // per_subject}/c{i:02d}" for i in range(n)]
    return LOSOData(x, boxes, y, groups, keys, ("negative", "positive", "surprise"), {"flow": "gt"})


def _config(**kw):
    base = dict(model_overrides=TINY, epochs=3, batch_size=8, flow="gt", input_size=SIZE, checkpoint_every=2)
    return LOSOConfig(**{**base, **kw})


def _run(data, cfg, run_dir, **kw):
    return run_loso(data, cfg, run_dir, RunOptions(progress=False, figures=False, **kw))


def _weights(run_dir, subject):
    ckpt = torch.load(run_dir / "folds" / fold_dirname(subject) / "checkpoint.pt", weights_only=True)
    assert ckpt["final"]
    return ckpt["model"]


def _result(run_dir, subject):
    return json.loads((run_dir / "folds" / fold_dirname(subject) / "result.json").read_text())


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 3-fold run, shared by the tests that compare against it."""
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("loso_ref")
    return run_dir, _run(_data(), _config(), run_dir)


def test_folds_never_share_a_subject(reference):
    groups = _data().groups
    splits = loso_splits(groups)
    assert [s for s, _, _ in splits] == ["syn/s0", "syn/s1", "syn/s2"]
    g = np.asarray(groups)
    for subject, tr, te in splits:
        assert set(g[te]) == {subject} and subject not in set(g[tr])
        assert sorted(np.r_[tr, te].tolist()) == list(range(len(g)))
    run_dir, res = reference
    assert res.finished and res.complete
    for subject in ("syn/s0", "syn/s1", "syn/s2"):
        r = _result(run_dir, subject)
        assert all(k.startswith(subject + "/") for k in r["keys"]) and len(r["keys"]) == 6
        assert r["train_side"]["n_train"] == 12 and r["train_side"]["train_subjects"] == 2
    with open(run_dir / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["key"] for r in rows) == sorted(_data().keys)
    assert all(r["key"].startswith(r["subject"] + "/") for r in rows)
    assert {r["low_confidence"] for r in rows} <= {"0", "1"}  # calibrated without the test subject (test_calibration)
    flagged = sum(float(r["calibrated_confidence"]) < 0.5 for r in rows)
    assert json.loads((run_dir / "metrics.json").read_text())["calibration"]["low_confidence"]["flagged"] == flagged


def test_held_out_subject_is_never_read_by_training(tmp_path):
    """Change everything about subject s0 (inputs, boxes, labels): its fold trains the same weights,
    with the same scale and class weights, and only its predictions change."""
    a = _data()
    b = _data()
    held = np.array([g == "syn/s0" for g in b.groups])
    b.x[held] = b.x[held] * 50 + 3.0
    b.boxes[held] = b.boxes[held] // 2
    b.labels[held] = 0  # changes the class counts of the whole set, not those of the training fold
    cfg = _config(folds=1, motionmix_p=1.0)  # every training sample is mixed: partners must come from the fold
    ra, rb = _run(a, cfg, tmp_path / "a"), _run(b, cfg, tmp_path / "b")
    assert ra.metrics["subjects_done"] == ["syn/s0"] == rb.metrics["subjects_done"]
    assert _same_weights(_weights(tmp_path / "a", "syn/s0"), _weights(tmp_path / "b", "syn/s0"))
    res_a, res_b = _result(tmp_path / "a", "syn/s0"), _result(tmp_path / "b", "syn/s0")
    assert res_a["train_side"] == res_b["train_side"]
    assert [h["loss"] for h in res_a["history"]] == [h["loss"] for h in res_b["history"]]
    assert res_a["probs"] != res_b["probs"] and res_a["true"] != res_b["true"]


def test_test_curve_does_not_change_training(tmp_path, reference):
    run_dir, res = reference
    res_off = _run(_data(), _config(record_test_curve=False), tmp_path)
    for s in ("syn/s0", "syn/s1", "syn/s2"):
        assert _same_weights(_weights(run_dir, s), _weights(tmp_path, s))
    assert res_off.metrics["honest"] == res.metrics["honest"]
    assert res_off.metrics["best_epoch_on_test"] is None and res.metrics["best_epoch_on_test"]["warning"]


def test_resume_equals_uninterrupted(tmp_path, reference):
    ref_dir, ref = reference
    data, cfg = _data(), _config()
    # 1) a pause asked for after epoch 1 of the second fold (checkpoint_every=2: the pause itself checkpoints)
    res = _run(data, cfg, tmp_path, stop=lambda subject, epoch: subject == "syn/s1" and epoch == 1)
    assert not res.finished and res.metrics["subjects_done"] == ["syn/s0"]
    assert (tmp_path / "folds" / "syn-s1" / "checkpoint.pt").is_file()
    assert not (tmp_path / "folds" / "syn-s1" / "result.json").exists()

    # 2) a crash in the third fold just after its epoch-2 checkpoint (checkpoint_every=1 may change between calls)
    def crash(subject, epoch):
        if subject == "syn/s2" and epoch == 2:
            raise KeyboardInterrupt
        return False

    with pytest.raises(KeyboardInterrupt):
        _run(data, _config(epochs=3, checkpoint_every=1), tmp_path, stop=crash)
    assert _result(tmp_path, "syn/s1")["resumed_from_epoch"] == 1
    # 3) the same command again finishes; fold s2 continues from its epoch-2 checkpoint
    res = _run(data, cfg, tmp_path)
    assert res.finished and _result(tmp_path, "syn/s2")["resumed_from_epoch"] == 2
    assert res.metrics == ref.metrics
    assert (tmp_path / "predictions.csv").read_text() == (ref_dir / "predictions.csv").read_text()
    for s in ("syn/s0", "syn/s1", "syn/s2"):
        assert _same_weights(_weights(ref_dir, s), _weights(tmp_path, s))
    # 4) and once more: every fold is skipped, nothing changes
    again = _run(data, cfg, tmp_path, stop=lambda *a: pytest.fail("a finished fold was trained again"))
    assert again.metrics == ref.metrics and read_run(tmp_path).metrics == ref.metrics


def test_max_minutes_pauses_after_an_epoch_and_the_same_call_finishes(tmp_path, reference):
    ref_dir, ref = reference
    assert RunOptions(max_minutes=2).deadline(lambda: 10.0) == 130.0 and RunOptions().deadline(lambda: 10.0) is None
    res = _run(_data(), _config(), tmp_path, max_minutes=1e-9)  # runs out during the first epoch
    assert not res.finished and not list(tmp_path.glob("folds/*/result.json"))
    assert (tmp_path / "folds" / "syn-s0" / "checkpoint.pt").is_file()
    res = _run(_data(), _config(), tmp_path)
    assert res.finished and (tmp_path / "predictions.csv").read_text() == (ref_dir / "predictions.csv").read_text()


def test_other_configuration_or_data_is_refused(reference, tmp_path):
    run_dir, _ = reference
    with pytest.raises(RunMismatchError) as e:
        _run(_data(), _config(epochs=4, lr=1e-3), run_dir)
    msg = str(e.value)
    assert "epochs: 3 there, 4 here" in msg and "lr:" in msg and "another run folder" in msg and "config.json" in msg
    assert e.value.run_dir == run_dir and "epochs: 3 there, 4 here" in e.value.diffs   # for a command's own hint
    other = _data()
    other.x[0, 0, 0, 0] += 1.0
    with pytest.raises(RunMismatchError, match="inputs differ"):
        _run(other, _config(), run_dir)
    # fields that do not change what a fold computes may change
    res = _run(_data(), _config(folds=1, checkpoint_every=7, device="cpu"), run_dir)
    assert res.metrics["folds_done"] == 3


def test_partial_run_says_so(tmp_path):
    res = _run(_data(), _config(epochs=1, folds=2, model="ststnet", model_overrides={}), tmp_path)
    m = res.metrics
    assert res.finished and not res.complete and m["folds_done"] == 2 and m["folds_total"] == 3
    assert "PARTIAL" in m["partial_note"] and "PARTIAL" in res.table()
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["environment"]["device"] == "cpu" and cfg["environment"]["scan_backend"] is None


@pytest.mark.parametrize("kwargs, key, message", [
    ({"model": "ststnet", "ablation": "no_rffs"}, "ablation", "applies to HMRM only"),
    ({"ablation": "nope"}, "ablation", "must be one of full, no_motionmix"),
    ({"flow": "magic"}, "flow", "must be one of tvl1"),
    ({"epochs": "ten"}, "epochs", "must be an integer >= 1, got 'ten' (str)"),
    ({"epochs": 0}, "epochs", "must be an integer >= 1, got 0"),
    ({"lr": -1}, "lr", "must be a number > 0"),
    ({"lr": float("nan")}, "lr", "must be a number > 0"),
    ({"amp": "yes"}, "amp", "must be true or false"),
    ({"folds": 0}, "folds", "must be an integer >= 1 (or None)"),
    ({"channels": ("u", "q")}, "channels", "must be a list, each one of u, v, mag, strain"),
    ({"device": "gpu"}, "device", "must be auto, cpu, cuda or cuda:N"),
    ({"schedule": "constant", "warmup_epochs": 2}, "warmup_epochs", "needs schedule 'cosine'"),
    ({"model_overrides": {"d_modle": 16}}, "model_overrides.d_modle", "not an HMRMConfig field"),
    ({"model_overrides": {"d_model": "abc"}}, "model_overrides.d_model", "must be an integer >= 1, got 'abc'"),
    ({"model_overrides": {"n_heads": 5}}, "model_overrides", "do not build a hmrm network"),
    ({"model": "ststnet", "model_overrides": {"filters": (3, "a")}}, "model_overrides.filters", "integers >= 1"),
    ({"input_size": 8}, "input_size", "patch size 16 must divide the input size 8"),
    ({"motionmix_options": {"mode": "zzz"}}, "motionmix_options", "unknown mode 'zzz'"),
])
def test_config_refuses_a_bad_value_naming_its_key(kwargs, key, message):
    with pytest.raises(OptionError, match=re.escape(message)) as info:
        LOSOConfig(**kwargs)
    assert info.value.key == key


def test_config_validation():
    assert not LOSOConfig(ablation="no_motionmix").mixes and LOSOConfig().mixes
    assert LOSOConfig(epochs=5.0, lr=1, channels=["u", "v"]).to_dict()["epochs"] == 5  # canonical types
    with pytest.raises(ValueError, match="input_size"):
        _run(_data(), _config(input_size=64), "unused")


def test_tiny_synthme_end_to_end(tiny_synthme, tmp_path, capsys):
    """Real files: the tiny SynthME (2 subjects x 4 clips), exact flow, through the API and the CLI."""
    from hmrm.cli import main
    from hmrm.data.synthme import load_synthme

    samples = load_synthme(tiny_synthme)
    cfg = LOSOConfig(model_overrides=TINY, epochs=2, batch_size=4, flow="gt", input_size=SIZE)
    res = run_loso(samples, cfg, tmp_path / "api", RunOptions(progress=False, cache_dir=tmp_path / "cache"))
    m = res.metrics
    assert res.complete and m["folds_done"] == 2 and m["honest"]["n"] == len(samples)
    assert np.sum(m["honest"]["confusion"]) == len(samples)
    for name in ("config.json", "metrics.json", "predictions.csv", "training.png", "confusion.png"):
        assert (tmp_path / "api" / name).stat().st_size > 0
    env = json.loads((tmp_path / "api" / "config.json").read_text())["environment"]
    assert env["device"] == "cpu" and env["scan_backend"] == "fused" and env["threads"] == 1

    rc = main(["loso", "--data-root", str(tiny_synthme), "--flow", "gt", "--input-size", str(SIZE), "--set", "d_model=16",
               "--set", "depth=1", "--set", "n_heads=2", "--epochs", "2", "--batch-size", "4", "--folds", "1",
               "--run-dir", str(tmp_path / "cli"), "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "NOT a full LOSO" in out and "honest: final epoch" in out and "best epoch on test" in out
    # the CLI's fold equals the API's first fold: same seed, same data, same configuration
    first = res.metrics["per_fold"][0]
    assert read_run(tmp_path / "cli").metrics["per_fold"][0] == first
    # the same run folder with other options: refused with what differs, exit status 2
    rc = main(["loso", "--data-root", str(tiny_synthme), "--flow", "gt", "--input-size", str(SIZE), "--set", "d_model=16",
               "--set", "depth=1", "--set", "n_heads=2", "--epochs", "3", "--batch-size", "4",
               "--run-dir", str(tmp_path / "cli"), "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "epochs: 2 there, 3 here" in err
    # a recipe and two seeds from the command line: one folder per seed and their summary
    rc = main(["loso", "--data-root", str(tiny_synthme), "--flow", "gt", "--input-size", str(SIZE), "--set", "d_model=16",
               "--set", "depth=1", "--set", "n_heads=2", "--epochs", "2", "--batch-size", "4", "--schedule", "cosine",
               "--ema", "0.9", "--label-smoothing", "0.1", "--seeds", "2", "--workers", "1",
               "--run-dir", str(tmp_path / "seeds"), "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "mean" in out and "(sd)" in out
    summary = json.loads((tmp_path / "seeds" / "seeds.json").read_text())
    assert [r["seed"] for r in summary["seeds"]] == [0, 1] and all(r["complete"] for r in summary["seeds"])
    cfg = json.loads((tmp_path / "seeds" / "seed1" / "config.json").read_text())["config"]
    assert (cfg["schedule"], cfg["warmup_epochs"], cfg["ema"], cfg["label_smoothing"]) == ("cosine", 1, 0.9, 0.1)


def test_cli_help_and_missing_inputs(capsys, tmp_path):
    from hmrm.cli import main

    with pytest.raises(SystemExit):
        main(["loso", "--help"])
    out = capsys.readouterr().out
    for opt in ("--dataset", "--data-root", "--scheme", "--flow", "--model", "--ablation", "--epochs", "--batch-size",
                "--lr", "--seed", "--device", "--folds", "--run-dir", "--prepared", "NOT a full LOSO", "--schedule",
                "--ema", "--label-smoothing", "--seeds", "--workers"):
        assert opt in out
    assert main(["loso", "--dataset", "casme2"]) == 2
    err = capsys.readouterr().err
    assert "licensed data set" in err and "(--data-root)" in err and "requested from CASME II" in err
    assert main(["loso", "--dataset", "samm", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "(--prepared)" in err and f"hmrm prepare --dataset samm --root {tmp_path}" in err


def test_recipe_options_are_checked():
    with pytest.raises(ValueError, match="schedule"):
        LOSOConfig(schedule="linear")
    with pytest.raises(ValueError, match="warmup_epochs"):
        LOSOConfig(warmup_epochs=2)                      # warm-up needs the cosine schedule
    with pytest.raises(ValueError, match="warmup_epochs"):
        LOSOConfig(schedule="cosine", warmup_epochs=5, epochs=5)
    with pytest.raises(ValueError, match="label_smoothing"):
        LOSOConfig(label_smoothing=1.0)
    with pytest.raises(ValueError, match="ema"):
        LOSOConfig(ema=1.0)
    with pytest.raises(ValueError, match="lr"):
        LOSOConfig(lr=-1)


def test_recipe_changes_training_and_resumes_exactly(tmp_path):
    """Cosine schedule, label smoothing and EMA each change the trained network; a run paused in
    the middle of a fold continues to the same bits (the EMA weights are in the checkpoint)."""
    data = _data()
    recipe = dict(schedule="cosine", warmup_epochs=1, label_smoothing=0.1, ema=0.9, epochs=4, lr=2e-3)
    ref = _run(data, _config(**recipe, folds=1), tmp_path / "ref")
    base = _weights(tmp_path / "ref", "syn/s0")
    for change in ({"schedule": "constant", "warmup_epochs": 0}, {"label_smoothing": 0.0}, {"ema": 0.0}):
        _run(data, _config(**{**recipe, **change}, folds=1), tmp_path / str(len(change)) / next(iter(change)))
        assert not _same_weights(base, _weights(tmp_path / str(len(change)) / next(iter(change)), "syn/s0"))
    res = _run(data, _config(**recipe, folds=1), tmp_path / "paused", stop=lambda s, e: e == 3)
    assert not res.finished
    res = _run(data, _config(**recipe, folds=1), tmp_path / "paused")
    assert _result(tmp_path / "paused", "syn/s0")["resumed_from_epoch"] == 3
    assert res.metrics["honest"]["uf1"] == ref.metrics["honest"]["uf1"]
    assert (tmp_path / "paused" / "predictions.csv").read_text() == (tmp_path / "ref" / "predictions.csv").read_text()
    assert _same_weights(base, _weights(tmp_path / "paused", "syn/s0"))


def test_folds_in_worker_processes_give_the_same_bits(tmp_path, reference):
    """Two processes training folds side by side: the same predictions, weights and scores as one."""
    ref_dir, ref = reference
    res = _run(_data(), _config(), tmp_path, workers=2)
    assert res.finished and res.metrics == ref.metrics
    assert (tmp_path / "predictions.csv").read_text() == (ref_dir / "predictions.csv").read_text()
    for s in ("syn/s0", "syn/s1", "syn/s2"):
        assert _same_weights(_weights(ref_dir, s), _weights(tmp_path, s))


def test_interval_over_subjects_is_reported(reference):
    _, res = reference
    ci = res.metrics["honest"]["interval"]
    assert ci["n_subjects"] == 3 and ci["confidence"] == 0.95
    for key in ("uf1", "uar"):
        assert 0.0 <= ci[key][0] <= ci[key][1] <= 1.0
    assert "95% interval over subjects" in res.table()


def test_several_seeds_into_one_folder(tmp_path):
    from hmrm.train.seeds import format_seeds, run_loso_seeds

    summary = run_loso_seeds(_data(), _config(epochs=1, folds=None), tmp_path, seeds=[0, 1],
                             options=RunOptions(progress=False, figures=False))
    assert [r["seed"] for r in summary["seeds"]] == [0, 1]
    scores = [r["uf1"] for r in summary["seeds"]]
    assert summary["mean"]["uf1"] == pytest.approx(np.mean(scores))
    assert summary["sd"]["uf1"] == pytest.approx(np.std(scores, ddof=1))
    for seed in (0, 1):
        cfg = json.loads((tmp_path / f"seed{seed}" / "config.json").read_text())["config"]
        assert cfg["seed"] == seed
    assert json.loads((tmp_path / "seeds.json").read_text()) == summary
    assert "mean" in format_seeds(summary) and "(sd)" in format_seeds(summary)
    with pytest.raises(ValueError, match="distinct"):
        run_loso_seeds(_data(), _config(), tmp_path, seeds=[3, 3])


def test_loso_config_field_defaults_and_rules_are_what_the_fields_say():
    from hmrm.train.loso import LOSOConfig

    d = LOSOConfig.field_defaults()
    assert d["epochs"] == LOSOConfig().epochs and "model_overrides" not in d  # a default_factory field has no default
    rules = LOSOConfig.rules()
    assert rules["flow"].choices and "gt" in rules["flow"].choices and not rules["epochs"].accepts(0)
