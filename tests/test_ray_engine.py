"""`run_loso(engine="ray")`: folds as tasks on a local Ray instance of 2 CPU workers give the local
engine's bits (on subjects of different sizes, one showing a single class), a killed worker's fold
continues from its checkpoint, finished folds survive a lost fold, and a missing Ray says how to
install it."""
import json
import os
import signal
import sys
import threading
import time

import pytest
import torch

from hmrm.train.loso import RunOptions, run_loso
from hmrm.train.loso import EngineError, fold_dirname
from hmrm.train.loso import ray_engine

from test_loso import _config, _same_weights, _weights, one_thread  # noqa: F401  (autouse: one thread)
from test_stacked import _ragged as _data

ray = pytest.importorskip("ray", reason="the ray engine's tests need the ray extra: pip install -e '.[ray]'")
SUBJECTS = ("syn/s0", "syn/s1", "syn/s2", "syn/s3")


def _run(run_dir, engine="local", **kw):
    return run_loso(_data(), _slow_config(), run_dir, RunOptions(progress=False, figures=False, engine=engine, **kw))


def _slow_config():
    """Long enough (about a second per fold) for a worker to be killed between two checkpoints."""
    return _config(epochs=30, batch_size=4, checkpoint_every=1, record_test_curve=False)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("local")
    return run_dir, run_loso(_data(), _slow_config(), run_dir, RunOptions(progress=False, figures=False))


@pytest.fixture(scope="module", autouse=True)
def one_ray_instance():
    """One local Ray instance of 2 CPUs for the module's runs: run_loso trains on a Ray that is already
    running and leaves it running (it stops only one it started itself), so the runs share its start and
    its workers' imports."""
    started = ray_engine._start(ray, None, 2)
    yield
    if started:
        ray.shutdown()


def _same_run(run_dir, local):
    local_dir, ref = local
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics == ref.metrics
    assert (run_dir / "predictions.csv").read_text() == (local_dir / "predictions.csv").read_text()
    for s in SUBJECTS:
        assert _same_weights(_weights(local_dir, s), _weights(run_dir, s))


def _kill_first_fold_after_a_checkpoint(run_dir, killed: list, timeout=120):
    """In a thread: wait for a fold whose worker has written a checkpoint (not the final one), then
    SIGKILL that worker process. Records (subject, pid)."""
    def watch():
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for s in SUBJECTS:
                folder = run_dir / "folds" / fold_dirname(s)
                marker, ckpt = folder / "running.json", folder / "checkpoint.pt"
                if marker.is_file() and ckpt.is_file() and not (folder / "result.json").exists():
                    try:
                        pid = json.loads(marker.read_text())["pid"]
                    except (OSError, ValueError):
                        continue
                    os.kill(pid, signal.SIGKILL)
                    killed.append((s, pid))
                    return
            time.sleep(0.02)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_ray_folds_give_the_local_bits(tmp_path, local):
    res = _run(tmp_path, "ray", workers=2)
    assert res.finished
    _same_run(tmp_path, local)
    assert not list(tmp_path.glob("folds/*/running.json"))  # removed when a fold is done


def test_a_killed_worker_is_retried_from_its_checkpoint(tmp_path, local):
    killed = []
    watcher = _kill_first_fold_after_a_checkpoint(tmp_path, killed)
    res = _run(tmp_path, "ray", workers=2)
    watcher.join()
    assert killed, "no fold was caught between two checkpoints"
    subject, _ = killed[0]
    assert res.finished
    result = json.loads((tmp_path / "folds" / fold_dirname(subject) / "result.json").read_text())
    assert result["resumed_from_epoch"] is not None and result["resumed_from_epoch"] >= 1
    _same_run(tmp_path, local)  # a resumed fold continues exactly


def test_a_lost_fold_keeps_the_finished_ones_and_the_rerun_completes(tmp_path, local, monkeypatch):
    monkeypatch.setattr(ray_engine, "RETRIES", 0)  # a dead worker is not retried: the fold fails
    killed = []
    watcher = _kill_first_fold_after_a_checkpoint(tmp_path, killed)
    with pytest.raises(EngineError, match="failed on Ray") as err:
        _run(tmp_path, "ray", workers=2)
    watcher.join()
    subject, _ = killed[0]
    assert subject in str(err.value) and "run the same command again" in str(err.value)
    done = {s for s in SUBJECTS if (tmp_path / "folds" / fold_dirname(s) / "result.json").is_file()}
    assert done == set(SUBJECTS) - {subject}  # the other folds finished and were kept
    before = {s: (tmp_path / "folds" / fold_dirname(s) / "result.json").read_bytes() for s in done}
    monkeypatch.setattr(ray_engine, "RETRIES", 3)
    res = _run(tmp_path, "ray", workers=2)
    assert res.finished
    for s in done:  # not trained again
        assert (tmp_path / "folds" / fold_dirname(s) / "result.json").read_bytes() == before[s]
    assert json.loads((tmp_path / "folds" / fold_dirname(subject) / "result.json").read_text())["resumed_from_epoch"]
    _same_run(tmp_path, local)


def test_missing_ray_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(EngineError, match=r"pip install -e '\.\[ray\]'"):
        _run(tmp_path, "ray")
    assert not (tmp_path / "config.json").exists()  # refused before the run folder is made
    assert ray_engine.ray_available() is None


def test_engine_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="unknown engine"):
        _run(tmp_path, "spark")
    with pytest.raises(ValueError, match="address is for engine='ray'"):
        _run(tmp_path, "local", address="10.0.0.1:6379")
    with pytest.raises(ValueError, match="stop hook"):
        run_loso(_data(), _slow_config(), tmp_path, RunOptions(progress=False, engine="ray", stop=lambda *a: False))


def test_reproduce_on_ray_gives_the_local_table(tmp_path, capsys):
    """`hmrm reproduce --engine ray`: the job notebook trains its folds as Ray tasks; the same table."""
    from hmrm.cli import main
    from hmrm.train.reproduce import CONFIG_DIR, plan

    cfg = str(CONFIG_DIR / "loso_synthme_quick.yaml")
    planned = plan([cfg], tmp_path / "p", engine="ray", address="head:6379")
    assert planned[0].parameters["ENGINE"] == "ray" and planned[0].parameters["RAY_ADDRESS"] == "head:6379"
    for engine in ("local", "ray"):
        assert main(["reproduce", cfg, "--out", str(tmp_path / engine), "--epochs", "2", "--engine", engine]) == 0
    local, on_ray = (tmp_path / e / "loso_synthme_quick" for e in ("local", "ray"))
    assert (on_ray / "predictions.csv").read_text() == (local / "predictions.csv").read_text()
    assert json.loads((on_ray / "metrics.json").read_text())["honest"] == json.loads((local / "metrics.json").read_text())["honest"]
    capsys.readouterr()


def test_commands_without_ray_say_how_to_install(tmp_path, monkeypatch, capsys):
    from hmrm.cli import main
    from hmrm.train.reproduce import CONFIG_DIR

    monkeypatch.setitem(sys.modules, "ray", None)
    cfg = str(CONFIG_DIR / "loso_synthme_quick.yaml")
    assert main(["reproduce", cfg, "--out", str(tmp_path), "--engine", "ray"]) == 2
    assert "pip install -e '.[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "loso_synthme_quick").exists()  # nothing ran
