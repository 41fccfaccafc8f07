"""The selective scan: Mamba's state-space recurrence, three ways.

A (diagonal) state-space model keeps, for every channel ``d``, a hidden state of ``N`` numbers
and updates it once per sequence position ``l``::

    h[l] = exp(delta[l] * A) * h[l-1] + delta[l] * B[l] * u[l]      # state update (per d, n)
    y[l] = sum_n C[l, n] * h[l, n]  +  D * u[l]                      # read-out
    out  = y * silu(z)                                                # optional gate

``delta`` (the step size), ``B`` and ``C`` depend on the input, which is what makes the scan
*selective* (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces").
:func:`selective_scan` has exactly the argument conventions and the semantics of mamba-ssm's
reference ``selective_scan_ref`` (mamba_ssm/ops/selective_scan_interface.py), restricted to a real
``A`` of shape (D, N) and input-dependent ``B``, ``C`` of shape (batch, N, L), so that the fused
CUDA kernel can stand in for it.

Backends
--------
``sequential``
    The textbook loop over positions, written like mamba-ssm's reference, differentiated by
    autograd. Easy to read, slow to train: autograd records every step, and the backward of each
    ``deltaA[:, :, i]`` writes a gradient as large as the whole ``deltaA`` tensor, so the
    backward pass costs O(L^2 * batch * D * N) memory traffic.
``parallel``
    A chunked two-level parallel scan in pure PyTorch, wrapped in a ``torch.autograd.Function``
    whose backward pass is written by hand (see below). Runs on any device, and under
    ``torch.func.vmap`` (stacked folds, :mod:`hmrm.train.loso.stacked`).
``fused``
    The same recurrence as compiled CPU loops (Numba, :mod:`hmrm.ssm.fused`): one pass per
    (batch, channel) with the states in a small buffer, the decays, the skip term and the gate
    fused in, and a hand-written backward. The fastest choice on a CPU; float32 CPU tensors only.
``triton``
    Triton kernels (:mod:`hmrm.ssm.triton_scan`): each program keeps a block of channels' states
    in registers while it walks the sequence; the backward recomputes the states chunk by chunk.
    CUDA tensors (on a CPU only through Triton's interpreter, ``TRITON_INTERPRET=1``, for checking).
``mamba_ssm``
    The fused CUDA kernel ``selective_scan_fn`` of the ``mamba-ssm`` package; used only when it
    imports and the tensors are on a CUDA device.
``auto``
    ``mamba_ssm`` for CUDA tensors when it imports; else ``triton`` for float32 CUDA tensors when
    Triton imports and its kernels, run once on that device, agree with ``parallel``; ``fused`` for
    float32 CPU tensors when Numba imports; otherwise ``parallel``. The choice is logged once per
    process.

Why the recurrence can be computed in parallel
----------------------------------------------
Each step is an affine map ``h -> a*h + b``. Composing two steps gives another affine map::

    (a1, b1) then (a2, b2)  =  (a1*a2, a2*b1 + b2)

and this composition is associative, so a prefix "sum" over the steps can be computed in any
grouping. The ``parallel`` backend splits the sequence into chunks of ``T`` positions and

1. scans *all chunks at once*, each from a zero state (``T`` vectorised steps);
2. passes the state across chunk boundaries (one cheap step per chunk: the chunk-end state plus
   the chunk's total decay times the previous chunk's final state);
3. adds each chunk's incoming state, decayed, to all of its positions in one vectorised
   operation (the "fix-up").

With ``T ~ sqrt(L)`` that is about ``2*sqrt(L)`` sequential steps instead of ``L``, for about
the same total work as the plain loop. The decay from a chunk's entry to a position inside it,
``a[s] * ... * a[t]``, is accumulated during step 1 as a running product of numbers in [0, 1]
(in Mamba ``a = exp(delta*A)`` with ``delta > 0`` and ``A < 0``): it can only underflow to 0,
which is the correct limit. The tempting closed form ``h[t] = P[t] * cumsum(b / P)`` with
``P = cumprod(a)`` (or its log-space twin with ``exp(-cumsum(delta*A))``) divides by products
that underflow to zero, or exponentiates sums that overflow, over long or strongly decaying
sequences.

The hand-written backward pass
------------------------------
Differentiating ``h[l] = a[l]*h[l-1] + b[l]`` gives the adjoint ``g[l] = dLoss/dh[l]``::

    g[l] = C[l] * dy[l] + a[l+1] * g[l+1]

which is the *same* linear recurrence run from the end of the sequence to its start, so the
backward pass reuses the chunked scan in reverse. From ``g`` and the saved states ``h`` every
gradient is a product and a sum: ``db[l] = g[l]``, ``da[l] = g[l] * h[l-1]``, ``dC[l] = dy[l] h[l]``.
Autograd on the loop would instead store and replay thousands of small operations.
"""
from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

BACKENDS = ("sequential", "parallel", "fused", "triton", "mamba_ssm")
_reported: set[str] = set()  # backends that "auto" has already announced in this process


# --------------------------------------------------------------------------------------------
# the readable loop
# --------------------------------------------------------------------------------------------
def sequential_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """y (batch, D, L) of the recurrence, one position at a time (autograd does the backward)."""
    batch, dim, length = u.shape
    deltaA = torch.exp(delta.unsqueeze(-1) * A.unsqueeze(1))                     # (b, d, l, n)
    deltaB_u = (delta * u).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(1)        # (b, d, l, n)
    h = u.new_zeros(batch, dim, A.shape[1])                                      # (b, d, n)
    ys = []
    for i in range(length):
        h = deltaA[:, :, i] * h + deltaB_u[:, :, i]                              # state update
        ys.append(torch.einsum("bdn,bn->bd", h, C[:, :, i]))                     # read-out
    return torch.stack(ys, dim=-1)                                               # (b, d, l)


# --------------------------------------------------------------------------------------------
# the chunked parallel scan
# --------------------------------------------------------------------------------------------
def chunk_size(length: int) -> int:
    """Chunk length ``T`` of the parallel scan: about sqrt(L), which balances the two loops."""
    return max(1, math.isqrt(length))


def _batched(t: torch.Tensor) -> bool:
    """Whether ``t`` is wrapped by a torch.func transform (vmap, grad), where it may be batched."""
    functorch = getattr(torch._C, "_functorch", None)
    return bool(functorch is not None and functorch.is_functorch_wrapped_tensor(t))


def _mul_add_(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return x.add_(a * b)


def linear_scan_(x: torch.Tensor, a: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """Solve ``h[l] = a[l] * h[l-1] + x[l]`` (with ``h[-1] = 0``) in place of ``x``; return ``x``.

    ``x`` and ``a`` have the same shape with time first, e.g. (L, batch, D, N). With
    ``reverse=True`` the recurrence runs from the end, ``h[l] = a[l] * h[l+1] + x[l]``.
    Chunked two-level scan, see the module docstring. ``a`` is overwritten too: inside each chunk
    it becomes the running product of the decays, ``a[s] * ... * a[t]`` from the chunk's entry
    ``s`` (in Mamba a product of numbers in [0, 1], which can only underflow to 0, the right limit).
    """
    # under torch.func.vmap (stacked networks) addcmul_ has no batching rule and would loop over the
    # batch; a product then an addition does batch (the same value up to the rounding of one product)
    fma_ = _mul_add_ if _batched(x) or _batched(a) else torch.Tensor.addcmul_
    length = x.shape[0]
    T = chunk_size(length)
    n_chunks = length // T
    tail = length - n_chunks * T
    # the full chunks sit at the start (forward) or at the end (reverse); the tail is the rest
    lo = tail if reverse else 0
    xc = x[lo:lo + n_chunks * T].view(n_chunks, T, *x.shape[1:])                 # (c, T, ...)
    ac = a[lo:lo + n_chunks * T].view(n_chunks, T, *a.shape[1:])
    prev = 1 if reverse else -1                                                  # the step before
    # 1. every chunk scanned from a zero state, all chunks at once (and the running decays)
    for t in range(T - 2, -1, -1) if reverse else range(1, T):
        fma_(xc[:, t], ac[:, t], xc[:, t + prev])
        ac[:, t].mul_(ac[:, t + prev])
    if n_chunks > 1:
        # 2. carry the state across chunk boundaries, one chunk at a time
        last = 0 if reverse else T - 1                                           # a chunk's exit
        for c in range(n_chunks - 2, -1, -1) if reverse else range(1, n_chunks):
            fma_(xc[c, last], ac[c, last], xc[c + prev, last])
        # 3. fix-up: every other position receives its chunk's incoming state, decayed
        if reverse:
            fma_(xc[:-1, 1:], ac[:-1, 1:], xc[1:, :1])
        else:
            fma_(xc[1:, :-1], ac[1:, :-1], xc[:-1, -1:])
    # the positions after the last full chunk (before the first, in reverse): a short loop
    for i in range(tail - 1, -1, -1) if reverse else range(n_chunks * T, length):
        fma_(x[i], a[i], x[i + prev])
    return x


class ParallelScanFn(torch.autograd.Function):
    """y = C . h with h the selective recurrence; forward and backward by the chunked scan."""

    # forward and backward are plain tensor code, so torch.func can batch them (vmap over stacked
    # networks, as fold-parallel training does): setup_context apart from forward, rule generated
    generate_vmap_rule = True

    @staticmethod
    def forward(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor):
        # time-major copies of the small inputs: each position's slice is one contiguous block
        ut, dt = (t.permute(2, 0, 1).contiguous() for t in (u, delta))            # (l, b, d)
        Bt, Ct = (t.permute(2, 0, 1).contiguous() for t in (B, C))                # (l, b, n)
        h = (dt * ut).unsqueeze(-1) * Bt.unsqueeze(2)                             # (l, b, d, n)
        linear_scan_(h, (dt.unsqueeze(-1) * A).exp_())
        y = torch.matmul(h, Ct.unsqueeze(-1)).squeeze(-1)                         # (l, b, d)
        return y.permute(1, 2, 0), (ut, dt, Bt, Ct, h)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, (ut, dt, Bt, Ct, h) = output
        ctx.save_for_backward(ut, dt, inputs[2], Bt, Ct, h)
        ctx.mark_non_differentiable(ut, dt, Bt, Ct, h)

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor, *_):
        ut, dt, A, Bt, Ct, h = ctx.saved_tensors
        gy = grad_y.permute(2, 0, 1).contiguous()                                 # (l, b, d)
        # decay from position l+1 back to l: a[l+1] (the last one is never used)
        a_next = (torch.cat([dt[1:], torch.zeros_like(dt[:1])]).unsqueeze(-1) * A).exp_()
        # the state that entered each step, decayed: a[l] * h[l-1] for l >= 1
        decayed_prev = a_next[:-1] * h[:-1]
        # adjoint of the state: g[l] = C[l] dy[l] + a[l+1] g[l+1], a reverse scan
        g = gy.unsqueeze(-1) * Ct.unsqueeze(2)                                    # (l, b, d, n)
        linear_scan_(g, a_next, reverse=True)
        grad_C = torch.matmul(gy.unsqueeze(-2), h).squeeze(-2)                    # (l, b, n)
        grad_du = torch.matmul(g, Bt.unsqueeze(-1)).squeeze(-1)                   # (l, b, d)
        grad_B = torch.matmul((dt * ut).unsqueeze(-2), g).squeeze(-2)             # (l, b, n)
        grad_dt = grad_du * ut
        # gradient of the log-decay s[l] = dt[l] * A: g[l] * a[l] * h[l-1] (zero at l = 0)
        w = decayed_prev.mul_(g[1:])                                             # (l-1, b, d, n)
        grad_dt[1:] += torch.einsum("lbdn,dn->lbd", w, A)
        grad_A = w.mul_(dt[1:].unsqueeze(-1)).sum((0, 1))
        back = lambda t: t.permute(1, 2, 0)  # noqa: E731  (l, b, .) -> (b, ., l)
        return back(grad_du * dt), back(grad_dt), grad_A, back(grad_B), back(grad_C)


def parallel_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """y (batch, D, L) of the recurrence by the chunked scan, with the hand-written backward."""
    return ParallelScanFn.apply(u, delta, A, B, C)[0]


# --------------------------------------------------------------------------------------------
# backends and the public function
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _mamba_ssm_kernel() -> tuple[Callable | None, str]:
    """(selective_scan_fn, "") when mamba-ssm's compiled kernel imports, else (None, why not)."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception as exc:  # noqa: BLE001 - a missing or broken extension fails in many ways
        return None, f"mamba_ssm not importable ({type(exc).__name__}: {exc})"
    return selective_scan_fn, ""


@dataclass(frozen=True)
class BackendInfo:
    """Whether a backend can run here, and a one-line explanation."""

    name: str
    available: bool
    detail: str


def available_backends() -> list[BackendInfo]:
    """Every backend with whether it can run in this process (``mamba_ssm``: CUDA and the kernel)."""
    from .fused import numba_status

    kernel, why = _mamba_ssm_kernel()
    if kernel is not None and not torch.cuda.is_available():
        kernel, why = None, "mamba_ssm imports but CUDA is not available"
    numba_ok, numba_why = numba_status()
    triton_ok, triton_why = _triton_usable(torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    return [
        BackendInfo("sequential", True, "readable loop over positions, autograd backward (slow)"),
        BackendInfo("parallel", True, "chunked parallel scan with a hand-written backward, any device"),
        BackendInfo("fused", numba_ok, "compiled CPU loops (Numba), CPU tensors" if numba_ok else numba_why),
        BackendInfo("triton", triton_ok, triton_why),
        BackendInfo("mamba_ssm", kernel is not None, "fused CUDA kernel of mamba-ssm" if kernel is not None else why),
    ]


def _triton_usable(device: torch.device, dtype: torch.dtype = torch.float32) -> tuple[bool, str]:
    """Whether the Triton kernels (:mod:`hmrm.ssm.triton_scan`) can run on ``device``, and why (not)."""
    from .triton_scan import interpreting, triton_status

    ok, why = triton_status()
    if not ok:
        return False, why
    if dtype != torch.float32:
        return False, f"the Triton kernels are float32 only, the tensors are {dtype}"
    if device.type == "cuda":
        return True, f"fused Triton kernels, CUDA ({why})"
    if device.type == "cpu" and interpreting():
        return True, f"Triton kernels through the CPU interpreter (TRITON_INTERPRET=1; slow, for checking) ({why})"
    return False, (f"tensors are on {device.type}; Triton compiles for GPUs (on a CPU only through its interpreter: "
                   "TRITON_INTERPRET=1 set before Python starts, for checking)")


@functools.lru_cache(maxsize=None)
def _triton_checked(device: str) -> tuple[bool, str]:
    """Run the Triton kernels once on ``device`` against the parallel scan (forward and gradients,
    small inputs): ``auto`` uses them only if they compile and agree there."""
    try:
        from .triton_scan import triton_scan

        g = torch.Generator().manual_seed(0)
        shapes = {"u": (2, 5, 19), "delta": (2, 5, 19), "A": (5, 3), "B": (2, 3, 19), "C": (2, 3, 19)}
        x = {k: torch.randn(s, generator=g).to(device) for k, s in shapes.items()}
        x["delta"] = x["delta"].abs() * 0.3
        x["A"] = -x["A"].abs()
        outs = []
        for fn in (triton_scan, parallel_scan):
            inputs = {k: v.clone().requires_grad_() for k, v in x.items()}
            y = fn(*inputs.values())
            y.square().sum().backward()
            outs.append([y.detach(), *(v.grad for v in inputs.values())])
        if not all(torch.allclose(a, b, rtol=1e-3, atol=1e-4) for a, b in zip(*outs)):
            return False, "the Triton kernels disagree with the parallel scan on this device"
    except Exception as exc:  # noqa: BLE001 - a compiler or driver problem shows up in many ways
        return False, f"the Triton kernels failed on this device ({type(exc).__name__}: {exc})"
    return True, ""


def resolve_backend(backend: str, device: torch.device, dtype: torch.dtype = torch.float32) -> str:
    """The backend that ``selective_scan`` runs for inputs on ``device`` (``auto`` resolved)."""
    if backend not in (*BACKENDS, "auto"):
        raise ValueError(f"unknown selective_scan backend {backend!r}; choose one of {', '.join((*BACKENDS, 'auto'))}")
    kernel, why = _mamba_ssm_kernel()
    if kernel is not None and device.type != "cuda":
        why = f"tensors are on {device.type}, the mamba_ssm kernel needs CUDA"
    elif kernel is not None and dtype == torch.float64:
        why = "the mamba_ssm kernel has no float64 version"
    usable = kernel is not None and device.type == "cuda" and dtype != torch.float64
    if backend == "mamba_ssm" and not usable:
        raise RuntimeError(f"backend 'mamba_ssm' cannot run: {why}; use 'parallel' or 'auto'")
    from .fused import numba_status

    numba_ok, numba_why = numba_status()
    if device.type != "cpu":
        numba_ok, numba_why = False, f"tensors are on {device.type}, the fused loops run on the CPU"
    elif dtype != torch.float32:
        numba_ok, numba_why = False, f"the fused loops are float32 only, the tensors are {dtype}"
    if backend == "fused" and not numba_ok:
        raise RuntimeError(f"backend 'fused' cannot run: {numba_why}; use 'parallel' or 'auto'")
    triton_ok, triton_why = _triton_usable(device, dtype)
    if backend == "triton" and not triton_ok:
        raise RuntimeError(f"backend 'triton' cannot run: {triton_why}; use 'parallel' or 'auto'")
    if backend != "auto":
        return backend
    if triton_ok and device.type == "cuda" and not usable:  # only once it compiled and agreed on this device
        triton_ok, triton_why = _triton_checked(str(device))
    if usable:
        choice, reason = "mamba_ssm", "fused CUDA kernel"
    elif triton_ok and device.type == "cuda":
        choice, reason = "triton", "fused Triton kernels (mamba-ssm not installed)"
    elif numba_ok:
        choice, reason = "fused", "compiled CPU loops (Numba)"
    else:
        choice, reason = "parallel", f"pure PyTorch; {why}" + ("" if device.type != "cpu" else f"; {numba_why}")
    if choice not in _reported:  # once per process, at INFO: runs record it in config.json, `hmrm doctor` lists all
        _reported.add(choice)
        logging.getLogger("hmrm.ssm").info("selective_scan backend 'auto' -> %r (%s)", choice, reason)
    return choice


def _check_shapes(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                  D: torch.Tensor | None, z: torch.Tensor | None, delta_bias: torch.Tensor | None) -> None:
    if u.dim() != 3:
        raise ValueError(f"u must be (batch, D, L), got shape {tuple(u.shape)}")
    batch, dim, length = u.shape
    if length == 0:
        raise ValueError("u has an empty sequence (L = 0)")
    if A.dim() != 2 or A.shape[0] != dim:
        raise ValueError(f"A must be (D, N) = ({dim}, N) for u of shape {tuple(u.shape)}, got {tuple(A.shape)}")
    if A.is_complex():
        raise ValueError("complex A is not supported: A must be real, (D, N)")
    n = A.shape[1]
    expected = {"delta": (delta, (batch, dim, length)), "B": (B, (batch, n, length)), "C": (C, (batch, n, length)),
                "D": (D, (dim,)), "z": (z, (batch, dim, length)), "delta_bias": (delta_bias, (dim,))}
    for name, (t, shape) in expected.items():
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} for u of shape {tuple(u.shape)} and A of shape "
                             f"{tuple(A.shape)} (B and C are (batch, N, L)), got {tuple(t.shape)}")


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                   delta_bias: torch.Tensor | None = None, delta_softplus: bool = False,
                   backend: str = "auto") -> torch.Tensor:
    """Mamba's selective scan, with the conventions of mamba-ssm's ``selective_scan_ref``.

    Shapes: ``u``, ``delta``, ``z``: (batch, D, L); ``A``: (D, N), real (in Mamba, negative);
    ``B``, ``C``: (batch, N, L); ``D``, ``delta_bias``: (D,). Computes, per channel and state::

        delta = softplus(delta + delta_bias)      # bias and softplus only when asked
        h[l]  = exp(delta[l] * A) * h[l-1] + delta[l] * B[l] * u[l]
        out   = (sum_n C[l] * h[l] + D * u) * silu(z)

    and returns ``out`` (batch, D, L) in the dtype of ``u``. The pure-PyTorch backends compute in
    float32 (float64 for float64 inputs). ``backend``: "auto", "sequential", "parallel" or
    "mamba_ssm" (see the module docstring). Raises ``ValueError`` for an unknown backend or
    inconsistent shapes, ``RuntimeError`` when "mamba_ssm" is asked for but cannot run here.
    """
    name = resolve_backend(backend, u.device, u.dtype)
    _check_shapes(u, delta, A, B, C, D, z, delta_bias)
    if name == "mamba_ssm":
        kernel, _ = _mamba_ssm_kernel()
        as_float = lambda t: None if t is None else t.float()  # noqa: E731  the kernel's weights are float32
        return kernel(u, delta, A.float(), B, C, D=as_float(D), z=z, delta_bias=as_float(delta_bias),
                      delta_softplus=delta_softplus)
    dtype_in = u.dtype
    work = torch.float64 if dtype_in == torch.float64 else torch.float32
    u, delta, A, B, C = (t.to(work) for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.to(work).unsqueeze(-1)
    if delta_softplus:
        delta = F.softplus(delta)
    if name == "fused":
        from .fused import fused_scan

        as_work = lambda t: None if t is None else t.to(work)  # noqa: E731
        return fused_scan(u, delta, A, B, C, as_work(D), as_work(z)).to(dtype_in)
    if name == "triton":
        from .triton_scan import triton_scan as scan
    else:
        scan = sequential_scan if name == "sequential" else parallel_scan
    out = scan(u, delta, A, B, C)
    if D is not None:
        out = out + u * D.to(work).unsqueeze(-1)
    if z is not None:
        out = out * F.silu(z.to(work))
    return out.to(dtype_in)
