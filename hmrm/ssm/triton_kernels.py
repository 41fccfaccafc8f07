"""The Triton kernels of :mod:`hmrm.ssm.triton_scan` (see there). Importing this module imports
Triton, which reads ``TRITON_INTERPRET`` then: set it before, to run the kernels on a CPU through
Triton's interpreter."""
import triton
import triton.language as tl


@triton.jit
def _program(A_ptr, D, L, N, n_chunks, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):
    """This program's sample and channel block: masks, its rows of A, and where its channels'
    sequences, its states' B and C, and its saved chunk states start."""
    b = tl.program_id(0)
    pd = tl.program_id(1)
    offs_d = pd * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    md = offs_d < D
    mn = offs_n < N
    mdn = md[:, None] & mn[None, :]
    A = tl.load(A_ptr + offs_d[:, None] * N + offs_n[None, :], mask=mdn, other=0.0)
    row = (b * D + offs_d) * L
    col = (b * N + offs_n) * L
    state = ((b * D + offs_d[:, None]) * N + offs_n[None, :]) * n_chunks
    return b, pd, md, mn, mdn, A, row, col, state

@triton.jit
def _position(u_ptr, dt_ptr, B_ptr, C_ptr, row, col, pos, L, md, mn):
    """Position ``pos`` of this program's channels and states (zeros past the end, where a step
    changes nothing): (in range, u, delta, B, C)."""
    ml = pos < L
    u = tl.load(u_ptr + row + pos, mask=md & ml, other=0.0)
    dt = tl.load(dt_ptr + row + pos, mask=md & ml, other=0.0)
    Bl = tl.load(B_ptr + col + pos, mask=mn & ml, other=0.0)
    Cl = tl.load(C_ptr + col + pos, mask=mn & ml, other=0.0)
    return ml, u, dt, Bl, Cl


@triton.jit
def _forward_kernel(u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, y_ptr, hs_ptr, D, L, N, n_chunks,
                    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr):
    b, pd, md, mn, mdn, A, row, col, state = _program(A_ptr, D, L, N, n_chunks, BLOCK_D, BLOCK_N)
    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    for c in range(0, n_chunks):
        tl.store(hs_ptr + state + c, h, mask=mdn)  # the state entering chunk c
        for t in range(0, CHUNK):
            pos = c * CHUNK + t
            ml, u, dt, Bl, Cl = _position(u_ptr, dt_ptr, B_ptr, C_ptr, row, col, pos, L, md, mn)
            h = tl.exp(dt[:, None] * A) * h + (dt * u)[:, None] * Bl[None, :]
            tl.store(y_ptr + row + pos, tl.sum(h * Cl[None, :], axis=1), mask=md & ml)

@triton.jit
def _backward_kernel(u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, gy_ptr, hs_ptr, scratch_ptr,
                     gu_ptr, gdt_ptr, gA_ptr, gB_ptr, gC_ptr, D, L, N, n_chunks, n_dblocks,
                     BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr):
    b, pd, md, mn, mdn, A, row, col, state = _program(A_ptr, D, L, N, n_chunks, BLOCK_D, BLOCK_N)
    offs_d = pd * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    part = ((b * n_dblocks + pd) * N + offs_n) * L                       # this program's B, C partials
    local = tl.arange(0, BLOCK_D)[:, None] * BLOCK_N + offs_n[None, :]
    scratch = scratch_ptr + (b * n_dblocks + pd) * CHUNK * BLOCK_D * BLOCK_N + local
    g = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)                  # adjoint carried back
    gA = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    for ci in range(0, n_chunks):
        c = n_chunks - 1 - ci
        h0 = tl.load(hs_ptr + state + c, mask=mdn, other=0.0)
        h = h0
        for t in range(0, CHUNK):                                      # recompute the chunk's states
            pos = c * CHUNK + t
            ml, u, dt, Bl, _ = _position(u_ptr, dt_ptr, B_ptr, C_ptr, row, col, pos, L, md, mn)
            h = tl.exp(dt[:, None] * A) * h + (dt * u)[:, None] * Bl[None, :]
            tl.store(scratch + t * BLOCK_D * BLOCK_N, h)
        tl.debug_barrier()
        for ti in range(0, CHUNK):                                     # then walk it backwards
            t = CHUNK - 1 - ti
            pos = c * CHUNK + t
            ml, u, dt, Bl, Cl = _position(u_ptr, dt_ptr, B_ptr, C_ptr, row, col, pos, L, md, mn)
            gy = tl.load(gy_ptr + row + pos, mask=md & ml, other=0.0)
            h_cur = tl.load(scratch + t * BLOCK_D * BLOCK_N)
            h_prev = tl.where(t > 0, tl.load(scratch + (t - 1) * BLOCK_D * BLOCK_N, mask=mdn & (t > 0), other=0.0), h0)
            g += gy[:, None] * Cl[None, :]
            dA = tl.exp(dt[:, None] * A)
            w = g * h_prev * dA                                          # d loss / d (delta * A)
            tl.store(gC_ptr + part + pos, tl.sum(gy[:, None] * h_cur, axis=0), mask=mn & ml)
            tl.store(gB_ptr + part + pos, tl.sum(g * (dt * u)[:, None], axis=0), mask=mn & ml)
            tl.store(gu_ptr + row + pos, tl.sum(g * Bl[None, :], axis=1) * dt, mask=md & ml)
            tl.store(gdt_ptr + row + pos, tl.sum(w * A + g * Bl[None, :] * u[:, None], axis=1), mask=md & ml)
            gA += w * dt[:, None]
            g = g * dA
        tl.debug_barrier()
    tl.store(gA_ptr + (b * D + offs_d[:, None]) * N + offs_n[None, :], gA, mask=mdn)
