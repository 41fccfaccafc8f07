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
L = 196                         # sequence length of the checks (14 x 14 patches)
CHANNELS = 16                   # channels D of the checks
STATE = 16                      # state size N
TIMING_LENGTHS = [16, 64, 256]  # sequence lengths of the timing plot
TIMING_CHANNELS = 64
BACKEND = "auto"                # selective-scan backend: auto, parallel, fused, sequential (triton, mamba_ssm need CUDA tensors)
TRITON_CHECK = True             # without a GPU, run the Triton kernels through Triton's CPU interpreter once (slow, small)
SEED = 0

# %% [markdown]
# # 05 · The selective scan
#
# HMRM encodes a face as a sequence of flow-map patches and mixes them with **Mamba** blocks. A
# Mamba block is built around one operation, the **selective scan**: a linear recurrence whose
# coefficients depend on the input. This chapter derives it from a continuous state-space model,
# runs it as a plain loop, shows why it can also be computed in parallel, and checks that the fast
# version used for training gives the same numbers and gradients as the loop. Chapter 06 builds the
# Mamba block around it.
#
# You will:
# 1. discretise a continuous state-space model (zero-order hold, and Mamba's simplification);
# 2. see what *selective* means: input-dependent step size, input and output maps;
# 3. read the sequential scan that `hmrm.ssm` runs, line by line;
# 4. find the associative operator that makes a parallel scan possible;
# 5. check the parallel scan (and its hand-written backward pass) against the loop, and time both.
#
# Everything here calls the real code of `hmrm.ssm`; `tests/test_ssm_scan.py` and
# `tests/test_ssm_mamba.py` test it on its own, also against the independent `mambapy` package.

# %%
import os

import torch

# Without a GPU, Triton's kernels can only run through its CPU interpreter, which has to be chosen
# before Triton is first imported (the section on fused kernels uses it once, to check them).
if TRITON_CHECK and not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import inspect
import math
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from hmrm.choices import choices_markdown
from hmrm.ssm import available_backends, linear_scan_, parallel_scan, resolve_backend, selective_scan, sequential_scan
from hmrm.ssm.scan import chunk_size

torch.manual_seed(SEED)
for b in available_backends():
    print(f"{b.name:<11} {'yes' if b.available else 'no ':<4} {b.detail}")

# "auto" picks the fastest backend that can run the tensors; `resolve_backend` says which it is
# for this chapter's tensors (all on the CPU, where mamba_ssm's CUDA kernel cannot run), and the
# chapter passes that name explicitly, so every scan below says what it runs.
SCAN = resolve_backend(BACKEND, torch.device("cpu"))
print(f"backend of this chapter's scans: {SCAN!r}")

# %% [markdown]
# ## 1. A continuous state-space model and its discretisation
#
# A state-space model reads an input signal $x(t)$ through a hidden state $h(t) \in \mathbb{R}^N$:
#
# $$h'(t) = A\,h(t) + B\,x(t), \qquad y(t) = C\,h(t) + D\,x(t).$$
#
# Mamba uses a **diagonal** $A$ with negative entries, so every state component is a leaky integrator
# with its own forgetting rate $-A_n$; every channel of the input gets its own $N$ such integrators.
#
# To run it on a sequence sampled with step $\Delta$ we need a discrete recurrence
# $h_t = \bar A\, h_{t-1} + \bar B\, x_t$. If the input is held constant over each step
# (**zero-order hold**, ZOH), integrating the ODE exactly over one step gives, per diagonal entry,
#
# $$\bar A = e^{\Delta A}, \qquad \bar B = \frac{e^{\Delta A} - 1}{A}\, B .$$
#
# Mamba keeps $\bar A = e^{\Delta A}$ but simplifies $\bar B \approx \Delta B$, the first-order
# term of the same expression (they agree when $\Delta A$ is small). Below: the response of one state
# ($A=-1$, $B=1$) to a unit step, exact and discretised with a coarse step.

# %%
a, b, dt = -1.0, 1.0, 0.5
t = np.linspace(0, 6, 200)
steps = np.arange(0, 6 + dt, dt)
exact = (b / -a) * (1 - np.exp(a * t))                       # h(t) for x = 1, h(0) = 0
def discrete(a_bar, b_bar, n):
    h, out = 0.0, []
    for _ in range(n):
        out.append(h)
        h = a_bar * h + b_bar * 1.0
    return np.array(out)
zoh = discrete(np.exp(dt * a), (np.exp(dt * a) - 1) / a * b, len(steps))
mamba = discrete(np.exp(dt * a), dt * b, len(steps))
plt.figure(figsize=(6, 3))
plt.plot(t, exact, "k-", label="continuous")
plt.plot(steps, zoh, "o", label="ZOH: exact at the samples")
plt.plot(steps, mamba, "x", label="Mamba: B_bar = delta * B")
plt.xlabel("t"); plt.ylabel("h"); plt.legend(); plt.tight_layout(); plt.show()
print(f"largest error at the samples: ZOH {np.abs(zoh - (b / -a) * (1 - np.exp(a * steps))).max():.1e}, "
      f"simplified {np.abs(mamba - (b / -a) * (1 - np.exp(a * steps))).max():.2f} (shrinks with delta * |A|)")

# %% [markdown]
# ## 2. Selectivity
#
# In a classical SSM (such as S4, the structured state-space model Mamba grew from) $\Delta$, $B$ and
# $C$ are parameters, the same at every position. Mamba
# computes them **from the input at each position** (linear projections of the token). The step
# size becomes a gate: a large $\Delta_t$ makes $e^{\Delta_t A} \approx 0$ (forget the past, take
# the current input), a tiny $\Delta_t$ makes $e^{\Delta_t A} \approx 1$ and $\Delta_t B \approx 0$
# (ignore the current input, keep the state).
#
# With the notation of `selective_scan` (that of mamba-ssm: `u` the input, shapes
# (batch, D, L) and (batch, N, L)) the whole discrete model is
#
# ```
# h[l] = exp(delta[l] * A) * h[l-1] + delta[l] * B[l] * u[l]
# y[l] = sum_n C[l, n] * h[l, n] + D * u[l]        (then, in a Mamba block, y * silu(z))
# ```
#
# (`silu(z) = z * sigmoid(z)`, a smooth gate: near 0 for negative `z`, near `z` for large `z`.)
#
# A hand-made example: the step size is large only at a few "write" positions. The state then
# copies the input there and holds it until the next write, something a time-invariant model
# with one fixed step size cannot do.

# %%
n_pos = 60
u = torch.randn(1, 1, n_pos)
writes = torch.zeros(n_pos, dtype=torch.bool)
writes[[5, 22, 41]] = True
A = torch.tensor([[-20.0]])                                   # (D=1, N=1)
ones = torch.ones(1, 1, n_pos)                                # B = C = 1
selective = selective_scan(u, torch.where(writes, 1.0, 1e-4).view(1, 1, -1), A, ones, ones, backend=SCAN)
fixed = selective_scan(u, torch.full((1, 1, n_pos), 0.05), A, ones, ones, backend=SCAN)
plt.figure(figsize=(8, 3))
plt.plot(u[0, 0], ".", color="grey", label="input u")
plt.vlines(torch.nonzero(writes).flatten(), -2.5, 2.5, colors="tab:red", linestyles=":", label="large step size")
plt.plot(selective[0, 0], label="selective: delta from the input")
plt.plot(fixed[0, 0], label="fixed delta = 0.05")
plt.legend(fontsize=8); plt.xlabel("position l"); plt.tight_layout(); plt.show()

# %% [markdown]
# ## 3. The sequential scan
#
# The `sequential` backend is the recurrence written as a loop, like mamba-ssm's reference
# implementation. It builds `deltaA` and `deltaB_u` for every position, then walks along the
# sequence. This is the code that runs:

# %%
print(inspect.getsource(sequential_scan))


# %% [markdown]
# The loop is easy to trust and cheap to run forward, but slow to *train*: autograd records every
# step, and in the backward pass each `deltaA[:, :, i]` returns a gradient as large as all of
# `deltaA`, so the backward work grows as $L^2$. It also has $L$ dependent steps, which no amount
# of hardware can shorten.
#
# ## 4. Why the recurrence is associative
#
# Each step is an affine map of the state, $h \mapsto a\,h + b$ with $a = e^{\Delta A}$ and
# $b = \Delta B u$. Applying $(a_1, b_1)$ and then $(a_2, b_2)$ gives
# $a_2 (a_1 h + b_1) + b_2$, again affine:
#
# $$(a_1, b_1) \circ (a_2, b_2) = (a_1 a_2,\; a_2 b_1 + b_2).$$
#
# This operator is **associative**, so the states $h_t$ (the "prefix sums" of the sequence of
# pairs under $\circ$) can be computed in any grouping: pieces of the sequence can be combined
# independently and then stitched together. That is all a parallel scan needs.

# %%
def compose(p, q):
    """(a1, b1) then (a2, b2)."""
    return p[0] * q[0], q[0] * p[1] + q[1]

p, q, r = [(torch.rand(5), torch.randn(5)) for _ in range(3)]
left, right = compose(compose(p, q), r), compose(p, compose(q, r))
print("associative:", all(torch.allclose(x, y) for x, y in zip(left, right)))

# doubling (Hillis-Steele): after k rounds, position t holds the composition of the 2**k steps ending at t
a, b = torch.rand(L), torch.randn(L)
pa, pb, shift = a.clone(), b.clone(), 1
while shift < L:
    pa, pb = (torch.cat([pa[:shift], pa[shift:] * pa[:-shift]]),
              torch.cat([pb[:shift], pa[shift:] * pb[:-shift] + pb[shift:]]))
    shift *= 2
h, loop = torch.tensor(0.0), []
for t in range(L):
    h = a[t] * h + b[t]
    loop.append(h)
print(f"{math.ceil(math.log2(L))} doubling rounds instead of {L} steps; same states:",
      torch.allclose(pb, torch.stack(loop), atol=1e-5))

# %% [markdown]
# ## 5. The parallel scan in `hmrm.ssm`
#
# Doubling does $\log_2 L$ rounds but touches the whole sequence in every round, which costs more
# memory traffic than the loop. `hmrm.ssm.linear_scan_` uses a work-efficient **two-level** scan
# instead. It cuts the sequence into chunks of $T \approx \sqrt{L}$ positions and
#
# 1. scans all chunks at once, each from a zero state ($T$ vectorised steps), keeping the running
#    product of the decays since the chunk's entry;
# 2. carries the state across chunk boundaries (one small step per chunk);
# 3. adds each chunk's incoming state, multiplied by those running decays, to all of its positions
#    in one operation.
#
# About $2\sqrt{L}$ dependent steps instead of $L$ (the cell below prints the counts for this
# chapter's `L`), and only products of numbers in $[0, 1]$, which cannot overflow. The tempting closed form
# $h_t = P_t \sum_{s \le t} b_s / P_s$ with $P_t = \prod_{s \le t} a_s$ divides by products that
# underflow to zero on long or strongly decaying sequences:

# %%
g = torch.Generator().manual_seed(SEED)
a = torch.exp(-3 * torch.rand(L, 4, generator=g))            # strong decay: a in [0.05, 1]
x = torch.randn(L, 4, generator=g)
P = torch.cumprod(a, 0)
closed_form = P * torch.cumsum(x / P, 0)
h = linear_scan_(x.clone(), a.clone())
h_loop, state = torch.empty_like(x), torch.zeros(4)
for t in range(L):
    state = a[t] * state + x[t]
    h_loop[t] = state
print(f"closed form: smallest P = {P.min():.1e}, non-finite states: {(~torch.isfinite(closed_form)).sum().item()} of {x.numel()}")
print(f"two-level scan: max |difference| to the loop = {(h - h_loop).abs().max():.1e}")
T = chunk_size(L)
print(f"L = {L}: chunks of T = {T}, so {T - 1} steps inside the chunks + {L // T - 1} across them + one fix-up "
      f"(+ {L - (L // T) * T} tail steps) instead of {L} steps")


# %% [markdown]
# ### The same numbers and the same gradients
#
# `selective_scan(..., backend="parallel")` wraps the two-level scan in a `torch.autograd.Function`
# whose backward pass is written by hand. Differentiating $h_l = a_l h_{l-1} + b_l$ gives the
# adjoint $g_l = \partial \text{loss} / \partial h_l$:
#
# $$g_l = C_l\, \frac{\partial \text{loss}}{\partial y_l} + a_{l+1}\, g_{l+1},$$
#
# the same recurrence run backwards, so the backward pass is the same scan in reverse. Every
# gradient then follows from $g$ and the saved states: $\partial b_l = g_l$,
# $\partial a_l = g_l h_{l-1}$, $\partial C_l = h_l\, \partial y_l$. Below, both backends with
# all options on (`D`, the gate `z`, `delta_bias`, `delta_softplus`), compared with the tolerance of
# mamba-ssm's own tests, and a float64 `gradcheck` of the hand-written backward (`gradcheck` compares
# the gradients of a backward pass with finite differences, (f(x + ε) - f(x - ε)) / 2ε, for every input).

# %%
def scan_inputs(batch, dim, length, n, dtype=torch.float32):
    g = torch.Generator().manual_seed(SEED)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)
    return {"u": r(batch, dim, length), "delta": r(batch, dim, length), "A": -torch.exp(r(dim, n)),
            "B": r(batch, n, length), "C": r(batch, n, length), "D": r(dim), "z": r(batch, dim, length),
            "delta_bias": r(dim)}

def run(t, backend):
    leaves = {k: v.clone().requires_grad_() for k, v in t.items()}
    out = selective_scan(leaves["u"], leaves["delta"], leaves["A"], leaves["B"], leaves["C"], D=leaves["D"],
                         z=leaves["z"], delta_bias=leaves["delta_bias"], delta_softplus=True, backend=backend)
    out.backward(torch.ones_like(out))
    return out.detach(), {k: v.grad for k, v in leaves.items()}

inputs = scan_inputs(2, CHANNELS, L, STATE)
ref, ref_grads = run(inputs, "sequential")
for backend in ("parallel", "fused"):
    out, grads = run(inputs, backend)
    torch.testing.assert_close(out, ref, rtol=6e-4, atol=2e-3)
    for k in ref_grads:
        torch.testing.assert_close(grads[k], ref_grads[k], rtol=6e-4, atol=2e-3)
    worst = max((grads[k] - ref_grads[k]).abs().max().item() for k in ref_grads)
    print(f"{backend:8s}: output and every gradient within tolerance (largest gradient difference {worst:.1e})")
tiny = scan_inputs(1, 3, 9, 2, dtype=torch.float64)
core = [tiny[k].requires_grad_() for k in ("u", "delta", "A", "B", "C")]
print("gradcheck of the hand-written backward:", torch.autograd.gradcheck(parallel_scan, core))


# %% [markdown]
# ### A third way: fuse the loop instead of parallelising it
#
# The parallel scan is fast because each of its steps is one large tensor operation. On a CPU that
# has a cost too: every intermediate of shape (batch, D, L, N) is written to memory and read back.
# `backend="fused"` (`hmrm.ssm.fused`) goes the other way, like mamba-ssm's CUDA kernel: a loop nest
# compiled by Numba (a compiler that turns numerical Python loops into machine code) walks one (batch, channel) pair at a time with its N states in a buffer of a few
# kilobytes that never leaves the processor's cache, computes the decays, the skip term and the gate
# in the same pass, and runs the adjoint recurrence backwards for the gradients. The sequence is
# walked in order, as in the readable loop, but as machine code. For the short sequences of HMRM's
# patch grids it is usually the fastest CPU backend (the timing below shows how it fares on this
# machine), and `auto` picks it on the CPU; it is checked against the loop above like the parallel scan.
#
# ### A fourth way: one fused kernel on the GPU
#
# On a GPU the arithmetic of a scan is cheap; what it waits for is **memory**. The parallel scan
# materialises the state of every position, a tensor of batch x D x L x N floats, and writes and
# reads it several times (the decays, the chunk scan, the fix-up, the read-out by C, and again in the
# backward pass). mamba-ssm's CUDA kernel and this package's Triton kernels (`backend="triton"`,
# `hmrm.ssm.triton_scan`) never write it: each GPU program owns one sample and a block of channels,
# keeps their N states in registers, and walks the sequence reading each input once. The backward
# pass stores only the state at the start of every chunk of 16 positions and recomputes the rest,
# chunk by chunk, from there. What that saves, in bytes, at the shapes this course trains the
# paper-size network with (the paper gives no input size, patch size or batch size: 7 x 7 and 14 x 14
# are our encoder's grids at 112 px, 28 x 28 a finer grain for comparison, and batch 32 our default):

# %%
def traffic_mb(batch, channels, length, state, chunk=16, passes=4):
    """Rough bytes moved by one forward: the parallel scan's state tensor written and read
    `passes` times, against the fused kernel's inputs read once, output written once and one
    saved state per chunk."""
    f32 = 4
    inputs = (2 * batch * channels * length + 2 * batch * state * length) * f32  # u, delta; B, C
    states = batch * channels * length * state * f32
    parallel = inputs + 2 * passes * states + batch * channels * length * f32
    fused = inputs + batch * channels * length * f32 + batch * channels * state * math.ceil(length / chunk) * f32
    return parallel / 1e6, fused / 1e6

for length in (49, 196, 784):  # 7x7, 14x14, 28x28 patch grids; batch 32; D 384 (width 192 x 2), N 16
    par, fus = traffic_mb(32, 384, length, 16)
    print(f"L = {length:>3}: parallel scan ~{par:7.0f} MB, fused kernel ~{fus:5.0f} MB ({par / fus:4.1f}x less)")

# %% [markdown]
# Triton compiles for GPUs, so on a laptop the kernels cannot show their speed. Triton's
# interpreter runs the very same kernel code on CPU tensors (slowly), which is enough to check that
# the kernel computes the same thing as the loop, gradients included:

# %%
if TRITON_CHECK:
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    triton_info = {b.name: b for b in available_backends()}["triton"]  # for CUDA tensors, or the interpreter's
    if triton_info.available:
        t = scan_inputs(2, 8, 37, STATE)
        ref_out, ref_grads = run(t, "sequential")
        out, grads = run({k: v.to(dev) for k, v in t.items()}, "triton")
        worst = max([float((out.cpu() - ref_out).abs().max())]
                    + [float((grads[k].cpu() - ref_grads[k]).abs().max()) for k in ref_grads])
        print(f"triton on {dev}: largest difference from the loop, output and every gradient: {worst:.1e}")
        assert worst < 2e-3, "the Triton kernels disagree with the loop"
    else:
        print(f"Triton cannot run here: {triton_info.detail}")

# %% [markdown]
# ### Timing
#
# Forward and backward of the scan alone, on this machine's CPU threads (small sizes so that the
# chapter stays quick; `benchmarks/scan_bench.py` measures HMRM-sized layers and mambapy's scan
# too).

# %%
def train_step_ms(backend, length):
    t = scan_inputs(2, TIMING_CHANNELS, length, STATE)
    best = float("inf")
    for _ in range(1 if backend == "sequential" else 3):                # the loop is slow: one run
        start = time.perf_counter()
        run(t, backend)
        best = min(best, time.perf_counter() - start)
    return 1e3 * best

timings = {bk: [train_step_ms(bk, n) for n in TIMING_LENGTHS] for bk in ("sequential", "parallel", "fused")}
plt.figure(figsize=(5, 3.2))
for bk, ms in timings.items():
    plt.loglog(TIMING_LENGTHS, ms, "o-", label=bk)
plt.xticks(TIMING_LENGTHS, [str(n) for n in TIMING_LENGTHS]); plt.minorticks_off()
plt.xlabel("sequence length L"); plt.ylabel("forward + backward (ms)")
plt.title(f"batch 2, D {TIMING_CHANNELS}, N {STATE}, {torch.get_num_threads()} threads", fontsize=9)
plt.legend(); plt.tight_layout(); plt.show()
for n, s, p, f in zip(TIMING_LENGTHS, timings["sequential"], timings["parallel"], timings["fused"]):
    print(f"L = {n:>4}: sequential {s:8.1f} ms, parallel {p:7.1f} ms, fused {f:6.1f} ms")

# %% [markdown]
# ## Summary
#
# * A selective SSM is a linear recurrence $h_t = e^{\Delta_t A} h_{t-1} + \Delta_t B_t u_t$ whose
#   step size and maps depend on the input; the step size decides what to remember.
# * The recurrence is a composition of affine maps, which is associative: it can be scanned in
#   parallel. `hmrm.ssm` uses a two-level chunked scan with a hand-written backward pass (the adjoint
#   is the same scan in reverse), compiled CPU loops (`fused`), Triton kernels that keep the state in
#   registers on a GPU (`triton`), and mamba-ssm's fused CUDA kernel when it is installed.
#
# **The paper says, this course chose.** The paper uses Mamba; how its scan is computed is ours
# (`hmrm.choices`, read from the committed scan benchmark):

# %%
display(Markdown(choices_markdown("selective_scan")))

# %% [markdown]
# Next, chapter 06 wraps the scan into a Mamba block and runs it both ways over image patches.

# %% [markdown]
# ## Check yourself
#
# The next cell checks the idea of section 2 on the numbers it computed: with a large step size only at
# the "write" positions, the selective state still holds at least 90 % of each written value just
# before the next write (or at the end of the sequence). To see it fail on purpose, change the small
# step size `1e-4` in section 2 to `1e-3` and run section 2 and this cell again: each step now keeps
# only $e^{-20 \cdot 0.001} \approx 0.98$ of the state, the value leaks away and the assertion fails.

# %%
write_pos = torch.nonzero(writes).flatten()
before_next = torch.cat([write_pos[1:] - 1, torch.tensor([n_pos - 1])])
written, held = u[0, 0, write_pos], selective[0, 0, before_next]
kept = held / written
for w, e, k in zip(write_pos.tolist(), before_next.tolist(), kept.tolist()):
    print(f"written at {w:>2}: {u[0, 0, w]:+.3f}, still held at {e:>2}: {selective[0, 0, e]:+.3f} ({k:.1%})")
assert ((kept > 0.9) & (kept < 1.1)).all(), "the selective state did not hold the written values"
print(f"self-check passed: the selective scan held every written value to within {(kept - 1).abs().max():.1%}")

# %% [markdown]
# ## Exercises
#
# 1. **How coarse may the step be?** Repeat the unit-step response of section 1 for step sizes
#    $\Delta$ = 0.05, 0.1, 0.2, 0.5, 1 and 2, and plot the largest error at the samples of ZOH and of
#    Mamba's simplification $\bar B = \Delta B$ against $\Delta$ (log-log). How does the error of the
#    simplification shrink when $\Delta$ is halved, and what does that say about its order?
# 2. **Write the scan yourself.** Implement the two lines of section 2 (with `D`, the gate
#    `y * silu(z)`, `delta_bias` and `delta = softplus(delta + delta_bias)`) as a plain Python loop over
#    positions, for inputs of shape (batch, D, L), and check it against
#    `selective_scan(..., delta_softplus=True, backend="sequential")` on the inputs of section 5.
# 3. **When does the closed form break?** With the strong decays of section 5 ($a = e^{-3r}$, $r$
#    uniform in [0, 1]), find the first position at which the closed form $P_t \sum_{s \le t} b_s / P_s$
#    gives a non-finite state. Predict it first: float32 overflows above about $3.4 \times 10^{38}$
#    ($\approx e^{88.7}$), and $-\log P_t$ grows by 1.5 per position on average. Does the two-level
#    scan stay exact on a sequence of 4096 positions?
#
# The solutions are in `notebooks/solutions/05_selective_scan_solutions.ipynb`: open it after
# trying.
