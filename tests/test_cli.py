import subprocess
import sys

from hmrm.cli import main


def test_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for cmd in ("doctor", "facebank", "synthme"):
        assert cmd in out


def test_synthme_help_explains_every_option():
    out = subprocess.run([sys.executable, "-m", "hmrm.cli", "synthme", "--help"], capture_output=True, text=True).stdout
    for opt in ("--out", "--preset", "--subjects", "--clips-per-subject", "--seed", "--format", "--workers", "--offline", "--figure"):
        assert opt in out


def test_doctor_reports_each_component(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for name in ("torch", "SIMD kernels", "CUDA", "mamba-ssm kernel", "fused CPU scan", "dlib model", "MTCNN weights", "face bank",
                 "GRU-AOFE weights"):
        assert name in out
    assert "FAIL" not in out


def test_errors_are_reported_not_raised(tmp_path, capsys):
    # a folder holding another build's manifest is refused with a message, exit code 2
    (tmp_path / "manifest.json").write_text('{"generator": "0"}')
    assert main(["synthme", "--out", str(tmp_path), "--preset", "tiny", "--subjects", "1", "--offline"]) == 2
    assert "other settings" in capsys.readouterr().err
