"""hmrm.train.recipe: the learning-rate schedule, the weight average and the recipe -> config mapping."""
import pytest
import torch

from hmrm.train.loso import recipe_config
from hmrm.train.recipe import lr_factor, make_ema


def test_constant_schedule_is_flat():
    assert all(lr_factor("constant", s, 100) == 1.0 for s in range(100))


def test_cosine_schedule_warms_up_then_decays():
    total, warm = 100, 10
    f = [lr_factor("cosine", s, total, warm) for s in range(total)]
    assert f[0] == pytest.approx(0.1) and f[warm - 1] == pytest.approx(1.0)     # linear warm-up to the peak
    assert f[warm] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[warm:], f[warm + 1:]))                  # then never rises again
    assert 0 < f[-1] < 0.001                                                    # and ends near zero
    assert f[warm + 45] == pytest.approx(0.5, abs=0.02)                         # half way down half way through
    with pytest.raises(ValueError, match="schedule"):
        lr_factor("step", 0, 10)


def test_ema_follows_the_weights_slowly():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    assert make_ema(model, 0.0) is None
    ema = make_ema(model, 0.9)
    ema.update_parameters(model)                       # the first update copies
    assert torch.equal(ema.module.weight, model.weight)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update_parameters(model)
    assert torch.allclose(ema.module.weight, 0.9 * start + 0.1 * model.weight)


def test_recipe_config_splits_model_options_and_warms_up_a_tenth():
    r = {"lr": 2e-3, "schedule": "cosine", "weight_decay": 0.05, "label_smoothing": 0.1, "ema": 0.99,
         "motionmix_p": 0.5, "epochs": 60, "stem": "conv", "d_model": 48, "depth": 1}
    cfg = recipe_config("hmrm", r, "gt", 64, seed=3)
    assert cfg.model_overrides == {"stem": "conv", "d_model": 48, "depth": 1}
    assert (cfg.lr, cfg.schedule, cfg.warmup_epochs, cfg.epochs, cfg.ema, cfg.seed) == (2e-3, "cosine", 6, 60, 0.99, 3)
    flat = recipe_config("ststnet", {**{k: v for k, v in r.items() if k not in ("stem", "d_model", "depth")},
                                     "schedule": "constant", "weighted_loss": True}, "tvl1", 64)
    assert flat.warmup_epochs == 0 and flat.model_overrides == {"weighted_loss": True}
    assert recipe_config("hmrm", {**r, "epochs": 1}, "gt", 64).warmup_epochs == 0    # a one-epoch look still runs


def test_default_warmup_is_a_tenth_of_a_cosine_run_and_never_all_of_it():
    from hmrm.train.recipe import default_warmup

    assert [default_warmup(e, "cosine") for e in (1, 2, 9, 40, 200)] == [0, 1, 1, 4, 20]
    assert default_warmup(40, "constant") == 0


def test_the_recipe_is_described_field_by_field():
    """Chapter 08 prints the recipe a student trains with: one sentence per field, from the config itself."""
    from hmrm.demo import DEMO_RECIPES
    from hmrm.train.loso import recipe_config
    from hmrm.train.recipe import config_markdown, describe_config

    config = recipe_config("hmrm", DEMO_RECIPES["hmrm"], "gt", 64)
    rows = {field: (value, words) for field, value, words in describe_config(config)}
    assert {"optimiser, weight_decay", "lr, schedule", "label_smoothing", "ema", "motionmix_p", "epochs",
            "batch_size", "loss", "folds"} <= set(rows)
    assert f"first {config.warmup_epochs} epoch" in rows["lr, schedule"][1] and "cosine" in rows["lr, schedule"][0]
    assert rows["motionmix_p"][1].startswith("off") and "convolutional stem" in rows["model"][1]
    mixing = recipe_config("hmrm", {**DEMO_RECIPES["hmrm"], "motionmix_p": 0.5, "label_smoothing": 0.0,
                                    "ema": 0.0, "schedule": "constant"}, "gt", 64, folds=2)
    rows = {field: words for field, _, words in describe_config(mixing)}
    assert "probability 0.5" in rows["motionmix_p"] and "held-out subject is never mixed" in rows["motionmix_p"]
    assert rows["label_smoothing"] == "off: one-hot targets" and rows["ema"].startswith("off")
    assert "same rate" in rows["lr, schedule"] and "not a LOSO result" in rows["folds"]
    assert config_markdown(config).count("\n|") == len(describe_config(config)) + 1
