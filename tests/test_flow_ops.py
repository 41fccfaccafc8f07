import numpy as np
import pytest
import torch

from hmrm.flow import backward_warp, endpoint_error, warp_array


def _ramp(h=32, w=40):
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([np.sin(xs / 5) + ys / 10, np.cos(ys / 7) * xs / 20], -1)


def test_constant_translation_is_exact_for_smooth_images():
    img = _ramp()
    ys, xs = np.mgrid[0:32, 0:40].astype(np.float32)
    flow = np.zeros((32, 40, 2), np.float32)
    flow[..., 0], flow[..., 1] = 1.5, -0.5
    out = warp_array(img, flow, mode="bilinear")
    # B(x) = A(x - d): warping B by d gives A back (away from the border)
    b = np.stack([np.sin((xs - 1.5) / 5) + (ys + 0.5) / 10, np.cos((ys + 0.5) / 7) * (xs - 1.5) / 20], -1)
    back = warp_array(b, flow, mode="bicubic")
    inner = (slice(3, -3), slice(3, -3))
    assert np.abs(back[inner] - img[inner]).max() < 1e-2  # interpolation error only
    assert np.abs(b[inner] - img[inner]).max() > 0.2  # while the unwarped image is far off
    assert np.abs(warp_array(b, -flow)[inner] - img[inner]).max() > 0.2  # and the sign matters
    assert out.shape == img.shape and out.dtype == np.float32


def test_zero_flow_is_identity_and_grey_images_work():
    img = np.random.default_rng(0).random((16, 20)).astype(np.float32)
    assert np.allclose(warp_array(img, np.zeros((16, 20, 2)), mode="bilinear"), img, atol=1e-6)


def test_backward_warp_checks_shapes():
    with pytest.raises(ValueError, match="expected image"):
        backward_warp(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="differ"):
        backward_warp(torch.zeros(1, 3, 8, 8), torch.zeros(1, 2, 8, 9))


def test_endpoint_error():
    a = np.zeros((4, 5, 2))
    b = np.zeros((4, 5, 2))
    b[..., 0], b[..., 1] = 3.0, 4.0
    assert endpoint_error(a, b) == pytest.approx(5.0)
    mask = np.zeros((4, 5), bool)
    mask[0, 0] = True
    b[0, 0] = 0
    assert endpoint_error(a, b, mask) == 0.0
    ta, tb = torch.zeros(2, 2, 4, 5), torch.ones(2, 2, 4, 5)
    assert endpoint_error(ta, tb) == pytest.approx(2 ** 0.5)
    with pytest.raises(ValueError, match="no pixel"):
        endpoint_error(a, b, np.zeros((4, 5), bool))
