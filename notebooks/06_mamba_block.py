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
# Parameters (papermill can override these)
D_MODEL = 32                    # width of the bidirectional block on image patches
IMAGE = "camera"                # a picture from skimage.data
BACKEND = "auto"                # selective-scan backend: auto, parallel, fused, sequential (mamba_ssm needs CUDA tensors)
SEED = 0

# %% [markdown]
# # 06 · The bidirectional Mamba block
#
# Chapter 05 built the selective scan, a linear recurrence whose step size and maps depend on the
# input. A **Mamba block** wraps that scan with projections, a short convolution and a gate, and maps a
# sequence of tokens to a sequence of the same shape. HMRM's encoder runs it over image patches, which
# have no natural reading order, so it scans **both ways**. This chapter opens the block, runs it on the
# patches of a picture, and measures which patches each direction can see.
#
# You will:
# 1. take a Mamba block apart and count what each part costs;
# 2. see how the bidirectional block of HMRM's encoder differs from it;
# 3. measure, with gradients, which patches each direction depends on;
# 4. check that every CPU scan backend gives the same block output.
#
# **Words this chapter uses.** A *token* is one element of the sequence (here, one image patch,
# embedded as a vector of `D_MODEL` numbers). A *depthwise* convolution filters each channel on its own,
# along the sequence; a *causal* one only looks back. *SiLU* is $x \cdot \sigma(x)$, a smooth gate.
# Everything calls `hmrm.ssm`; `tests/test_ssm_mamba.py` tests the blocks on their own, also against the
# independent `mambapy` package.

# %%
import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import torch
from IPython.display import Markdown, display
from skimage.color import rgb2gray
from skimage.transform import resize

from hmrm.choices import choices_markdown
from hmrm.ssm import BiMamba, Mamba, available_backends, resolve_backend

torch.manual_seed(SEED)
# "auto" picks the fastest backend that can run the tensors: on this chapter's CPU tensors, never the
# CUDA kernel of mamba_ssm. The chapter passes the resolved name explicitly.
SCAN = resolve_backend(BACKEND, torch.device("cpu"))
print(f"backend of this chapter's scans: {SCAN!r}")

# %% [markdown]
# ## 1. Inside a Mamba block
#
# A Mamba block (`hmrm.ssm.Mamba`) wraps the scan: a linear `in_proj` splits each token into a
# branch `x` and a gate `z`, each `expand` times wider than the token; `x` goes through a short causal
# depthwise convolution and SiLU, then `x_proj` and `dt_proj` produce the selective $\Delta, B, C$ of
# every position; the scan output is gated by `silu(z)` and projected back by `out_proj`. $A$
# (`A_log`) and the skip weight $D$ are parameters of their own. The cell lists the parts and what
# each costs in parameters, and runs the block on a random sequence.

# %%
mamba = Mamba(D_MODEL, backend=SCAN)
total = sum(p.numel() for p in mamba.parameters())
print(f"Mamba(d_model={D_MODEL}): {total} parameters")
for name, p in mamba.named_parameters():
    print(f"  {name:<22} {str(tuple(p.shape)):<14} {p.numel():>6}  ({100 * p.numel() / total:4.1f} %)")
x = torch.randn(2, 10, D_MODEL)
print("input", tuple(x.shape), "-> output", tuple(mamba(x).shape))

# %% [markdown]
# The two projections hold most of the parameters (the shares are printed above); of the selective
# machinery, `x_proj`, which makes $\Delta$, $B$ and $C$ for every position, is the largest part. What a block *costs to run* grows linearly with
# the sequence length, because the scan carries a state of fixed size (`d_inner` x `d_state`) along the
# sequence instead of comparing every token with every other one as self-attention does.
#
# ## 2. Both directions
#
# Image patches have no natural reading order, so HMRM's encoder scans them **both ways**.
# `hmrm.ssm.BiMamba` shares `in_proj` and `out_proj`, keeps a separate convolution, `x_proj`,
# `dt_proj`, $A$ and $D$ per direction, runs the backward direction on the flipped sequence and flips
# its output back, and averages the two. The gate is *convolutional*: `z` passes through its own
# centred depthwise convolution before the SiLU. (The HMRM paper does not specify this gate
# exactly; this is our documented choice, initialised as the identity.)
#
# We cut a 64 x 64 picture into 64 patches of 8 x 8 pixels in raster order, embed each linearly,
# and run one block.

# %%
picture = getattr(skimage.data, IMAGE)()
picture = rgb2gray(picture) if picture.ndim == 3 else picture / 255.0
picture = resize(picture, (64, 64), anti_aliasing=True).astype(np.float32)
patches = torch.from_numpy(picture.reshape(8, 8, 8, 8).transpose(0, 2, 1, 3).reshape(64, 64))  # (patch, pixel)
embed = torch.nn.Linear(64, D_MODEL)
block = BiMamba(D_MODEL, backend=SCAN)
tokens = embed(patches).unsqueeze(0)                          # (batch 1, L 64, D_MODEL)
out = block(tokens)
print("tokens", tuple(tokens.shape), "-> block output", tuple(out.shape))

# %% [markdown]
# ## 3. Which patches does each direction see?
#
# The gradient of one output token with respect to every input token shows what it depends on. The
# forward branch of the centre token only depends on the patches up to it in raster order, the backward
# branch only on those from it onwards, and the block on all of them. (Once trained, the gate's convolution also lets each branch see one
# neighbour on the other side; a new block's gate convolution is the identity.)

# %%
centre = 27                                                   # row 3, column 3
leaf = tokens.detach().requires_grad_()
y_fwd, y_bwd = block.branches(leaf)
maps = {}
for name, y in [("forward branch", y_fwd), ("backward branch", y_bwd), ("block output", block(leaf).transpose(1, 2))]:
    (grad,) = torch.autograd.grad(y[0, :, centre].pow(2).sum(), leaf, retain_graph=True)
    maps[name] = grad[0].norm(dim=-1).reshape(8, 8)
fig, axes = plt.subplots(1, 4, figsize=(12, 3))
axes[0].imshow(picture, cmap="gray")
axes[0].add_patch(plt.Rectangle((8 * (centre % 8) - 0.5, 8 * (centre // 8) - 0.5), 8, 8, fill=False, color="red"))
axes[0].set_title("input, centre patch")
for ax, (name, m) in zip(axes[1:], maps.items()):
    im = ax.imshow(torch.log10(m / m.max()).clamp(min=-6), cmap="magma", vmin=-6, vmax=0)   # black: no influence
    ax.set_title(f"{name}\ninfluence, log10 relative to max", fontsize=9)
plt.colorbar(im, ax=axes[1:].tolist(), fraction=0.02).set_label("log10 (influence / max)")
for ax in axes:
    ax.axis("off")
plt.show()
assert maps["forward branch"].flatten()[centre + 2:].abs().max() == 0, "forward branch must not see the future"
assert maps["backward branch"].flatten()[: centre - 1].abs().max() == 0, "backward branch must not see the past"
assert maps["backward branch"].flatten()[centre + 2:].abs().max() > 0, "the backward scan really ran"

# %% [markdown]
# ## 4. Every backend, the same block
#
# Every CPU backend runs both directions and they agree on the block:

# %%
with torch.no_grad():
    outputs = {}
    for backend in ("sequential", "parallel", "fused"):
        if any(b.name == backend and b.available for b in available_backends()):
            block.backend = backend
            outputs[backend] = block(tokens)
block.backend = SCAN
for backend, y in outputs.items():
    if backend != "sequential":
        print(f"max |{backend} - sequential| on the block output: {(y - outputs['sequential']).abs().max():.1e}")

# %% [markdown]
# ## Summary
#
# * A Mamba block is projections around the selective scan: `in_proj` to a branch and a gate, a short
#   causal convolution, the selective parameters from the tokens, the scan gated by `silu(z)`, and
#   `out_proj`. Its cost grows linearly with the sequence length.
# * `BiMamba` scans patch sequences in both directions with separate parameters per direction and a
#   convolutional gate, so every output token depends on every patch.
#
# **The paper says, this course chose**, and what the backward direction measured when it was
# removed from the demo's network (the `unidirectional` ablation, read from the committed table):

# %%
display(Markdown(choices_markdown("mamba_block")))

# %% [markdown]
# Next, chapter 07 stacks these blocks over multi-grain patches of the optical-flow maps.

# %% [markdown]
# ## Check yourself
#
# Section 3 measured influence with gradients. The next cell checks the same claim by experiment:
# changing the *last* patch's token must leave the forward branch's output at the centre token exactly
# as it was (the forward scan has not reached it yet), while the backward branch's output there changes.
#
# Break it on purpose: change `changed = L_TOKENS - 1` to `changed = centre - 5` (a patch before the
# centre). The forward branch has read that one, its output changes, and the assertion fails.

# %%
L_TOKENS = tokens.shape[1]
changed = L_TOKENS - 1
moved = tokens.detach().clone()
moved[0, changed] += 1.0
with torch.no_grad():
    fwd_before, bwd_before = block.branches(tokens)
    fwd_after, bwd_after = block.branches(moved)
fwd_change = (fwd_after[0, :, centre] - fwd_before[0, :, centre]).abs().max().item()
bwd_change = (bwd_after[0, :, centre] - bwd_before[0, :, centre]).abs().max().item()
print(f"token {changed} changed: the centre's forward branch moved by {fwd_change:.1e}, its backward branch by {bwd_change:.1e}")
assert fwd_change == 0.0, "the forward branch at the centre must not depend on later patches"
assert bwd_change > 0.0, "the backward branch at the centre must depend on later patches"
print("self-check passed: the forward branch reads only what came before, the backward branch what comes after")

# %% [markdown]
# ## Exercises
#
# 1. **Another reading order.** Feed the patches in column order (down the first column of the picture,
#    then the next) instead of raster order, and redraw the influence maps of section 3 for the same
#    centre patch. Which patches does the forward branch see now? What would a reading order have to do
#    to make the choice irrelevant?
# 2. **Count before you run.** From `d_model`, `d_state` (16), `d_conv` (4), `expand` (2), the rank of
#    `dt_proj` (`ceil(d_model / 16)`) and the gate kernel (3), write a formula for the number of
#    parameters of `BiMamba(d_model)`, and check it for `d_model` = 32, 48 and 64. Compare it with a
#    self-attention layer of the same width (`torch.nn.MultiheadAttention(d_model, 4)`).
# 3. **A trained gate.** A new block's gate convolution is the identity. Give it random weights
#    (`torch.nn.init.normal_(block.gate_conv.weight, std=0.5)`) and redraw the influence maps of
#    section 3. How far past the centre does the forward branch see now, and why exactly that far?
#
# The solutions are in `notebooks/solutions/06_mamba_block_solutions.ipynb`: open it after trying.
