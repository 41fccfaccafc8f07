import numpy as np
import pytest

from hmrm.data.au import AU_NAMES, LEFT, MIDLINE, MIRROR, RIGHT, FaceFieldModel, ThinPlateSpline, au_displacement, parse_aus


def test_sides_partition_the_landmarks():
    assert sorted(RIGHT + LEFT + MIDLINE) == list(range(68))
    assert sorted(MIRROR) == sorted(RIGHT)
    assert sorted(MIRROR.values()) == sorted(LEFT)


@pytest.mark.parametrize("au", sorted(AU_NAMES))
def test_symmetric_au_mirrors(au):
    d = au_displacement(au)
    assert np.abs(d).max() > 0
    for r, l in MIRROR.items():
        # horizontal components flip, vertical ones agree
        np.testing.assert_allclose(d[l], d[r] * np.array([-1, 1]), atol=1e-12)
    for m in MIDLINE:
        assert d[m, 0] == 0


@pytest.mark.parametrize("au", sorted(AU_NAMES))
def test_unilateral_au_leaves_the_other_side_still(au):
    d = au_displacement(au, right_gain=1.0, left_gain=0.0)
    assert np.abs(d[LEFT]).max() == 0
    assert np.abs(d[RIGHT]).max() > 0


def test_au_directions_make_sense():
    # AU12 lifts the mouth corners (y up is negative) and pulls them outwards
    d = au_displacement(12)
    assert d[48, 1] < 0 and d[54, 1] < 0 and d[48, 0] < 0 and d[54, 0] > 0
    # AU15 pulls them down, AU1 raises the inner brows, AU4 lowers the brows
    assert au_displacement(15)[48, 1] > 0
    assert au_displacement(1)[21, 1] < 0 and au_displacement(4)[21, 1] > 0


def test_unknown_au():
    with pytest.raises(ValueError, match="AU3"):
        au_displacement(3)


def test_parse_aus():
    assert parse_aus("1+2+R12") == [(1, ""), (2, ""), (12, "R")]
    assert parse_aus("L14") == [(14, "L")]


def test_tps_interpolates_its_control_points(rng):
    pts = rng.uniform(10, 118, size=(12, 2))
    tps = ThinPlateSpline(pts, 128, step=1)
    vals = rng.normal(size=(12, 2))
    field = tps(vals)
    ij = np.round(pts).astype(int)
    # evaluate at the rounded points: the interpolant is smooth, so it is close to the control values
    got = (tps.E @ vals).reshape(129, 129, 2)
    near = got[ij[:, 1], ij[:, 0]]
    exact = ThinPlateSpline(np.round(pts), 128, step=1)
    np.testing.assert_allclose((exact.E @ vals).reshape(129, 129, 2)[ij[:, 1], ij[:, 0]], vals, atol=1e-4)
    assert field.shape == (128, 128, 2)
    assert np.isfinite(near).all()


def test_au_field_peak_and_support(render_face):
    model: FaceFieldModel = render_face.fields
    f = model.au_field([(12, 1.0, 1.0), (6, 1.0, 0.7)], peak_px=1.3)
    mag = np.sqrt((f**2).sum(-1))
    assert mag[model.face].max() == pytest.approx(1.3, rel=1e-5)
    # motion stays on the face: the image corners do not move
    for y, x in [(0, 0), (0, 255), (255, 0), (255, 255)]:
        assert mag[y, x] < 1e-3
    # the mouth corners move more than the forehead
    lm = model.landmarks
    corner = mag[int(lm[48, 1]), int(lm[48, 0])]
    brow = mag[int(lm[19, 1]), int(lm[19, 0])]
    assert corner > 3 * brow
