"""State-space models for HMRM: the selective scan and (bidirectional) Mamba blocks.

* :mod:`hmrm.ssm.scan` - ``selective_scan`` with a readable sequential loop, a fast pure-PyTorch
  parallel scan, compiled CPU loops (:mod:`hmrm.ssm.fused`, Numba), and mamba-ssm's fused CUDA
  kernel when it is installed;
* :mod:`hmrm.ssm.mamba` - the Mamba block and its bidirectional variant used by HMRM's encoder.
"""
from .fused import fused_scan
from .mamba import BiMamba, Mamba
from .scan import (BACKENDS, available_backends, linear_scan_, parallel_scan, resolve_backend, selective_scan,
    sequential_scan)

__all__ = [
    "BACKENDS", "BiMamba", "Mamba", "available_backends", "fused_scan", "linear_scan_", "parallel_scan",
    "resolve_backend", "selective_scan", "sequential_scan",
]
