import numpy as np
import pytest

from hmrm.face import REGION_NAMES, face_mask, region_boxes, region_masks
from hmrm.face.landmarks import LEFT_BROW, LEFT_EYE, NOSTRILS, OUTER_LIPS, RIGHT_BROW, RIGHT_EYE


@pytest.fixture(scope="module")
def canon(render_face):
    return render_face.landmarks


def test_boxes_hold_their_landmarks(canon):
    boxes = region_boxes(canon, 256)
    assert tuple(boxes) == REGION_NAMES
    groups = {"right_eye": RIGHT_EYE + RIGHT_BROW, "left_eye": LEFT_EYE + LEFT_BROW, "nose": NOSTRILS, "mouth": OUTER_LIPS}
    for name, idx in groups.items():
        x0, y0, x1, y1 = boxes[name]
        assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256
        pts = canon[idx]
        assert (pts[:, 0] >= x0).all() and (pts[:, 0] < x1).all(), name
        assert (pts[:, 1] >= y0).all() and (pts[:, 1] < y1).all(), name


def test_boxes_are_laid_out_like_a_face(canon):
    b = region_boxes(canon, 256)
    centre = {k: ((v[0] + v[2]) / 2, (v[1] + v[3]) / 2) for k, v in b.items()}
    # the subject's right eye is on the image's left
    assert centre["right_eye"][0] < centre["nose"][0] < centre["left_eye"][0]
    assert centre["right_eye"][1] < centre["nose"][1] < centre["mouth"][1]


def test_masks_match_boxes(canon):
    boxes, masks = region_boxes(canon, 256), region_masks(canon, 256)
    for name, (x0, y0, x1, y1) in boxes.items():
        assert masks[name].sum() == (x1 - x0) * (y1 - y0)
        assert masks[name][y0:y1, x0:x1].all()


def test_boxes_clip_to_the_image(canon):
    shifted = canon + np.array([-60.0, 0.0])
    for x0, y0, x1, y1 in region_boxes(shifted, 256).values():
        assert x0 >= 0 and x1 <= 256


def test_face_mask_covers_regions(canon):
    mask = face_mask(canon, 256)
    assert 0.2 < mask.mean() < 0.9
    for x0, y0, x1, y1 in region_boxes(canon, 256).values():
        cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
        assert mask[cy, cx]


def test_bad_landmark_shape():
    with pytest.raises(ValueError, match="68"):
        region_boxes(np.zeros((5, 2)), 256)
