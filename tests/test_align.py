import numpy as np
import pytest

from hmrm.face import align_face, detect_face, eye_centres, eye_template, landmarks68, load_image, process_image
from hmrm.face.align import invert_affine, similarity_from_points, transform_points


def test_similarity_maps_points_exactly(rng):
    src = rng.uniform(0, 500, size=(2, 2))
    dst = rng.uniform(0, 256, size=(2, 2))
    m = similarity_from_points(src, dst)
    np.testing.assert_allclose(transform_points(m, src), dst, atol=1e-9)
    # a similarity: equal scale on both axes, no shear
    a = m[:, :2]
    np.testing.assert_allclose(a @ a.T, np.eye(2) * np.linalg.det(a), atol=1e-9)


def test_similarity_rejects_coincident_points():
    with pytest.raises(ValueError):
        similarity_from_points(np.ones((2, 2)), np.zeros((2, 2)))


def test_aligned_eye_centres_land_on_template(bank_photos):
    photo = next(p for p in bank_photos if p.photo.photo_id == "obama_2")
    face = process_image(photo.path)
    left, right = eye_centres(face.landmarks)
    tmpl = eye_template(256)
    assert np.abs(left - tmpl[0]).max() < 1.0
    assert np.abs(right - tmpl[1]).max() < 1.0
    # the crop really shows those eyes there: landmarks found again on the crop agree
    # (on a canvas with room around the face, as the detectors expect)
    import cv2

    canvas = cv2.copyMakeBorder(face.image, 64, 64, 64, 64, cv2.BORDER_REPLICATE)
    box = detect_face(canvas, near=(192, 192))
    again = landmarks68(canvas, box.box) - 64
    l2, r2 = eye_centres(again)
    # dlib's eye points move by a few percent of the eye distance with the detector box
    iod = tmpl[1, 0] - tmpl[0, 0]
    assert np.abs(l2 - tmpl[0]).max() < 0.05 * iod and np.abs(r2 - tmpl[1]).max() < 0.05 * iod


def test_alignment_undoes_a_known_rotation(bank_photos):
    """Rotate and shrink a photo by a known similarity: the aligned crops must agree."""
    import cv2

    photo = next(p for p in bank_photos if p.photo.photo_id == "biden")
    image = load_image(photo.path)
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 12.0, 0.7)
    turned = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR)
    a, b = process_image(image), process_image(turned)
    # the same face points land on the same crop positions (landmark noise allowed)
    assert np.median(np.abs(a.landmarks - b.landmarks)) < 2.0


def test_transform_roundtrip(rng):
    m = similarity_from_points(rng.uniform(0, 100, (2, 2)), rng.uniform(0, 100, (2, 2)))
    pts = rng.uniform(0, 100, (10, 2))
    np.testing.assert_allclose(transform_points(invert_affine(m), transform_points(m, pts)), pts, atol=1e-8)


def test_missing_and_corrupt_images_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.jpg"):
        load_image(tmp_path / "nothere.jpg")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(OSError, match="broken.jpg"):
        load_image(bad)


def test_no_face_raises_a_clear_error():
    from hmrm.face import FaceNotFoundError

    blank = np.full((200, 200, 3), 127, np.uint8)
    with pytest.raises(FaceNotFoundError, match="no face found in blank.png"):
        detect_face(blank, source="blank.png")


def test_align_face_returns_transformed_landmarks(bank_faces):
    f = bank_faces[0]
    from hmrm.data.facebank import BankPhoto, Photo, load_photo

    image = load_photo(BankPhoto(Photo(f.photo_id, f.person, "", "", None, pad=f.pad), f.path))
    al = align_face(image, f.landmarks, 128)
    assert al.image.shape == (128, 128, 3)
    np.testing.assert_allclose(al.landmarks, transform_points(al.matrix, f.landmarks))
