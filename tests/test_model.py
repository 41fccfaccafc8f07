"""The HMRM network: shapes, gradients, loss weights, region pooling, budget, and an overfit run."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hmrm.efficiency import count_flops, example_inputs
from hmrm.options import OptionError
from hmrm.face.regions import REGION_NAMES
from hmrm.model import (
    ABLATIONS,
    HMRM,
    HMRMConfig,
    STSTNet,
    build_model,
    class_weights,
    count_parameters,
    multiscale_loss,
    pool_regions,
    region_token_mask,
)

# a small network for the tests that do not need the default size (same code paths)
SMALL = dict(input_size=32, patch_sizes=(4, 8), d_model=32, depth=1, n_heads=4, backend="parallel")


def small(ablation: str = "full", **extra) -> HMRM:
    overrides = {**SMALL, **ABLATIONS[ablation], **extra}
    if ablation == "single_grain":
        overrides["patch_sizes"] = (4,)
    torch.manual_seed(0)
    return build_model("hmrm", **overrides)


@pytest.mark.parametrize("ablation", list(ABLATIONS))
def test_output_shapes_of_every_ablation_at_the_default_size(ablation):
    torch.manual_seed(0)
    model = build_model("hmrm", ablation=ablation, backend="parallel").eval()
    x, boxes = example_inputs(2, 112)
    with torch.no_grad():
        out = model(x, boxes)
    c = model.config
    assert out["logits"].shape == (2, 3)
    assert out["features"].shape == (2, 192)
    assert {n: tuple(g.shape) for n, g in out["grids"].items()} == {f"p{p}": (2, 112 // p, 112 // p, 192) for p in c.patch_sizes}
    expected_heads = [] if ablation == "plain_ce" else list(model.grain_names)
    assert list(out["grain_logits"]) == expected_heads
    for logits in out["grain_logits"].values():
        assert logits.shape == (2, 3)
    if ablation == "no_rffs":
        assert out["attention"] is None and model.token_names == []
        # boxes are not needed without RFFS
        with torch.no_grad():
            assert torch.allclose(model(x)["logits"], out["logits"])
    else:
        t = len(c.patch_sizes) * (len(REGION_NAMES) + 1)
        assert out["attention"].shape == (2, c.n_heads, t, t)
        assert len(model.token_names) == t and model.token_names[0] == f"{model.grain_names[0]}/right_eye"
        torch.testing.assert_close(out["attention"].sum(-1), torch.ones(2, c.n_heads, t))
    if ablation == "no_motionmix":  # a training switch (LOSOConfig.mixes): the network is the full one
        assert c == build_model("hmrm", backend="parallel").config


def test_ablation_switches_change_the_network():
    full = build_model("hmrm")
    assert full.config == HMRMConfig() and full.config.bidirectional and full.rffs is not None
    assert build_model("hmrm", ablation="single_grain").grain_names == ("p8",)
    uni = build_model("hmrm", ablation="unidirectional")
    assert type(uni.encoder.blocks[0].mixer).__name__ == "Mamba"
    assert type(full.encoder.blocks[0].mixer).__name__ == "BiMamba"
    assert build_model("hmrm", ablation="no_rffs").rffs is None
    assert len(build_model("hmrm", ablation="plain_ce").grain_heads) == 0
    with pytest.raises(ValueError, match="unknown ablation"):
        build_model("hmrm", ablation="nope")
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet")
    with pytest.raises(OptionError, match="widht: not an HMRMConfig field"):
        build_model("hmrm", widht=3)
    with pytest.raises(OptionError, match="d_model: must be an integer >= 1, got 'abc'"):
        build_model("hmrm", d_model="abc")
    with pytest.raises(OptionError, match="depth: must be an integer >= 1, got 0"):
        build_model("hmrm", depth=0)
    with pytest.raises(OptionError, match="filters: must be a list of integers >= 1"):
        build_model("ststnet", filters=(3, "a"))
    with pytest.raises(ValueError, match="must divide"):
        build_model("hmrm", patch_sizes=(9, 16))
    with pytest.raises(ValueError, match="scale_weights"):
        HMRMConfig(scale_weights=(1.0, 0.5))


def test_rffs_needs_boxes_and_the_right_input_size():
    model = small()
    x, boxes = example_inputs(1, 32)
    with pytest.raises(ValueError, match="region boxes"):
        model(x)
    with pytest.raises(ValueError, match="input_size"):
        model(torch.zeros(1, 3, 64, 64), boxes)


def assert_every_parameter_has_a_gradient(model):
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("ablation", list(ABLATIONS))
def test_gradients_reach_every_parameter(ablation):
    model = small(ablation).train()
    x, boxes = example_inputs(4, 32)
    out = model(x, boxes)
    model.loss(out, torch.tensor([0, 1, 2, 0]), class_weights([0, 1, 2, 0], 3)).backward()
    assert_every_parameter_has_a_gradient(model)


def test_default_model_forward_and_backward():
    torch.manual_seed(0)
    model = HMRM(backend="parallel").train()
    x, boxes = example_inputs(2, 112)
    out = model(x, boxes)
    loss = model.loss(out, torch.tensor([0, 2]), class_weights([0, 0, 1, 2], 3))
    assert torch.isfinite(loss)
    loss.backward()
    assert_every_parameter_has_a_gradient(model)


def test_default_model_fits_the_budget():
    """At most 2 M parameters and 1 GFLOP per sample (flow estimation not included)."""
    model = HMRM()
    params = count_parameters(model)
    flops = count_flops(model, *example_inputs(1, 112))
    assert 1.0e6 < params <= 2.0e6, params
    assert 0.3e9 < flops["total"] <= 1.0e9, flops
    # the scans: depth 4 x 2 directions x (9 L D N + 2 L D), D = 2 x 192, N = 16, L = 196 + 49
    lengths = 196 + 49
    assert flops["scan"] == 4 * 2 * (9 * lengths * 384 * 16 + 2 * lengths * 384)


def test_convolutional_stem():
    """stem="conv": a shared stem shrinks the map 4 times, then patches of p / 4 give the same token
    grids as the linear patch embedding; the network trains end to end."""
    torch.manual_seed(0)
    x, boxes = example_inputs(2, 64)
    plain = build_model("hmrm", input_size=64, d_model=32, depth=1, n_heads=4)
    conv = build_model("hmrm", input_size=64, d_model=32, depth=1, n_heads=4, stem="conv")
    assert plain.encoder.stem is None and conv.encoder.stem is not None
    out, ref = conv(x, boxes), plain(x, boxes)
    assert {k: v.shape for k, v in out["grids"].items()} == {k: v.shape for k, v in ref["grids"].items()}
    conv.loss(out, torch.tensor([0, 2])).backward()
    assert_every_parameter_has_a_gradient(conv)
    with pytest.raises(ValueError, match="multiples of 4"):
        build_model("hmrm", input_size=60, patch_sizes=(6, 12), d_model=32, depth=1, stem="conv")
    with pytest.raises(ValueError, match="stem"):
        build_model("hmrm", stem="vit")


def test_patch_embedding_is_the_strided_convolution():
    """The patch embedding computes its convolution as one matrix product over flattened patches."""
    from hmrm.model import PatchEmbed

    torch.manual_seed(0)
    embed = PatchEmbed(3, 16, 32, 8)
    x = torch.randn(2, 3, 32, 32)
    ref = F.conv2d(x, embed.proj.weight, embed.proj.bias, stride=8).permute(0, 2, 3, 1) + embed.pos
    torch.testing.assert_close(embed(x), ref, rtol=1e-5, atol=1e-5)


def test_label_smoothing_in_the_loss():
    out = {"logits": torch.tensor([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0]]), "grain_logits": {}}
    y = torch.tensor([0, 1])
    torch.testing.assert_close(multiscale_loss(out, y, None, {"fused": 1.0}, label_smoothing=0.1),
                               F.cross_entropy(out["logits"], y, label_smoothing=0.1))
    assert multiscale_loss(out, y, None, {"fused": 1.0}, label_smoothing=0.1) > multiscale_loss(out, y, None, {"fused": 1.0})


def test_ststnet_baseline():
    torch.manual_seed(0)
    model = build_model("ststnet")
    assert isinstance(model, STSTNet)
    # 3 streams of 3x3 convolutions (3, 5, 8 filters) and a 400 -> 3 classifier
    assert count_parameters(model) == (3 + 5 + 8) * (3 * 9 + 1) + 400 * 3 + 3
    for size in (112, 28, 20):
        x, boxes = example_inputs(3, size)
        out = model(x, boxes)
        assert out["logits"].shape == (3, 3) and out["grain_logits"] == {} and out["attention"] is None
    loss = model.loss(out, torch.tensor([0, 1, 2]), class_weights([0, 1, 1], 3))
    torch.testing.assert_close(loss, F.cross_entropy(out["logits"], torch.tensor([0, 1, 2])))
    loss.backward()
    assert_every_parameter_has_a_gradient(model)
    # the same 28 x 28 input whether resized inside or given at 28: area averaging
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["logits"], model(F.avg_pool2d(x, 4))["logits"])


# ------------------------------------------------------------------------------------- the loss
def test_class_weights_on_a_known_label_list():
    w = class_weights([0, 0, 0, 1, 1, 2], 3)
    torch.testing.assert_close(w, torch.tensor([6 / 9, 6 / 6, 6 / 3]))
    freq = torch.tensor([3, 2, 1]) / 6
    torch.testing.assert_close((freq * w).sum(), torch.tensor(1.0))           # the average sample weighs 1
    torch.testing.assert_close(class_weights([1, 1, 3], 4), torch.tensor([0.0, 0.75, 0.0, 1.5]))  # absent: 0
    torch.testing.assert_close(class_weights(torch.tensor([2, 2]), 3), torch.tensor([0.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="lie in"):
        class_weights([0, 3], 3)
    with pytest.raises(ValueError, match="at least one"):
        class_weights([], 3)


def fake_outputs(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"logits": torch.randn(6, 3, generator=g),
            "grain_logits": {"p8": torch.randn(6, 3, generator=g), "p16": torch.randn(6, 3, generator=g)}}


def test_scale_weights_combine_the_heads():
    out, y = fake_outputs(), torch.tensor([0, 1, 2, 0, 0, 1])
    w = class_weights(y, 3)
    ce = {"fused": F.cross_entropy(out["logits"], y, weight=w),
          **{n: F.cross_entropy(lg, y, weight=w) for n, lg in out["grain_logits"].items()}}
    total, terms = multiscale_loss(out, y, w, {"fused": 1.0, "p8": 0.5, "p16": 0.25}, return_terms=True)
    torch.testing.assert_close(total, ce["fused"] + 0.5 * ce["p8"] + 0.25 * ce["p16"])
    assert set(terms) == {"fused", "p8", "p16"}
    torch.testing.assert_close(multiscale_loss(out, y, w, {"fused": 1.0}), ce["fused"])      # others left out
    torch.testing.assert_close(multiscale_loss(out, y, w), ce["fused"] + 0.5 * ce["p8"] + 0.5 * ce["p16"])  # default
    # doubling one head's weight adds exactly its cross-entropy once more
    base = multiscale_loss(out, y, w, {"fused": 1.0, "p8": 0.5, "p16": 0.5})
    torch.testing.assert_close(multiscale_loss(out, y, w, {"fused": 1.0, "p8": 1.0, "p16": 0.5}) - base, 0.5 * ce["p8"])
    with pytest.raises(ValueError, match="heads the model does not have"):
        multiscale_loss(out, y, w, {"p4": 1.0})
    # class weights matter: a rare class's error costs more
    assert not torch.allclose(multiscale_loss(out, y, w, {"fused": 1.0}), F.cross_entropy(out["logits"], y))


def test_model_loss_uses_its_configured_scale_weights():
    model = small(scale_weights=(1.0, 2.0, 0.0))
    assert model.scale_weights == {"fused": 1.0, "p4": 2.0, "p8": 0.0}
    out, y = fake_outputs(), torch.tensor([0, 1, 2, 0, 0, 1])
    out["grain_logits"] = {"p4": out["grain_logits"]["p8"], "p8": out["grain_logits"]["p16"]}
    w = class_weights(y, 3)
    expected = F.cross_entropy(out["logits"], y, weight=w) + 2.0 * F.cross_entropy(out["grain_logits"]["p4"], y, weight=w)
    torch.testing.assert_close(model.loss(out, y, w), expected)


def test_plain_ce_equals_cross_entropy():
    model = small("plain_ce").eval()
    x, boxes = example_inputs(4, 32)
    y = torch.tensor([0, 1, 2, 1])
    out = model(x, boxes)
    assert out["grain_logits"] == {}
    torch.testing.assert_close(model.loss(out, y, class_weights([0, 0, 0, 1, 2], 3)), F.cross_entropy(out["logits"], y))


# ---------------------------------------------------------------------------- region pooling
def test_region_pooling_on_a_hand_made_token_grid():
    # a 4 x 4 grid of patch 8 (input 32 px); token (i, j) holds the value 10 i + j in every channel
    values = torch.tensor([[10.0 * i + j for j in range(4)] for i in range(4)])
    grid = values.view(1, 4, 4, 1).expand(1, 4, 4, 2).clone()
    boxes = torch.tensor([[
        [0, 0, 8, 8],        # exactly token (0, 0)
        [4, 4, 12, 12],      # overlaps tokens (0..1, 0..1)
        [9, 17, 10, 18],     # tiny box inside token (2, 1)
        [20, 20, 20, 20],    # empty box: the token under its corner, (2, 2)
        [40, 40, 50, 50],    # outside the image: the nearest edge token, (3, 3)
        [0, 0, 32, 32],      # the whole image
        [16, 0, 24, 32],     # one column of tokens, j = 2
        [12, 9, 8, 3],       # inverted box: the token under (x0, y0) = (12, 9), (1, 1)
    ]])
    pooled = pool_regions(grid, boxes, patch=8)[0, :, 0]
    expected = torch.tensor([0.0, (0 + 1 + 10 + 11) / 4, 21.0, 22.0, 33.0, values.mean().item(), 2 + 10 * 1.5, 11.0])
    torch.testing.assert_close(pooled, expected)
    mask = region_token_mask(boxes, 8, 4)
    assert mask.shape == (1, 8, 4, 4) and mask.flatten(2).sum(-1).tolist() == [[1, 4, 1, 1, 1, 16, 4, 1]]
    # float boxes and batches behave alike
    torch.testing.assert_close(pool_regions(grid.expand(2, -1, -1, -1), boxes.float().expand(2, -1, -1), 8)[1, :, 0], expected)


def test_region_tokens_follow_the_boxes():
    """Moving a box moves what its region token sees: a token is pooled only from its own patches."""
    model = small().eval()
    x, boxes = example_inputs(1, 32)
    with torch.no_grad():
        out = model(x, boxes)
        grids = out["grids"]
        r = model.rffs(grids, boxes)
    p4 = grids["p4"][0]
    x0, y0, x1, y1 = boxes[0, REGION_NAMES.index("mouth")].tolist()
    manual = p4[y0 // 4:-(-y1 // 4), x0 // 4:-(-x1 // 4)].reshape(-1, 32).mean(0)
    mouth = REGION_NAMES.index("mouth")
    torch.testing.assert_close(r["tokens"][0, mouth] - model.rffs.slot_embed[0, mouth], manual)


# ------------------------------------------------------------------------------ overfit on SynthME
def synthme_inputs(root, size: int, n: int = 8):
    """Ground-truth flow of ``n`` SynthME samples as (n, 3, size, size) u, v, strain, and their boxes."""
    from hmrm.data.synthme import load_synthme
    from hmrm.features import flow_input, region_boxes_for

    samples = load_synthme(root)[:n]
    xs = [flow_input(s, "gt", size) for s in samples]
    boxes = np.stack([region_boxes_for(s, size) for s in samples])
    x = torch.from_numpy(np.stack(xs)).float()
    labels = torch.tensor([s.label_index for s in samples])
    return x, torch.tensor(boxes), labels


def test_overfits_a_handful_of_synthme_samples(tiny_synthme):
    x, boxes, labels = synthme_inputs(tiny_synthme, size=32)
    assert x.shape == (8, 3, 32, 32) and boxes.shape == (8, 4, 4) and len(set(labels.tolist())) >= 2
    x = x / x.std()                                  # sub-pixel flow: bring the inputs to unit scale
    torch.manual_seed(0)
    model = build_model("hmrm", input_size=32, patch_sizes=(4, 8), d_model=48, depth=2, dropout=0.0,
                        backend="parallel").train()
    weights = class_weights(labels, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    first = None
    for _ in range(60):                             # the loss is about 0.007 after 60 steps
        loss = model.loss(model(x, boxes), labels, weights)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(x, boxes)
    final = float(model.loss(out, labels, weights))
    assert final < 0.05 < first, (first, final)
    assert (out["logits"].argmax(1) == labels).all()
