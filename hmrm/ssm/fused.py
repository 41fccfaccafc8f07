"""The fused CPU selective scan: one compiled loop per (batch, channel), states kept in cache.

The ``parallel`` backend (:mod:`hmrm.ssm.scan`) computes the recurrence with whole-tensor PyTorch
operations, so every intermediate of shape (batch, D, L, N) -- the states, the adjoint states,
their products -- is written to memory and read back, several times forward and backward. For the
small networks a CPU trains, that memory traffic *is* the cost of the scan. This backend does
what mamba-ssm's CUDA kernel does on a GPU, on the CPU: one loop nest compiled by Numba that walks
the sequence of one (batch, channel) pair with its ``N`` states in a small local buffer, and fuses
the skip term ``D * u`` and the gate ``silu(z)`` into the same pass::

    for every batch row b (in parallel) and channel d:
        h = 0
        for l = 0 .. L-1:
            h[n]   = a[l, n] * h[n] + delta[l] * u[l] * B[l, n]        a = exp(delta * A), from PyTorch
            out[l] = (sum_n C[l, n] h[n] + D u[l]) * silu(z[l])

The backward pass recomputes the states of one (b, d) pair into a buffer of L x N numbers (a few
kilobytes: it stays in the CPU's fastest cache), then runs the adjoint recurrence from the end,
``g[l] = C[l] dy[l] + a[l+1] g[l+1]`` (see :mod:`hmrm.ssm.scan` for its derivation), and gathers
every gradient in the same loop.

Only the decays ``a = exp(delta * A)`` are computed by PyTorch, because its ``exp`` is vectorised
(a scalar ``exp`` per state inside the loop costs more than the memory it saves).

Determinism: the batch rows are shared among threads, and every sum runs inside one row in a
fixed order (sums over rows are finished by PyTorch afterwards), so the result is the same bits
whatever the number of threads. Numba compiles the loops on first use (a few seconds, cached in
``__pycache__`` afterwards).
"""
from __future__ import annotations

import functools

import numpy as np
import torch



@functools.lru_cache(maxsize=None)
def numba_status() -> tuple[bool, str]:
    """(True, "") when Numba imports, else (False, why not)."""
    try:
        import numba  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a broken install fails in many ways
        return False, f"numba not importable ({type(exc).__name__}: {exc})"
    return True, ""


@functools.lru_cache(maxsize=None)
def _kernels(parallel: bool):
    from .fused_loops import compile_loops

    return compile_loops(parallel)


def _loops():
    """The compiled loops for PyTorch's current number of threads (``torch.set_num_threads`` and
    ``--threads`` apply to both)."""
    threads = torch.get_num_threads()
    if threads <= 1:
        return _kernels(False)
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    return _kernels(True)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


class FusedScanFn(torch.autograd.Function):
    """``(sum_n C h + D u) * silu(z)`` with h the selective recurrence, forward and backward in
    compiled loops. ``D`` and ``z`` may be None. float32 CPU tensors."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z):
        forward, _ = _loops()
        with torch.no_grad():
            du = delta * u
            bt, ct = B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous()  # (b, l, n)
            dd = D.detach() if D is not None else u.new_zeros(u.shape[1])
            zz = z.detach() if z is not None else u.new_zeros((1, 1, 1))
        out = torch.empty_like(u)
        forward(_np(delta), _np(A), _np(du), _np(u), _np(bt), _np(ct), _np(dd), _np(zz), z is not None, out.numpy())
        ctx.save_for_backward(u, delta, A, du, bt, ct, dd, zz)
        ctx.has_d, ctx.has_z = D is not None, z is not None
        return out

    @staticmethod
    def backward(ctx, gout):
        _, backward = _loops()
        u, delta, A, du, bt, ct, dd, zz = ctx.saved_tensors
        nb_, nd, _ = u.shape
        g_u, g_delta = torch.empty_like(u), torch.empty_like(u)
        g_z = torch.empty_like(u) if ctx.has_z else u.new_zeros((1, 1, 1))
        g_a_rows = u.new_zeros((nb_, *A.shape))
        g_d_rows = u.new_zeros((nb_, nd))
        g_b, g_c = torch.zeros_like(bt), torch.zeros_like(ct)
        backward(_np(delta), _np(A), _np(du), _np(u), _np(bt), _np(ct), _np(dd), _np(zz), ctx.has_z, _np(gout),
                 g_u.numpy(), g_delta.numpy(), g_z.numpy(), g_a_rows.numpy(), g_d_rows.numpy(), g_b.numpy(),
                 g_c.numpy())
        return (g_u, g_delta, g_a_rows.sum(0), g_b.transpose(1, 2), g_c.transpose(1, 2),
                g_d_rows.sum(0) if ctx.has_d else None, g_z if ctx.has_z else None)


def fused_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
               D: torch.Tensor | None = None, z: torch.Tensor | None = None) -> torch.Tensor:
    """``(sum_n C h + D u) * silu(z)`` (batch, D, L) by the compiled loops; see the module docstring.
    float32 CPU tensors; ``delta`` is the final step size (bias and softplus already applied)."""
    if u.dtype != torch.float32 or u.device.type != "cpu":
        raise ValueError(f"the fused scan takes float32 CPU tensors, got {u.dtype} on {u.device}")
    return FusedScanFn.apply(u, delta, A, B, C, D, z)
