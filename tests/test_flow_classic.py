import numpy as np
import pytest

from hmrm.flow import CLASSIC_METHODS, angular_error, classic_flow, endpoint_error, flow_features, optical_strain


def _pair(shift=(0.6, -0.4), size=96):
    import cv2

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur((rng.random((size, size)) * 255).astype(np.float32), (0, 0), 2.0)
    base = (base - base.min()) / (base.max() - base.min()) * 200 + 20
    flow = np.zeros((size, size, 2), np.float32)
    flow[..., 0], flow[..., 1] = shift
    # second frame: the first moved by `shift`, so that warping it by `flow` gives the first back
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    second = cv2.remap(base, xs - shift[0], ys - shift[1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return base, second, flow


@pytest.mark.parametrize("method", CLASSIC_METHODS)
def test_classic_methods_recover_a_subpixel_translation(method):
    a, b, gt = _pair()
    f = classic_flow(a, b, method)
    inner = (slice(16, -16), slice(16, -16))
    assert f.shape == gt.shape and f.dtype == np.float32
    assert endpoint_error(f[inner], gt[inner]) < 0.25
    assert endpoint_error(f[inner], gt[inner]) < 0.5 * endpoint_error(np.zeros_like(gt[inner]), gt[inner])


def test_classic_flow_checks_input():
    a, b, _ = _pair()
    with pytest.raises(ValueError, match="unknown flow method"):
        classic_flow(a, b, "raft")
    with pytest.raises(ValueError, match="differ in size"):
        classic_flow(a, b[:-1], "dis")
    rgb = np.repeat(a[..., None], 3, -1)
    assert classic_flow(rgb, np.repeat(b[..., None], 3, -1), "dis").shape == (96, 96, 2)


def test_strain_and_features():
    ys, xs = np.mgrid[0:32, 0:32].astype(np.float32)
    trans = np.stack([np.full_like(xs, 2.0), np.full_like(xs, -1.0)], -1)
    assert np.allclose(optical_strain(trans), 0)  # a translation does not strain
    stretch = np.stack([0.1 * xs, np.zeros_like(xs)], -1)  # du/dx = 0.1
    assert np.allclose(optical_strain(stretch)[2:-2, 2:-2], 0.1, atol=1e-5)
    shear = np.stack([0.1 * ys, np.zeros_like(xs)], -1)  # exy = 0.05 -> sqrt(2) * 0.05
    assert np.allclose(optical_strain(shear)[2:-2, 2:-2], np.sqrt(2) * 0.05, atol=1e-5)
    feats = flow_features(trans)
    assert feats.shape == (4, 32, 32) and np.allclose(feats[2], np.sqrt(5))


def test_angular_error():
    a = np.zeros((4, 4, 2))
    b = np.zeros((4, 4, 2))
    b[..., 0] = 1.0  # (1, 0, 1) vs (0, 0, 1): 45 degrees
    assert angular_error(a, b) == pytest.approx(45.0)
    assert angular_error(b, b) == pytest.approx(0.0, abs=1e-5)
