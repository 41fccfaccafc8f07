"""MotionMix: regions taken from a same-class partner; everything else, and the labels, untouched."""
import numpy as np
import pytest
import torch

from hmrm.augment import MIX_REGIONS, MotionMix, feather_weights, grow_boxes, motionmix
from hmrm.face.regions import REGION_NAMES

# right_eye, left_eye, nose, mouth on a 32 x 32 input (eyes and mouth do not overlap)
BOXES = np.array([[2, 4, 12, 10], [18, 4, 28, 10], [12, 10, 20, 18], [8, 20, 24, 28]])
# a partner whose boxes differ in size and place
BOXES_B = np.array([[1, 3, 13, 12], [17, 5, 29, 11], [11, 9, 21, 19], [6, 19, 26, 30]])


def _mask(boxes, regions=MIX_REGIONS, size=32):
    m = np.zeros((size, size), bool)
    for r in regions:
        x0, y0, x1, y1 = boxes[REGION_NAMES.index(r)]
        m[y0:y1, x0:x1] = True
    return m


@pytest.fixture
def pair(rng):
    return rng.normal(size=(3, 32, 32)).astype(np.float32), rng.normal(size=(3, 32, 32)).astype(np.float32)


@pytest.mark.parametrize("as_torch", [False, True])
def test_hard_mix_copies_regions_and_nothing_else(pair, as_torch):
    a, b = pair
    xa, xb = (torch.from_numpy(a), torch.from_numpy(b)) if as_torch else (a, b)
    out = motionmix(xa, BOXES, xb, BOXES)
    assert type(out) is type(xa)
    out = np.asarray(out)
    inside = _mask(BOXES)
    assert np.array_equal(out[:, ~inside], a[:, ~inside])  # bit-identical outside
    assert np.array_equal(out[:, inside], b[:, inside])  # the partner's values inside
    assert np.array_equal(np.asarray(xa), a)  # the input is not modified


@pytest.mark.parametrize("as_torch", [False, True])
def test_boxes_of_different_size_are_resized_into_the_sample_box(pair, as_torch):
    a, b = pair
    xa, xb = (torch.from_numpy(a), torch.from_numpy(b)) if as_torch else (a, b)
    out = np.asarray(motionmix(xa, BOXES, xb, BOXES_B, regions=("mouth",)))
    inside = _mask(BOXES, ("mouth",))
    assert np.array_equal(out[:, ~inside], a[:, ~inside])
    x0, y0, x1, y1 = BOXES_B[3]
    src = b[:, y0:y1, x0:x1]
    got = out[:, inside].reshape(3, -1)
    # bilinear resampling of the partner's patch: values stay within its range, channel by channel
    assert (got.min(1) >= src.reshape(3, -1).min(1) - 1e-6).all() and (got.max(1) <= src.reshape(3, -1).max(1) + 1e-6).all()
    assert not np.allclose(got, a[:, inside].reshape(3, -1))
    # NumPy and torch agree
    other = np.asarray(motionmix(torch.from_numpy(a) if not as_torch else a, BOXES,
                                 torch.from_numpy(b) if not as_torch else b, BOXES_B, regions=("mouth",)))
    np.testing.assert_allclose(other, out, atol=1e-5)


def test_feather_blend_stays_between_the_two_inputs(pair):
    a, b = pair
    out = motionmix(a, BOXES, b, BOXES, blend="feather", feather_px=3)
    inside = _mask(BOXES)
    assert np.array_equal(out[:, ~inside], a[:, ~inside])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    assert (out >= lo - 1e-6).all() and (out <= hi + 1e-6).all()  # convex combination, pixel by pixel
    # deep inside a box the partner's values are taken as they are; at the edge it is a mix
    x0, y0, x1, y1 = BOXES[3]
    assert np.array_equal(out[:, y0 + 4:y1 - 4, x0 + 4:x1 - 4], b[:, y0 + 4:y1 - 4, x0 + 4:x1 - 4])
    edge = out[:, y0, x0 + 5]
    assert not np.allclose(edge, a[:, y0, x0 + 5]) and not np.allclose(edge, b[:, y0, x0 + 5])
    w = feather_weights(8, 16, 3)
    assert w.min() == pytest.approx(0.25) and w.max() == 1 and (w > 0).all()
    assert np.array_equal(motionmix(a, BOXES, b, BOXES, blend="feather", feather_px=0), motionmix(a, BOXES, b, BOXES))


@pytest.mark.parametrize("as_torch", [False, True])
def test_head_motion_match_moves_only_the_local_motion(rng, as_torch):
    """With head_motion='match' the partner's drift (median u, v) is swapped for the sample's own;
    strain is pasted as it is and a magnitude channel is recomputed."""
    a = rng.normal(size=(4, 32, 32)).astype(np.float32)
    b = rng.normal(size=(4, 32, 32)).astype(np.float32)
    a[0] += 0.7; a[1] -= 0.2; b[0] -= 0.5; b[1] += 0.9  # different head drifts
    a[2] = np.hypot(a[0], a[1]); b[2] = np.hypot(b[0], b[1])
    chans = ("u", "v", "mag", "strain")
    xa, xb = (torch.from_numpy(a), torch.from_numpy(b)) if as_torch else (a, b)
    b_before = b.copy()
    out = np.asarray(motionmix(xa, BOXES, xb, BOXES, head_motion="match", channels=chans))
    inside = _mask(BOXES)
    assert np.array_equal(out[:, ~inside], a[:, ~inside])
    du, dv = np.median(a[0]) - np.median(b[0]), np.median(a[1]) - np.median(b[1])
    np.testing.assert_allclose(out[0][inside], b[0][inside] + du, atol=1e-5)
    np.testing.assert_allclose(out[1][inside], b[1][inside] + dv, atol=1e-5)
    np.testing.assert_allclose(out[2][inside], np.hypot(out[0], out[1])[inside], atol=1e-5)
    assert np.array_equal(out[3][inside], b[3][inside])
    assert np.array_equal(np.asarray(xb), b_before)  # the partner is not modified
    with pytest.raises(ValueError, match="channel"):
        motionmix(xa, BOXES, xb, BOXES, head_motion="match", channels=("u", "v", "strain"))


def test_grown_boxes_mix_a_larger_area(pair):
    a, b = pair
    grown = grow_boxes(BOXES, 0.25, 32, 32)
    assert (grown[:, :2] <= BOXES[:, :2]).all() and (grown[:, 2:] >= BOXES[:, 2:]).all() and grown.max() <= 32
    assert np.array_equal(grow_boxes(BOXES, 0.0, 32, 32), BOXES)
    out = motionmix(a, BOXES, b, BOXES, regions=("mouth",), grow=0.25)
    inside = _mask(grown, ("mouth",))
    assert np.array_equal(out[:, ~inside], a[:, ~inside]) and np.array_equal(out[:, inside], b[:, inside])


def _batch(rng, labels, size=32):
    n = len(labels)
    x = rng.normal(size=(n, 2, size, size)).astype(np.float32)
    jitter = rng.integers(-1, 2, size=(n, 4, 4))
    boxes = np.clip(BOXES[None] + jitter, 0, size)
    return x, boxes, np.array(labels)


def test_partners_share_the_label_and_singletons_are_left_alone(rng):
    labels = [0, 0, 1, 2, 2, 2, 3, 1]  # class 3 has one sample
    x, boxes, y = _batch(rng, labels)
    y_before = y.copy()
    mm = MotionMix(p=1.0, seed=0)
    plan = mm.plan(y)
    for i, j in enumerate(plan.partner):
        if y[i] == 3:
            assert j == -1 and plan.regions[i] == ()
        else:
            assert j >= 0 and j != i and y[j] == y[i]
            assert plan.regions[i] == MIX_REGIONS
    out = MotionMix(p=1.0, seed=0)(x, boxes, y)
    assert np.array_equal(y, y_before)  # labels untouched
    assert np.array_equal(out[6], x[6])  # the single sample of class 3 is never mixed
    for i in np.flatnonzero(plan.mixed):
        np.testing.assert_array_equal(out[i], motionmix(x[i], boxes[i], x[plan.partner[i]], boxes[plan.partner[i]]))


def test_partners_from_a_pool_never_cross_classes_or_pick_themselves(rng):
    X, B, Y = _batch(rng, [0, 1, 0, 1, 2, 0])
    idx = np.array([0, 4, 5])
    mm = MotionMix(p=1.0, seed=3)
    for _ in range(20):
        plan = mm.plan(Y[idx], pool_labels=Y, index=idx)
        assert plan.partner[1] == -1  # class 2 has one sample in the pool: itself
        for k in (0, 2):
            assert Y[plan.partner[k]] == Y[idx[k]] and plan.partner[k] != idx[k]
    out = MotionMix(p=1.0, seed=3)(X[idx], B[idx], Y[idx], pool=(X, B, Y), index=idx)
    assert out.shape == X[idx].shape and np.array_equal(out[1], X[4])
    with pytest.raises(ValueError, match="index"):
        mm.plan(Y[idx], pool_labels=Y, index=np.array([1, 4, 5]))  # position 1 holds another label


def test_seeded_and_reproducible(rng):
    x, boxes, y = _batch(rng, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    a = MotionMix(p=0.5, mode="random", seed=7)
    b = MotionMix(p=0.5, mode="random", seed=7)
    for _ in range(3):
        np.testing.assert_array_equal(a(x, boxes, y), b(x, boxes, y))
    plans = [MotionMix(p=0.5, mode="random", seed=s).plan(y) for s in range(5)]
    assert len({(tuple(p.partner), tuple(p.regions)) for p in plans}) > 1  # the seed matters
    for p in plans:  # random mode: a non-empty subset of the listed regions, in their order
        for r in p.regions:
            assert r == () or (set(r) <= set(MIX_REGIONS) and list(r) == [g for g in MIX_REGIONS if g in r])
        assert all(len(r) > 0 for r, m in zip(p.regions, p.mixed) if m)


@pytest.mark.parametrize("as_torch", [False, True])
def test_p_zero_is_the_identity(rng, as_torch):
    x, boxes, y = _batch(rng, [0, 0, 1, 1])
    xt = torch.from_numpy(x) if as_torch else x
    out = MotionMix(p=0.0, seed=0)(xt, boxes, y)
    assert type(out) is type(xt) and np.array_equal(np.asarray(out), x)


def test_torch_batch_matches_numpy(rng):
    x, boxes, y = _batch(rng, [0, 0, 1, 1, 0])
    want = MotionMix(p=1.0, blend="feather", seed=1)(x, boxes, y)
    got = MotionMix(p=1.0, blend="feather", seed=1)(torch.from_numpy(x), torch.from_numpy(boxes), torch.from_numpy(y))
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-6)


def test_bad_settings_are_refused(pair):
    a, b = pair
    with pytest.raises(ValueError, match="region"):
        motionmix(a, BOXES, b, BOXES, regions=("chin",))
    with pytest.raises(ValueError, match="blend"):
        MotionMix(blend="soft")
    with pytest.raises(ValueError, match="p must"):
        MotionMix(p=1.5)
    with pytest.raises(TypeError):
        motionmix(a, BOXES, torch.from_numpy(b), BOXES)


def test_on_synthme_flow_inputs(tiny_synthme, tmp_path):
    """Eyes and mouth of a same-class SynthME partner, on real boxes; the rest of the face stays."""
    from hmrm.data.synthme import load_synthme
    from hmrm.features import build_flow_inputs

    samples = load_synthme(tiny_synthme)
    inputs = build_flow_inputs(samples, "gt", size=64, cache_dir=tmp_path / "c", progress=False)
    mm = MotionMix(p=1.0, seed=0)
    plan = mm.plan(inputs.labels)
    out = MotionMix(p=1.0, seed=0)(inputs.x, inputs.boxes, inputs.labels)
    assert plan.mixed.any()
    for i in range(len(samples)):
        keep = ~_mask(inputs.boxes[i], MIX_REGIONS, 64)
        assert np.array_equal(out[i][:, keep], inputs.x[i][:, keep])
        if plan.mixed[i]:
            assert inputs.labels[plan.partner[i]] == inputs.labels[i]
            assert not np.array_equal(out[i], inputs.x[i])


def test_seam_jump_measures_the_step_at_the_box_edges():
    from hmrm.augment import seam_jump
    from hmrm.face.regions import REGION_NAMES

    x = np.full((3, 32, 32), 0.25, np.float32)
    boxes = np.array([[4, 4, 12, 12]] * len(REGION_NAMES))
    assert seam_jump(x, boxes, ("mouth",)) == 0.0  # uniform motion: no seam
    x[0, 4:12, 4:12] += 0.5                         # a pasted box whose u is off by 0.5 px
    x[1, 4:12, 4:12] -= 0.25                        # and whose v is off by 0.25 px
    assert seam_jump(x, boxes, ("mouth",)) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no edge"):
        seam_jump(x, np.array([[0, 0, 32, 32]] * len(REGION_NAMES)), ("mouth",))
