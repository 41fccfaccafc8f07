"""`run_loso(engine="stacked")`: folds trained at once as one batched network give the one-at-a-time
run's predictions and scores, with weights equal up to rounding (the tolerance below), for folds of
different sizes, a subject with a single class, groups smaller than the run, and a resume across
engines."""
import json

import numpy as np
import pytest
import torch

from hmrm.train.loso import LOSOData, RunOptions, run_loso
from hmrm.train.loso import fold_dirname

from test_loso import SIZE, _config, _weights, one_thread  # noqa: F401  (autouse: one thread, exact CPU results)

#: What "the same up to rounding" means here: stored class probabilities (rounded to 6 decimals)
#: within this of each other, every predicted class and pooled score equal, final weights within
#: WEIGHT_TOL (batched products, a padded last batch and the pure-PyTorch scan round differently).
#: One exception: the key part of RFFS attention's input bias. Softmax ignores a constant added to
#: every key score, so its true gradient is zero and what each engine computes there is rounding
#: noise, which AdamW (dividing by the noise's own size) turns into steps of the learning rate's
#: size. Those weights differ by up to a few learning rates and change no output; they are checked
#: to be the only ones that do.
PROB_TOL = 1e-5
WEIGHT_TOL = 1e-5


def _ragged(counts=(3, 9, 6, 5), seed=0):
    """Subjects with different numbers of clips (so folds differ in steps per epoch and in their last
    batch); the first subject shows a single class."""
    rng = np.random.default_rng(seed)
    n = sum(counts)
    groups = [f"syn/s{s}" for s, c in enumerate(counts) for _ in range(c)]
    y = np.arange(n) % 3
    y[:counts[0]] = 1
    x = rng.normal(0, 0.1, (n, 3, SIZE, SIZE)).astype(np.float32)
    x[:, 0] += ((y - 1) * 0.1)[:, None, None]
    boxes = np.tile(np.array([[4, 4, 14, 12], [18, 4, 28, 12], [10, 10, 22, 20], [6, 20, 26, 30]]), (n, 1, 1))
    keys = [f"{g}/c{i:02d}" for i, g in enumerate(groups)]
    return LOSOData(x, boxes, y, groups, keys, ("negative", "positive", "surprise"), {"flow": "gt"})


def _run(run_dir, engine="local", **kw):
    cfg = _config(epochs=6, batch_size=4, checkpoint_every=2, **kw.pop("config", {}))
    return run_loso(_ragged(), cfg, run_dir, RunOptions(progress=False, figures=False, engine=engine, **kw))


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("local")
    return run_dir, _run(run_dir)


def _close_runs(a_dir, b_dir, a_metrics, b_metrics):
    assert a_metrics["honest"] == b_metrics["honest"]
    for s in ("syn/s0", "syn/s1", "syn/s2", "syn/s3"):
        ra, rb = (json.loads((d / "folds" / fold_dirname(s) / "result.json").read_text()) for d in (a_dir, b_dir))
        assert ra["pred"] == rb["pred"] and ra["keys"] == rb["keys"]
        assert np.abs(np.array(ra["probs"]) - np.array(rb["probs"])).max() <= PROB_TOL
        assert np.allclose([h["loss"] for h in ra["history"]], [h["loss"] for h in rb["history"]], atol=1e-5)
        assert ra["train_side"] == rb["train_side"]
        wa, wb = _weights(a_dir, s), _weights(b_dir, s)
        assert wa.keys() == wb.keys()
        for k in wa:
            diff = (wa[k] - wb[k]).abs()
            if k.endswith("attn.in_proj_bias"):  # query, key, value biases: the key part has no true gradient
                d = diff.numel() // 3
                assert diff[d:2 * d].max() <= 10 * 5e-4
                diff = torch.cat([diff[:d], diff[2 * d:]])
            assert diff.max() <= WEIGHT_TOL, k


def test_stacked_folds_match_one_at_a_time(tmp_path, local):
    local_dir, ref = local
    res = run_loso(_ragged(), _config(epochs=6, batch_size=4, checkpoint_every=2), tmp_path, RunOptions(progress=False,
                   figures=False, engine="stacked"))
    assert res.finished
    _close_runs(local_dir, tmp_path, ref.metrics, res.metrics)


def test_groups_smaller_than_the_run_and_a_resume_across_engines(tmp_path, local):
    local_dir, ref = local
    calls = []

    def stop_at_epoch_3(subject, epoch):  # pause every fold of the first group after epoch 3
        calls.append((subject, epoch))
        return epoch == 3

    cfg = _config(epochs=6, batch_size=4, checkpoint_every=2)
    paused = run_loso(_ragged(), cfg, tmp_path, RunOptions(progress=False, figures=False, engine="stacked", stack=3,
                      stop=stop_at_epoch_3))
    assert not paused.finished
    assert {s for s, e in calls if e == 3} == {"syn/s0", "syn/s1", "syn/s2"}  # three stacked, then paused
    for s in ("syn/s0", "syn/s1", "syn/s2"):
        ckpt = torch.load(tmp_path / "folds" / fold_dirname(s) / "checkpoint.pt", weights_only=True)
        assert ckpt["epoch"] == 3 and not ckpt["final"]
    # the local engine continues the stacked checkpoints (and trains the fourth fold)
    res = run_loso(_ragged(), cfg, tmp_path, RunOptions(progress=False, figures=False))
    assert res.finished
    assert json.loads((tmp_path / "folds" / fold_dirname("syn/s0") / "result.json").read_text())["resumed_from_epoch"] == 3
    _close_runs(local_dir, tmp_path, ref.metrics, res.metrics)


def test_dropout_masks_are_the_folds_own(tmp_path):
    """With dropout on, a fold stacked with three others draws the masks it draws stacked alone:
    the grouping changes nothing but rounding."""
    from hmrm.train.loso.stacked import dropout_calls
    from hmrm.train.loso import build_fold_model

    cfg = _config(epochs=6, batch_size=4)
    model = build_fold_model(cfg, 3, 3)
    calls = dropout_calls(model, torch.zeros(2, 3, SIZE, SIZE), torch.tensor(_ragged().boxes[:2]))
    assert calls and all(p > 0 for p, _ in calls)  # the tiny HMRM has dropout before its heads
    a = _run(tmp_path / "all", "stacked", stack=4)
    b = _run(tmp_path / "alone", "stacked", stack=1)
    _close_runs(tmp_path / "all", tmp_path / "alone", a.metrics, b.metrics)


def test_stacked_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="stack .* is for engine='stacked'"):
        _run(tmp_path, "local", stack=2)
    with pytest.raises(ValueError, match="float32"):
        _run(tmp_path, "stacked", config={"amp": True})


@pytest.mark.gpu
def test_stacked_on_cuda_matches_one_at_a_time(tmp_path):
    """On CUDA: the group size chosen from free memory, and the stacked run's predictions."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from hmrm.train.loso.fold import Fold
    from hmrm.train.loso.stacked import fold_bytes, group_size
    from hmrm.train.loso import loso_splits, resolve_environment

    cfg = _config(epochs=6, batch_size=4, checkpoint_every=2, device="cuda")
    data = _ragged()
    subject, train_idx, test_idx = loso_splits(data.groups)[0]
    fold = Fold(data, 0, subject, train_idx, test_idx, cfg, resolve_environment(cfg), tmp_path / "probe")
    assert fold_bytes(fold) > 0 and 1 <= group_size(None, 4, fold) <= 4
    a = run_loso(data, cfg, tmp_path / "one", RunOptions(progress=False, figures=False))
    b = run_loso(data, cfg, tmp_path / "stacked", RunOptions(progress=False, figures=False, engine="stacked"))
    assert a.metrics["honest"]["confusion"] == b.metrics["honest"]["confusion"]
