"""Temperature scaling, ECE and the low-confidence flag (hmrm.train.calibration), and `hmrm calibrate`."""
import csv
import json

import numpy as np
import pytest

from hmrm.cli import main
from hmrm.train.calibration import (
    calibrate, calibrate_run, calibration_table, cross_fit_temperatures, expected_calibration_error, fit_temperature,
    reliability, softmax,
)


def _sampled(n=6000, t_true=1.0, seed=0, k=3, scale=3.0):
    """Logits and labels drawn from softmax(logits / t_true): calibrated at temperature t_true."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, scale, (n, k))
    p = softmax(z, t_true)
    y = (rng.random(n)[:, None] > np.cumsum(p, 1)).sum(1)
    return z, y


def test_ece_is_small_when_calibrated_and_large_when_overconfident():
    z, y = _sampled(t_true=1.0)
    assert expected_calibration_error(softmax(z), y) < 0.03
    z, y = _sampled(t_true=3.0)  # labels noisier than the logits claim
    assert expected_calibration_error(softmax(z), y) > 0.15


def test_fit_temperature_recovers_the_temperature_of_the_labels():
    for t in (0.5, 1.0, 2.5):
        z, y = _sampled(t_true=t, n=8000, seed=1)
        assert fit_temperature(z, y) == pytest.approx(t, rel=0.12)


def test_reliability_counts_every_prediction_once():
    z, y = _sampled(n=500)
    r = reliability(softmax(z), y, n_bins=7)
    assert sum(r["count"]) == 500 and len(r["lower"]) == 7
    assert all((a is None) == (c == 0) for a, c in zip(r["accuracy"], r["count"]))


def _groups(n, s=5):
    return [f"sub{i % s}" for i in range(n)]


def test_a_subjects_temperature_never_reads_its_own_labels():
    z, y = _sampled(n=600, t_true=2.0)
    g = _groups(600)
    a = cross_fit_temperatures(z, y, g)
    y2 = y.copy()
    held = np.array([x == "sub0" for x in g])
    y2[held] = (y2[held] + 1) % 3
    b = cross_fit_temperatures(z, y2, g)
    assert a["sub0"] == b["sub0"]
    assert all(a[s] != b[s] for s in a if s != "sub0")


def test_calibration_keeps_the_predicted_class_and_lowers_ece_of_an_overconfident_model():
    z, y = _sampled(n=3000, t_true=3.0, seed=2)
    g = _groups(3000, 10)
    cal = calibrate([str(i) for i in range(3000)], y, softmax(z), g)
    assert (cal.calibrated.argmax(1) == cal.raw.argmax(1)).all()
    s = cal.summary(n_resamples=500)
    assert s["calibrated"]["ece"] < s["raw"]["ece"] / 2
    assert s["ece_difference"]["interval"][1] < 0
    assert 2.4 < s["temperature"]["median"] < 3.6
    flagged = cal.low_confidence
    assert s["low_confidence"]["flagged"] == int(flagged.sum()) > 0
    assert s["low_confidence"]["accuracy_flagged"] < s["low_confidence"]["accuracy_unflagged"]


def test_one_subject_is_refused():
    z, y = _sampled(n=30)
    with pytest.raises(ValueError, match="at least two"):
        cross_fit_temperatures(z, y, ["a"] * 30)


def _fake_run(root, n_subjects=4, per=30, seed=3):
    z, y = _sampled(n=n_subjects * per, t_true=2.0, seed=seed)
    p = softmax(z)
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"data": {"classes": ["negative", "positive", "surprise"]}}))
    for s in range(n_subjects):
        sl = slice(s * per, (s + 1) * per)
        d = root / "folds" / f"s{s}"
        d.mkdir(parents=True)
        d.joinpath("result.json").write_text(json.dumps({
            "subject": f"s{s}", "keys": [f"s{s}/{i}" for i in range(per)], "true": y[sl].tolist(),
            "probs": p[sl].tolist()}))
    return root


def test_calibrate_run_writes_its_files_and_the_cli_prints_the_table(tmp_path, capsys):
    run = _fake_run(tmp_path / "run")
    s = calibrate_run(run, n_resamples=300)
    rows = list(csv.DictReader(open(run / "calibrated_predictions.csv")))
    assert len(rows) == 120 and set(rows[0]) >= {"p_calibrated_surprise", "temperature", "low_confidence"}
    assert sum(int(r["low_confidence"]) for r in rows) == s["low_confidence"]["flagged"]
    assert json.loads((run / "calibration.json").read_text())["raw"]["ece"] == s["raw"]["ece"]
    assert (run / "reliability.png").stat().st_size > 0
    assert "| run |" in calibration_table({"run": s})
    assert main(["calibrate", str(run), "--no-figure", "--out", str(tmp_path / "t.md")]) == 0
    assert "ECE raw" in capsys.readouterr().out and "ECE raw" in (tmp_path / "t.md").read_text()


def test_cli_names_a_folder_without_folds(tmp_path, capsys):
    assert main(["calibrate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "hmrm loso" in err


def _random_run(rng, calibrated: bool):
    """Held-out predictions of a few small subjects: sharp or soft, labels drawn from the probabilities
    (a calibrated model) or at random."""
    n_subjects = int(rng.integers(2, 7))
    keys, truth, probs, groups = [], [], [], []
    for s in range(n_subjects):
        n = int(rng.integers(1, 12))
        z = rng.normal(0, rng.uniform(0.3, 6), (n, 3))
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        t = [int(rng.choice(3, p=q)) for q in p] if calibrated else rng.integers(0, 3, n).tolist()
        keys += [f"s{s}/{i}" for i in range(n)]
        truth += t
        probs += p.tolist()
        groups += [f"s{s}"] * n
    return keys, truth, probs, groups


def test_every_reported_interval_holds_its_estimate():
    """ECE is biased under resampling, so its percentile interval can sit wholly above the estimate; the
    intervals are bias-corrected (BCa), and printed with their ends rounded outward. Over random runs
    (a few subjects of a few clips, calibrated or not) every interval holds its estimate, in the summary
    and as printed."""
    from hmrm.resultfiles import parse_cell

    rng = np.random.default_rng(0)
    for trial in range(60):
        keys, truth, probs, groups = _random_run(rng, calibrated=trial % 2 == 0)
        summary = calibrate(keys, truth, probs, groups).summary(n_resamples=1000, seed=trial)
        for name, value, interval in (("raw", summary["raw"]["ece"], summary["raw"]["ece_interval"]),
                                      ("calibrated", summary["calibrated"]["ece"], summary["calibrated"]["ece_interval"]),
                                      ("difference", summary["ece_difference"]["difference"],
                                       summary["ece_difference"]["interval"])):
            assert interval[0] - 1e-12 <= value <= interval[1] + 1e-12, (trial, name, value, interval)
        row = calibration_table({"r": summary}).splitlines()[-1].split(" | ")
        for cell in row[1:4]:
            printed = parse_cell(cell)
            assert printed.low <= printed.value <= printed.high, (trial, cell)
