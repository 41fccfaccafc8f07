"""hmrm.train.folds: what a run folder holds, read back and pooled in subject order."""
import json

import pytest

from hmrm.data.records import DataError
from hmrm.train.folds import fold_dir, fold_dirname, finished_folds, pooled, read_fold_result


def _record(subject, keys, true, pred):
    return {"subject": subject, "keys": keys, "true": true, "pred": pred, "probs": [[0.5, 0.5]] * len(keys)}


def test_pooled_puts_the_folds_side_by_side_in_subject_order():
    p = pooled([_record("s2", ["c"], [1], [0]), _record("s1", ["a", "b"], [0, 1], [0, 1])])
    assert p.keys == ["a", "b", "c"] and p.truth == [0, 1, 1] and p.pred == [0, 1, 0]
    assert p.groups == ["s1", "s1", "s2"] and len(p.probs) == 3


def test_finished_folds_are_read_from_their_folders_and_none_is_an_error_naming_the_folder(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path)):
        finished_folds(tmp_path)
    for subject in ("syn/s1", "syn/s0"):
        folder = fold_dir(tmp_path, subject)
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(_record(subject, [subject], [0], [0])))
    assert fold_dir(tmp_path, "syn/s0") == tmp_path / "folds" / fold_dirname("syn/s0") == tmp_path / "folds" / "syn-s0"
    assert [r["subject"] for r in finished_folds(tmp_path)] == ["syn/s0", "syn/s1"]


def test_an_unreadable_result_is_none_with_a_warning(tmp_path):
    path = tmp_path / "result.json"
    assert read_fold_result(path) is None
    path.write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable"):
        assert read_fold_result(path) is None
