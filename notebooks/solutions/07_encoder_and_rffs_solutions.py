# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
# Parameters (papermill can override these): those of chapter 07 that the exercises use
SYNTHME_ROOT = ""               # a SynthME build; "": build the tiny preset into the hmrm cache
SAMPLE = 0                      # which clip
INPUT_SIZE = 112                # side S of the flow maps
BACKEND = "auto"                # selective-scan backend: auto, fused, parallel, sequential
GRAINS = [4, 8, 16, 28]         # exercise 1: patch sizes to compare (each must divide INPUT_SIZE)
SHIFT = 16                      # exercise 2: how far the boxes move down, in pixels
SIZES = [96, 112, 128]          # exercise 3: input sizes to count
SEED = 0

# %% [markdown]
# # Solutions · 07 The grained Mamba encoder and RFFS
#
# Solutions of the exercises at the end of `notebooks/07_encoder_and_rffs.ipynb`. Try them there
# first. The first cell loads the chapter's sample and chooses the scan backend as the chapter does.

# %%
import numpy as np
import torch

from hmrm.data.synthme import tiny_synthme
from hmrm.efficiency import count_flops, example_inputs
from hmrm.face.regions import REGION_NAMES
from hmrm.features import flow_input, region_boxes_for
from hmrm.model import build_model, count_parameters, region_token_mask
from hmrm.ssm import resolve_backend

SCAN = resolve_backend(BACKEND, torch.device("cpu"))   # what "auto" runs on this CPU
samples = tiny_synthme(SYNTHME_ROOT or None, seed=SEED)
sample = samples[SAMPLE]
x = torch.from_numpy(flow_input(sample, method="gt", size=INPUT_SIZE))[None]
boxes = torch.from_numpy(region_boxes_for(sample, size=INPUT_SIZE))[None]
print(f"{sample.key}: input {tuple(x.shape)}, boxes {boxes[0].tolist()}, scan backend {SCAN!r}")

# %% [markdown]
# ## Exercise 1 · Grain against region
#
# *For patch sizes 4, 8, 16 and 28, count the tokens each region pools and the share of the pooled
# area that lies outside the box. Which grain describes the mouth best, and what does the coarsest
# one pool?*

# %%
box_area = ((boxes[0, :, 2] - boxes[0, :, 0]) * (boxes[0, :, 3] - boxes[0, :, 1])).float()
spill = {}
print(f"{'patch':>5} {'grid':>6}   " + "   ".join(f"{n:>16}" for n in REGION_NAMES))
for p in GRAINS:
    g = INPUT_SIZE // p
    counts = region_token_mask(boxes, p, g)[0].flatten(1).sum(-1).float()      # tokens per region
    spill[p] = 1 - box_area / (counts * p * p)                                  # pooled area outside the box
    print(f"{p:>5} {g:>3}x{g:<3}  " + "   ".join(f"{int(c):>4} tokens {s:>4.0%} out" for c, s in zip(counts, spill[p])))
assert (spill[GRAINS[0]] < spill[GRAINS[-1]]).all(), "a coarser grain pools more area outside the boxes"

# %% [markdown]
# **Answer.** The finer the grain, the closer the pooled patches fit the box, but the more tokens a region has,
# each of which sees only a sliver of a lip. At patch 28 a region is a handful of patches, most of
# whose area lies outside the box: the mouth token then averages cheek and chin motion too. Patch 8
# splits the mouth into a few rows of tokens and spills little; patch 16 sees it in a few large
# tokens that take in its surroundings as well. The two grains of HMRM give RFFS both views.
#
# ## Exercise 2 · Does `no_rffs` look at the boxes?
#
# *Feed the full network and the `no_rffs` ablation the sample with its boxes and with every box moved
# 16 px down. Which output changes?*

# %%
moved = boxes.clone()
moved[..., 1::2] = (moved[..., 1::2] + SHIFT).clamp(max=INPUT_SIZE)            # y0 and y1
change = {}
for name in ("full", "no_rffs"):
    torch.manual_seed(SEED)
    net = build_model("hmrm", ablation=name, input_size=INPUT_SIZE, backend=SCAN).eval()
    with torch.no_grad():
        a, b = net(x, boxes)["logits"], net(x, moved)["logits"]
    change[name] = (a - b).abs().max().item()
    print(f"{name:<8} logits with the boxes {a[0].numpy().round(4)}, moved {b[0].numpy().round(4)}: "
          f"max change {change[name]:.2e}")
assert change["no_rffs"] == 0 and change["full"] > 0

# %% [markdown]
# **Answer.** Only the full network changes. The boxes enter HMRM in one place, RFFS: they choose which tokens
# are averaged into each region token. `no_rffs` replaces RFFS by a plain average of every token of
# each grain, so the boxes are passed in but never read, and its output is bit for bit the same.
# (MotionMix also uses boxes, but only to make training data.)
#
# ## Exercise 3 · What does a bigger input cost?
#
# *Count the FLOPs of the default HMRM for input sizes 96, 112 and 128, and its parameters. Do the
# FLOPs follow the number of tokens?*

# %%
cost = {}
for size in SIZES:
    torch.manual_seed(SEED)
    net = build_model("hmrm", input_size=size, backend=SCAN)
    tokens = sum((size // p) ** 2 for p in net.config.patch_sizes)
    flops = count_flops(net, *example_inputs(1, size))["total"]
    cost[size] = (tokens, flops, count_parameters(net))
    print(f"S = {size:>3}: {tokens:>3} tokens, {flops / 1e6:6.1f} MFLOPs, {count_parameters(net):,} parameters")
base = SIZES[0]
for size in SIZES[1:]:
    t_ratio, f_ratio = cost[size][0] / cost[base][0], cost[size][1] / cost[base][1]
    print(f"{base} -> {size}: tokens x{t_ratio:.2f}, FLOPs x{f_ratio:.2f}, parameters x{cost[size][2] / cost[base][2]:.3f}")
    assert abs(f_ratio / t_ratio - 1) < 0.1, "the FLOPs follow the number of tokens"

# %% [markdown]
# **Answer.** Nearly every operation of the encoder (projections, convolutions, scans) is applied once per
# token, so the FLOPs grow with the number of tokens, which grows with the input area. The weights
# are shared by all tokens: a larger input only adds positional embeddings (one vector per token),
# so the parameter count barely moves. What a larger input does buy is finer tokens per region,
# at a cost in FLOPs and latency.
