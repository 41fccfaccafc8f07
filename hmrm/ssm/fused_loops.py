"""The compiled loops behind :mod:`hmrm.ssm.fused` (imported, and Numba with it, on first use).

Read :mod:`hmrm.ssm.fused` first: it says what the loops compute and why they are shaped so.
"""
from __future__ import annotations

import numba as nb
import numpy as np

F32, I32 = np.float32, np.int32
#: the exponential may not be reordered (its range reduction depends on the order of operations)
EXACT = {"contract", "arcp", "nsz"}


@nb.njit(cache=True, fastmath=EXACT)
def exp_into(x, out, bits):  # pragma: no cover - compiled by Numba
    """out = exp(x) for float32 x, in two loops the compiler turns into vector instructions.
    Cody-Waite: x = k ln2 + r with |r| <= ln2 / 2 (ln2 split in a high part, exact in
    float32 products, and a low part), exp(r) by its Taylor polynomial of degree 7, 2^k
    written straight into the exponent bits. Largest relative error over [-87, 0]: 1.3 units
    in the last place (7.6e-8); x is clamped to [-87, 88], exp(-87) = 1.6e-38."""
    for i in range(x.shape[0]):
        v = min(max(x[i], F32(-87.0)), F32(88.0))
        k = np.floor(v * F32(1.4426950408889634) + F32(0.5))
        r = v - k * F32(0.693359375) - k * F32(-2.12194440e-4)
        p = F32(1.9841270e-4)
        p = p * r + F32(1.3888889e-3)
        p = p * r + F32(8.3333333e-3)
        p = p * r + F32(4.1666667e-2)
        p = p * r + F32(1.6666667e-1)
        p = p * r + F32(0.5)
        p = p * r + F32(1.0)
        out[i] = p * r + F32(1.0)
        bits[i] = (I32(k) + I32(127)) << I32(23)
    scale = bits.view(np.float32)
    for i in range(x.shape[0]):
        out[i] *= scale[i]


@nb.njit(cache=True, fastmath=EXACT)
def decays(delta, A, b, d, x, a, bits):  # pragma: no cover - compiled by Numba
    """a[l * N + n] = exp(delta[b, d, l] * A[d, n]) for every position and state of (b, d)."""
    nl, nn = delta.shape[2], A.shape[1]
    for l in range(nl):
        dl = delta[b, d, l]
        for n in range(nn):
            x[l * nn + n] = dl * A[d, n]
    exp_into(x, a, bits)


# compile_loops is long on purpose: its two loop nests must be closures over `rows` (see its docstring),
# and each is one pass of the algorithm that reads best whole, as in the module docstring of hmrm.ssm.fused.
def compile_loops(parallel: bool):
    """``(forward, backward)`` compiled by Numba. With ``parallel`` the batch rows are shared
    among Numba's threads; without, one thread and no thread pool at all (what a process that
    trains with one thread wants: an idle pool's spinning threads would compete with other
    processes). ``rows`` is the loops' only closure variable, which keys Numba's on-disk cache,
    so the two versions are cached apart."""
    rows = nb.prange if parallel else range
    jit = nb.njit(parallel=parallel, cache=True, fastmath=EXACT)

    def forward_loops(delta, A, du, u, bt, ct, dd, z, gated, out):  # pragma: no cover - compiled by Numba
        nb_, nd, nl = delta.shape
        nn = A.shape[1]
        for b in rows(nb_):
            x, a = np.empty(nl * nn, F32), np.empty(nl * nn, F32)
            bits = np.empty(nl * nn, I32)
            h = np.empty(nn, F32)
            for d in range(nd):
                decays(delta, A, b, d, x, a, bits)
                h[:] = 0
                for l in range(nl):
                    v = du[b, d, l]
                    for n in range(nn):
                        h[n] = a[l * nn + n] * h[n] + v * bt[b, l, n]
                    y = h[0] * ct[b, l, 0]
                    for n in range(1, nn):
                        y += h[n] * ct[b, l, n]
                    y += dd[d] * u[b, d, l]
                    if gated:
                        zz = z[b, d, l]
                        y *= zz / (F32(1) + np.exp(-zz))
                    out[b, d, l] = y

    def backward_loops(delta, A, du, u, bt, ct, dd, z, gated, gout,  # pragma: no cover - compiled by Numba
                       g_u, g_delta, g_z, g_a_rows, g_d_rows, g_b, g_c):
        nb_, nd, nl = delta.shape
        nn = A.shape[1]
        for b in rows(nb_):
            x, a = np.empty(nl * nn, F32), np.empty(nl * nn, F32)
            bits = np.empty(nl * nn, I32)
            hs = np.zeros((nl + 1, nn), F32)              # hs[l + 1] = h[l]; hs[0] = 0
            ys = np.empty(nl, F32)                        # C . h[l] + D u[l], before the gate
            g = np.empty(nn, F32)
            for d in range(nd):
                decays(delta, A, b, d, x, a, bits)
                for l in range(nl):                       # recompute the states of (b, d)
                    v = du[b, d, l]
                    for n in range(nn):
                        hs[l + 1, n] = a[l * nn + n] * hs[l, n] + v * bt[b, l, n]
                    y = hs[l + 1, 0] * ct[b, l, 0]
                    for n in range(1, nn):
                        y += hs[l + 1, n] * ct[b, l, n]
                    ys[l] = y + dd[d] * u[b, d, l]
                g[:] = 0
                for l in range(nl - 1, -1, -1):           # the adjoint, from the end
                    go = gout[b, d, l]
                    if gated:
                        zz = z[b, d, l]
                        sig = F32(1) / (F32(1) + np.exp(-zz))
                        gy = go * zz * sig
                        g_z[b, d, l] = go * ys[l] * sig * (F32(1) + zz * (F32(1) - sig))
                    else:
                        gy = go
                    g_d_rows[b, d] += gy * u[b, d, l]
                    if l + 1 < nl:                        # g[l] = C[l] dy[l] + a[l + 1] g[l + 1]
                        for n in range(nn):
                            g[n] = ct[b, l, n] * gy + a[(l + 1) * nn + n] * g[n]
                    else:
                        for n in range(nn):
                            g[n] = ct[b, l, n] * gy
                    v, dl = du[b, d, l], delta[b, d, l]
                    for n in range(nn):
                        g_c[b, l, n] += gy * hs[l + 1, n]
                        g_b[b, l, n] += g[n] * v
                    sb = g[0] * bt[b, l, 0]
                    w = g[0] * hs[l, 0] * a[l * nn]           # dLoss / d(delta A) at (l, n)
                    sd = w * A[d, 0]
                    g_a_rows[b, d, 0] += w * dl
                    for n in range(1, nn):
                        sb += g[n] * bt[b, l, n]
                        w = g[n] * hs[l, n] * a[l * nn + n]
                        sd += w * A[d, n]
                        g_a_rows[b, d, n] += w * dl
                    g_u[b, d, l] = sb * dl + gy * dd[d]
                    g_delta[b, d, l] = sb * u[b, d, l] + sd

    return jit(forward_loops), jit(backward_loops)
