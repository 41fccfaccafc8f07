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
