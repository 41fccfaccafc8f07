"""The Mamba block and the bidirectional Mamba block of HMRM's encoder.

A Mamba block (Gu & Dao 2023) maps a sequence ``(batch, L, d_model)`` to a sequence of the same
shape::

    x, z = split(in_proj(input))                 # two branches of width d_inner = expand * d_model
    x    = silu(causal depthwise conv1d(x))      # short local mixing along the sequence
    delta, B, C = x_proj(x)                      # the *selective* parameters, one set per position
    delta = dt_proj(delta)                       # low rank (dt_rank) -> one step size per channel
    y    = selective_scan(x, delta, A, B, C, D, z, delta_bias, delta_softplus=True)
    out  = out_proj(y)                           # y already gated by silu(z) inside the scan

:class:`SelectiveSSM` is everything between ``in_proj`` and ``out_proj`` for one direction.
Initialisation follows the Mamba paper and its reference code (mamba_ssm/modules/mamba_simple.py):
``A_log = log(1..N)`` for every channel (so ``A = -exp(A_log) = -(1..N)``, "S4D-real"), ``D = 1``,
``dt_proj.weight ~ U(-s, s)`` with ``s = dt_rank**-0.5``, and ``dt_proj.bias`` the inverse softplus
of step sizes drawn log-uniformly in [dt_min, dt_max] = [0.001, 0.1] (floored at 1e-4), so that
``softplus(bias)`` starts in that range.

The bidirectional block
-----------------------
Image patches have no natural reading direction, so HMRM's encoder scans the patch sequence both
ways (as Vision Mamba does). :class:`BiMamba` shares ``in_proj`` and ``out_proj`` and keeps a
*separate* convolution, ``x_proj``, ``dt_proj``, ``A_log`` and ``D`` per direction. The backward
direction runs on the flipped sequence and its output is flipped back, so position ``t`` of the
backward branch summarises positions ``t..L-1``. The two outputs are averaged.

Convolutional gating (our choice): the HMRM paper describes a convolutional gate but does not
specify it exactly. Here the gate ``z`` first passes through its own depthwise convolution along
the sequence, centred (not causal, since the block sees both directions), kernel 3 by default,
initialised as the identity so that a new block gates exactly like Mamba's ``silu(z)``. The
convolved gate goes into the scan as its ``z`` argument, so both directions are gated by
``silu(conv(z))`` (fused into the kernel on the ``mamba_ssm`` backend)::

    out = out_proj( (y_fwd + flip(y_bwd on flipped x)) / 2 )   with both y gated by silu(conv(z))
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .scan import selective_scan


def inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """x such that softplus(x) = y, for y > 0: x = y + log(1 - exp(-y)) (stable via expm1)."""
    return y + torch.log(-torch.expm1(-y))


class SelectiveSSM(nn.Module):
    """One direction of a Mamba block: causal depthwise conv, SiLU, selective parameters, scan.

    ``forward(x, z, backend)`` takes ``x`` and the gate ``z`` as (batch, d_inner, L) and returns
    ``silu(z) * (scan + D x)`` of the same shape (no gating when ``z`` is None).
    """

    def __init__(self, d_inner: int, d_state: int = 16, d_conv: int = 4, dt_rank: int = 8,
                 dt_min: float = 0.001, dt_max: float = 0.1, dt_init_floor: float = 1e-4,
                 conv_bias: bool = True) -> None:
        super().__init__()
        self.d_state, self.dt_rank = d_state, dt_rank
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1, bias=conv_bias)
        self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, d_inner, bias=True)
        # step-size initialisation (values from the Mamba reference code, see the module docstring)
        bound = dt_rank ** -0.5
        nn.init.uniform_(self.dt_proj.weight, -bound, bound)
        log_dt = torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        with torch.no_grad():
            self.dt_proj.bias.copy_(inverse_softplus(log_dt.exp().clamp(min=dt_init_floor)))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None, backend: str = "auto") -> torch.Tensor:
        length = x.shape[-1]
        x = F.silu(self.conv1d(x)[..., :length])                                 # causal: drop the look-ahead
        dt, B, C = self.x_proj(x.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = torch.matmul(self.dt_proj.weight, dt.transpose(1, 2))             # (b, d_inner, L), bias in the scan
        return selective_scan(x, delta, -torch.exp(self.A_log), B.transpose(1, 2), C.transpose(1, 2),
                              self.D, z, delta_bias=self.dt_proj.bias, delta_softplus=True, backend=backend)


def _dt_rank(d_model: int, dt_rank: int | str) -> int:
    return math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)


class Mamba(nn.Module):
    """The (unidirectional) Mamba block: (batch, L, d_model) -> (batch, L, d_model).

    ``dt_rank="auto"`` is ceil(d_model / 16); ``backend`` goes to ``selective_scan`` (the attribute
    may be changed later); further keywords (dt_min, dt_max, dt_init_floor, conv_bias) go to
    :class:`SelectiveSSM`.
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_rank: int | str = "auto", bias: bool = False, backend: str = "auto",
                 **ssm_kwargs: float | bool) -> None:
        super().__init__()
        d_inner = expand * d_model
        self.backend = backend
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=bias)
        self.ssm = SelectiveSSM(d_inner, d_state, d_conv, _dt_rank(d_model, dt_rank), **ssm_kwargs)
        self.out_proj = nn.Linear(d_inner, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, z = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)                   # (b, d_inner, L) each
        return self.out_proj(self.ssm(x, z, self.backend).transpose(1, 2))


class BiMamba(nn.Module):
    """Bidirectional Mamba block with a convolutional gate: (batch, L, d_model) -> same shape.

    Separate SSM parameters per direction (``ssm_fwd``, ``ssm_bwd``), shared ``in_proj`` and
    ``out_proj``, gate ``silu(gate_conv(z))`` with an odd ``gate_kernel``; see the module
    docstring. Other arguments as for :class:`Mamba`.
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_rank: int | str = "auto", gate_kernel: int = 3, bias: bool = False,
                 backend: str = "auto", **ssm_kwargs: float | bool) -> None:
        super().__init__()
        if gate_kernel % 2 != 1:
            raise ValueError(f"gate_kernel must be odd (a centred convolution), got {gate_kernel}")
        d_inner = expand * d_model
        rank = _dt_rank(d_model, dt_rank)
        self.backend = backend
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=bias)
        self.ssm_fwd = SelectiveSSM(d_inner, d_state, d_conv, rank, **ssm_kwargs)
        self.ssm_bwd = SelectiveSSM(d_inner, d_state, d_conv, rank, **ssm_kwargs)
        self.gate_conv = nn.Conv1d(d_inner, d_inner, gate_kernel, groups=d_inner, padding=gate_kernel // 2)
        with torch.no_grad():  # identity: a new block gates like Mamba's silu(z)
            self.gate_conv.weight.zero_()
            self.gate_conv.weight[:, 0, gate_kernel // 2] = 1.0
            self.gate_conv.bias.zero_()
        self.out_proj = nn.Linear(d_inner, d_model, bias=bias)

    def branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The gated outputs of the forward and the backward direction, (batch, d_inner, L) each."""
        x, z = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)                   # (b, d_inner, L) each
        gate = self.gate_conv(z)
        y_fwd = self.ssm_fwd(x, gate, self.backend)
        y_bwd = self.ssm_bwd(x.flip(-1), gate.flip(-1), self.backend).flip(-1)
        return y_fwd, y_bwd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y_fwd, y_bwd = self.branches(x)
        return self.out_proj((0.5 * (y_fwd + y_bwd)).transpose(1, 2))
