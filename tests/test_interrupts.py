"""Ctrl-C and SIGTERM stop a LOSO run within seconds, on every engine that trains in other processes:
no queued fold starts after the signal, the running folds stop where they are (keeping their last
checkpoint, leaving no half-written file), the exit status says so and the message gives the command
that continues, and running it finishes the job with the predictions of an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hmrm.data.synthme import tiny_synthme
from hmrm.train.loso import fold_dirname
from hmrm.utils import cache_dir

#: epochs long enough that a fold of the tiny set takes several seconds on one thread (about 5 s here), well
#: beyond the second worker's later start (about 1.5 s on 2 cores), so that the first fold is still running
#: when the signal comes
EPOCHS = 1500


@pytest.fixture(scope="module")
def three_subjects():
    root = cache_dir("synthme_tiny_s3_seed0")   # the tiny build chapter 08 uses
    samples = tiny_synthme(root, subjects=3)
    return root, sorted(samples.groups)


def _command(root: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hmrm.cli", "loso", "--data-root", str(root), "--model", "ststnet", "--flow", "gt",
            "--input-size", "64", "--epochs", str(EPOCHS), "--checkpoint-every", "25", "--no-test-curve",
            "--run-dir", str(run_dir), "--quiet", *extra]


def _started(run_dir: Path, subjects) -> list[str]:
    """The folds that have written a checkpoint (so have started)."""
    return [s for s in subjects if (run_dir / "folds" / fold_dirname(s) / "checkpoint.pt").is_file()]


def _interrupt(cmd, run_dir, subjects, how: str, timeout: float = 120):
    """Start ``cmd``, wait until two folds have started, send the signal, and return (exit status,
    seconds from the signal to the exit, stderr, folds started before the signal)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        end = time.monotonic() + timeout
        while len(_started(run_dir, subjects)) < 2:
            assert proc.poll() is None, f"the run ended before two folds started: {proc.stderr.read()}"
            assert time.monotonic() < end, "two folds did not start in time"
            time.sleep(0.1)
        before = _started(run_dir, subjects)
        t0 = time.monotonic()
        if how == "ctrl-c":     # a terminal's Ctrl-C: SIGINT to the whole process group
            os.killpg(proc.pid, signal.SIGINT)
        else:                   # a scheduler's stop: SIGTERM to the main process only
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        return proc.returncode, time.monotonic() - t0, err, before
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def _check_stopped(run_dir, subjects, rc, seconds, err, before, expect_rc):
    assert rc == expect_rc, err
    assert seconds < 15, f"took {seconds:.1f} s to stop after the signal"
    assert "Traceback" not in err, err
    assert "To continue, run the same command again" in err and "--run-dir" in err, err
    queued = [s for s in subjects if s not in before]
    assert queued and not any((run_dir / "folds" / fold_dirname(s)).exists() for s in queued), \
        "a fold that was queued at the signal started after it"
    assert not list(run_dir.glob("folds/*/result.json")), "the running folds should have stopped, not finished"
    assert not [p for p in run_dir.rglob(".*.part*")], "a half-written temporary file was left behind"


def _finish_and_compare(cmd, run_dir, reference, tmp_path):
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    if not (reference / "predictions.csv").is_file():
        whole = subprocess.run([*cmd[:cmd.index("--run-dir") + 1], str(reference), *cmd[cmd.index("--run-dir") + 2:]],
                               capture_output=True, text=True, timeout=300)
        assert whole.returncode == 0, whole.stderr
    assert (run_dir / "predictions.csv").read_text() == (reference / "predictions.csv").read_text()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Where the uninterrupted run lands (made once, by the first test that needs it)."""
    return tmp_path_factory.mktemp("uninterrupted") / "run"


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_worker_run_stops_at_once_and_resumes_to_the_same_predictions(three_subjects, reference,
                                                                                     tmp_path, how):
    root, subjects = three_subjects
    run_dir = tmp_path / "run"
    cmd = _command(root, run_dir, "--workers", "2")
    rc, seconds, err, before = _interrupt(cmd, run_dir, subjects, how)
    _check_stopped(run_dir, subjects, rc, seconds, err, before, 130 if how == "ctrl-c" else 143)
    if how == "ctrl-c":   # SIGTERM stops the same way; one resumed run shows the bits are the same
        _finish_and_compare(cmd, run_dir, reference, tmp_path)


def test_an_interrupted_ray_run_stops_at_once_and_resumes_to_the_same_predictions(three_subjects, reference, tmp_path):
    pytest.importorskip("ray", reason="the ray engine's tests need the ray extra: pip install -e '.[ray]'")
    root, subjects = three_subjects
    run_dir = tmp_path / "run"
    cmd = _command(root, run_dir, "--engine", "ray", "--workers", "2")
    rc, seconds, err, before = _interrupt(cmd, run_dir, subjects, "ctrl-c", timeout=180)
    _check_stopped(run_dir, subjects, rc, seconds, err, before, 130)
    _finish_and_compare(cmd, run_dir, reference, tmp_path)
