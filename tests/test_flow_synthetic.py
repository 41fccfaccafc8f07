import numpy as np

from hmrm.flow import warp_array
from hmrm.flow.synthetic import PairConfig, PairDataset, make_pair


def test_ground_truth_warps_frame2_back_to_frame1():
    ratios = []
    for i in range(8):
        a, b, flow, valid = make_pair(np.random.default_rng(i), PairConfig(size=96), noise=False)
        assert a.shape == b.shape == (96, 96) and flow.shape == (96, 96, 2) and valid.dtype == bool
        assert 0.5 < valid.mean() <= 1.0
        res = np.abs(warp_array(b, flow) - a)[valid].mean()
        unwarped = np.abs(b - a)[valid].mean()
        wrong = np.abs(warp_array(b, -flow) - a)[valid].mean()
        assert res < unwarped and res < wrong
        ratios.append(res / unwarped)
    assert np.median(ratios) < 0.3


def test_pairs_are_seeded_and_mostly_small():
    ds = PairDataset(PairConfig(size=64), seed=3)
    a1, _, f1, _ = ds[5]
    a2, _, f2, _ = ds[5]
    assert np.array_equal(a1, a2) and np.array_equal(f1, f2)
    assert not np.array_equal(ds[6][2], f1)
    med = [np.median(np.linalg.norm(ds[i][2], axis=-1)) for i in range(20)]
    assert 0.25 <= np.mean(np.array(med) < 1.0) < 1.0  # many sub-pixel pairs, not only
    f1t, f2t, flt, vat = ds.batch(0, 3)
    assert tuple(f1t.shape) == (3, 1, 64, 64) and tuple(flt.shape) == (3, 2, 64, 64) and tuple(vat.shape) == (3, 64, 64)


def test_bent_layers_keep_exact_ground_truth():
    """Every layer bends (smooth random field on top of its affine motion): the flow is no longer
    piecewise affine, and it still warps frame 2 back onto frame 1."""
    cfg = PairConfig(size=96, max_layers=1, nonrigid_share=1.0, nonrigid_px=(0.8, 1.5), rotation_deg=0.0, scale=0.0)
    for i in range(4):
        a, b, flow, valid = make_pair(np.random.default_rng(100 + i), cfg, noise=False)
        # translations alone would give one flow value per layer; bending spreads them out
        assert np.ptp(flow[valid][:, 0]) > 0.3
        res = np.abs(warp_array(b, flow) - a)[valid].mean()
        # the bends matter: ignoring them (one mean flow per layer) warps worse than the exact flow
        top_layer_mean = np.where(valid[..., None], flow, 0).sum((0, 1)) / valid.sum()
        rigid = np.abs(warp_array(b, np.broadcast_to(top_layer_mean, flow.shape).astype(np.float32)) - a)[valid].mean()
        assert res < 0.7 * rigid
