"""Region explanations of a LOSO run (hmrm.explain) and `hmrm explain`."""
import json

import numpy as np
import pytest

from hmrm.explain import Explanations, explain_run, moved_regions, region_attention, region_means
from hmrm.face.regions import REGION_NAMES


def _face_landmarks(size=100):
    """A plausible frontal 68-point layout (dlib order) in a size x size image."""
    lm = np.zeros((68, 2))
    lm[0:17] = np.c_[np.linspace(15, 85, 17), 40 + 40 * np.sin(np.linspace(0, np.pi, 17))]  # jaw
    lm[17:22] = np.c_[np.linspace(22, 42, 5), np.full(5, 30)]
    lm[22:27] = np.c_[np.linspace(58, 78, 5), np.full(5, 30)]
    lm[27:31] = np.c_[np.full(4, 50), np.linspace(38, 55, 4)]
    lm[31:36] = np.c_[np.linspace(43, 57, 5), np.full(5, 60)]
    for start, cx in ((36, 32), (42, 68)):
        a = np.linspace(0, 2 * np.pi, 7)[:6]
        lm[start:start + 6] = np.c_[cx - 7 * np.cos(a), 40 - 3 * np.sin(a)]
    a = np.linspace(0, 2 * np.pi, 13)[:12]
    lm[48:60] = np.c_[50 - 14 * np.cos(a), 72 - 5 * np.sin(a)]
    a = np.linspace(0, 2 * np.pi, 9)[:8]
    lm[60:68] = np.c_[50 - 9 * np.cos(a), 72 - 2 * np.sin(a)]
    return lm * size / 100


def test_moved_regions_follow_the_action_units_and_their_side():
    lm = _face_landmarks()
    assert moved_regions("12", lm, 100) == ["mouth"]
    assert moved_regions("1+2", lm, 100) == ["right_eye", "left_eye"]
    assert moved_regions("R2", lm, 100) == ["right_eye"]
    assert moved_regions("L2", lm, 100) == ["left_eye"]
    assert moved_regions("", lm, 100) == []


def test_region_attention_sums_what_each_region_receives_over_grains():
    names = [f"{g}/{s}" for g in ("p8", "p16") for s in (*REGION_NAMES, "global")]
    att = np.zeros((1, 2, 10, 10))
    att[..., names.index("p16/mouth")] = 0.7
    att[..., names.index("p8/nose")] = 0.3
    r = region_attention(att, names)
    assert r.shape == (1, 4) and r[0].argmax() == REGION_NAMES.index("mouth")
    assert r[0].tolist() == pytest.approx([0, 0, 0.3, 0.7])


def test_region_means_reads_inside_each_box():
    m = np.zeros((1, 10, 10))
    m[0, 6:8, 2:4] = 1.0
    boxes = np.array([[[0, 0, 5, 5], [5, 0, 10, 5], [2, 6, 4, 8], [0, 5, 10, 10]]])
    assert region_means(m, boxes)[0].tolist() == pytest.approx([0, 0, 1.0, 0.08])


def test_summary_counts_hits_against_chance():
    moved = [["mouth"], ["mouth"], ["right_eye", "left_eye"], []]
    sal = np.eye(4)[[3, 0, 0, 2]]  # hit, miss, hit, (no moved region: left out)
    e = Explanations(list("abcd"), ["s1", "s1", "s2", "s2"], [""] * 4, moved, sal, None, np.zeros((4, 2, 2)),
                     np.zeros((4, 4, 4), int), np.zeros(4, int), np.zeros(4, int))
    s = e.summary(n_resamples=200)
    assert s["clips"] == 3 and s["saliency"]["hit_rate"] == pytest.approx(2 / 3)
    assert s["chance"] == pytest.approx((0.25 + 0.25 + 0.5) / 3) and "attention" not in s


def test_explain_run_rebuilds_every_fold_as_scored(tiny_synthme, tmp_path, capsys):
    """The explanations use each fold's final weights and input scale: they predict what the run predicted."""
    from hmrm.cli import main
    from hmrm.data.synthme import load_synthme
    from hmrm.train.loso import LOSOConfig, LOSOData, RunOptions, run_loso

    samples = load_synthme(tiny_synthme)
    cfg = LOSOConfig(model_overrides={"d_model": 16, "depth": 1, "n_heads": 2}, epochs=2, batch_size=4, flow="gt",
                     input_size=32)
    run_loso(samples, cfg, tmp_path / "run", RunOptions(progress=False, cache_dir=tmp_path / "cache"))
    data = LOSOData.from_samples(samples, "gt", 32, cache_dir=tmp_path / "cache", progress=False)
    e = explain_run(tmp_path / "run", data, samples, progress=False)
    stored = {}
    for path in (tmp_path / "run" / "folds").glob("*/result.json"):
        r = json.loads(path.read_text())
        stored.update(zip(r["keys"], r["pred"]))
    assert sorted(e.keys) == sorted(s.key for s in samples)
    assert [int(p) for p in e.pred] == [stored[k] for k in e.keys]
    assert e.attention_regions.shape == (len(samples), 4) and e.saliency.shape == (len(samples), 32, 32)
    assert all(m for m in e.moved)  # every SynthME clip moves some region
    data.labels[0] = (data.labels[0] + 1) % len(data.classes)  # other inputs than the run's: refused
    with pytest.raises(Exception, match="fingerprints"):
        explain_run(tmp_path / "run", data, samples, progress=False)
    assert main(["explain", str(tmp_path / "run"), "--synthme", str(tiny_synthme), "--cache-dir",
                 str(tmp_path / "cache"), "--quiet", "--figure-clips", "2"]) == 0
    assert "gradient x input" in capsys.readouterr().out
    assert (tmp_path / "run" / "explanations.png").stat().st_size > 0
