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
# Parameters (papermill can override these): those of chapter 06 that the exercises use
D_MODEL = 32                    # width of the block on image patches
IMAGE = "camera"                # a picture from skimage.data
WIDTHS = [32, 48, 64]           # exercise 2: widths to count
SEED = 0

# %% [markdown]
# # Solutions · 06 The bidirectional Mamba block
#
# Solutions of the exercises at the end of `notebooks/06_mamba_block.ipynb`. Try them there first. The
# first cell rebuilds the chapter's patches and block, and its influence maps as a function.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import torch
from skimage.color import rgb2gray
from skimage.transform import resize

from hmrm.ssm import BiMamba, resolve_backend

torch.manual_seed(SEED)
SCAN = resolve_backend("auto", torch.device("cpu"))
picture = getattr(skimage.data, IMAGE)()
picture = rgb2gray(picture) if picture.ndim == 3 else picture / 255.0
picture = resize(picture, (64, 64), anti_aliasing=True).astype(np.float32)
grid = torch.from_numpy(picture.reshape(8, 8, 8, 8).transpose(0, 2, 1, 3))   # (row, column, pixel row, pixel column)
embed = torch.nn.Linear(64, D_MODEL)
block = BiMamba(D_MODEL, backend=SCAN)
centre_rc = (3, 3)                                                          # the chapter's centre patch


def influence(block, order):
    """Influence of every patch on the centre patch's output, for patches read in ``order`` (a list of
    (row, column)); returned on the 8 x 8 patch grid, for the forward branch, the backward branch and
    the block."""
    tokens = embed(torch.stack([grid[r, c].reshape(64) for r, c in order])).unsqueeze(0).detach().requires_grad_()
    at = order.index(centre_rc)
    y_fwd, y_bwd = block.branches(tokens)
    maps = {}
    for name, y in [("forward branch", y_fwd), ("backward branch", y_bwd), ("block output", block(tokens).transpose(1, 2))]:
        (grad,) = torch.autograd.grad(y[0, :, at].pow(2).sum(), tokens, retain_graph=True)
        on_grid = torch.zeros(8, 8)
        for k, (r, c) in enumerate(order):
            on_grid[r, c] = grad[0, k].norm()
        maps[name] = on_grid
    return maps


def show(maps, title):
    fig, axes = plt.subplots(1, 3, figsize=(10, 3), layout="constrained")
    for ax, (name, m) in zip(axes, maps.items()):
        im = ax.imshow(torch.log10(m / m.max()).clamp(min=-6), cmap="magma", vmin=-6, vmax=0)
        ax.add_patch(plt.Rectangle((centre_rc[1] - 0.5, centre_rc[0] - 0.5), 1, 1, fill=False, color="cyan"))
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.colorbar(im, ax=axes.tolist(), fraction=0.03, label="log10 (influence / max)")
    fig.suptitle(title, fontsize=10)
    plt.show()


raster = [(r, c) for r in range(8) for c in range(8)]
columns = [(r, c) for c in range(8) for r in range(8)]

# %% [markdown]
# ## Exercise 1 · Another reading order
#
# *Feed the patches in column order and redraw the influence maps for the same centre patch. Which
# patches does the forward branch see now?*

# %%
by_columns = influence(block, columns)
show(by_columns, "patches read column by column")
seen = by_columns["forward branch"] > 0
print("patches the forward branch sees (1) on the 8 x 8 grid, column order:")
print(seen.int().numpy())

# %% [markdown]
# **Answer.** In raster order the forward branch of the centre patch sees the rows above it and the
# patches to its left in its own row. In column order it sees the columns to its left and the patches
# above it in its own column: the same picture, transposed. Each branch alone sees a half of the face
# that the reading order decides, which is why HMRM scans both ways, and the block output, which
# averages both branches, depends on every patch in either order. To make the order matter even less,
# encoders of this kind add more scans (rows and columns, each both ways, as VMamba's four-way scan does)
# or a 2-D mixing step before the scan; HMRM's grained encoder uses the two directions only.

# %%
at = columns.index(centre_rc)
before = {columns[k] for k in range(at + 1)}
expected = torch.tensor([[(r, c) in before for c in range(8)] for r in range(8)])
assert torch.equal(seen, expected), "in column order the forward branch sees the patches up to the centre in column order"
assert (by_columns["block output"] > 0).all(), "the block sees every patch"
print("exercise 1 checked")

# %% [markdown]
# ## Exercise 2 · Count before you run
#
# *Write a formula for the number of parameters of `BiMamba(d_model)` and check it; compare with a
# self-attention layer of the same width.*
#
# With `d_inner = expand * d_model` and `r = ceil(d_model / 16)`:
#
# * `in_proj`: `d_model x 2 d_inner` (no bias), `out_proj`: `d_inner x d_model` (no bias);
# * per direction (two of them): the causal convolution `d_inner x d_conv` weights + `d_inner` biases,
#   `x_proj` `d_inner x (r + 2 d_state)`, `dt_proj` `r x d_inner` + `d_inner` biases, `A_log`
#   `d_inner x d_state`, `D` `d_inner`;
# * the gate convolution: `d_inner x 3` weights + `d_inner` biases.

# %%
def bimamba_parameters(d_model, d_state=16, d_conv=4, expand=2, gate_kernel=3):
    d_inner, r = expand * d_model, math.ceil(d_model / 16)
    projections = d_model * 2 * d_inner + d_inner * d_model
    per_direction = (d_inner * d_conv + d_inner) + d_inner * (r + 2 * d_state) + (r * d_inner + d_inner) \
        + d_inner * d_state + d_inner
    return projections + 2 * per_direction + (d_inner * gate_kernel + d_inner)


print(f"{'d_model':>8} {'formula':>9} {'counted':>9} {'attention (4 heads)':>20}")
for width in WIDTHS:
    counted = sum(p.numel() for p in BiMamba(width).parameters())
    attention = sum(p.numel() for p in torch.nn.MultiheadAttention(width, 4).parameters())
    print(f"{width:>8} {bimamba_parameters(width):>9} {counted:>9} {attention:>20}")
    assert bimamba_parameters(width) == counted
    assert counted > 2 * attention, "a bidirectional block is the larger layer"

# %% [markdown]
# **Answer.** The formula matches the count exactly. A bidirectional Mamba block has a few times the
# parameters of a self-attention layer of the same width (its branches are twice as wide, and each
# direction has its own selective parameters), but its running cost grows linearly with the number of
# tokens, where attention's score matrix grows with its square. For HMRM's short patch sequences neither
# is large; what matters more is how the parameters compare with the data: a few hundred clips.

# %%
print("exercise 2 checked")

# %% [markdown]
# ## Exercise 3 · A trained gate
#
# *Give the gate convolution random weights and redraw the influence maps. How far past the centre does
# the forward branch see now?*

# %%
trained = BiMamba(D_MODEL, backend=SCAN)
trained.load_state_dict(block.state_dict())
with torch.no_grad():
    torch.nn.init.normal_(trained.gate_conv.weight, std=0.5)
maps = influence(trained, raster)
show(maps, "a gate convolution with random weights, raster order")
forward = maps["forward branch"].flatten()
at = raster.index(centre_rc)
print(f"forward branch: influence of the next patch {forward[at + 1]:.2e}, of the one after {forward[at + 2]:.2e}")

# %% [markdown]
# **Answer.** Exactly one patch further: the gate convolution is centred with kernel 3, so the gate of
# token `t` reads `z` at `t - 1`, `t` and `t + 1`, and the forward branch's output at `t` is multiplied
# by that gate. It sees token `t + 1` through the gate only, not through the scan (whose state has not
# reached it). The same holds for the backward branch with `t - 1`. A wider gate kernel would let each branch peek
# further.

# %%
assert forward[at + 1] > 0, "the gate convolution lets the forward branch see the next token"
assert forward[at + 2:].abs().max() == 0, "but no further"
print("exercise 3 checked")
