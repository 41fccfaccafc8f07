import re

import pytest

from hmrm.data import facebank
from hmrm.data.facebank import PHOTOS, SDISTS, fetch_face_bank, subjects


def test_registry_is_well_formed():
    ids = [p.photo_id for p in PHOTOS]
    assert len(ids) == len(set(ids))
    for p in PHOTOS:
        assert p.source == "skimage" or p.source in SDISTS
        assert p.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", p.sha256)
    for s in SDISTS.values():
        assert re.fullmatch(r"[0-9a-f]{64}", s.sha256)


def test_full_bank_has_ten_subjects(bank_photos):
    groups = subjects(bank_photos)
    assert len(groups) >= 10
    assert len(groups["obama"]) == 3  # several photos of one person are one subject


def test_offline_without_cache_falls_back_to_astronaut(tmp_path):
    with pytest.warns(UserWarning, match="could not be fetched"):
        photos = fetch_face_bank(root=tmp_path, offline=True, verbose=False)
    assert [p.person for p in photos] == ["astronaut"]
    assert (tmp_path / "manifest.json").is_file()


def test_a_tampered_file_is_refetched_or_refused(tmp_path, bank_photos):
    import shutil

    root = tmp_path / "bank"
    (root / "photos").mkdir(parents=True)
    for b in bank_photos:
        shutil.copy(b.path, root / "photos" / b.path.name)
    (root / "photos" / "biden.jpg").write_bytes(b"tampered")
    with pytest.warns(UserWarning, match="biden"):
        photos = fetch_face_bank(root=root, offline=True, verbose=False)
    assert "biden" not in {p.person for p in photos}
    assert len(photos) == len(bank_photos) - 1


def test_credit_names_the_source(bank_photos):
    for b in bank_photos:
        text = b.source_text
        assert ("PyPI sdist" in text) or ("scikit-image" in text)
    assert facebank.bank_dir().is_dir()
