"""The grained Mamba encoder: flow maps -> patch tokens at several grains -> (bi)directional Mamba.

HMRM reads the onset->apex optical flow of a face as a picture with three channels (u, v and
optical strain, see :mod:`hmrm.features`). The encoder cuts that picture into square patches at
two or more *grains* (patch sizes), embeds every patch as a token and mixes the tokens of each
grain with a stack of Mamba blocks::

    x (N, C, S, S)
      -> (stem="conv": a shared convolutional stem, S -> S / 4)
      -> for each patch size p:  conv(C -> d_model, kernel p, stride p)      patch embedding
                                 + learned positional embedding               (G x G tokens, G = S / p)
                                 -> depth x [ t + BiMamba(LayerNorm(t)) ]     pre-norm residual blocks
                                 -> LayerNorm
      -> {grain name: token grid (N, G, G, d_model)}

Tokens are read in raster order (row by row). A unidirectional Mamba would let a token see only
the patches above and to its left; :class:`hmrm.ssm.BiMamba` also scans the sequence backwards,
so every token sees the whole face (``bidirectional=False`` swaps in :class:`hmrm.ssm.Mamba`, the
ablation).

Our choices where the paper is silent (what it says: ``docs/paper.md``)
----------------------------------------------------------------------
* **Grains.** Fine tokens cover a small facial area (about an eyelid or a lip corner), coarse
  tokens cover whole regions. Defaults: input ``S = 112`` and patches ``(8, 16)``, giving
  14 x 14 = 196 fine and 7 x 7 = 49 coarse tokens.
* **Shared blocks.** One stack of Mamba blocks serves every grain (each grain is its own
  sequence, with its own patch and positional embeddings). A separate stack per grain
  (``share_blocks=False``) brings the network to 2.65 M parameters, beyond the 2 M budget
  we hold HMRM to; sharing also gives the small data sets twice the samples per block weight.
* **Width and depth** follow the paper: ``d_model = 192``, ``depth = 4``; the Mamba blocks use
  the Mamba defaults (state 16, expansion 2, convolution 4).
* **Patch embedding** (``stem``). The paper says only that the flow maps are "split into
  patches". ``stem="patch"`` (the default) embeds each patch by one linear map, as vision
  transformers do. ``stem="conv"`` first runs a small convolutional stem shared by every grain,
  two 3 x 3 convolutions with stride 2 and GELU (C -> d/4 -> d/2 channels, the map shrinks to a
  quarter of its side), then embeds patches of that map (side p / 4) linearly. Neighbouring
  pixels of a flow map are strongly correlated and a micro-expression moves a few of them a
  fraction of a pixel; a stem lets the network build local motion features (edges of a moving
  region, local deformation) before the tokens are cut. On small data sets this is known to
  make vision transformers train faster and more stably (Xiao et al. 2021, "Early convolutions
  help transformers see better"); which stem the course uses is decided by measurement on a
  development data set (:mod:`hmrm.demo`).

Why these defaults: a measurement
---------------------------------
``benchmarks/encoder_grains.py`` measures the whole default network (parameters, FLOPs per sample
with the convention of :mod:`hmrm.efficiency`, CPU forward latency at batch 1, one thread) for a
few input sizes and patch tuples. On the project's 2-core CPU (latency measured while another job
was running: read it as relative)::

    S    patches      tokens            params   MFLOPs   ms, batch 1
    96   (8, 16)      144 + 36          1.51 M     489       81
    112  (8, 16)      196 + 49          1.52 M     665      106
    112  (7, 14)      256 + 64          1.49 M     860      148
    112  (4, 8, 16)   784 + 196 + 49    1.68 M    2716      658
    128  (8, 16)      256 + 64          1.53 M     869      153
    224  (16, 32)     196 + 49          2.07 M     752      105

FLOPs and latency follow the number of tokens; the parameters follow the patch area (the patch
embedding holds ``C p^2 d_model`` weights). ``S = 112`` with patches 8 and 16 keeps HMRM well
inside 1 GFLOP and 2 M parameters while the fine grain still splits each eye and the mouth into
several tokens (on SynthME faces an eye-and-brow box is about 40 x 28 px at S = 112: some 5 x 4
fine tokens and 3 x 2 coarse ones). A third, finer grain (patch 4) quadruples the FLOPs; 224 px
with patches (16, 32) gives the same tokens with a 2.07 M-parameter network; 96 px saves a
quarter of the cost but leaves an eye about 4 x 3 fine tokens.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..ssm import BiMamba, Mamba


def grain_name(patch: int) -> str:
    """The name of the grain with patch size ``patch``: ``"p8"`` for 8 x 8 pixel patches."""
    return f"p{patch}"


class PatchEmbed(nn.Module):
    """Square patches of side ``patch`` -> tokens of width ``d_model``, plus a learned position.

    A convolution with kernel and stride ``patch`` is the same as flattening each patch and
    applying one linear map. Returns the token grid ``(N, G, G, d_model)`` with ``G = size / patch``.
    """

    def __init__(self, in_channels: int, d_model: int, size: int, patch: int) -> None:
        super().__init__()
        if patch < 1 or size % patch:
            raise ValueError(f"patch size {patch} must divide the input size {size} (got a remainder of {size % patch})")
        self.patch, self.grid = patch, size // patch
        self.proj = nn.Conv2d(in_channels, d_model, kernel_size=patch, stride=patch)
        self.pos = nn.Parameter(torch.zeros(1, self.grid, self.grid, d_model))
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the convolution written as what it is, one matrix product over flattened patches: the
        # same numbers as self.proj(x), about twice as fast forward and backward on a CPU
        n, c, p, g = x.shape[0], x.shape[1], self.patch, self.grid
        patches = x.reshape(n, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(n, g, g, c * p * p)
        return F.linear(patches, self.proj.weight.reshape(self.proj.out_channels, -1), self.proj.bias) + self.pos


STEMS = ("patch", "conv")
#: each stem in words, as the tables and recipes print it
STEM_NAMES = {"patch": "linear patch embedding", "conv": "convolutional stem"}


class ConvStem(nn.Module):
    """Two 3 x 3 convolutions with stride 2 and GELU: (N, C, S, S) -> (N, width, S / 4, S / 4),
    ``C -> width / 2 -> width`` channels. Shared by every grain (see the module docstring)."""

    #: how much the stem shrinks the side of the map
    STRIDE = 4

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(in_channels, width // 2, 3, stride=2, padding=1), nn.GELU(),
                                    nn.Conv2d(width // 2, width, 3, stride=2, padding=1), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MambaLayer(nn.Module):
    """One pre-norm residual block: ``t + mixer(LayerNorm(t))`` on (N, L, d_model)."""

    def __init__(self, d_model: int, bidirectional: bool = True, backend: str = "auto", **mamba_kwargs) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        if bidirectional:
            self.mixer = BiMamba(d_model, backend=backend, **mamba_kwargs)
        else:
            mamba_kwargs.pop("gate_kernel", None)  # the plain Mamba block has no convolutional gate
            self.mixer = Mamba(d_model, backend=backend, **mamba_kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mixer(self.norm(x))


class GrainedMambaEncoder(nn.Module):
    """Flow maps (N, in_channels, S, S) -> ``{grain name: token grid (N, G, G, d_model)}``.

    ``patch_sizes`` lists the grains, finest first by convention (each must divide
    ``input_size``); ``share_blocks`` uses one stack of ``depth`` Mamba layers for every grain;
    ``bidirectional`` chooses :class:`~hmrm.ssm.BiMamba` or :class:`~hmrm.ssm.Mamba`; ``backend``
    goes to the selective scan (``"auto"``, ``"parallel"``, ``"fused"``, ``"sequential"``,
    ``"mamba_ssm"``); ``stem`` is ``"patch"`` or ``"conv"`` (with ``"conv"`` every patch size
    must be a multiple of 4). See the module docstring for the defaults and why.
    """

    def __init__(self, in_channels: int = 3, input_size: int = 112, patch_sizes: Sequence[int] = (8, 16),
                 d_model: int = 192, depth: int = 4, bidirectional: bool = True, share_blocks: bool = True,
                 d_state: int = 16, d_conv: int = 4, expand: int = 2, gate_kernel: int = 3,
                 backend: str = "auto", stem: str = "patch") -> None:
        super().__init__()
        patch_sizes = tuple(int(p) for p in patch_sizes)
        if not patch_sizes:
            raise ValueError("patch_sizes must name at least one grain")
        if len(set(patch_sizes)) != len(patch_sizes):
            raise ValueError(f"patch_sizes must be distinct, got {patch_sizes}")
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        self.patch_sizes, self.input_size, self.d_model = patch_sizes, input_size, d_model
        self.names = tuple(grain_name(p) for p in patch_sizes)
        if stem == "conv":
            k = ConvStem.STRIDE
            if any(p % k for p in patch_sizes) or input_size % k:
                raise ValueError(f"stem='conv' shrinks the map {k} times: the input size ({input_size}) and every "
                                 f"patch size {patch_sizes} must be multiples of {k}")
            self.stem = ConvStem(in_channels, d_model // 2)
            self.embed = nn.ModuleDict({n: PatchEmbed(d_model // 2, d_model, input_size // k, p // k)
                                        for n, p in zip(self.names, patch_sizes)})
        else:
            self.stem = None
            self.embed = nn.ModuleDict({n: PatchEmbed(in_channels, d_model, input_size, p)
                                        for n, p in zip(self.names, patch_sizes)})
        kwargs = dict(bidirectional=bidirectional, backend=backend, d_state=d_state, d_conv=d_conv, expand=expand,
                      gate_kernel=gate_kernel)

        def stack() -> nn.ModuleList:
            return nn.ModuleList(MambaLayer(d_model, **kwargs) for _ in range(depth))

        self.share_blocks = share_blocks
        if share_blocks:
            self.blocks = stack()
        else:
            self.blocks = nn.ModuleDict({n: stack() for n in self.names})
        self.norm = nn.LayerNorm(d_model)

    @property
    def grids(self) -> dict[str, int]:
        """Side ``G`` of each grain's token grid."""
        return {n: self.embed[n].grid for n in self.names}

    def layers(self, name: str) -> nn.ModuleList:
        """The Mamba layers that encode grain ``name``."""
        return self.blocks if self.share_blocks else self.blocks[name]

    def set_backend(self, backend: str) -> None:
        """Switch the selective-scan backend of every block (e.g. "sequential" for teaching)."""
        for m in self.modules():
            if isinstance(m, (BiMamba, Mamba)):
                m.backend = backend

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            raise ValueError(f"expected flow maps (N, C, {self.input_size}, {self.input_size}), got {tuple(x.shape)}; "
                             "resize the flow to the model's input_size")
        out = {}
        if self.stem is not None:
            x = self.stem(x)                                             # (N, d / 2, S / 4, S / 4)
        for name in self.names:
            grid = self.embed[name](x)                                   # (N, G, G, d)
            n, g = grid.shape[0], grid.shape[1]
            tokens = grid.reshape(n, g * g, self.d_model)                # raster order
            for layer in self.layers(name):
                tokens = layer(tokens)
            out[name] = self.norm(tokens).reshape(n, g, g, self.d_model)
        return out
