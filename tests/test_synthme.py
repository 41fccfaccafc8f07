import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from hmrm.data.records import DataError
from hmrm.flow import warp_array
from hmrm.data.synthme import (
    ClipMotion, SynthConfig, build_synthme, class_counts, load_gt_flow, load_synthme, make_specs,
    render_clip, temporal_profile,
)


def test_class_counts_follow_the_composite_balance():
    assert class_counts(16, (0.57, 0.24, 0.19)) == {"negative": 9, "positive": 4, "surprise": 3}
    assert sum(class_counts(7, (0.57, 0.24, 0.19)).values()) == 7


def test_temporal_profile():
    a = temporal_profile(20, 2, 9, 18)
    assert a[2] == 0 and a[9] == 1 and a[18] == pytest.approx(0, abs=1e-12)
    assert (np.diff(a[2:10]) > 0).all() and (np.diff(a[9:19]) < 0).all()
    assert a[:2].max() == 0 and a[19] == 0


def test_specs_are_heterogeneous_and_balanced(bank_faces):
    specs = make_specs(bank_faces, SynthConfig())
    people = {f.person for f in bank_faces}
    assert len(specs) == 16 * len(people)
    neg = [s for s in specs if s.emotion not in ("happiness", "surprise")]
    assert len(neg) / len(specs) == pytest.approx(0.56, abs=0.02)
    assert len({s.emotion for s in neg}) >= 5  # several negative AU patterns
    assert all(s.n_frames >= 16 for s in specs)
    assert all(0.5 <= s.peak_px <= 2.0 for s in specs)


def _warp(image, flow):
    return warp_array(image, flow, mode="bicubic")


def test_gt_flow_is_exact(render_face, bank_faces):
    """Warping the apex frame by the ground-truth flow gives back the onset frame."""
    spec = next(s for s in make_specs(bank_faces, SynthConfig()) if s.photo_id == bank_faces[0].photo_id)
    frames, flow, motion = render_clip(render_face, spec, noise=False, lighting=False)
    onset, apex = frames[spec.onset], frames[spec.apex]
    # 1. the motion model: the apex frame shows, at x + F(x), the same photo point as onset at x
    src_onset = motion.inverse(spec.onset, motion.grid)
    src_apex = motion.inverse(spec.apex, motion.grid + flow)
    assert np.abs(src_apex - src_onset).max() < 1e-4
    # 2. the pixels: on the face, the warped apex matches onset far better than apex itself
    face = render_face.fields.face
    warped = _warp(apex, flow)
    residual = np.abs(warped - onset)[face].mean()
    unwarped = np.abs(apex.astype(np.float32) - onset)[face].mean()
    assert residual < 1.5
    assert residual < 0.3 * unwarped
    # a slightly wrong flow does worse than the exact one
    assert np.abs(_warp(apex, 0.8 * flow) - onset)[face].mean() > residual


def test_every_frame_is_resampled_alike(render_face, bank_faces):
    """Onset is not sharper than apex: both pass through the same resampling."""
    spec = make_specs(bank_faces, SynthConfig())[0]
    frames, _, _ = render_clip(render_face, spec, noise=False, lighting=False)

    def sharpness(img):
        g = img.astype(np.float32).mean(-1)
        return np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean()

    s = [sharpness(f) for f in frames]
    assert np.std(s) / np.mean(s) < 0.02


def test_tiny_build_on_disk(tiny_synthme):
    root = Path(tiny_synthme)
    for name in ("annotations.csv", "subjects.csv", "manifest.json"):
        assert (root / name).is_file()
    samples = load_synthme(root)
    assert len(samples) == 8 and samples.subjects == ["sub01", "sub02"]
    assert samples.class_counts() == {"negative": 4, "positive": 2, "surprise": 2}
    s = samples[0]
    assert s.dataset == "synthme" and s.n_frames == 16 and s.onset_path.is_file()
    assert s.onset < s.apex < s.offset
    gt = load_gt_flow(s)
    assert gt["flow"].shape == (256, 256, 2) and gt["flow"].dtype == np.float32
    assert gt["face_mask"].shape == (256, 256) and gt["landmarks_onset"].shape == (68, 2)
    mag = np.sqrt((gt["flow"] ** 2).sum(-1))[gt["face_mask"]]
    assert 0 < mag.max() < 6


def test_other_class_scheme(tiny_synthme):
    samples = load_synthme(tiny_synthme, scheme="casme2_5")
    assert set(s.label for s in samples) <= {"happiness", "disgust", "repression", "surprise", "others"}
    assert len(samples) + sum(samples.dropped.values()) == 8


def test_same_seed_same_bytes_and_resume(tmp_path, tiny_synthme):
    cfg = SynthConfig.preset("tiny")
    out = tmp_path / "again"
    build_synthme(out, cfg, max_subjects=2, progress=False, workers=2)
    ref = Path(tiny_synthme)
    files = sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for rel in files:
        assert (ref / rel).read_bytes() == (out / rel).read_bytes(), rel
    # interrupt: one clip lost, the annotation file not yet written -> a rerun restores the same bytes
    victim = out / "frames" / "sub02" / "sub02_03"
    before = {p.name: p.read_bytes() for p in victim.iterdir()}
    shutil.rmtree(victim)
    (out / "annotations.csv").unlink()
    keep = out / "frames" / "sub01" / "sub01_01" / "img001.png"
    mtime = keep.stat().st_mtime_ns
    build_synthme(out, cfg, max_subjects=2, progress=False, workers=1)
    assert {p.name: p.read_bytes() for p in victim.iterdir()} == before
    assert keep.stat().st_mtime_ns == mtime  # finished clips are not redone
    assert (out / "annotations.csv").read_bytes() == (ref / "annotations.csv").read_bytes()


def test_other_settings_are_not_mixed_into_a_build(tmp_path, tiny_synthme):
    out = tmp_path / "copy"
    shutil.copytree(tiny_synthme, out)
    with pytest.raises(DataError, match="other settings"):
        build_synthme(out, SynthConfig.preset("tiny", seed=1), max_subjects=2, progress=False, workers=1)


def test_missing_root_and_annotations(tmp_path):
    with pytest.raises(DataError, match="hmrm synthme --out"):
        load_synthme(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    with pytest.raises(DataError, match="annotations.csv is missing"):
        load_synthme(tmp_path / "half")


def test_malformed_annotation_names_file_and_line(tmp_path, tiny_synthme):
    out = tmp_path / "bad"
    shutil.copytree(tiny_synthme, out)
    rows = list(csv.DictReader(open(out / "annotations.csv")))
    rows[2]["apex"] = "twelve"
    with open(out / "annotations.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(DataError, match=r"annotations.csv, line 4"):
        load_synthme(out)


def test_missing_frames_are_skipped_and_listed(tmp_path, tiny_synthme):
    out = tmp_path / "holes"
    shutil.copytree(tiny_synthme, out)
    (out / "frames" / "sub01" / "sub01_02" / "img005.png").unlink()
    with pytest.warns(UserWarning, match="sub01_02"):
        samples = load_synthme(out)
    assert len(samples) == 7
    assert samples.skipped[0][0] == "synthme/sub01/sub01_02" and "img005.png" in samples.skipped[0][1]
    assert "skipped" in samples.summary()


def test_motion_inverse_is_consistent(render_face, bank_faces):
    spec = make_specs(bank_faces, SynthConfig())[3]
    m = ClipMotion(render_face, spec)
    x = m.grid[::17, ::17]
    for t in (spec.onset, spec.apex, spec.n_frames - 1):
        np.testing.assert_allclose(m.inverse(t, m.forward(t, x)), x, atol=1e-5)
