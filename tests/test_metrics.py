"""`hmrm.train.metrics`: UF1 / UAR / accuracy pooled over folds, checked by hand and by a second implementation."""
import numpy as np
import pytest

from hmrm.train.metrics import (
    accuracy, confusion, evaluate, per_class, scored_classes, scores_from_confusion, uar, uf1,
)


def _expand(cm):
    """Labels (true, pred) that produce the confusion matrix ``cm`` (rows true, columns predicted)."""
    t, p = [], []
    for i, row in enumerate(cm):
        for j, n in enumerate(row):
            t += [i] * n
            p += [j] * n
    return np.array(t), np.array(p)


def test_hand_worked_example():
    # true: 0 0 0 0 0 1 1 1 2 2      confusion (rows true, cols predicted):
    # pred: 0 0 0 1 2 1 1 0 2 1         [[3, 1, 1],
    #                                    [1, 2, 0],
    #                                    [0, 1, 1]]
    # class 0: TP 3, FP 1 (a 1 called 0), FN 2 -> F1 = 2*3 / (2*3 + 1 + 2) = 6/9 = 2/3, recall 3/5
    # class 1: TP 2, FP 2 (a 0 and a 2 called 1), FN 1 -> F1 = 4 / (4 + 2 + 1) = 4/7, recall 2/3
    # class 2: TP 1, FP 1, FN 1 -> F1 = 2 / (2 + 1 + 1) = 1/2, recall 1/2
    # UF1 = (2/3 + 4/7 + 1/2) / 3 = (28 + 24 + 21) / 42 / 3 = 73/126
    # UAR = (3/5 + 2/3 + 1/2) / 3 = (18 + 20 + 15) / 30 / 3 = 53/90
    # accuracy = (3 + 2 + 1) / 10 = 0.6
    t = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2]
    p = [0, 0, 0, 1, 2, 1, 1, 0, 2, 1]
    assert confusion(t, p, 3).tolist() == [[3, 1, 1], [1, 2, 0], [0, 1, 1]]
    assert uf1(t, p, 3) == pytest.approx(73 / 126, abs=1e-12)
    assert uar(t, p, 3) == pytest.approx(53 / 90, abs=1e-12)
    assert accuracy(t, p) == pytest.approx(0.6)
    pc = per_class(t, p, 3)
    assert pc["f1"] == pytest.approx([2 / 3, 4 / 7, 1 / 2])
    assert pc["recall"] == pytest.approx([3 / 5, 2 / 3, 1 / 2])
    assert pc["precision"] == pytest.approx([3 / 4, 2 / 4, 1 / 2])
    assert pc["support"] == [5, 3, 2] and pc["predicted"] == [4, 4, 2]


def test_class_absent_from_truth_and_prediction_is_left_out():
    # n_classes 3, class 2 neither true nor predicted.
    # class 0: TP 1, FP 0, FN 1 -> F1 = 2/3, recall 1/2;  class 1: TP 1, FP 1, FN 0 -> F1 = 2/3, recall 1
    # UF1 = (2/3 + 2/3) / 2 = 2/3 (not / 3);  UAR = (1/2 + 1) / 2 = 3/4
    t, p = [0, 0, 1], [0, 1, 1]
    assert uf1(t, p, 3) == pytest.approx(2 / 3)
    assert uar(t, p, 3) == pytest.approx(3 / 4)
    assert scored_classes(t, p) == ([0, 1], [0, 1])
    assert np.isnan(per_class(t, p, 3)["f1"][2])


def test_class_predicted_but_never_true():
    # class 2 is predicted once, never true: its F1 is 0 (one false positive) and counts in UF1;
    # it has no recall and is left out of UAR.
    # class 0: TP 1, FP 0, FN 1 -> F1 2/3, recall 1/2; class 1: TP 2 -> F1 1, recall 1; class 2: F1 0
    # UF1 = (2/3 + 1 + 0) / 3 = 5/9;  UAR = (1/2 + 1) / 2 = 3/4
    t, p = [0, 0, 1, 1], [0, 2, 1, 1]
    assert uf1(t, p, 3) == pytest.approx(5 / 9)
    assert uar(t, p, 3) == pytest.approx(3 / 4)


def test_class_true_but_never_predicted_counts_as_zero():
    # class 1 is never predicted: F1 0 and recall 0, both in the means.
    # class 0: TP 2, FP 1, FN 0 -> F1 4/5, recall 1.  UF1 = 2/5, UAR = 1/2
    t, p = [0, 0, 1], [0, 0, 0]
    assert uf1(t, p) == pytest.approx(2 / 5)
    assert uar(t, p) == pytest.approx(1 / 2)


@pytest.mark.parametrize("cm, expected", [
    # perfect classifier
    ([[5, 0, 0], [0, 3, 0], [0, 0, 2]], {"uf1": 1.0, "uar": 1.0, "accuracy": 1.0}),
    # always "negative" on the composite set's 250 / 109 / 83: F1_neg = 2*250 / (250 + 442) = 500/692,
    # the other F1 are 0 -> UF1 = 500/692/3; recalls 1, 0, 0 -> UAR = 1/3; accuracy 250/442
    ([[250, 0, 0], [109, 0, 0], [83, 0, 0]], {"uf1": 500 / 692 / 3, "uar": 1 / 3, "accuracy": 250 / 442}),
    # everything swapped: nothing right
    ([[0, 4], [6, 0]], {"uf1": 0.0, "uar": 0.0, "accuracy": 0.0}),
])
def test_known_confusion_matrices(cm, expected):
    t, p = _expand(cm)
    k = len(cm)
    assert confusion(t, p, k).tolist() == cm
    got = {"uf1": uf1(t, p, k), "uar": uar(t, p, k), "accuracy": accuracy(t, p)}
    assert got == pytest.approx(expected, abs=1e-12)
    assert scores_from_confusion(cm) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_sklearn_path_matches_numpy_from_confusion(seed):
    rng = np.random.default_rng(seed)
    k = 4
    n = int(rng.integers(5, 60))
    t = rng.integers(0, k - (seed % 2), n)  # odd seeds: class 3 never true
    p = np.where(rng.random(n) < 0.5, t, rng.integers(0, k - (seed % 3 == 0), n))
    ref = scores_from_confusion(confusion(t, p, k))
    assert uf1(t, p, k) == pytest.approx(ref["uf1"], abs=1e-12)
    assert uar(t, p, k) == pytest.approx(ref["uar"], abs=1e-12)
    assert accuracy(t, p) == pytest.approx(ref["accuracy"], abs=1e-12)


def test_evaluate_pools_folds_and_reports_them_apart():
    # subject A: true 0 0, pred 0 0;  subject B: true 1 2, pred 1 1
    # pooled: class 0 F1 1, class 1: TP 1 FP 1 FN 0 -> 2/3, class 2: TP 0 FN 1 -> 0; UF1 = 5/9
    #         recalls 1, 1, 0 -> UAR 2/3
    # per fold: A has only class 0 -> UF1 1, UAR 1; B: class 1 F1 2/3, class 2 F1 0 -> UF1 1/3, UAR 1/2
    t, p, g = [0, 0, 1, 2], [0, 0, 1, 1], ["A", "A", "B", "B"]
    ev = evaluate(t, p, ("neg", "pos", "sur"), g)
    assert ev["uf1"] == pytest.approx(5 / 9) and ev["uar"] == pytest.approx(2 / 3)
    assert ev["confusion"] == [[2, 0, 0], [0, 1, 0], [0, 1, 0]]
    assert [f["subject"] for f in ev["per_fold"]] == ["A", "B"]
    a, b = ev["per_fold"]
    assert (a["uf1"], a["uar"], a["n"]) == (1.0, 1.0, 2)
    assert b["uf1"] == pytest.approx(1 / 3) and b["uar"] == pytest.approx(1 / 2)
    # the mean over folds is a different number from the pooled (MEGC) score
    assert ev["per_fold_mean"]["uf1"] == pytest.approx((1 + 1 / 3) / 2)
    assert ev["per_class"]["sur"]["support"] == 1 and ev["per_class"]["sur"]["f1"] == 0.0
    assert ev["uf1_classes"] == ["neg", "pos", "sur"]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="differ in length"):
        uf1([0, 1], [0])
    with pytest.raises(ValueError, match="lie in"):
        uar([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="no predictions"):
        accuracy([], [])
    with pytest.raises(ValueError, match="groups has"):
        evaluate([0, 1], [0, 1], ("a", "b"), ["A"])
