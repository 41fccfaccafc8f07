"""The selective scan as Triton kernels: the state stays in registers while a program walks the
sequence, and the backward pass recomputes the forward states one chunk at a time.

Why: the ``parallel`` backend writes the whole state tensor ``h`` (batch x D x N x L floats) to
memory and reads it back several times; for the paper's encoder that is hundreds of megabytes per
block per step, and memory traffic, not arithmetic, is what a GPU waits for. Here each program
owns one batch element and a block of channels, keeps their ``BLOCK_D x N`` states in registers
and reads each input once:

* **forward** (:func:`hmrm.ssm.triton_kernels._forward_kernel`): for every position, ``h = exp(delta * A) * h + delta * u * B``
  and ``y = sum_n C * h``; at the start of every chunk of ``CHUNK`` positions it writes the entering
  state (``L / CHUNK`` states instead of ``L``);
* **backward** (:func:`hmrm.ssm.triton_kernels._backward_kernel`): chunk by chunk from the end, it recomputes the chunk's
  states from the saved entering state into a small scratch buffer, then walks the chunk backwards
  with the adjoint state ``g = C * dy + exp(delta[l+1] * A) * g``, producing every gradient.
  Reductions over the batch (``A``) and over channel blocks (``B``, ``C``) are written per program
  and summed by PyTorch afterwards, so the result does not depend on scheduling.

Bias, softplus, the skip term ``D * u`` and the gate ``silu(z)`` stay in PyTorch around the kernel,
as for the ``parallel`` backend (:func:`hmrm.ssm.scan.selective_scan`).

Triton compiles for GPUs; ``TRITON_INTERPRET=1`` (set before the first call) runs the same kernels
on CPU tensors through Triton's interpreter, slowly: that is how the tests check them on a machine
without a GPU. Nothing here has been timed on a GPU yet (``benchmarks/gpu_check.sh`` does).
"""
from __future__ import annotations

import os

import torch

#: Positions per chunk of the backward pass's recomputation (and of the saved forward states).
CHUNK = 16
#: Channels per program.
BLOCK_D = 16


def triton_status() -> tuple[bool, str]:
    """(True, version) when Triton imports, else (False, why not)."""
    try:
        import triton
    except Exception as exc:  # noqa: BLE001 - a missing or broken install fails in many ways
        return False, f"triton not importable ({type(exc).__name__}: {exc})"
    return True, f"triton {triton.__version__}"


def interpreting() -> bool:
    """Whether Triton runs its kernels through the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _launch_shape(u: torch.Tensor, N: int) -> tuple[int, int, int, int]:
    import triton

    batch, D, L = u.shape
    return batch, triton.cdiv(D, BLOCK_D), triton.next_power_of_2(max(N, 1)), triton.cdiv(max(L, 1), CHUNK)


class TritonScanFn(torch.autograd.Function):
    """y (batch, D, L) = the selective recurrence read out by C, forward and backward by the kernels."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C):
        u, delta, A, B, C = (t.float().contiguous() for t in (u, delta, A, B, C))
        batch, D, L = u.shape
        N = A.shape[1]
        _, n_dblocks, block_n, n_chunks = _launch_shape(u, N)
        from .triton_kernels import _forward_kernel as fwd

        y = torch.empty_like(u)
        hs = torch.empty((batch, D, N, n_chunks), device=u.device, dtype=torch.float32)
        fwd[(batch, n_dblocks)](u, delta, A, B, C, y, hs, D, L, N, n_chunks,
                                BLOCK_D=BLOCK_D, BLOCK_N=block_n, CHUNK=CHUNK)
        ctx.save_for_backward(u, delta, A, B, C, hs)
        return y

    @staticmethod
    def backward(ctx, gy):
        u, delta, A, B, C, hs = ctx.saved_tensors
        batch, D, L = u.shape
        N = A.shape[1]
        _, n_dblocks, block_n, n_chunks = _launch_shape(u, N)
        from .triton_kernels import _backward_kernel as bwd

        dev = u.device
        gu, gdt = torch.empty_like(u), torch.empty_like(u)
        gA = torch.empty((batch, D, N), device=dev, dtype=torch.float32)
        gB = torch.zeros((batch, n_dblocks, N, L), device=dev, dtype=torch.float32)
        gC = torch.zeros((batch, n_dblocks, N, L), device=dev, dtype=torch.float32)
        scratch = torch.empty((batch, n_dblocks, CHUNK, BLOCK_D, block_n), device=dev, dtype=torch.float32)
        bwd[(batch, n_dblocks)](u, delta, A, B, C, gy.float().contiguous(), hs, scratch, gu, gdt, gA, gB, gC,
                                D, L, N, n_chunks, n_dblocks, BLOCK_D=BLOCK_D, BLOCK_N=block_n, CHUNK=CHUNK)
        return gu, gdt, gA.sum(0), gB.sum(1), gC.sum(1)


def triton_scan(u, delta, A, B, C) -> torch.Tensor:
    """y (batch, D, L) of the recurrence by the Triton kernels (float32)."""
    return TritonScanFn.apply(u, delta, A, B, C)
