"""Faults a probe of the newer commands found, each replayed as a new user would meet it: every one ends
in a one-paragraph message (exit status 2, no traceback) that names the file or flag and the fix, or
in a warning where the command may go on; nothing finished is overwritten by a refusal."""
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hmrm.cli import main
from hmrm.data.synthme import SynthConfig, build_synthme, tiny_synthme
from hmrm.train.loso import fold_dirname
from hmrm.utils import cache_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def s3():
    """The 3-subject tiny SynthME (the one chapter 08 uses)."""
    root = cache_dir("synthme_tiny_s3_seed0")
    tiny_synthme(root, subjects=3)
    return root


def _loso(root, run_dir, *extra):
    return ["loso", "--data-root", str(root), "--model", "ststnet", "--flow", "gt", "--input-size", "64", "--epochs",
            "2", "--run-dir", str(run_dir), "--quiet", "--workers", "1", *extra]


@pytest.fixture(scope="module")
def finished_run(s3, tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(_loso(s3, run)) == 0
    return run


def _one_paragraph(capsys, rc, *needles):
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in err, f"{needle!r} not in: {err}"
    return err


def _tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- 3. messages, not tracebacks
def test_calibrating_a_run_with_one_finished_fold_says_what_is_missing(finished_run, tmp_path, capsys):
    run = tmp_path / "one_fold"
    shutil.copytree(finished_run, run)
    for folder in sorted((run / "folds").iterdir())[1:]:
        shutil.rmtree(folder)
    _one_paragraph(capsys, main(["calibrate", str(run), "--no-figure"]), str(run), "at least two finished folds",
                   "config.json")


def test_a_damaged_final_checkpoint_is_named_by_explain_and_retrained_by_loso(s3, finished_run, tmp_path, capsys):
    run = tmp_path / "damaged"
    shutil.copytree(finished_run, run)
    subject = json.loads(next((run / "folds").glob("*/result.json")).read_text())["subject"]
    ckpt = run / "folds" / fold_dirname(subject) / "checkpoint.pt"
    ckpt.write_bytes(b"garbage, not a checkpoint")
    _one_paragraph(capsys, main(["explain", str(run), "--synthme", str(s3), "--quiet"]), str(ckpt),
                   "cannot be used", "trains that fold again")
    before = (run / "predictions.csv").read_text()
    with pytest.warns(UserWarning, match="that fold is trained again"):
        assert main(_loso(s3, run)) == 0
    capsys.readouterr()
    from hmrm.train.loso.run_folder import damaged_checkpoint

    assert damaged_checkpoint(ckpt) is None and (run / "predictions.csv").read_text() == before


def test_a_manifest_that_is_not_an_object_is_named(s3, tmp_path, capsys):
    root = tmp_path / "bad"
    shutil.copytree(s3, root)
    (root / "manifest.json").write_text("[1, 2, 3]")
    rc = main(["synthme", "--out", str(root), "--preset", "tiny", "--subjects", "3"])
    _one_paragraph(capsys, rc, str(root / "manifest.json"), "not a SynthME manifest")


def test_an_input_size_no_memory_holds_is_refused_before_any_work(s3, tmp_path, capsys):
    t0 = time.monotonic()
    rc = main(_loso(s3, tmp_path / "huge", "--input-size", "100000"))
    _one_paragraph(capsys, rc, "--input-size", "1024")
    assert time.monotonic() - t0 < 30 and not (tmp_path / "huge").exists()


# ----------------------------------------------------------------------------- 4. refusals change nothing
def _config(tmp_path, root) -> Path:
    cfg = tmp_path / "quick.yaml"
    cfg.write_text(f"dataset: synthme\ndata_root: {root}\nflow_method: gt\nmodel: ststnet\ninput_size: 64\nepochs: 2\n"
                   "workers: 1\n")
    return cfg


def test_a_refused_reproduce_leaves_the_finished_record_as_it_was(s3, tmp_path, capsys):
    cfg, out = _config(tmp_path, s3), tmp_path / "out"
    assert main(["reproduce", str(cfg), "--out", str(out)]) == 0
    capsys.readouterr()
    before = _tree_hash(out)
    err = _one_paragraph(capsys, main(["reproduce", str(cfg), "--out", str(out), "--epochs", "3"]),
                         "another configuration", "epochs: 2 there, 3 here", "another --out")
    assert "--run-dir" not in err
    assert _tree_hash(out) == before, "the refused run changed the finished run folder"
    _one_paragraph(capsys, main(["reproduce", str(cfg), "--out", str(out), "--epochs", "3", "--dry-run"]),
                   "another configuration")
    assert _tree_hash(out) == before


def test_a_refused_loso_names_its_own_flag_and_leaves_the_folder_as_it_was(s3, finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = _tree_hash(run)
    _one_paragraph(capsys, main(_loso(s3, run, "--epochs", "3")), "epochs: 2 there, 3 here", "another --run-dir")
    assert _tree_hash(run) == before


def test_an_empty_config_is_refused(tmp_path, capsys):
    (tmp_path / "empty.yaml").write_text("")
    _one_paragraph(capsys, main(["reproduce", str(tmp_path / "empty.yaml"), "--dry-run"]), "is empty")


# ----------------------------------------------------------------------------- 5. hints that work
def _offline_build(out, monkeypatch, tmp_path, **kw):
    """A build made with --offline and an empty cache: the bank falls back to its one offline photo."""
    with monkeypatch.context() as m:
        m.setenv("HMRM_CACHE", str(tmp_path / "empty_cache"))
        build_synthme(out, SynthConfig.preset("tiny"), offline=True, progress=False, **kw)


def test_a_synthme_hint_never_repeats_the_command_that_failed(tmp_path, capsys, monkeypatch):
    out = tmp_path / "S2"
    _offline_build(out, monkeypatch, tmp_path, max_subjects=2)   # one photo only
    rc = main(["synthme", "--out", str(out), "--preset", "tiny", "--subjects", "2"])
    err = _one_paragraph(capsys, rc, "other settings")
    assert f"To finish or reuse that build: hmrm synthme --out {out} --preset tiny --subjects 2." not in err
    assert "No option of `hmrm synthme` reproduces that build" in err and "hmrm facebank" in err


# ----------------------------------------------------------------------------- 6. a degraded build
def test_a_one_subject_synthme_is_refused_by_loso_and_demo(tmp_path, capsys, monkeypatch):
    out = tmp_path / "S1"
    _offline_build(out, monkeypatch, tmp_path)
    _one_paragraph(capsys, main(_loso(out, tmp_path / "r")), "at least two subjects", "1 (",
                   "hmrm facebank")
    _one_paragraph(capsys, main(["demo", "--root", str(out), "--out", str(tmp_path / "d"), "--figures",
                                 str(tmp_path / "f"), "--no-readme", "--quiet"]), "at least two subjects")
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- 8. missing checks
def test_a_file_given_as_data_root_is_called_a_file(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    _one_paragraph(capsys, main(_loso(tmp_path / "notes.txt", tmp_path / "r")), "is a file")


@pytest.mark.parametrize("value", ["2", "-1"])
def test_a_threshold_outside_0_to_1_is_refused(finished_run, value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["calibrate", str(finished_run), "--threshold", value])
    assert exc.value.code == 2 and "from 0 to 1" in capsys.readouterr().err


def test_more_folds_than_subjects_are_refused(s3, tmp_path, capsys):
    _one_paragraph(capsys, main(_loso(s3, tmp_path / "r", "--folds", "99")), "--folds", "3 subjects")
    assert not (tmp_path / "r").exists()


def test_a_head_motion_experiment_on_still_heads_says_so(s3, monkeypatch):
    from hmrm import beyond

    class Enough(Exception):
        pass

    def no_training(*args, **kwargs):
        raise Enough

    monkeypatch.setattr(beyond, "variant_runs", no_training)
    said = []
    with pytest.raises(Enough):
        beyond.head_motion_experiment(s3, error_methods=("gt",), progress=False, log=said.append)
    assert any(line.startswith("warning:") and "--preset head" in line for line in said), said


# ----------------------------------------------------------------------------- 2. engines that cannot start
def test_an_unreachable_ray_address_fails_fast_and_leaves_nothing(s3, tmp_path):
    pytest.importorskip("ray", reason="the ray engine's tests need the ray extra: pip install -e '.[ray]'")
    with socket.socket() as s:     # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "hmrm.cli", *_loso(s3, tmp_path / "r", "--engine", "ray", "--address",
                                                     f"127.0.0.1:{port}")]
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - t0 < 30, "an unreachable cluster should fail within seconds"
    assert done.returncode == 2 and f"127.0.0.1:{port}" in done.stderr and "ray start --head" in done.stderr
    assert "Traceback" not in done.stderr and "GCS" not in done.stderr, done.stderr
    assert not (tmp_path / "r").exists(), "a run that never started left a run folder"


# ----------------------------------------------------------------------------- 10. a clean repository
def test_timing_commands_do_not_rewrite_committed_figures_by_default(s3, tmp_path):
    env_cmd = [sys.executable, "-m", "hmrm.cli", "efficiency", "--batch", "1", "--repeats", "1", "--warmup", "0",
               "--input-size", "32", "--quiet"]
    done = subprocess.run(env_cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    bench = subprocess.run([sys.executable, str(REPO / "benchmarks" / "flow_bench.py"), "--root", str(s3), "--limit",
                            "1", "--methods", "zero,dis"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert bench.returncode == 0, bench.stderr
    assert not (tmp_path / "figures").exists(), "a reader's run wrote figures/ (the committed figures live there)"
    assert "| method |" in done.stdout.replace("| model |", "| method |") and "face EPE" in bench.stdout


def test_the_flow_figure_is_drawn_from_its_table_and_times_only_methods_as_used(s3, tmp_path):
    """``flow_bench.py --figure`` draws the table it writes; ``--redraw`` draws the same bytes from that table
    without computing a flow; the ablations, parts of one pass, get no time bar."""
    bench = [sys.executable, str(REPO / "benchmarks" / "flow_bench.py")]
    done = subprocess.run(bench + ["--root", str(s3), "--limit", "1", "--methods", "zero,dis",
                                   "--table", str(tmp_path / "t.md"), "--figure", str(tmp_path / "a.png")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    again = subprocess.run(bench + ["--redraw", str(tmp_path / "t.md"), "--figure", str(tmp_path / "b.png")],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import flow_bench
    finally:
        sys.path.pop(0)
    assert flow_bench._key("**GRU-AOFE** (shipped weights)") == "gru_aofe" == flow_bench._key("GRU-AOFE (weights from x)")
    assert flow_bench._key(flow_bench.LABELS["gru_only"]) == "gru_only" and "gru_only" in flow_bench.UNTIMED
