"""`prepare`: aligned onset/apex crops per sample, resumable, failures listed and retried."""
import csv
import shutil

import numpy as np
import pytest

from hmrm.data.prepare import load_prepared, prepare_samples, sample_dir
from hmrm.data.records import DataError
from hmrm.data.synthme import load_synthme
from hmrm.face.align import eye_template
from hmrm.face.landmarks import eye_centres


@pytest.fixture
def synth_copy(tmp_path, tiny_synthme):
    root = tmp_path / "synth"
    shutil.copytree(tiny_synthme, root)
    return root


def test_prepare_aligns_and_resumes(tmp_path, synth_copy):
    samples = load_synthme(synth_copy)[:3]
    out = tmp_path / "prep"
    res = prepare_samples(samples, out, size=128, progress=False)
    assert res == {"done": 3, "cached": 0, "failed": []}
    p = load_prepared(samples[0], out)
    assert p.onset.shape == p.apex.shape == (128, 128, 3) and p.landmarks.shape == (68, 2)
    # the onset's eyes land on the template of the crop
    for got, want in zip(eye_centres(p.landmarks), eye_template(128)):
        assert np.linalg.norm(np.asarray(got) - want) < 1.0
    assert set(p.regions) == {"right_eye", "left_eye", "nose", "mouth"}
    # onset and apex share one transform: they differ by the small motion only
    assert np.abs(p.onset.astype(float) - p.apex).mean() < 12
    rows = list(csv.DictReader(open(out / "synthme" / "prepared.csv")))
    assert [r["sample"] for r in rows] == [s.sample_id for s in samples]
    # a second run finds everything cached and changes nothing
    before = (sample_dir(out, samples[0]) / "onset.png").stat().st_mtime_ns
    assert prepare_samples(samples, out, size=128, progress=False) == {"done": 0, "cached": 3, "failed": []}
    assert (sample_dir(out, samples[0]) / "onset.png").stat().st_mtime_ns == before
    with pytest.raises(DataError, match="size 128, not 256"):
        prepare_samples(samples, out, size=256, progress=False)


def test_bad_frames_are_listed_and_retried(tmp_path, synth_copy):
    import cv2

    samples = load_synthme(synth_copy)[:2]
    out = tmp_path / "prep"
    originals = [s.onset_path.read_bytes() for s in samples]
    cv2.imwrite(str(samples[0].onset_path), np.full((256, 256, 3), 128, np.uint8))  # a frame without a face
    samples[1].onset_path.write_bytes(b"\x89PNG broken")  # a corrupt frame
    res = prepare_samples(samples, out, size=128, progress=False)
    assert res["done"] == 0 and len(res["failed"]) == 2
    reasons = {k: why for k, _, why in res["failed"]}
    assert "no face found in" in reasons[samples[0].key] and str(samples[0].onset_path) in reasons[samples[0].key]
    assert str(samples[1].onset_path) in reasons[samples[1].key]
    listed = list(csv.DictReader(open(out / "synthme" / "failures.csv")))
    assert [r["sample"] for r in listed] == [s.key for s in samples]
    assert not any(p.name.endswith(".part") for p in (out / "synthme").rglob("*"))
    # restore the frames: the next run prepares them and the failure list goes away
    for s, data in zip(samples, originals):
        s.onset_path.write_bytes(data)
    assert prepare_samples(samples, out, size=128, progress=False) == {"done": 2, "cached": 0, "failed": []}
    assert not (out / "synthme" / "failures.csv").exists()


def test_unprepared_sample_has_a_clear_error(tmp_path, synth_copy):
    s = load_synthme(synth_copy)[0]
    with pytest.raises(DataError, match="not prepared.*hmrm prepare"):
        load_prepared(s, tmp_path / "empty")
