import numpy as np
import pytest
import torch

from hmrm.flow.corr import CorrPyramid, all_pairs
from hmrm.flow.gru_aofe import GRUAOFE, FlowConfig, sequence_loss
from hmrm.flow.update import convex_upsample


def test_correlation_lookup_matches_brute_force():
    torch.manual_seed(0)
    f1, f2 = torch.randn(2, 8, 6, 7), torch.randn(2, 8, 6, 7)
    pyr = CorrPyramid(f1, f2, levels=2, radius=1)
    # integer targets: a shift of (+1, 0) for every pixel
    ys, xs = torch.meshgrid(torch.arange(6.0), torch.arange(7.0), indexing="ij")
    coords = torch.stack([xs + 1, ys], 0)[None].repeat(2, 1, 1, 1)
    out = pyr(coords)
    assert out.shape == (2, 2 * 9, 6, 7)
    n, i, j = 1, 2, 3  # one pixel, level 0, window offset (dx, dy) = (-1, 1) -> channel (dy+1)*3 + (dx+1)
    x2, y2 = j + 1 - 1, i + 1
    brute = (f1[n, :, i, j] * f2[n, :, y2, x2]).sum() / 8 ** 0.5
    assert torch.allclose(out[n, 2 * 3 + 0, i, j], brute, atol=1e-5)
    assert torch.allclose(all_pairs(f1, f2)[n, i, j, y2, x2], brute, atol=1e-5)
    # outside the image the lookup reads zeros
    far = coords + 100
    assert pyr(far).abs().max() == 0
    # bilinear at half-pixel positions: the mean of the two neighbours (level 0, centre tap)
    half = torch.stack([xs + 0.5, ys], 0)[None].repeat(2, 1, 1, 1)
    c = all_pairs(f1, f2)
    want = 0.5 * (c[n, i, j, i, j] + c[n, i, j, i, j + 1])
    assert torch.allclose(pyr(half)[n, 4, i, j], want, atol=1e-5)


def test_convex_upsampling_of_a_constant_flow():
    flow = torch.full((1, 2, 4, 5), 0.75)
    up = convex_upsample(flow, torch.randn(1, 9 * 16, 4, 5), 4)
    assert up.shape == (1, 2, 16, 20)
    assert torch.allclose(up[..., 4:-4, 4:-4], torch.full_like(up[..., 4:-4, 4:-4], 3.0), atol=1e-5)


def test_model_shapes_and_warm_start_passthrough():
    torch.manual_seed(0)
    m = GRUAOFE(FlowConfig(iters=3))
    a, b = torch.rand(2, 1, 64, 48) * 255, torch.rand(2, 1, 64, 48) * 255
    out = m(a, b)
    assert len(out) == 4 and out[-1].shape == (2, 2, 64, 48)  # 3 GRU iterations, then the refinement stage
    assert len(GRUAOFE(FlowConfig(iters=3, refine=False))(a, b)) == 3
    with pytest.raises(ValueError, match="multiples of 16"):
        m(a[..., :60, :], b[..., :60, :])
    # the flow head starts at zero: an untrained model returns exactly its warm start ...
    init = torch.randn(2, 2, 64, 48)
    assert torch.allclose(m(a, b, init)[-1], init, atol=1e-6)
    # ... and one gradient step moves it away (the zero layer does not block learning)
    opt = torch.optim.SGD(m.parameters(), lr=1e-2)
    m(a, b, init)[-1].sub(init + 1).abs().mean().backward()
    assert m.refiner.mlp[-1].weight.grad.abs().sum() > 0  # the refinement stage's zero layer learns too
    opt.step()
    assert not torch.allclose(m(a, b, init)[-1], init, atol=1e-6)


def test_flow_loss_keeps_the_refinement_to_sub_pixel_errors():
    from hmrm.flow.gru_aofe import flow_loss

    target, valid = torch.zeros(1, 2, 4, 4), torch.ones(1, 4, 4, dtype=torch.bool)
    gru = torch.zeros(1, 2, 4, 4)
    gru[..., 0, 0] = 5.0  # one gross failure of the GRU at pixel (0, 0)
    refined = gru.clone()
    refined[..., 1, 1] = 0.3  # the refinement stage errs by 0.3 * sqrt(2) at pixel (1, 1)
    no_ref = flow_loss([gru], target, valid, refined=False)
    with_ref = flow_loss([gru, refined], target, valid, refined=True)
    # the refined term averages over the 15 pixels where the GRU is within 1 px; (0, 0) is left out
    assert with_ref.item() == pytest.approx(no_ref.item() + 0.3 * 2 ** 0.5 / 15, rel=1e-5)
    assert flow_loss([gru, refined], target, valid, refined=True, refine_max_error=10.0).item() == pytest.approx(
        no_ref.item() + (0.3 * 2 ** 0.5 + 5 * 2 ** 0.5) / 16, rel=1e-5)


def test_estimate_pads_and_loss_trains():
    torch.manual_seed(0)
    m = GRUAOFE(FlowConfig(iters=2, warm_start=None))
    img = (np.random.default_rng(0).random((50, 70)) * 255).astype(np.float32)
    assert m.estimate(img, img).shape == (50, 70, 2)
    m2 = GRUAOFE(FlowConfig(iters=2))  # warm start from DIS
    assert m2.estimate(img, img).shape == (50, 70, 2)
    a, b = torch.rand(1, 1, 32, 32) * 255, torch.rand(1, 1, 32, 32) * 255
    target, valid = torch.ones(1, 2, 32, 32), torch.ones(1, 32, 32, dtype=torch.bool)
    loss = sequence_loss(m(a, b), target, valid)
    loss.backward()
    assert loss.item() > 0 and m.update.flow_head[-1].weight.grad.abs().sum() > 0
    assert m.attention.q.weight.grad is not None  # the attention is in the graph


def test_checkpoint_round_trip(tmp_path):
    m = GRUAOFE(FlowConfig(iters=2, hidden=32, context=32))
    path = tmp_path / "w.pt"
    torch.save(m.to_checkpoint(), path)
    m2 = GRUAOFE.from_checkpoint(torch.load(path, weights_only=True))
    assert m2.config.hidden == 32
    for p, q in zip(m.parameters(), m2.parameters()):
        assert torch.equal(p, q)
