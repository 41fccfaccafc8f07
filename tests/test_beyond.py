"""Experiments beyond the paper (hmrm.beyond): apex estimators, variant runs and `hmrm beyond apex`."""
import json

import numpy as np
import pytest

from hmrm.beyond import APEX_ESTIMATORS, apex_estimates, apex_experiment, estimate_apex_difference


def test_frame_difference_finds_the_frame_most_unlike_onset(tmp_path):
    import cv2

    frames = []
    for t, level in enumerate([100, 100, 104, 130, 112, 100]):
        img = np.full((48, 48), level, np.uint8)
        frames.append(tmp_path / f"{t}.png")
        cv2.imwrite(str(frames[-1]), img)
    assert estimate_apex_difference(frames, 0, 5, width=48, smooth=1) == 3
    assert estimate_apex_difference(frames, 0, 2, width=48, smooth=1) == 2   # stays inside onset..offset
    with pytest.raises(ValueError, match="onset <= offset"):
        estimate_apex_difference(frames, 4, 2)


def test_apex_estimates_are_cached_and_within_the_clip(tiny_synthme, tmp_path):
    from hmrm.data.synthme import load_synthme

    samples = load_synthme(tiny_synthme)
    cache = tmp_path / "apex.json"
    est = apex_estimates(samples, list(APEX_ESTIMATORS), cache, progress=False)
    assert est["true"] == [s.apex for s in samples]
    for name, a in est.items():
        assert all(s.onset <= x <= s.offset for s, x in zip(samples, a)), name
    stored = json.loads(cache.read_text())
    assert len(stored) == 3 * len(samples)  # every estimated apex, the true one needs no cache
    again = apex_estimates(samples, ["frame_difference"], cache, progress=False)
    assert again["frame_difference"] == est["frame_difference"]


def test_apex_experiment_trains_each_variant_and_pairs_it_with_the_truth(tiny_synthme, tmp_path, capsys):
    from hmrm.cli import main

    with pytest.raises(ValueError, match="TRUE apex"):
        apex_experiment(tiny_synthme, tmp_path / "x", flow="gt")
    rc = main(["beyond", "apex", "--synthme", str(tiny_synthme), "--out", str(tmp_path / "apex"), "--estimators",
               "true", "middle", "--models", "ststnet", "--epochs", "1", "--flow", "dis", "--cache-dir",
               str(tmp_path / "cache"), "--table", str(tmp_path / "apex.md"), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "reference" in out and "middle" in out
    summary = json.loads((tmp_path / "apex" / "apex.json").read_text())
    rows = {r["variant"]: r for r in summary["rows"]}
    assert set(rows) == {"true", "middle"} and "difference" in rows["middle"] and "difference" not in rows["true"]
    assert summary["errors"]["true"]["mean_abs_error"] == 0
    assert (tmp_path / "apex" / "middle" / "ststnet" / "metrics.json").is_file()
    assert "ΔUF1" in (tmp_path / "apex.md").read_text()


def test_head_motion_experiment_measures_flow_error_and_both_switch_settings(tiny_synthme, tmp_path, capsys):
    from hmrm.cli import main

    rc = main(["beyond", "head-motion", "--synthme", str(tiny_synthme), "--out", str(tmp_path / "hm"), "--error-flows",
               "gt", "--models", "ststnet", "--epochs", "1", "--flow", "gt", "--cache-dir", str(tmp_path / "cache"),
               "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "head motion removed" in out and "remove" in out
    s = json.loads((tmp_path / "hm" / "head_motion.json").read_text())
    e = s["errors"][0]
    assert e["method"] == "gt" and e["keep"] == pytest.approx(e["head"])  # the exact flow errs by the head's motion
    assert e["remove"] < e["keep"] and e["difference_interval"][1] < 0
    assert {r["variant"] for r in s["rows"]} == {"keep", "remove"}
    cfg = json.loads((tmp_path / "hm" / "remove" / "ststnet" / "config.json").read_text())
    assert cfg["config"]["head_motion"] == "remove"


def test_upscaled_flow_keeps_the_frame_size_and_the_motion():
    from hmrm.features import UPSCALED, estimate_flow

    rng = np.random.default_rng(0)
    import cv2

    base = cv2.GaussianBlur((rng.random((80, 80)) * 255).astype(np.uint8), (0, 0), 2)
    onset = np.stack([base] * 3, -1)
    apex = np.roll(onset, 1, axis=1)  # everything moves one pixel right
    assert set(UPSCALED) >= {"dis_tuned_x2"}
    f = estimate_flow(onset, apex, "dis_tuned_x2")
    assert f.shape == (80, 80, 2) and f.dtype == np.float32
    assert abs(float(np.median(f[10:-10, 10:-10, 0])) - 1.0) < 0.15 and abs(float(np.median(f[..., 1]))) < 0.15


def test_lowres_experiment_pairs_the_remedy_and_not_the_other_build(tiny_synthme, tmp_path):
    from hmrm.beyond import lowres_experiment
    from hmrm.data.synthme import SynthConfig, build_synthme

    low = tmp_path / "low"
    build_synthme(low, SynthConfig.preset("lowres", clips_per_subject=4, frames=(8, 8)), max_subjects=2, progress=False,
                  workers=1)
    s = lowres_experiment(tiny_synthme, low, tmp_path / "lr", models=["ststnet"], epochs=1, flow="dis",
                          remedy="dis_tuned_x2", cache_dir=tmp_path / "cache", progress=False, log=lambda m: None)
    rows = {r["variant"]: r for r in s["rows"]}
    assert set(rows) == {"lowres", "lowres_dis_tuned_x2", "default_size"}
    assert rows["lowres_dis_tuned_x2"]["difference"] is not None  # same clips: paired
    assert "difference" not in rows["lowres"]
    assert "reference" in s["table"]
    acc = {(r["size"], r["method"]) for r in s["accuracy"]}
    assert acc == {(136, "dis"), (136, "dis_tuned_x2"), (256, "dis"), (256, "dis_tuned_x2")}
    assert "EPE / motion" in s["table"]


def test_flow_accuracy_is_zero_for_the_exact_flow_and_scales_with_the_input(tiny_synthme):
    from hmrm.beyond import flow_accuracy, flow_accuracy_table
    from hmrm.data.synthme import load_synthme

    samples = load_synthme(tiny_synthme)
    gt, dis = flow_accuracy(samples, ("gt", "dis"), input_size=64, progress=False)
    assert gt["epe"] < 1e-6 and gt["input_epe"] < 1e-6 and gt["relative"] < 1e-6
    assert dis["epe"] > 0.01 and dis["motion"] == gt["motion"] > 0
    assert abs(dis["relative"] - dis["epe"] / dis["motion"]) < 1e-12
    assert dis["relative_interval"][0] <= dis["relative"] <= dis["relative_interval"][1]
    # shrinking 256 px to 64 px divides every vector by 4: the true motion at the input is about a quarter
    assert 0.2 < dis["input_motion"] / dis["motion"] < 0.3
    assert dis["clips"] == len(samples) and dis["size"] == 256
    one = flow_accuracy(samples[:1], ("dis",), progress=False)[0]  # one subject: no interval, no error
    assert np.isnan(one["epe_interval"]).all() and one["epe"] > 0
    assert "| dis |" in flow_accuracy_table([gt, dis], ["a", "b"])
