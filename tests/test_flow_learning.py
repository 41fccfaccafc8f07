"""GRU-AOFE's learned parts learn: the recurrent part fits fixed pairs far below its warm start, the
attention gets a gradient and stops being uniform, and the face-domain pretraining pairs are exact."""
import numpy as np
import pytest
import torch

from hmrm.flow import warp_array
from hmrm.flow.gru_aofe import GRUAOFE, LEGACY_CONFIG, FlowConfig, flow_loss
from hmrm.flow.overfit import epe, overfit
from hmrm.flow.synthetic import PairConfig, PairDataset
from hmrm.flow.train import warm_starts
from hmrm.flow.update import Aggregate, Attention, row_entropy


@pytest.fixture(scope="module")
def fixed_pairs():
    x1, x2, flow, valid = PairDataset(PairConfig(size=48), seed=0).batch(0, 8)
    return x1, x2, flow, valid, warm_starts(x1, x2, "dis_tuned")


@pytest.mark.parametrize("start", ["zero", "warm"])
def test_gru_overfits_fixed_pairs_far_below_the_warm_start(fixed_pairs, start):
    """A network that cannot fit 8 fixed pairs has a defect. The GRU (refinement stage off) must end
    well below tuned DIS's error, from zero flow and from the DIS warm start."""
    x1, x2, flow, valid, warm = fixed_pairs
    torch.manual_seed(0)
    # from zero flow the motions are pixels, so RAFT's scales (1, 1); from the warm start the defaults
    scales = {"delta_scale": 1.0, "flow_scale": 1.0} if start == "zero" else {}
    model = GRUAOFE(FlowConfig(warm_start="dis_tuned" if start == "warm" else None, refine=False, iters=2, **scales))
    # from zero the fit is a long way down; at 2e-3 its path depends on the thread count (1 thread: 0.62 x DIS at
    # step 120, 2 threads: 0.41 x), at 1e-3 it is below 0.4 x DIS with either
    lr = 1e-3 if start == "zero" else 2e-3
    records = overfit(model, x1, x2, flow, valid, warm if start == "warm" else None, steps=120, lr=lr, every=40)
    dis = epe(warm, flow, valid)
    first, last = records[0], records[-1]
    if start == "warm":
        assert first.epe == pytest.approx([dis, dis], abs=1e-5)  # an untrained model returns its warm start
    assert last.epe[-1] < 0.6 * dis, (start, [r.epe for r in records], dis)


def test_cosine_attention_learns_where_gma_s_form_could_not(fixed_pairs):
    """The defect that kept the attention uniform: with GMA's form (dot product, gain starting at 0)
    its gradient is a tiny fraction of the GRU's and its rows stay uniform; the cosine form with a
    learned temperature and a gain starting at 1 gets a gradient orders of magnitude larger and rows
    that are far from uniform. Both at RAFT's scales, those the shipped weights were trained with (at
    the micro-motion scales the larger updates reach even GMA's form)."""
    x1, x2, flow, valid, warm = fixed_pairs
    out = {}
    for form, gain in (("cosine", 1.0), ("dot", 0.0)):
        torch.manual_seed(0)
        model = GRUAOFE(FlowConfig(refine=False, iters=2, attention=form, attention_gain=gain, delta_scale=1.0,
                                   flow_scale=1.0))
        out[form] = overfit(model, x1, x2, flow, valid, warm, steps=40, lr=2e-3, every=20)
    ratio = {form: np.mean([r.grads["attention"] / r.grads["update.gru"] for r in recs[1:]]) for form, recs in out.items()}
    assert ratio["cosine"] > 30 * ratio["dot"], ratio
    assert out["dot"][-1].entropy > 0.99  # GMA's rows stay uniform
    assert out["cosine"][-1].entropy < 0.9  # the cosine form's do not


def test_attention_modes_and_the_ablation_switch():
    torch.manual_seed(0)
    ctx = torch.relu(torch.randn(2, 16, 6, 5))
    for mode in ("cosine", "dot"):
        attn = Attention(16, 8, mode=mode)(ctx)
        assert attn.shape == (2, 30, 30)
        assert torch.allclose(attn.sum(-1), torch.ones(2, 30), atol=1e-5)
        assert row_entropy(attn) <= np.log(30) + 1e-5
    assert row_entropy(torch.full((1, 30, 30), 1 / 30)) == pytest.approx(np.log(30), rel=1e-5)
    with pytest.raises(ValueError, match="cosine"):
        Attention(16, mode="softmax")
    motion = torch.randn(2, 8, 6, 5)
    assert torch.equal(Aggregate(8)(None, motion), motion)  # no attention: the plain motion features
    assert not torch.equal(Aggregate(8)(Attention(16, 8)(ctx), motion), motion)
    a, b = torch.rand(1, 1, 32, 32) * 255, torch.rand(1, 1, 32, 32) * 255
    model = GRUAOFE(FlowConfig(warm_start=None, refine=False))
    torch.nn.init.normal_(model.update.flow_head[-1].weight, std=0.1)  # a model whose GRU moves the flow
    with torch.no_grad():
        assert not torch.allclose(model(a, b)[-1], model(a, b, attention=False)[-1])
    none = GRUAOFE(FlowConfig(attention="none", warm_start=None))
    assert none.attention is None and len(none(a, b)) == 3
    with pytest.raises(ValueError, match="attention must be one of"):
        GRUAOFE(FlowConfig(attention="softmax"))


def test_checkpoints_without_the_attention_fields_load_as_gma_s_form():
    """Weights saved before the cosine attention existed load with the form they were trained with."""
    model = GRUAOFE(FlowConfig(**LEGACY_CONFIG))
    ckpt = model.to_checkpoint()
    for key in LEGACY_CONFIG:
        ckpt["config"].pop(key)
    again = GRUAOFE.from_checkpoint(ckpt)
    assert again.config.attention == "dot" and again.attention.mode == "dot" and not again.config.photometric
    assert again.update.delta_scale == 1.0 and again.update.encoder.flow_scale == 1.0 and not again.config.refine_detach
    fresh = GRUAOFE.from_checkpoint(GRUAOFE(FlowConfig()).to_checkpoint())
    assert fresh.config.attention == "cosine" and float(fresh.update.aggregate.gamma) == 1.0
    assert fresh.update.delta_scale == 0.02 and fresh.update.encoder.flow_scale == 40.0 and fresh.config.refine_detach


@pytest.mark.parametrize("detach", [True, False])
def test_the_refinement_loss_reaches_the_gru_only_when_asked(fixed_pairs, detach):
    """With ``refine_detach`` the refinement stage's loss trains the stage alone; the GRU learns from its
    own sequence loss (else the quickly learning smoothing absorbs the error the GRU should fix)."""
    x1, x2, flow, valid, warm = fixed_pairs
    torch.manual_seed(0)
    model = GRUAOFE(FlowConfig(iters=1, refine_detach=detach))
    for p in model.update.flow_head[-1].parameters():  # a trained head, so that the GRU's output depends on it
        torch.nn.init.normal_(p, std=0.1)
    preds = model(x1[:2], x2[:2], warm[:2])
    torch.linalg.vector_norm(preds[-1] - flow[:2], dim=1).mean().backward()
    head = model.update.flow_head[-1].weight.grad
    refiner = model.refiner.mlp[-1].weight.grad
    assert refiner is not None and float(refiner.abs().sum()) > 0
    assert (head is None or float(head.abs().sum()) == 0) if detach else float(head.abs().sum()) > 0


def test_face_pairs_are_exact_seeded_and_face_like(bank_photos):
    from hmrm.flow.facepairs import FacePairConfig, FacePairDataset, face_sources, make_face_pair

    face_sources.cache_clear()  # an earlier caller may have seen the bank before it was fetched
    sources = face_sources(offline=True)
    assert len(sources) >= 2  # the bank's photos, not only the astronaut
    cfg = FacePairConfig(size=96, face_share=1.0, blink_share=0.0)
    ratios = []
    for i in range(6):
        a, b, flow, valid = make_face_pair(np.random.default_rng(i), cfg, sources, noise=False)
        assert a.shape == b.shape == (96, 96) and flow.shape == (96, 96, 2) and valid.mean() > 0.8
        res = np.abs(warp_array(b, flow) - a)[valid].mean()
        unwarped = np.abs(b - a)[valid].mean()
        assert res < unwarped
        ratios.append(res / unwarped)
    assert np.median(ratios) < 0.35
    ds = FacePairDataset(FacePairConfig(size=64), seed=4)
    p, q = ds[3], ds[3]
    assert all(np.array_equal(x, y) for x, y in zip(p, q))
    mags = [np.median(np.linalg.norm(ds[i][2], axis=-1)) for i in range(24)]
    assert np.mean(np.array(mags) < 1.0) > 0.5  # mostly micro-motion
    # an eyelid closing hides what moves under it
    blink = FacePairConfig(size=128, face_share=1.0, blink_share=1.0, face_scale=(1.0, 1.0), pose_deg=0.0)
    hidden = [1 - make_face_pair(np.random.default_rng(i), blink, sources, noise=False)[3].mean() for i in range(4)]
    assert max(hidden) > 0.005


def test_photometric_features_point_back_to_the_true_flow():
    """The Lucas-Kanade channels: near zero at the true flow (even with a gain and bias change between
    the frames), pointing back towards it from a flow that is off by a constant."""
    from hmrm.flow.update import PHOTOMETRIC_CHANNELS, photometric_features

    x1, x2, flow, valid = PairDataset(PairConfig(size=64, max_layers=1, flat_share=0.0), seed=7).batch(0, 4)
    x2 = x2 * 1.05 + 3  # the camera's gain and bias change
    at_truth = photometric_features(x1, x2, flow)
    assert at_truth.shape == (4, PHOTOMETRIC_CHANNELS, 16, 16)
    off = torch.tensor([0.5, -0.3]).view(1, 2, 1, 1)
    from_off = photometric_features(x1, x2, flow + off)
    inner = valid[:, 8:-8:4, 8:-8:4]  # cells away from the border
    step_truth = at_truth[:, :2, 2:-2, 2:-2].permute(0, 2, 3, 1)[inner]
    step_off = from_off[:, :2, 2:-2, 2:-2].permute(0, 2, 3, 1)[inner] * 4  # in full-resolution pixels
    assert step_truth.norm(dim=1).median() * 4 < 0.1
    cosine = torch.nn.functional.cosine_similarity(step_off, -off.view(1, 2).expand_as(step_off), dim=1)
    assert cosine.median() > 0.8


def test_the_gru_loss_counts_only_where_the_warm_start_is_close():
    """``max_warm_error``: pixels where the warm start is off by more than that (lost texture,
    occlusion) leave the GRU's loss, so they cannot set the scale of its micro-motion corrections.
    Without the mask, or without a warm start, every valid pixel counts."""
    target = torch.zeros(1, 2, 4, 4)
    valid = torch.ones(1, 4, 4, dtype=torch.bool)
    init = torch.zeros(1, 2, 4, 4)
    init[..., 0, 0] = 3.0                       # the warm start fails by pixels at one pixel
    pred = init.clone()                         # and the prediction keeps that failure
    pred[..., 1, 1] = 0.1                       # plus a small error where the warm start was right
    masked = flow_loss([pred], target, valid, init=init, max_warm_error=0.5)
    everything = flow_loss([pred], target, valid, init=init, max_warm_error=0.0)
    no_warm = flow_loss([pred], target, valid, max_warm_error=0.5)
    assert float(masked) == pytest.approx(0.1 * 2 / (2 * 15))  # the one small error, over the 15 kept pixels
    assert float(everything) == pytest.approx((0.1 * 2 + 3.0 * 2) / (2 * 16))
    assert float(no_warm) == pytest.approx(float(everything))


def test_the_do_no_harm_term_weighs_an_error_most_where_the_warm_start_was_right():
    """``harm_weight``: the same 0.1 px error costs the GRU more at a pixel where the warm start was
    exact than at one where it was off by 0.4 px; with weight 0 (the shipped recipe) the loss is as before."""
    target = torch.zeros(1, 2, 1, 2)
    valid = torch.ones(1, 1, 2, dtype=torch.bool)
    init = torch.zeros(1, 2, 1, 2)
    init[:, 0, 0, 1] = 0.4                          # right at the first pixel, 0.4 px off at the second
    at_right, at_wrong = torch.zeros(1, 2, 1, 2), torch.zeros(1, 2, 1, 2)
    at_right[:, 0, 0, 0] = 0.1
    at_wrong[:, 0, 0, 1] = 0.1
    plain = [flow_loss([p], target, valid, init=init, max_warm_error=0.5) for p in (at_right, at_wrong)]
    harmed = [flow_loss([p], target, valid, init=init, max_warm_error=0.5, harm_weight=1.0)
              for p in (at_right, at_wrong)]
    assert float(plain[0]) == pytest.approx(float(plain[1]))
    assert float(harmed[0] - plain[0]) == pytest.approx(0.1 / 0.05 / 2)
    assert float(harmed[1] - plain[1]) == pytest.approx(0.1 / 0.45 / 2)
    assert float(flow_loss([at_right], target, valid, init=init, harm_weight=0.0)) == pytest.approx(float(plain[0]))
