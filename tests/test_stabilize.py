"""Head-motion compensation (hmrm.flow.stabilize) and its switch through features, LOSOConfig and run folders."""
import json

import numpy as np
import pytest

from hmrm.flow.stabilize import fit_affine_flow, head_motion, remove_head_motion, stable_mask
from test_explain import _face_landmarks


def _affine(size, a, b):
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    u = a[0] + a[1] * xs / size + a[2] * ys / size
    v = b[0] + b[1] * xs / size + b[2] * ys / size
    return np.stack([u, v], -1).astype(np.float32)


def test_an_affine_flow_is_fitted_exactly():
    f = _affine(64, (1.5, -0.4, 0.2), (-2.0, 0.3, 0.5))
    assert np.abs(fit_affine_flow(f) - f).max() < 1e-4
    mask = np.zeros((64, 64), bool)
    mask[5:20, 5:40] = True
    assert np.abs(fit_affine_flow(f, mask) - f).max() < 1e-4  # a part determines the whole
    with pytest.raises(ValueError, match="at least 3"):
        fit_affine_flow(f, np.zeros((64, 64), bool))


def test_head_motion_is_removed_and_the_expression_kept():
    size = 100
    lm = _face_landmarks(size)
    head = _affine(size, (2.5, 0.8, -0.3), (-1.5, 0.2, 0.6))
    expr = np.zeros((size, size, 2), np.float32)
    expr[64:80, 38:62, 1] = -1.0            # the mouth moves up by a pixel
    expr[26:34, 22:44, 1] = -0.8            # a brow rises
    mask = stable_mask(lm, size)
    assert mask.sum() > 500 and not mask[70, 50] and not mask[30, 30]  # mouth and brow are not stable pixels
    got = remove_head_motion(head + expr, lm)
    assert np.abs(got - expr).max() < 0.02
    assert np.abs(head_motion(head + expr, lm) - head).max() < 0.02


def test_robust_refits_drop_expression_that_reaches_the_stable_pixels():
    size = 100
    lm = _face_landmarks(size)
    head = _affine(size, (1.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    expr = np.zeros((size, size, 2), np.float32)
    expr[52:62, 15:30, 1] = -1.5            # a cheek raiser: on stable pixels
    plain = remove_head_motion(head + expr, lm, iterations=0)
    robust = remove_head_motion(head + expr, lm, iterations=3)
    outside = np.ones((size, size), bool)
    outside[52:62, 15:30] = False
    assert np.abs(robust - expr)[outside].mean() < np.abs(plain - expr)[outside].mean() / 3


def test_synthme_stores_the_expression_only_flow(tiny_synthme):
    from hmrm.data.synthme import load_synthme
    from hmrm.data.synthme.load import load_gt_flow
    from hmrm.features import load_aligned_pair
    from hmrm.flow import endpoint_error

    before, after = [], []
    for s in load_synthme(tiny_synthme):
        gt = load_gt_flow(s)
        m = gt["face_mask"]
        before.append(endpoint_error(gt["flow"], gt["flow_expression"], m))
        after.append(endpoint_error(remove_head_motion(gt["flow"], load_aligned_pair(s).landmarks),
                                    gt["flow_expression"], m))
    # the default preset's head moves little (about 0.1 px between onset and apex): compensation
    # must still bring the exact flow closer to the expression's on average
    assert np.mean(before) > 0.05 and np.mean(after) < np.mean(before), (before, after)


def test_the_switch_reaches_the_inputs_the_config_and_the_run_folder(tiny_synthme, tmp_path):
    from hmrm.data.synthme import load_synthme
    from hmrm.options import OptionError
    from hmrm.train.loso import LOSOConfig, LOSOData, RunOptions, run_loso, run_name

    with pytest.raises(OptionError, match="head_motion"):
        LOSOConfig(head_motion="stabilise")
    samples = load_synthme(tiny_synthme)
    keep = LOSOData.from_samples(samples, "gt", 32, cache_dir=tmp_path / "c", progress=False)
    removed = LOSOData.from_samples(samples, "gt", 32, cache_dir=tmp_path / "c", progress=False, head_motion="remove")
    assert keep.fingerprint() != removed.fingerprint() and removed.source["head_motion"] == "remove"
    assert np.abs(removed.x[:, :2]).mean() < np.abs(keep.x[:, :2]).mean()  # less motion once the head's is gone
    cfg = LOSOConfig(model="ststnet", epochs=1, batch_size=4, flow="gt", input_size=32, head_motion="remove")
    assert "headremoved" in run_name("synthme", cfg)
    with pytest.raises(ValueError, match="head_motion"):
        run_loso(keep, cfg, tmp_path / "r", RunOptions(progress=False))
    run_loso(removed, cfg, tmp_path / "r", RunOptions(progress=False, figures=False))
    # a run folder written before the field existed reads it as its default ("keep")
    old = tmp_path / "old"
    cfg_keep = LOSOConfig(model="ststnet", epochs=1, batch_size=4, flow="gt", input_size=32)
    run_loso(keep, cfg_keep, old, RunOptions(progress=False, figures=False))
    record = json.loads((old / "config.json").read_text())
    del record["config"]["head_motion"]
    (old / "config.json").write_text(json.dumps(record))
    assert run_loso(keep, cfg_keep, old, RunOptions(progress=False, figures=False)).complete
