"""The licensed data sets' parsers, on fake layouts that reproduce their quirks."""
import json

import cv2
import numpy as np
import pytest

from hmrm.cli import main
from hmrm.data.apex import ApexCache, estimate_apex
from hmrm.data.casme2 import load_casme2
from hmrm.data.composite import CLASS_COUNTS, check_composite, composite_list, load_composite
from hmrm.data.datasets import load_dataset
from hmrm.data.records import DataError
from hmrm.data.samm import load_samm
from hmrm.data.smic import composite_id, load_smic

from fake_datasets import make_casme2, make_composite, make_samm, make_smic, write_xlsx


@pytest.fixture
def apex_cache(tmp_path):
    return ApexCache(tmp_path / "apex.json")


CASME = [
    ("sub01", "EP02_01f", 46, 59, 86, "happiness"),
    ("sub01", "EP03_02", 10, 14, 18, "others"),
    ("sub02", "EP09_01", 20, "/", 26, "disgust"),          # no apex: estimated
    ("sub02", "EP11_01", 30, 32, 340, "repression", range(30, 41)),  # offset past the last frame: fixed
    ("sub03", "EP01_01", 5, 7, 9, "fear"),                 # outside casme2_5
    ("sub03", "EP04_01", 5, 7, 9, "sadness"),              # outside casme2_5
    ("sub04", "EP05_01", 5, 6, 9, "surprise", range(5, 8)),  # frames 8, 9 missing -> offset fixed to 7
    ("sub05", "EP06_01", 5, 6, 9, "surprise", []),           # no frames at all -> skipped
]


def test_casme2_quirks(tmp_path, apex_cache):
    root = make_casme2(tmp_path / "CASME2", CASME)
    with pytest.warns(UserWarning, match="1 sample"):
        ss = load_casme2(root, apex_cache=apex_cache)
    keys = [s.key for s in ss]
    assert keys == ["casme2/sub01/EP02_01f", "casme2/sub01/EP03_02", "casme2/sub02/EP09_01", "casme2/sub02/EP11_01",
                    "casme2/sub04/EP05_01"]
    assert ss.dropped == {"fear": 1, "sadness": 1}
    assert [k for k, _ in ss.skipped] == ["casme2/sub05/EP06_01"]
    first = ss[0]
    assert first.n_frames == 86 - 46 + 1 and first.apex == 59 - 46 and first.frames[0].name == "img46.jpg"
    assert first.label == "happiness" and first.label_index == 0 and first.aus == "4+7"
    est = ss[2]
    assert est.meta["apex_estimated"] and 0 <= est.apex <= est.offset
    fixes = {k: what for k, what, _ in ss.fixes}
    assert "apex missing" in fixes["casme2/sub02/EP09_01"]
    assert fixes["casme2/sub02/EP11_01"] == "offset 340 -> 40" and ss[3].n_frames == 11
    assert fixes["casme2/sub04/EP05_01"] == "offset 9 -> 7"
    assert all("CASME2-coding-20140508.xlsx, line" in why for _, _, why in ss.fixes)
    # the same files under the composite scheme: others dropped, the rest mapped
    with pytest.warns(UserWarning):
        ss3 = load_casme2(root, scheme="composite3", apex_cache=apex_cache)
    assert ss3.class_counts() == {"negative": 4, "positive": 1, "surprise": 1}
    assert ss3.dropped == {"others": 1}


def test_casme2_cropped_release_and_text_subjects(tmp_path, apex_cache):
    root = make_casme2(tmp_path / "c", CASME[:2], cropped=True)
    ss = load_casme2(root, apex_cache=apex_cache)
    assert ss[0].frames[0].name == "reg_img46.jpg"
    with pytest.raises(DataError, match="CASME2_RAW_selected.*--frames"):
        load_casme2(root, frames="raw")
    # an older sheet without blank columns, subjects written as text
    write_xlsx(root / "CASME2-coding-20140508.xlsx", [["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"],
                                                    ["sub01", "EP02_01f", 46, 59, 86, "12", "happiness"]])
    assert [s.key for s in load_casme2(root, apex_cache=apex_cache)] == ["casme2/sub01/EP02_01f"]


def test_casme2_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="does not exist.*CASME2-coding"):
        load_casme2(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no CASME2-coding-\\*.xlsx in"):
        load_casme2(tmp_path / "empty")
    root = make_casme2(tmp_path / "bad", CASME[:1])
    write_xlsx(root / "CASME2-coding-20140508.xlsx", [["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"],
                                                    [1, "EP02_01f", 46, "about 50", 86, "12", "happiness"]])
    with pytest.raises(DataError, match=r"CASME2-coding-20140508.xlsx, line 2: frame number 'about 50'"):
        load_casme2(root)
    write_xlsx(root / "CASME2-coding-20140508.xlsx", [["Name", "Start", "End"], ["x", 1, 2]])
    with pytest.raises(DataError, match="no header row"):
        load_casme2(root)
    (root / "CASME2-coding-20140508.xlsx").write_bytes(b"not a spreadsheet")
    with pytest.raises(DataError, match="cannot be read"):
        load_casme2(root)


SAMM = [
    ("006", "006_1_2", 5562, 5588, 5632, "Anger"),
    ("006", "006_1_3", 3912, 3948, 3988, "Other"),
    ("007", "007_3_1", 100, -1, 140, "Others"),  # no apex; "Others" spelling
    ("011", "011_2_1", 10, 12, 20, "Fear"),      # outside samm5
    ("011", "011_2_2", 10, 12, 20, "Happiness"),
]


def test_samm_quirks(tmp_path, apex_cache):
    root = make_samm(tmp_path / "SAMM", SAMM)
    ss = load_samm(root, apex_cache=apex_cache)
    assert [s.key for s in ss] == ["samm/006/006_1_2", "samm/006/006_1_3", "samm/007/007_3_1", "samm/011/011_2_2"]
    assert ss.class_counts() == {"happiness": 1, "anger": 1, "contempt": 0, "surprise": 0, "others": 2}
    assert ss.dropped == {"Fear": 1}
    assert ss[0].frames[0].name == "006_05562.jpg" and ss[0].apex == 26 and ss[0].n_frames == 71
    assert ss[2].meta["apex_estimated"] and [k for k, *_ in ss.fixes] == ["samm/007/007_3_1"]
    assert "line 16" in ss.fixes[0][2]  # 12 preamble rows + header: the first data row is line 14


def test_smic_layout(tmp_path, apex_cache):
    root = make_smic(tmp_path / "SMIC", [("s1", "s1_ne_01", "negative"), ("s1", "s1_po_02", "positive"),
                                          ("s12", "s12_sur_01", "surprise")], n_frames=5)
    ss = load_smic(root, apex_cache=apex_cache)
    assert [s.key for s in ss] == ["smic/s01/s01_ne_01", "smic/s01/s01_po_02", "smic/s12/s12_sur_01"]
    assert ss.class_counts() == {"negative": 1, "positive": 1, "surprise": 1}
    assert all(s.meta["apex_estimated"] and s.n_frames == 5 and s.onset == 0 and s.offset == 4 for s in ss)
    assert not ss.fixes  # SMIC has no apex to fix: estimating it is the rule, not a correction
    assert composite_id("s3") == "s03" and composite_id("s03_ne_01") == "s03_ne_01"
    with pytest.raises(DataError, match="no subject folders"):
        load_smic(tmp_path)


def test_composite_is_442_samples_of_68_subjects(tmp_path, apex_cache):
    root = make_composite(tmp_path / "megc")
    ss = load_dataset("composite", root, apex_cache=apex_cache)
    assert len(ss) == 442 and len(ss.groups) == 68
    assert ss.class_counts() == CLASS_COUNTS == {"negative": 250, "positive": 109, "surprise": 83}
    assert check_composite(ss) == [] and not ss.skipped
    per = {d: sum(s.dataset == d for s in ss) for d in ("casme2", "samm", "smic")}
    assert per == {"casme2": 145, "samm": 133, "smic": 164}
    assert [(s.dataset, s.subject, s.sample_id) for s in ss] == [(r["dataset"], r["subject"], r["sample"]) for r in composite_list()]
    # a clip that went missing is named, and the check says what differs
    import shutil

    shutil.rmtree(root / "samm" / "SAMM" / "006" / "006_1_2")
    with pytest.warns(UserWarning):
        ss2 = load_composite(root / "casme2", root / "samm", root / "smic", apex_cache=apex_cache)
    assert len(ss2) == 441 and ss2.skipped[0][0] == "samm/006/006_1_2"
    assert any("441 samples" in p for p in check_composite(ss2))


def _moving_blob_clip(folder, n=15, apex=9, size=64):
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur((rng.random((size, size)) * 255).astype(np.float32), (0, 0), 1.5)
    folder.mkdir(parents=True)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    paths = []
    for t in range(n):
        a = max(0.0, 1 - abs(t - apex) / (apex if t <= apex else n - 1 - apex))  # 0 -> 1 at apex -> back down
        d = 3.0 * a * np.exp(-((xs - 32) ** 2 + (ys - 40) ** 2) / (2 * 8 ** 2))  # a local bump moving down
        img = cv2.remap(base, xs, ys - d, cv2.INTER_CUBIC)
        img = img + 1.5 * t / n  # slow lighting drift, rigid-free
        p = folder / f"img{t + 1}.png"
        cv2.imwrite(str(p), np.clip(img, 0, 255).astype(np.uint8))
        paths.append(p)
    return paths


def test_apex_estimate_finds_the_largest_motion(tmp_path):
    paths = _moving_blob_clip(tmp_path / "clip", apex=9)
    assert abs(estimate_apex(paths, width=64) - 9) <= 1
    paths = _moving_blob_clip(tmp_path / "clip2", apex=4)
    assert abs(estimate_apex(paths, width=64) - 4) <= 1
    assert estimate_apex(paths, onset=6, offset=6) == 6
    with pytest.raises(ValueError):
        estimate_apex(paths, onset=5, offset=2)


def test_apex_cache_is_reused(tmp_path):
    paths = _moving_blob_clip(tmp_path / "clip", apex=9)
    cache = ApexCache(tmp_path / "a.json")
    first = cache.get("x/y/z", paths)
    saved = json.loads((tmp_path / "a.json").read_text())
    assert list(saved.values()) == [first]
    # a tampered entry is returned as is: proof that the file, not a new estimate, answered
    key = next(iter(saved))
    (tmp_path / "a.json").write_text(json.dumps({key: 3}))
    assert ApexCache(tmp_path / "a.json").get("x/y/z", paths) == 3


def test_prepare_cli(tmp_path, capsys):
    assert main(["prepare", "--dataset", "casme2", "--root", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["prepare", "--dataset", "samm"]) == 2
    assert "requested from SAMM" in capsys.readouterr().err
    root = make_casme2(tmp_path / "CASME2", CASME)
    with pytest.warns(UserWarning):
        assert main(["prepare", "--dataset", "casme2", "--root", str(root), "--out", str(tmp_path / "p"), "--list"]) == 0
    out = capsys.readouterr().out
    assert "5 samples, 3 subjects" in out and "fix  casme2/sub02/EP11_01: offset 340 -> 40" in out
    assert "skip casme2/sub05/EP06_01" in out and (tmp_path / "p" / "apex_estimates.json").is_file()


def test_prepare_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    text = capsys.readouterr().out
    for opt in ("--dataset", "--root", "--out", "--scheme", "--frames", "--size", "--casme2-root", "--samm-root",
                "--smic-root", "--apex-cache", "--no-apex-estimate", "--list", "--limit", "--quiet"):
        assert opt in text
    assert "CASME2_RAW_selected" in text and "SAMM_Micro_FACS_Codes_v2.xlsx" in text
