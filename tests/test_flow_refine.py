import numpy as np
import pytest
import torch

from hmrm.flow.refine import FEATURE_NAMES, FlowRefiner, gaussian_blur, normalized_convolution, refine_features


def test_gaussian_blur_keeps_constants_and_matches_opencv():
    import cv2

    x = torch.full((1, 2, 20, 30), 0.7)
    assert torch.allclose(gaussian_blur(x, 4.0), x, atol=1e-6)  # replicated edges: a constant stays constant
    img = np.random.default_rng(0).random((40, 50)).astype(np.float32)
    ref = cv2.GaussianBlur(img, (13, 13), 2.0, borderType=cv2.BORDER_REPLICATE)
    got = gaussian_blur(torch.from_numpy(img)[None, None], 2.0)[0, 0].numpy()
    assert np.abs(got - ref).max() < 2e-3


def test_normalized_convolution_ignores_pixels_without_confidence():
    flow = torch.zeros(1, 2, 16, 16)
    flow[..., :, 8:] = 1.0
    flow[..., 4, 4] = 50.0  # an outlier ...
    conf = torch.ones(1, 1, 16, 16)
    conf[..., 4, 4] = 0.0  # ... marked unreliable
    out = normalized_convolution(flow, conf, 1.0)
    assert out[..., :8, :3].abs().max() < 1e-5  # the outlier does not leak into its neighbours
    assert out[0, 0, 4, 4].abs() < 0.05  # and is replaced by them
    assert torch.allclose(out[..., 12:], torch.ones_like(out[..., 12:]), atol=1e-3)


def test_refiner_starts_as_identity_and_learns():
    torch.manual_seed(0)
    r = FlowRefiner(hidden=8)
    a, b = torch.rand(2, 1, 32, 40) * 255, torch.rand(2, 1, 32, 40) * 255
    flow = torch.randn(2, 2, 32, 40)
    feats = refine_features(a, b, flow)
    assert feats.shape == (2, len(FEATURE_NAMES), 32, 40) and torch.isfinite(feats).all()
    maps = r.maps(a, b, flow)
    assert torch.equal(maps["flow"], flow)  # zero gate: the untrained stage changes nothing
    assert maps["weights"].shape == (2, len(r.scales), 32, 40)
    assert torch.allclose(maps["weights"].sum(1), torch.ones(2, 32, 40))
    # learning to smooth: the target is the blurred flow, one optimiser step lowers the error
    target = gaussian_blur(flow, 4.0)
    opt = torch.optim.Adam(r.parameters(), lr=1e-2)
    errs = []
    for _ in range(20):
        loss = (r(a, b, flow) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        errs.append(loss.item())
    assert errs[-1] < 0.8 * errs[0]


def test_refiner_leaves_a_smooth_flow_alone_when_smoothing():
    # a constant flow is a fixed point of every smoothing the stage can choose
    r = FlowRefiner(hidden=8)
    with torch.no_grad():
        r.mlp[-1].bias[-1] = 3.0  # gate almost 1: the stage replaces the flow by its smoothed version
    a = torch.rand(1, 1, 32, 32) * 255
    flow = torch.tensor([0.4, -0.2]).view(1, 2, 1, 1).expand(1, 2, 32, 32).contiguous()
    assert torch.allclose(r(a, a, flow), flow, atol=1e-5)
    with pytest.raises(ValueError):
        r(a, a, flow[:, :1])
