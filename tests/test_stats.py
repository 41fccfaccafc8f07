"""hmrm.train.stats: bootstrap intervals over held-out subjects, alone and paired."""
import numpy as np
import pytest

from hmrm.markdown import format_interval
from hmrm.train.metrics import scores_from_confusion
from hmrm.train.stats import bootstrap_scores, paired_difference, scores_of_confusions, subject_confusions


def _run(rng, acc, n=120, subjects=10):
    t = rng.integers(0, 3, n)
    p = np.where(rng.random(n) < acc, t, rng.integers(0, 3, n))
    return [f"k{i}" for i in range(n)], t, p, [f"s{i % subjects}" for i in range(n)]


def test_confusions_per_subject_add_up(rng):
    keys, t, p, g = _run(rng, 0.7)
    subjects, cms = subject_confusions(t, p, g, 3)
    assert subjects == sorted(set(g)) and cms.shape == (10, 3, 3) and cms.sum() == len(t)
    assert cms[3].sum() == sum(1 for s in g if s == "s3")


def test_batched_scores_equal_the_metrics_module(rng):
    cms = rng.integers(0, 6, (50, 3, 3))
    cms[:5, 2, :] = 0                  # a class never true
    cms[5:10, :, 1] = 0
    cms[10:12, 1, :] = 0
    cms[10:12, :, 1] = 0               # a class neither true nor predicted
    batch = scores_of_confusions(cms)
    for i in range(len(cms)):
        ref = scores_from_confusion(cms[i])
        assert batch["uf1"][i] == pytest.approx(ref["uf1"]) and batch["uar"][i] == pytest.approx(ref["uar"])


def test_interval_brackets_the_score_and_shrinks_with_more_subjects(rng):
    keys, t, p, g = _run(rng, 0.7, n=100, subjects=5)
    small = bootstrap_scores(t, p, g, 3, n_resamples=2000)
    cms = subject_confusions(t, p, g, 3)[1].sum(0)
    full = scores_from_confusion(cms)
    assert small["uf1"][0] < full["uf1"] < small["uf1"][1]
    keys, t, p, g = _run(rng, 0.7, n=2000, subjects=100)
    big = bootstrap_scores(t, p, g, 3, n_resamples=2000)
    assert big["uf1"][1] - big["uf1"][0] < small["uf1"][1] - small["uf1"][0]
    assert bootstrap_scores(t, p, g, 3, n_resamples=2000) == big          # same predictions, same interval


def test_resampling_is_by_subject_not_by_clip(rng):
    """Subjects that are all right or all wrong: the score is uncertain although each clip is
    certain; a clip bootstrap would call it exact at the subject level only if subjects agree."""
    n = 100
    t = np.arange(n) % 3
    g = [f"s{i // 10}" for i in range(n)]
    good = np.array([int(s[1:]) % 2 == 0 for s in g])
    p = np.where(good, t, (t + 1) % 3)
    ci = bootstrap_scores(t, p, g, 3, n_resamples=2000)
    assert ci["uf1"][0] < 0.3 and ci["uf1"][1] > 0.7


def test_paired_difference(rng):
    keys, t, p, g = _run(rng, 0.8)
    same = paired_difference((keys, t, p, g), (keys, t, p, g), 3, n_resamples=1000)
    assert same["uf1"]["difference"] == 0 and same["uf1"]["interval"] == [0.0, 0.0]
    worse = np.where(rng.random(len(t)) < 0.5, p, (p + 1) % 3)
    d = paired_difference((keys, t, p, g), (keys[::-1], t[::-1], worse[::-1], g[::-1]), 3, n_resamples=2000)
    assert d["uf1"]["difference"] > 0 and d["uf1"]["interval"][0] > 0      # order of the second run does not matter
    with pytest.raises(ValueError, match="same samples"):
        paired_difference((keys, t, p, g), (keys[:-1], t[:-1], p[:-1], g[:-1]), 3)


def test_format_interval():
    assert format_interval(0.71234, [0.6, 0.8]) == "0.7123 [0.60, 0.80]"
    assert format_interval(0.05, [-0.01, 0.12], signed=True) == "+0.0500 [-0.01, +0.12]"
