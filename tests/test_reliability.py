"""Faults a user can cause, each replayed: a refused option writes nothing, a damaged annotation row is an
error naming file, line and column, file-system errors end in a message (exit status 2, no traceback),
frame numbers are reported as the file writes them, hints are commands that can be pasted, files keep
the user's umask, retrained flow weights invalidate cached inputs, a run folder has one writer at a
time, and worker processes end with their parent."""
from __future__ import annotations

import errno
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hmrm.cli import describe_os_error, main
from hmrm.data.records import DataError
from hmrm.data.synthme import load_synthme
from hmrm.train.loso import LOSOConfig, LOSOData, RunOptions, run_loso
from hmrm.utils import FolderBusyError, atomic_write_text, folder_lock, sha256_file

REPO = Path(__file__).resolve().parents[1]


def _code(argv: list[str]) -> int:
    """The exit status of ``hmrm ARGV`` (argparse refusals exit through SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture()
def synthme_copy(tiny_synthme, tmp_path):
    """A private copy of the tiny SynthME, in a folder whose name has a space (paths must be quoted)."""
    root = tmp_path / "my data" / "synthme"
    shutil.copytree(tiny_synthme, root)
    return root


def _edit_row(root: Path, line: int, column: str, value: str) -> None:
    ann = root / "annotations.csv"
    rows = ann.read_text().splitlines()
    header = rows[0].split(",")
    cells = rows[line - 1].split(",")
    cells[header.index(column)] = value
    rows[line - 1] = ",".join(cells)
    ann.write_text("\n".join(rows) + "\n")


# ----------------------------------------------------------------------------- 1. refused options write nothing
@pytest.mark.parametrize("option, message", [
    (["--lr", "-1"], "--lr: must be a number > 0"),
    (["--set", "d_model=abc"], "--set d_model: must be an integer >= 1, got 'abc'"),
    (["--set", "depth=0"], "--set depth: must be an integer >= 1, got 0"),
    (["--set", "nonsense"], "--set: needs KEY=VALUE"),
    (["--schedule", "cosine", "--warmup-epochs", "5"], "--warmup-epochs: must be less than epochs"),
    (["--input-size", "8"], "--input-size: the default options do not build a hmrm network at 8 px"),
    (["--workers", "0"], "--workers: must be an integer >= 1"),
    (["--threads", "-1"], "--threads: must be an integer >= 1"),
    (["--max-minutes", "-1"], "--max-minutes: must be a number of minutes > 0"),
    (["--seeds", "0"], "--seeds: must be an integer >= 1"),
])
def test_a_refused_option_leaves_no_run_folder(tiny_synthme, tmp_path, capsys, option, message):
    run = tmp_path / "run"
    argv = ["loso", "--data-root", str(tiny_synthme), "--flow", "gt", "--epochs", "1", "--run-dir", str(run), "--quiet"]
    assert _code(argv + option) == 2
    assert message in capsys.readouterr().err
    assert not run.exists()


def test_the_corrected_command_then_runs(tiny_synthme, tmp_path):
    run = tmp_path / "run"
    argv = ["loso", "--data-root", str(tiny_synthme), "--flow", "gt", "--model", "ststnet", "--input-size", "32",
            "--epochs", "1", "--folds", "1", "--run-dir", str(run), "--quiet", "--no-test-curve"]
    assert _code(argv + ["--lr", "-1"]) == 2
    assert _code(argv) == 0 and (run / "metrics.json").is_file()


# ----------------------------------------------------------------------------- 2. damaged annotation rows
@pytest.mark.parametrize("value, problem", [("happi", "emotion 'happi' is not a word any data set uses"),
                                            ("", "the emotion cell is empty")])
def test_a_damaged_emotion_is_an_error_naming_file_line_and_column(synthme_copy, value, problem):
    _edit_row(synthme_copy, 3, "emotion", value)
    with pytest.raises(DataError) as info:
        load_synthme(synthme_copy)
    assert f"{synthme_copy / 'annotations.csv'}, line 3, column 'emotion': {problem}" in str(info.value)
    assert "--lenient" in str(info.value)


def test_lenient_skips_the_row_with_a_warning_and_counts_it(synthme_copy):
    _edit_row(synthme_copy, 3, "emotion", "happi")
    with pytest.warns(UserWarning, match="1 unreadable row"):
        samples = load_synthme(synthme_copy, lenient=True)
    assert len(samples) == 7 and len(samples.unreadable) == 1
    assert "UNREADABLE rows skipped (--lenient): 1" in samples.summary()


def test_known_emotions_outside_the_scheme_are_still_dropped_and_counted(synthme_copy):
    _edit_row(synthme_copy, 3, "emotion", "Others")  # a real word, left out by composite3
    samples = load_synthme(synthme_copy)
    assert len(samples) == 7 and samples.dropped == {"Others": 1} and not samples.unreadable


def test_a_sheet_emotion_is_named_with_the_column_as_the_file_spells_it(tmp_path):
    from fake_datasets import make_samm
    from hmrm.data.samm import load_samm

    root = make_samm(tmp_path / "samm", [("006", "006_1_2", 10, 12, 14, "Happiness"), ("006", "006_1_3", 10, 12, 14, "Hapiness")])
    sheet = root / "SAMM_Micro_FACS_Codes_v2.xlsx"
    with pytest.raises(DataError, match=re.escape(str(sheet)) + r", line \d+, column 'Estimated Emotion': emotion 'Hapiness'"):
        load_samm(root, estimate_apex=False)
    with pytest.warns(UserWarning, match="unreadable"):
        assert len(load_samm(root, estimate_apex=False, lenient=True)) == 1


# ----------------------------------------------------------------------------- 3. file-system errors
def test_a_file_where_a_folder_should_be_gives_a_message_not_a_traceback(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["synthme", "--out", str(afile), "--preset", "tiny", "--subjects", "1", "--offline"]) == 2
    err = capsys.readouterr().err
    assert f"cannot use {afile}" in err and "a file is in the way" in err.lower() and "Traceback" not in err


def test_a_full_disk_is_reported_with_the_path_and_the_way_on(tiny_synthme, tmp_path, capsys, monkeypatch):
    import hmrm.train.loso.run_folder as run_folder

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(run_folder, "atomic_write_text", full)
    run = tmp_path / "run"
    argv = ["loso", "--data-root", str(tiny_synthme), "--flow", "gt", "--model", "ststnet", "--input-size", "32",
            "--epochs", "1", "--run-dir", str(run), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"cannot use {run / 'config.json'}: No space left on device. The disk is full" in err
    assert "run the same command again" in err and "Traceback" not in err
    with pytest.raises(OSError):  # --debug shows where it happened
        main(["--debug"] + argv)


def test_os_errors_name_the_path_and_the_fix():
    text = describe_os_error(PermissionError(errno.EACCES, "Permission denied", "/data/synthme/manifest.json"))
    assert text.startswith("cannot use /data/synthme/manifest.json: Permission denied. Permission denied:")
    assert "ls -l" in text
    assert "read-only" in describe_os_error(OSError(errno.EROFS, "Read-only file system", "/mnt/x"))


# ----------------------------------------------------------------------------- 4. frame numbers as the file writes them
def test_frame_numbers_are_reported_one_based_as_in_the_file(synthme_copy):
    _edit_row(synthme_copy, 2, "apex", "17")  # the tiny clips have 16 frames, img001 ... img016
    with pytest.raises(DataError, match=r"line 2: need 1 <= onset <= apex <= offset <= n_frames .* got onset=\d+ "
                                        r"apex=17 offset=16 n_frames=16"):
        load_synthme(synthme_copy)


# ----------------------------------------------------------------------------- 5. hints that can be pasted
def _hint(message: str) -> list[str]:
    command = re.search(r"`(hmrm synthme [^`]+)`", message).group(1)
    return shlex.split(command)


def test_the_rebuild_hint_is_the_build_command_quoted(synthme_copy):
    (synthme_copy / "annotations.csv").unlink()
    with pytest.raises(DataError) as info:
        load_synthme(synthme_copy)
    argv = _hint(str(info.value))
    assert argv[:4] == ["hmrm", "synthme", "--out", str(synthme_copy)]  # one word, the space quoted
    assert argv[4:] == ["--preset", "tiny", "--subjects", "2"]
    assert main(argv[1:] + ["--offline"]) == 0  # pasted as given, it finishes the build
    assert len(load_synthme(synthme_copy)) == 8


def test_a_refused_build_says_what_differs_and_how_to_reuse_it(synthme_copy, capsys):
    assert main(["synthme", "--out", str(synthme_copy), "--seed", "3", "--preset", "tiny", "--subjects", "2",
                 "--offline"]) == 2
    err = capsys.readouterr().err
    assert "seed 0 there, 3 here" in err
    assert f"To finish or reuse that build: hmrm synthme --out {shlex.quote(str(synthme_copy))} --preset tiny " \
           "--subjects 2." in err


def test_the_prepare_hint_repeats_the_command_that_filled_the_folder(synthme_copy, tmp_path, capsys):
    from hmrm.data.prepare import sample_dir
    from hmrm.features import load_aligned_pair

    out = tmp_path / "prepared crops"
    assert main(["prepare", "--dataset", "synthme", "--root", str(synthme_copy), "--out", str(out), "--size", "64",
                 "--limit", "1", "--quiet"]) == 0
    sample = load_synthme(synthme_copy)[1]  # not prepared (--limit 1)
    with pytest.raises(DataError) as info:
        load_aligned_pair(sample, prepared=out)
    command = re.search(r"Run `(hmrm prepare [^`]+)`", str(info.value)).group(1)
    assert shlex.split(command) == ["hmrm", "prepare", "--dataset", "synthme", "--root", str(synthme_copy.resolve()),
                                    "--out", str(out.resolve()), "--size", "64"]
    assert main(shlex.split(command)[1:] + ["--quiet"]) == 0  # pasted, it prepares the rest
    assert (sample_dir(out, sample) / "face.json").is_file()


# ----------------------------------------------------------------------------- 6. values checked with their key
def test_set_with_a_word_for_a_number_names_the_key(tiny_synthme, tmp_path, capsys):
    assert main(["loso", "--data-root", str(tiny_synthme), "--set", "d_model=abc", "--run-dir",
                 str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--set d_model: must be an integer >= 1, got 'abc' (str)" in err and "not all arguments" not in err


# ----------------------------------------------------------------------------- 7. the user's umask
@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_atomic_writes_keep_the_umask(tmp_path, mask):
    before = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(before)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_synthme_build_is_readable_by_others_under_umask_022(tmp_path):
    script = textwrap.dedent(f"""
        import os
        os.umask(0o022)
        from hmrm.data.synthme import SynthConfig, build_synthme
        build_synthme({str(tmp_path / 's')!r}, SynthConfig.preset("tiny", clips_per_subject=1), max_subjects=1,
                      progress=False, workers=1, offline=True)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO)
    for name in ("annotations.csv", "manifest.json", "subjects.csv"):
        assert (tmp_path / "s" / name).stat().st_mode & 0o777 == 0o644, name
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in (tmp_path / "s" / "gt_flow").rglob("*.npz"))


# ----------------------------------------------------------------------------- 8. retrained weights, fresh inputs
def test_retrained_flow_weights_invalidate_cached_inputs(tmp_path, monkeypatch):
    import hmrm.flow.pretrained as pretrained
    from hmrm.features import FlowCache, build_flow_inputs
    from test_features import _fake_synthme_sample

    samples = [_fake_synthme_sample(tmp_path / "set", "s01")]
    weights = tmp_path / "weights"
    shutil.copytree(pretrained.WEIGHTS_DIR, weights)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", weights)
    before = FlowCache(tmp_path / "c", "gru_aofe", 32).tag
    a = build_flow_inputs(samples, "gru_aofe", size=32, cache_dir=tmp_path / "c", progress=False)
    # retrain (here: other weights), then save them with their hash, as `hmrm flow train` does
    ckpt = torch.load(weights / "gru_aofe.pt", weights_only=True)
    ckpt["state_dict"] = {k: v * 1.5 if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, weights / "gru_aofe.pt")
    info = json.loads((weights / "gru_aofe.json").read_text())
    info["sha256"] = sha256_file(weights / "gru_aofe.pt")
    (weights / "gru_aofe.json").write_text(json.dumps(info))
    after = FlowCache(tmp_path / "c", "gru_aofe", 32)
    assert after.tag != before and not after.path(samples[0]).exists()
    b = build_flow_inputs(samples, "gru_aofe", size=32, cache_dir=tmp_path / "c", progress=False)
    assert not np.array_equal(a.x, b.x)  # computed with the new weights, in this same process


# ----------------------------------------------------------------------------- 9. one writer per run folder
def _tiny_data() -> LOSOData:
    rng = np.random.default_rng(0)
    n = 8
    return LOSOData(rng.normal(size=(n, 3, 16, 16)).astype(np.float32), np.tile([0, 0, 16, 16], (n, 4, 1)),
                    np.arange(n) % 3, [f"d/s{i % 2}" for i in range(n)], [f"k{i}" for i in range(n)],
                    ("a", "b", "c"), {"flow": "gt"})


def _hold(folder: Path) -> subprocess.Popen:
    script = "import sys, time\nfrom hmrm.utils import folder_lock\nwith folder_lock(sys.argv[1]):\n" \
             "    print('held', flush=True)\n    time.sleep(120)\n"
    proc = subprocess.Popen([sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_on_a_run_folder_is_refused_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    config = LOSOConfig(model="ststnet", epochs=1, input_size=16, flow="gt", record_test_curve=False)
    holder = _hold(run)
    try:
        with pytest.raises(FolderBusyError, match=f"run folder {run} is in use by another process \\(PID {holder.pid} "):
            run_loso(_tiny_data(), config, run, RunOptions(progress=False, figures=False))
        assert not (run / "config.json").exists()
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the operating system releases the lock
        holder.wait()
    assert run_loso(_tiny_data(), config, run, RunOptions(progress=False, figures=False)).finished


def test_the_lock_leaves_no_trace_in_the_folder_bytes(tmp_path):
    with folder_lock(tmp_path / "f"):
        assert (tmp_path / "f" / ".hmrm.lock.owner").is_file()
    assert [p.name for p in (tmp_path / "f").iterdir()] == [".hmrm.lock"]
    assert (tmp_path / "f" / ".hmrm.lock").stat().st_size == 0


# ----------------------------------------------------------------------------- 10. workers end with their parent
def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"  # a zombie has ended; only its exit status waits to be collected
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_workers_end_when_their_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import os, sys, time
        from pathlib import Path
        from hmrm.utils import worker_pool

        def note_pid(folder):
            Path(folder, str(os.getpid())).touch()

        if __name__ == "__main__":
            pool = worker_pool(2, note_pid, (sys.argv[1],), poll=0.2)
            jobs = [pool.submit(time.sleep, 120) for _ in range(4)]
            while len(os.listdir(sys.argv[1])) < 2:
                time.sleep(0.05)
            print("working", flush=True)
            time.sleep(120)
    """))
    pids = tmp_path / "pids"
    pids.mkdir()
    parent = subprocess.Popen([sys.executable, str(script), str(pids)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert parent.stdout.readline().strip() == "working"
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) == 2 and all(_alive(w) for w in workers)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 20
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)
