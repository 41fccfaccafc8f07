# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
# Parameters (papermill can override these)
SYNTHME_ROOT = ""               # a SynthME build; "": build the tiny preset into the hmrm cache
SAMPLE = 0                      # which clip to draw
INPUT_SIZE = 112                # side S of the flow maps
PATCH_SIZES = [8, 16]           # the grains, finest first
BACKEND = "auto"                # selective-scan backend: auto, fused, parallel, sequential (mamba_ssm needs CUDA tensors)
FIT_STEPS = 40                  # steps of the small fit that gives the attention something to show
EFFICIENCY_BATCHES = [1, 8]     # batch sizes timed in section 6 (`hmrm efficiency` uses 1 and 32)
EFFICIENCY_REPEATS = 2          # timed runs per model and batch size (the median is shown)
THREADS = 0                     # CPU threads for torch; 0: torch's default
SEED = 0

# %% [markdown]
# # 07 · The grained Mamba encoder and region fusion (RFFS)
#
# Chapters 02-03 and 05-06 built the two halves this chapter joins: an optical-flow map of the face
# (onset to apex) and the bidirectional Mamba block. HMRM reads the flow map as a sequence of
# patches, at two sizes, mixes each sequence with Mamba blocks, and then looks at the face the way
# the paper's *regions feature fusion strategy* (RFFS) does: a few tokens for the eyes, the nose and
# the mouth, from both grains, fused by multi-head self-attention before the classifier.
#
# You will:
# 1. see the network's input: a flow map (u, v, optical strain) and four region boxes;
# 2. cut it into patches at each grain and follow the token shapes through the encoder;
# 3. map the region boxes onto each token grid;
# 4. look at the RFFS attention over region tokens;
# 5. switch each ablation on and off and see what changes in the network (an *ablation* is the
#    network with one of its ideas removed, to measure what that idea contributes);
# 6. measure parameters, FLOPs and CPU latency of HMRM, its ablations and the STSTNet baseline (a
#    small published network for the same task, our point of comparison).
#
# Everything calls `hmrm.model` (the network), `hmrm.features` (inputs) and `hmrm.efficiency`;
# `tests/test_model.py` and `tests/test_efficiency.py` test them.

# %%
import inspect

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display
from matplotlib.patches import Rectangle

from hmrm.choices import choices_markdown
from hmrm.data.synthme import tiny_synthme
from hmrm.face.regions import REGION_NAMES
from hmrm.features import flow_input, region_boxes_for
from hmrm.model import ABLATIONS, HMRM, build_model, class_weights, count_parameters, region_token_mask
from hmrm.ssm import resolve_backend
from hmrm.viz import add_flow_wheel, flow_to_color
from hmrm.viz.overlays import REGION_COLOURS

if THREADS:
    torch.set_num_threads(THREADS)
torch.manual_seed(SEED)
samples = tiny_synthme(SYNTHME_ROOT or None, seed=SEED)   # 2 subjects x 4 clips, built once into the cache
print(samples.summary())

# "auto" picks the fastest scan backend that can run the tensors; `resolve_backend` says which it is
# on this chapter's CPU (mamba_ssm's CUDA kernel cannot run there), and every model below gets it.
SCAN = resolve_backend(BACKEND, torch.device("cpu"))
print(f"selective-scan backend of this chapter: {SCAN!r}")

# %% [markdown]
# ## 1. The input: a flow map and four boxes
#
# `hmrm.features.flow_input` turns a sample into the network's input: the onset-to-apex flow of the
# aligned 256 px face, area-averaged down to S x S with its displacements rescaled to input pixels,
# as three channels **u** (horizontal), **v** (vertical) and **optical strain** (local
# deformation, in pixels of displacement per pixel, px/px). Here we use SynthME's *exact* flow (`method="gt"`) so that what we see is the true
# motion; training uses an estimator (GRU-AOFE or DIS). `region_boxes_for` gives the four region
# boxes (right eye, left eye, nose, mouth; the subject's right is on the image's left) in the same
# coordinates.

# %%
sample = samples[SAMPLE]
x_np = flow_input(sample, method="gt", size=INPUT_SIZE)                  # (3, S, S): u, v, strain
boxes_np = region_boxes_for(sample, size=INPUT_SIZE)                      # (4, 4): x0, y0, x1, y1
flow = x_np[:2].transpose(1, 2, 0)
print(f"{sample.key}: {sample.label}; input {x_np.shape}, largest displacement {np.abs(flow).max():.2f} px")
speed = np.sqrt((flow ** 2).sum(-1)).max()
fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
axes[0].imshow(flow_to_color(flow, speed)); add_flow_wheel(axes[0], round(float(speed), 2), size=0.22, corner="upper right")
axes[0].set_title(f"flow (colour = direction)\nfull colour = {speed:.2f} px", fontsize=10, pad=10)
for ax, channel, name, unit in zip(axes[1:], x_np, ["u", "v", "optical strain"], ["px", "px", "px/px"]):
    lim = np.abs(channel).max()
    im = ax.imshow(channel, cmap="RdBu_r" if name != "optical strain" else "magma",
                   vmin=-lim if name != "optical strain" else 0, vmax=lim)
    ax.set_title(name); plt.colorbar(im, ax=ax, fraction=0.046).set_label(unit)
for (x0, y0, x1, y1), name in zip(boxes_np, REGION_NAMES):
    axes[0].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=REGION_COLOURS[name], lw=1.2))
for ax in axes:
    ax.axis("off")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## 2. Patches at two grains, and the tokens through the encoder
#
# A **grain** is a patch size (the paper asks for more than one; 8 and 16 px at S = 112 are our
# choice). Fine patches (8 px, a 14 x 14 grid) resolve the corner of an eye or a lip; coarse patches
# (16 px, 7 x 7) see whole regions at once. In the paper-size network each patch becomes one token by
# a convolution with kernel and stride equal to the patch size (the same as flattening the patch and
# applying one linear map), plus a learned positional embedding: the *linear patch embedding*.

# %%
fig, axes = plt.subplots(1, len(PATCH_SIZES), figsize=(4 * len(PATCH_SIZES), 4))
for ax, p in zip(np.atleast_1d(axes), PATCH_SIZES):
    ax.imshow(flow_to_color(flow, speed)); add_flow_wheel(ax, round(float(speed), 2), size=0.22)
    for t in range(0, INPUT_SIZE + 1, p):
        ax.axhline(t - 0.5, color="k", lw=0.4); ax.axvline(t - 0.5, color="k", lw=0.4)
    g = INPUT_SIZE // p
    ax.set_title(f"patch {p} px: {g} x {g} = {g * g} tokens"); ax.axis("off")
plt.tight_layout(); plt.show()

# %% [markdown]
# ### The network the demo trains: a convolutional stem before the patches
#
# A linear patch embedding treats a patch as a bag of independent numbers: one weight per pixel and
# channel, with no notion of which pixels are neighbours. On a flow map that is a poor start. A
# micro-expression moves a few neighbouring pixels by a fraction of a pixel, and what tells one
# expression from another is *local structure*: where a moving region ends, how the skin stretches
# (the strain channel already measures that on its own, pixel by pixel). The demo's HMRM (`make demo`,
# 64 px inputs) therefore first runs a small **convolutional stem** shared by every grain
# (`hmrm.model.encoder.ConvStem`, `stem="conv"`): two 3 x 3 convolutions with stride 2, each followed
# by a GELU, which turn the 3-channel map into a map of `d_model / 2` local motion features at a
# quarter of the side. Patches are then cut from that feature map (side `p / 4`) and embedded
# linearly. Every token thus starts from features computed over overlapping 3 x 3 neighbourhoods.
# Early convolutions are known to make vision transformers train faster and more stably on small
# data (Xiao et al. 2021, "Early convolutions help transformers see better").
#
# The paper says only that the flow maps are "split into patches", so both embeddings are readings
# of it; the stem is our choice, and it is the one architectural choice this course has measured to
# matter (the box at the end of the chapter reads the measurements). The demo's network, its stem
# and the shapes through it, on this chapter's clip at the demo's input size:

# %%
from hmrm.efficiency import demo_network

demo_net = demo_network().eval()
demo_size = demo_net.config.input_size
x_demo = torch.from_numpy(flow_input(sample, method="gt", size=demo_size))[None]
print(f"the demo's HMRM: input {demo_size} px, stem {demo_net.config.stem!r}, width {demo_net.config.d_model}, "
      f"depth {demo_net.config.depth}, patches {demo_net.config.patch_sizes}; {count_parameters(demo_net):,} parameters "
      f"({count_parameters(demo_net.encoder.stem):,} in the stem)")
with torch.no_grad():
    h = x_demo
    print(f"input {tuple(h.shape)}")
    for layer in demo_net.encoder.stem.layers:
        h = layer(h)
        print(f"  {type(layer).__name__:<7} -> {tuple(h.shape)}")
    for name in demo_net.encoder.names:
        grid = demo_net.encoder.embed[name](h)
        print(f"  {name}: patches of {demo_net.encoder.embed[name].patch} stem pixels -> token grid {tuple(grid.shape)}")

# %% [markdown]
# The encoder (`hmrm.model.encoder.GrainedMambaEncoder`) reads each grain's tokens in raster order
# (row by row) and passes them through `depth` pre-norm residual blocks, `t + BiMamba(LayerNorm(t))`
# (*pre-norm*: each block normalises its input and adds its output to the unchanged tokens, the
# *residual*, so a block that learns nothing passes the tokens through).
# The default network follows the paper's width 192 and depth 4; one stack of blocks serves both
# grains (each grain is its own sequence). Below, the shapes at each step for one sample:

# %%
model = HMRM(input_size=INPUT_SIZE, patch_sizes=PATCH_SIZES, backend=SCAN).eval()
x = torch.from_numpy(x_np)[None]
boxes = torch.from_numpy(boxes_np)[None]
enc = model.encoder
with torch.no_grad():
    for name in enc.names:
        grid = enc.embed[name](x)
        print(f"{name}: input {tuple(x.shape)} -> patch embedding + position {tuple(grid.shape)}")
        tokens = grid.flatten(1, 2)
        print(f"{'':>5}raster order {tuple(tokens.shape)}")
        for i, layer in enumerate(enc.layers(name)):
            tokens = layer(tokens)
            print(f"{'':>5}after block {i + 1} ({type(layer.mixer).__name__}) {tuple(tokens.shape)}")
    grids = enc(x)
print({name: tuple(g.shape) for name, g in grids.items()})
for part in ("encoder", "rffs", "head", "grain_heads"):
    print(f"{part:<12} {count_parameters(getattr(model, part)):>9,} parameters")
print(f"{'total':<12} {count_parameters(model):>9,}")
assert all(grids[f"p{p}"].shape == (1, INPUT_SIZE // p, INPUT_SIZE // p, 192) for p in PATCH_SIZES)

# %% [markdown]
# The default sizes were chosen by measurement; the encoder's docstring holds the table
# (`benchmarks/encoder_grains.py` makes it) and the reasons:

# %%
doc = inspect.getmodule(enc).__doc__
print(doc[doc.index("Why these defaults"):])

# %% [markdown]
# ## 3. Region boxes on the token grids
#
# RFFS summarises each grain with one token per region plus a global token. A region token is the
# **mean of the tokens whose patch overlaps the box**. Overlap, not containment, so that a region
# always gets at least one token: a box smaller than a patch takes the patch it lies in, and an
# empty box the patch under its corner (`hmrm.model.rffs.region_token_mask`). Coloured cells below
# are the tokens each region pools, drawn on the token grid with the box scaled to grid units.

# %%
fig, axes = plt.subplots(1, len(PATCH_SIZES), figsize=(4 * len(PATCH_SIZES), 4))
for ax, p in zip(np.atleast_1d(axes), PATCH_SIZES):
    g = INPUT_SIZE // p
    mask = region_token_mask(boxes, p, g)[0]                                 # (R, g, g)
    picture = np.ones((g, g, 3))
    for r, name in enumerate(REGION_NAMES):
        picture[mask[r].numpy()] = plt.matplotlib.colors.to_rgb(REGION_COLOURS[name])
    ax.imshow(picture, alpha=0.6)
    for (x0, y0, x1, y1), name in zip(boxes_np, REGION_NAMES):
        ax.add_patch(Rectangle((x0 / p - 0.5, y0 / p - 0.5), (x1 - x0) / p, (y1 - y0) / p, fill=False,
                               ec=REGION_COLOURS[name], lw=1.5))
    ax.set_xticks(np.arange(-0.5, g, 1), minor=True); ax.set_yticks(np.arange(-0.5, g, 1), minor=True)
    ax.grid(which="minor", color="grey", lw=0.3); ax.tick_params(which="both", length=0)
    ax.set_xticklabels([]); ax.set_yticklabels([])
    counts = ", ".join(f"{n} {int(m.sum())}" for n, m in zip(REGION_NAMES, mask))
    ax.set_title(f"patch {p}: tokens per region\n{counts}", fontsize=9)
plt.tight_layout(); plt.show()

# %%
# robustness: a 1-pixel box, an empty box and a box off the image each still pool one token
odd = torch.tensor([[[50, 50, 51, 51], [60, 60, 60, 60], [200, 200, 220, 220], [0, 0, INPUT_SIZE, INPUT_SIZE]]])
for p in PATCH_SIZES:
    print(f"patch {p}: tokens pooled per box", region_token_mask(odd, p, INPUT_SIZE // p).flatten(2).sum(-1).tolist()[0])

# %% [markdown]
# ## 4. Fusing the regions: multi-head self-attention
#
# The 2 x 5 region tokens (plus a learned embedding that says which grain and region each one is)
# go through one pre-norm multi-head self-attention layer, so that, for instance, the fine mouth
# token can draw on the coarse eye tokens. The fused tokens are averaged into one feature vector
# for the classifier. The model returns the attention weights (`outputs["attention"]`, one
# T x T matrix per head, rows are queries and sum to 1).
#
# An untrained network attends almost uniformly. To have something to look at we fit a *small*
# HMRM (width 64, one block) for a few dozen steps on the chapter's clips, with their exact flow.
# On eight clips this is memorisation, not a result: the point is to see the mechanism. Training
# with leave-one-subject-out evaluation comes with the LOSO chapter.

# %%
x_all = torch.from_numpy(np.stack([flow_input(s, method="gt", size=INPUT_SIZE) for s in samples]))
boxes_all = torch.from_numpy(np.stack([region_boxes_for(s, size=INPUT_SIZE) for s in samples]))
labels = torch.tensor([s.label_index for s in samples])
x_all = x_all / x_all.std()                    # sub-pixel flow: one constant brings it to unit scale
torch.manual_seed(SEED)
small = HMRM(input_size=INPUT_SIZE, patch_sizes=PATCH_SIZES, d_model=64, depth=1, dropout=0.0, backend=SCAN)
with torch.no_grad():
    before = small.eval()(x_all, boxes_all)["attention"].mean((0, 1))
weights = class_weights(labels, 3)
opt = torch.optim.AdamW(small.train().parameters(), lr=2e-3)
for step in range(FIT_STEPS):
    loss = small.loss(small(x_all, boxes_all), labels, weights)
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 10 == 0 or step == FIT_STEPS - 1:
        print(f"step {step:>3}: multi-scale loss {loss.item():.3f}")
with torch.no_grad():
    out = small.eval()(x_all, boxes_all)
after = out["attention"].mean((0, 1))                                      # over clips and heads
names = small.token_names
fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
for ax, att, title in [(axes[0], before, "untrained"), (axes[1], after, f"after {FIT_STEPS} steps")]:
    im = ax.imshow(att, cmap="viridis", vmin=0)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("key (attended to)"); ax.set_ylabel("query")
    ax.set_title(f"RFFS attention, {title}\n(mean over heads and clips)", fontsize=9)
    plt.colorbar(im, ax=ax, fraction=0.046)
plt.tight_layout(); plt.show()
torch.testing.assert_close(out["attention"].sum(-1), torch.ones(out["attention"].shape[:-1]))
received = dict(zip(names, after.sum(0).tolist()))
print("attention received per token (column sums):", {k: round(v, 2) for k, v in received.items()})

# %% [markdown]
# ## 5. The ablation switches
#
# An ablation study removes one idea at a time. The paper names its parts, but the material this
# project has of it reports no ablation figures (`docs/paper.md`), so these are our ablations of the
# paper's parts. Each is a set of `HMRMConfig` overrides in `hmrm.model.ABLATIONS`, and
# `build_model("hmrm", ablation=name)` builds it:
#
# | ablation | what changes |
# |---|---|
# | `full` | nothing: two grains, bidirectional Mamba, RFFS, multi-scale weighted loss, and MotionMix when the recipe mixes (the demo's recipe does not) |
# | `no_motionmix` | the same network; the training pipeline skips MotionMix (recorded in the config) |
# | `single_grain` | fine patches only (one token grid, one set of region tokens) |
# | `unidirectional` | `hmrm.ssm.Mamba` instead of `BiMamba`: each token sees only the patches before it |
# | `no_rffs` | no region tokens, no attention: each grain's tokens are averaged (global average pooling) |
# | `plain_ce` | one head, unweighted cross-entropy (no per-grain heads, no class weights) |

# %%
with torch.no_grad():
    for name, overrides in ABLATIONS.items():
        m = build_model("hmrm", ablation=name, backend=SCAN).eval()
        o = m(x, boxes)
        att = "-" if o["attention"] is None else tuple(o["attention"].shape)
        print(f"{name:<15} {str(overrides):<32} {count_parameters(m):>10,} params  grains {m.grain_names}  "
              f"heads {['fused', *o['grain_logits']]}  attention {att}")

# %% [markdown]
# ### The loss
#
# `model.loss(outputs, labels, class_weights)` is the multi-scale weighted cross-entropy: one
# cross-entropy per head (fused, and one per grain), each with **class weights** from the training
# fold, `w[c] = n / (k n_c)` (inverse frequency, normalised so that the average training sample
# weighs 1), summed with **scale weights** (default 1 for the fused head, 0.5 per grain):

# %%
from hmrm.model.loss import multiscale_loss

print("labels of the clips:", labels.tolist(), "-> class weights", [round(w, 3) for w in weights.tolist()])
total, terms = multiscale_loss(out, labels, weights, small.scale_weights, return_terms=True)
print("scale weights", small.scale_weights)
print("cross-entropy per head", {k: round(v.item(), 4) for k, v in terms.items()}, "-> total", round(total.item(), 4))

# %% [markdown]
# ## 6. How much does it cost?
#
# `hmrm.efficiency` counts, for HMRM, every ablation and the STSTNet baseline (Liong et al. 2019:
# three shallow convolution streams on a 28 x 28 flow picture):
#
# * **parameters** of the recognition network (optical flow not included);
# * **FLOPs per sample** of the forward pass, one multiply-add = 2 FLOPs: dense operations by
#   `torch.utils.flop_counter.FlopCounterMode`, each selective scan explicitly as 9 B L D N per
#   direction (the counter would otherwise see only the scan's read-out product, and the scan is
#   never counted twice);
# * **CPU latency**, the median of a few forward passes, with the thread count in the header.
#
# Latency depends on the machine and what else runs on it: compare rows of one table only.
# `hmrm efficiency` writes the full table (batches 1 and 32, more repeats) to
# `figures/efficiency.md`. The table has the paper-size network and its ablations at `INPUT_SIZE`,
# and the network the demo trains, `hmrm (demo)`, at its own input size.

# %%
from hmrm.efficiency import efficiency_markdown, efficiency_rows

rows = efficiency_rows(input_size=INPUT_SIZE, batches=EFFICIENCY_BATCHES, repeats=EFFICIENCY_REPEATS, warmup=1)
display(Markdown(efficiency_markdown(rows, INPUT_SIZE, EFFICIENCY_REPEATS, warmup=1)))
full = rows[0]
print(f"HMRM: {full.params / 1e6:.2f} M parameters, {full.flops / 1e9:.2f} GFLOPs per sample")
assert full.name == "hmrm" and full.params <= 2_000_000 and full.flops <= 1e9, "HMRM's budget: 2 M parameters, 1 GFLOP"

# %% [markdown]
# ## Summary
#
# * The grained encoder cuts the flow map into patches of each grain (by default 8 px and 16 px,
#   196 and 49 tokens at S = 112) and mixes each sequence with bidirectional Mamba blocks (`depth`
#   of them, 4 by default) shared by both grains.
# * RFFS pools region tokens (eyes, nose, mouth, global) from every grain by box overlap, robust to
#   tiny boxes, and fuses them with multi-head self-attention; the attention weights are returned.
# * Each ablation is a switch of `HMRMConfig`; the default network stays within the budget of 2 M
#   parameters and 1 GFLOP per sample (section 6 prints its figures), and the loss adds
#   class-weighted cross-entropies of the fused and the per-grain heads.
#
# * The demo trains a smaller HMRM with a convolutional stem before the patches; the stem is our
#   choice, not the paper's.
#
# ### The paper says, this course chose
#
# Each choice of the encoder and of RFFS, and what it measured when it was undone on the demo's
# network (read now from the committed results, `hmrm.choices`). Read the last column by the
# interval rule: a change whose paired interval contains 0 is not shown to matter on these subjects.

# %%
display(Markdown(choices_markdown("encoder_rffs")))

# %% [markdown]
# Next: training HMRM with leave-one-subject-out cross-validation.

# %% [markdown]
# ## Check yourself
#
# The rule of section 3, checked by hand: a region token pools every patch that *overlaps* its box.
# Along one axis the patches `c` with `c * p < x1` and `(c + 1) * p > x0` overlap `[x0, x1)`: from
# `x0 // p` up to `x1 / p` rounded up (`-(-x1 // p)`), clipped to the grid. The next cell counts them for
# each box of the sample and each grain, and compares with `region_token_mask`. To see it fail on
# purpose, count by *containment* (only patches wholly inside the box): write
# `cols = x1 // p - -(-x0 // p)` (and the same for `rows`) and run it again.

# %%
for p in PATCH_SIZES:
    g = INPUT_SIZE // p
    mask = region_token_mask(boxes, p, g)[0]                                 # (R, g, g)
    for r, (x0, y0, x1, y1) in enumerate(boxes_np.tolist()):
        cols = min(g, -(-x1 // p)) - x0 // p
        rows = min(g, -(-y1 // p)) - y0 // p
        assert int(mask[r].sum()) == rows * cols, f"patch {p}, {REGION_NAMES[r]}: mask {int(mask[r].sum())}, by hand {rows * cols}"
print("self-check passed: tokens per region by hand = region_token_mask, "
      + "; ".join(f"patch {p}: " + ", ".join(f"{n} {int(m.sum())}" for n, m in
                  zip(REGION_NAMES, region_token_mask(boxes, p, INPUT_SIZE // p)[0])) for p in PATCH_SIZES))

# %% [markdown]
# ## Exercises
#
# 1. **Grain against region.** For patch sizes 4, 8, 16 and 28 (all divide 112), count the tokens
#    each region of the sample pools, and the share of the pooled area that lies *outside* the box.
#    Which grain describes the mouth best, and what does the coarsest one pool?
# 2. **Does `no_rffs` look at the boxes?** Build the `full` network and the `no_rffs` ablation (one
#    seed each, untrained, `eval()`), and feed each the sample twice: with its boxes, and with every
#    box moved 16 px down. Which output changes? Explain from section 5 what `no_rffs` removes.
# 3. **What does a bigger input cost?** With `hmrm.efficiency.count_flops`, count the FLOPs of the
#    default HMRM for input sizes 96, 112 and 128 (patches 8 and 16), and its parameters. Do the FLOPs
#    follow the number of tokens, as the encoder's docstring says, and why do the parameters hardly
#    move?
#
# The solutions are in `notebooks/solutions/07_encoder_and_rffs_solutions.ipynb`: open it after trying.
