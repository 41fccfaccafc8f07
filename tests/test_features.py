"""`hmrm.features`: flow inputs and region boxes of a sample, and their disk cache."""
import json

import numpy as np
import pytest
from PIL import Image

import hmrm.features as feats
from hmrm.data.records import DataError, Sample
from hmrm.data.synthme import load_gt_flow, load_synthme
from hmrm.face.regions import REGION_NAMES, region_boxes
from hmrm.features import (
    DEFAULT_SIZE, FlowCache, build_flow_inputs, flow_channels, flow_input, region_boxes_for, resize_flow,
)


def _landmarks(size=256):
    """A plausible 68-point face (iBUG layout) on a ``size`` crop, drawn by hand."""
    s = size / 256
    pts = np.zeros((68, 2))
    t = np.linspace(0, np.pi, 17)
    pts[0:17] = np.c_[128 - 88 * np.cos(t), 110 + 110 * np.sin(t)]  # jaw
    pts[17:22] = np.c_[np.linspace(60, 112, 5), [88, 82, 80, 82, 86]]  # right brow (image left)
    pts[22:27] = np.c_[np.linspace(144, 196, 5), [86, 82, 80, 82, 88]]
    pts[27:31] = np.c_[np.full(4, 128), np.linspace(100, 145, 4)]  # nose bridge
    pts[31:36] = np.c_[np.linspace(110, 146, 5), [152, 156, 158, 156, 152]]  # nostrils
    for first, cx in ((36, 88), (42, 168)):  # eyes
        a = np.linspace(0, 2 * np.pi, 7)[:6]
        pts[first:first + 6] = np.c_[cx - 15 * np.cos(a), 106 - 5 * np.sin(a)]
    a = np.linspace(0, 2 * np.pi, 13)[:12]
    pts[48:60] = np.c_[128 - 33 * np.cos(a), 192 - 10 * np.sin(a)]  # outer lips
    a = np.linspace(0, 2 * np.pi, 9)[:8]
    pts[60:68] = np.c_[128 - 22 * np.cos(a), 192 - 4 * np.sin(a)]
    return pts * s


def _fake_synthme_sample(folder, name="s01", shift=(2, 0), gt=(1.0, -0.5), label=0, size=256, seed=0):
    """A SynthME-like sample on disk: a textured onset, the apex shifted by ``shift`` (whole px),
    and a ground-truth file holding a constant flow ``gt`` and hand-drawn landmarks."""
    rng = np.random.default_rng(seed)
    import cv2

    tex = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.0)
    tex = (255 * (tex - tex.min()) / (tex.max() - tex.min())).astype(np.uint8)
    onset = np.repeat(tex[..., None], 3, -1)
    apex = np.roll(onset, shift=(shift[1], shift[0]), axis=(0, 1))
    clip = folder / "frames" / "sub01" / name
    clip.mkdir(parents=True)
    frames = []
    for i, img in enumerate((onset, apex)):
        frames.append(clip / f"img{i + 1:03d}.png")
        Image.fromarray(img).save(frames[-1])
    gt_file = folder / "gt_flow" / "sub01" / f"{name}.npz"
    gt_file.parent.mkdir(parents=True, exist_ok=True)
    lm = _landmarks(size)
    np.savez(gt_file, flow=np.broadcast_to(np.float32(gt), (size, size, 2)).copy(),
             face_mask=np.ones((size, size), bool), landmarks_onset=lm.astype(np.float32),
             landmarks_apex=lm.astype(np.float32))
    return Sample(dataset="synthme", subject="sub01", sample_id=name, frames=tuple(frames), onset=0, apex=1,
                  offset=1, emotion="happiness", label="positive", label_index=label, meta={"gt_flow": gt_file})


@pytest.fixture
def fake(tmp_path):
    return [_fake_synthme_sample(tmp_path / "set", f"s{i:02d}", seed=i, label=i % 2) for i in range(3)]


def test_shapes_dtypes_and_default_size(fake):
    assert DEFAULT_SIZE % 16 == 0
    x = flow_input(fake[0], "gt")
    assert x.shape == (3, DEFAULT_SIZE, DEFAULT_SIZE) and x.dtype == np.float32
    x4 = flow_input(fake[0], "gt", size=64, channels=("u", "v", "mag", "strain"))
    assert x4.shape == (4, 64, 64)
    b = region_boxes_for(fake[0], 64)
    assert b.shape == (len(REGION_NAMES), 4) and b.dtype.kind == "i"
    assert ((b[:, 0] < b[:, 2]) & (b[:, 1] < b[:, 3])).all() and b.min() >= 0 and b.max() <= 64


def test_translation_flow_is_scaled_with_the_resize(fake):
    """A constant (1, -0.5) px flow at 256 px is (0.5, -0.25) px at 128 and has no strain."""
    x = flow_input(fake[0], "gt", size=128, channels=("u", "v", "mag", "strain"))
    np.testing.assert_allclose(x[0], 0.5, atol=1e-6)
    np.testing.assert_allclose(x[1], -0.25, atol=1e-6)
    np.testing.assert_allclose(x[2], np.hypot(0.5, 0.25), atol=1e-6)
    np.testing.assert_allclose(x[3], 0.0, atol=1e-6)
    # upsampling scales the other way
    np.testing.assert_allclose(resize_flow(np.full((32, 64, 2), 1.0, np.float32), 128)[..., 0], 2.0, atol=1e-6)
    np.testing.assert_allclose(resize_flow(np.full((32, 64, 2), 1.0, np.float32), 128)[..., 1], 4.0, atol=1e-6)


def test_estimated_flow_sees_the_shift(fake):
    """Tuned DIS on the shifted texture: about (2, 0) px at 256, i.e. 2 * 112 / 256 at 112."""
    x = flow_input(fake[0], "dis_tuned", size=112)
    inner = (slice(16, -16), slice(16, -16))
    assert np.median(x[0][inner]) == pytest.approx(2 * 112 / 256, abs=0.05)
    assert abs(np.median(x[1][inner])) < 0.05


def test_boxes_follow_the_scaled_landmarks(fake):
    full = np.array([region_boxes(_landmarks(), 256)[n] for n in REGION_NAMES])
    half = region_boxes_for(fake[0], 128)
    assert np.abs(half - full / 2).max() <= 1.0


def test_cache_computes_each_sample_once(fake, tmp_path, monkeypatch):
    calls = []
    real = feats.estimate_flow

    def counting(a, b, method):
        calls.append(method)
        return real(a, b, method)

    monkeypatch.setattr(feats.inputs, "estimate_flow", counting)
    first = build_flow_inputs(fake, "farneback", size=32, cache_dir=tmp_path / "c", progress=False)
    assert len(calls) == 3
    assert first.x.shape == (3, 3, 32, 32) and first.boxes.shape == (3, 4, 4)
    assert first.labels.tolist() == [s.label_index for s in fake]
    again = build_flow_inputs(fake, "farneback", size=32, cache_dir=tmp_path / "c", progress=False)
    assert len(calls) == 3  # nothing recomputed
    np.testing.assert_array_equal(again.x, first.x)
    np.testing.assert_array_equal(again.boxes, first.boxes)
    # method, size and channels are part of the key
    build_flow_inputs(fake[:1], "farneback", size=32, channels=("u", "v"), cache_dir=tmp_path / "c", progress=False)
    build_flow_inputs(fake[:1], "farneback", size=16, cache_dir=tmp_path / "c", progress=False)
    assert len(calls) == 5
    # a changed source frame makes its entry stale
    Image.fromarray(np.zeros((256, 256, 3), np.uint8)).save(fake[1].apex_path)
    cache = FlowCache(tmp_path / "c", "farneback", 32)
    for s in fake:
        cache.get(s)
    assert (cache.computed, cache.reused, cache.repaired) == (1, 2, 1)


def test_parallel_fill_gives_the_same_entries(fake, tmp_path):
    serial = build_flow_inputs(fake, "farneback", size=32, cache_dir=tmp_path / "a", progress=False)
    parallel = build_flow_inputs(fake, "farneback", size=32, cache_dir=tmp_path / "b", progress=False, workers=2)
    np.testing.assert_array_equal(parallel.x, serial.x)
    np.testing.assert_array_equal(parallel.boxes, serial.boxes)
    assert all(FlowCache(tmp_path / "b", "farneback", 32).path(s).is_file() for s in fake)


def test_learned_flow_inputs_are_the_same_bytes_whatever_the_threads_and_workers(tiny_synthme, tmp_path):
    """GRU-AOFE's convolutions give other last bits on two threads than on one; the cache computes
    every entry on one thread, so in-process on two threads and two worker processes agree."""
    import torch

    samples = list(load_synthme(tiny_synthme))[:4]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = build_flow_inputs(samples, "gru_aofe", size=32, cache_dir=tmp_path / "a", progress=False)
        assert torch.get_num_threads() == 2                       # the settings come back after each entry
    finally:
        torch.set_num_threads(before)
    b = build_flow_inputs(samples, "gru_aofe", size=32, cache_dir=tmp_path / "b", progress=False, workers=2)
    assert a.x.tobytes() == b.x.tobytes()


def test_learned_flow_cache_names_its_weights(fake, tmp_path):
    from hmrm.flow.pretrained import weight_info

    tag = FlowCache(tmp_path, "gru_aofe", 32).tag
    assert tag.startswith(f"gru_aofe-w{weight_info('gru_aofe')['sha256'][:8]}-s32-")
    assert FlowCache(tmp_path, "tvl1", 32).tag.startswith("tvl1-s32-")


def test_parallel_fill_names_a_bad_frame_and_keeps_the_others(fake, tmp_path):
    fake[1].onset_path.write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=fake[1].onset_path.name):
        build_flow_inputs(fake, "farneback", size=32, cache_dir=tmp_path / "c", progress=False, workers=2)
    cache = FlowCache(tmp_path / "c", "farneback", 32)
    assert cache.path(fake[0]).is_file() and not cache.path(fake[1]).is_file()


def test_corrupt_cache_entry_is_named_and_recomputed(fake, tmp_path):
    cache = FlowCache(tmp_path / "c", "gt", 32)
    x, _ = cache.get(fake[0])
    path = cache.path(fake[0])
    path.write_bytes(b"not a zip file")
    fresh = FlowCache(tmp_path / "c", "gt", 32)
    with pytest.warns(UserWarning, match=str(path.name)):
        y, _ = fresh.get(fake[0])
    np.testing.assert_array_equal(x, y)
    assert fresh.computed == 1 and fresh.repaired == 1
    assert FlowCache(tmp_path / "c", "gt", 32).get(fake[0])[0].shape == (3, 32, 32)  # repaired on disk


def test_corrupt_frame_names_the_file(fake, tmp_path):
    fake[0].onset_path.write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=str(fake[0].onset_path.name)) as err:
        build_flow_inputs(fake, "farneback", size=32, cache_dir=tmp_path / "c", progress=False)
    assert "hmrm synthme" in str(err.value)


def test_real_sets_need_prepared_crops(fake, tmp_path):
    s = fake[0]
    real = Sample(dataset="casme2", subject="sub01", sample_id="EP01", frames=s.frames, onset=0, apex=1, offset=1,
                  emotion="happiness", label="happiness", label_index=0)
    with pytest.raises(DataError, match="hmrm prepare"):
        flow_input(real)
    prep = tmp_path / "prep"
    with pytest.raises(DataError, match="face.json"):
        flow_input(real, prepared=prep)
    # a prepared folder as `hmrm prepare` writes it (crops of 128 px)
    folder = prep / "casme2" / "sub01" / "EP01"
    folder.mkdir(parents=True)
    for name, src in (("onset", s.onset_path), ("apex", s.apex_path)):
        Image.open(src).resize((128, 128)).save(folder / f"{name}.png")
    (folder / "face.json").write_text(json.dumps({"landmarks": (_landmarks() / 2).tolist(), "size": 128}))
    x = flow_input(real, "farneback", size=64, prepared=prep)
    assert x.shape == (3, 64, 64)
    np.testing.assert_array_equal(region_boxes_for(real, 64, prepared=prep), region_boxes_for(s, 64))
    with pytest.raises(DataError, match="ground-truth"):
        flow_input(real, "gt", prepared=prep)


def test_bad_arguments_are_refused(fake):
    with pytest.raises(ValueError, match="method"):
        flow_input(fake[0], "raft")
    with pytest.raises(ValueError, match="channel"):
        flow_input(fake[0], "gt", channels=("u", "w"))


def test_gt_method_on_synthme_equals_the_resized_ground_truth(tiny_synthme, tmp_path):
    samples = load_synthme(tiny_synthme)[:3]
    got = build_flow_inputs(samples, "gt", size=112, cache_dir=tmp_path / "c", progress=False)
    for i, s in enumerate(samples):
        g = load_gt_flow(s)
        np.testing.assert_array_equal(got.x[i], flow_channels(resize_flow(g["flow"], 112)))
        want = region_boxes(g["landmarks_onset"] * 112 / 256, 112)
        assert got.boxes[i].tolist() == [list(want[n]) for n in REGION_NAMES]
    assert got.labels.tolist() == [s.label_index for s in samples]
    # the eyes sit above the mouth, the subject's right eye on the image's left
    b = got.boxes[0]
    assert b[0, 2] <= b[1, 0] + 2 and b[0, 3] < b[3, 1]


def test_two_sets_with_the_same_sample_keys_keep_separate_entries(tmp_path):
    """A tiny and a full SynthME share sample keys; their cache entries must not overwrite each other."""
    one = _fake_synthme_sample(tmp_path / "one", "s00", gt=(1.0, 0.0))
    two = _fake_synthme_sample(tmp_path / "two", "s00", gt=(0.0, 1.0))
    cache = FlowCache(tmp_path / "c", "gt", 32)
    assert one.key == two.key and cache.path(one) != cache.path(two)
    for _ in range(2):
        assert cache.get(one)[0][0].mean() > 0 and cache.get(two)[0][1].mean() > 0
    assert (cache.computed, cache.reused) == (2, 2)
