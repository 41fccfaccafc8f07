"""hmrm.ssm.mamba: the Mamba block against mambapy, and both directions of the bidirectional block."""
from __future__ import annotations

import pytest
import torch

from hmrm.ssm import BiMamba, Mamba, available_backends
from hmrm.ssm.mamba import inverse_softplus
from hmrm.utils import pick_device

CPU_BACKENDS = ["sequential", "parallel"]
TOL = dict(rtol=6e-4, atol=2e-3)


def tokens(batch: int = 2, length: int = 12, d_model: int = 8, seed: int = 0, device: str = "cpu") -> torch.Tensor:
    return torch.randn(batch, length, d_model, generator=torch.Generator().manual_seed(seed)).to(device)


def test_initialisation():
    torch.manual_seed(0)
    block = Mamba(32, d_state=6, dt_min=0.002, dt_max=0.05)
    ssm = block.ssm
    torch.testing.assert_close(ssm.A_log.exp(), torch.arange(1.0, 7.0).expand(64, 6))
    torch.testing.assert_close(ssm.D, torch.ones(64))
    dt = torch.nn.functional.softplus(ssm.dt_proj.bias)
    assert dt.min() >= 0.002 * 0.999 and dt.max() <= 0.05 * 1.001 and dt.std() > 0
    assert ssm.dt_rank == 2 and ssm.dt_proj.weight.abs().max() <= 2 ** -0.5
    y = torch.linspace(1e-3, 5, 50)
    torch.testing.assert_close(torch.nn.functional.softplus(inverse_softplus(y)), y)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_mamba_matches_mambapy_block(backend):
    """Same weights in mambapy's MambaBlock (an independent implementation): same output."""
    from mambapy.mamba import MambaBlock, MambaConfig

    torch.manual_seed(0)
    ours = Mamba(16, d_state=4, backend=backend)
    theirs = MambaBlock(MambaConfig(d_model=16, n_layers=1, d_state=4, pscan=backend == "parallel"))
    theirs.load_state_dict({k.removeprefix("ssm."): v for k, v in ours.state_dict().items()})
    x = tokens(2, 21, 16)
    torch.testing.assert_close(ours(x), theirs(x), **TOL)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_block_shapes_and_causality(backend):
    block = Mamba(8, d_state=4, backend=backend)
    x = tokens()
    y = block(x)
    assert y.shape == x.shape
    x2 = x.clone()
    x2[:, 7] += 1.0
    y2 = block(x2)
    torch.testing.assert_close(y2[:, :7], y[:, :7])       # the unidirectional block is causal
    assert (y2[:, 7:] - y[:, 7:]).abs().max() > 1e-4


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_each_direction_sees_its_own_side(backend):
    """Perturb position p: the forward branch changes only at t >= p - 1 and the backward branch
    only at t <= p + 1 (the gate convolution reaches one neighbour), and each does change far
    from p on its own side. Fails if the backward scan is dropped or not reversed."""
    torch.manual_seed(1)
    block = BiMamba(8, d_state=4, backend=backend)
    with torch.no_grad():
        block.gate_conv.weight.normal_()                  # a gate that really mixes neighbours
    x = tokens(length=16)
    p = 8
    x2 = x.clone()
    x2[:, p] += 1.0
    with torch.no_grad():
        (f1, b1), (f2, b2) = block.branches(x), block.branches(x2)
    torch.testing.assert_close(f2[..., : p - 1], f1[..., : p - 1])
    torch.testing.assert_close(b2[..., p + 2:], b1[..., p + 2:])
    assert (f2[..., p + 2:] - f1[..., p + 2:]).abs().max() > 1e-4
    assert (b2[..., : p - 1] - b1[..., : p - 1]).abs().max() > 1e-4


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_backward_branch_is_the_forward_scan_of_the_reversed_sequence(backend):
    """With the forward direction's parameters copied into the backward direction (and the
    symmetric identity gate of a new block), the backward branch on x equals the flipped forward
    branch on flip(x); with its own parameters it does not."""
    torch.manual_seed(2)
    block = BiMamba(8, d_state=4, backend=backend)
    x = tokens(length=10)
    with torch.no_grad():
        _, own = block.branches(x)
        block.ssm_bwd.load_state_dict(block.ssm_fwd.state_dict())
        _, copied = block.branches(x)
        fwd_on_reversed, _ = block.branches(x.flip(1))
    torch.testing.assert_close(copied, fwd_on_reversed.flip(-1))
    assert (own - copied).abs().max() > 1e-4
    assert (copied - block.branches(x)[0].detach()).abs().max() > 1e-4  # reversal matters


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_both_branches_receive_gradients(backend):
    torch.manual_seed(3)
    block = BiMamba(8, d_state=4, backend=backend)
    block(tokens()).pow(2).mean().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 0, f"{name} received a zero gradient"
    names = {n.split(".")[0] for n, _ in block.named_parameters()}
    assert {"ssm_fwd", "ssm_bwd", "gate_conv", "in_proj", "out_proj"} <= names


def test_cpu_backends_agree_on_the_bidirectional_block():
    torch.manual_seed(4)
    block = BiMamba(8, d_state=4)
    x = tokens(length=30).requires_grad_()
    params = dict(block.named_parameters())
    results = {}
    for backend in CPU_BACKENDS:
        block.backend = backend
        y = block(x)
        grads = torch.autograd.grad(y.pow(2).sum(), [x, *params.values()])
        results[backend] = dict(zip(["output", "input", *params], [y.detach(), *grads]))
    for name, ref in results["sequential"].items():
        torch.testing.assert_close(results["parallel"][name], ref, **TOL, msg=lambda m: f"{name}: {m}")


def test_even_gate_kernel_is_rejected():
    with pytest.raises(ValueError, match="odd"):
        BiMamba(8, gate_kernel=4)


@pytest.mark.gpu
def test_kernel_backend_matches_parallel_on_the_bidirectional_block():
    if not torch.cuda.is_available() or not any(b.name == "mamba_ssm" and b.available for b in available_backends()):
        pytest.skip("needs CUDA and the mamba-ssm kernel")
    torch.manual_seed(5)
    block = BiMamba(64, backend="parallel").to(pick_device("cuda"))
    x = tokens(4, 49, 64, device="cuda")
    ref = block(x)
    block.backend = "mamba_ssm"
    torch.testing.assert_close(block(x), ref, **TOL)
