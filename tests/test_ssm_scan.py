"""hmrm.ssm.scan: the parallel scan against the readable loop, against mambapy, and the kernel."""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hmrm.ssm import scan
from hmrm.ssm.scan import BACKENDS, available_backends, linear_scan_, selective_scan
from hmrm.utils import pick_device

# the tolerance of mamba-ssm's own tests of selective_scan in fp32
TOL = dict(rtol=6e-4, atol=2e-3)
NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def make_inputs(batch: int, dim: int, length: int, n: int, seed: int = 0, dtype=torch.float32,
                device: str = "cpu") -> dict[str, torch.Tensor]:
    """Random inputs whose per-step log-decays delta*A span from -1e-3 (long memory) to about -100."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
    log_uniform = lambda lo, hi, *s: torch.exp(torch.empty(*s, dtype=dtype).uniform_(math.log(lo), math.log(hi), generator=g))  # noqa: E731
    t = {"u": r(batch, dim, length), "delta": log_uniform(1e-3, 5.0, batch, dim, length),
         "A": -log_uniform(0.5, 20.0, dim, n), "B": r(batch, n, length), "C": r(batch, n, length),
         "D": r(dim), "z": r(batch, dim, length), "delta_bias": 0.5 * r(dim)}
    return {k: v.to(device).requires_grad_() for k, v in t.items()}


def run(inputs: dict[str, torch.Tensor], backend: str, D: bool, z: bool, bias: bool, softplus: bool, seed: int = 1):
    """Output and gradients of every input that takes part (random upstream gradient)."""
    used = ["u", "delta", "A", "B", "C"] + ["D"] * D + ["z"] * z + ["delta_bias"] * bias
    out = selective_scan(inputs["u"], inputs["delta"], inputs["A"], inputs["B"], inputs["C"],
                         D=inputs["D"] if D else None, z=inputs["z"] if z else None,
                         delta_bias=inputs["delta_bias"] if bias else None, delta_softplus=softplus, backend=backend)
    up = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype).to(out.device)
    grads = torch.autograd.grad(out, [inputs[k] for k in used], up)
    return out, dict(zip(used, grads))


CASES = [  # (batch, D, L, N), D/z/delta_bias/softplus switches
    ((2, 3, 1, 4), (True, True, True, True)),
    ((2, 3, 2, 4), (False, False, False, False)),
    ((1, 5, 7, 3), (True, False, True, False)),
    ((2, 4, 37, 5), (False, True, False, True)),
    ((2, 4, 64, 4), (True, True, False, False)),
    ((1, 3, 1200, 4), (True, True, True, True)),
]


CASE_IDS = ["x".join(map(str, shape)) + "-" + "".join(n for n, on in zip(("D", "z", "bias", "softplus"), flags) if on)
            for shape, flags in CASES]


def _triton_here() -> str:
    """The device the Triton backend runs on in this test session ("" when it cannot run)."""
    from hmrm.ssm.triton_scan import interpreting, triton_status

    if not triton_status()[0]:
        return ""
    return "cuda" if torch.cuda.is_available() else ("cpu" if interpreting() else "")


@pytest.mark.parametrize("backend", ["parallel", "fused", "triton"])
@pytest.mark.parametrize("shape,flags", CASES, ids=CASE_IDS)
def test_backend_matches_sequential(shape, flags, backend):
    """The chunked parallel scan, the compiled CPU loops and the Triton kernels (through Triton's CPU
    interpreter without a GPU): output and every gradient as the readable loop's."""
    if backend == "triton" and not _triton_here():
        pytest.skip("Triton cannot run here (no GPU, and TRITON_INTERPRET was not set before Triton was imported)")
    inputs = make_inputs(*shape)
    ref, ref_grads = run(inputs, "sequential", *flags)
    if backend == "triton" and _triton_here() == "cuda":  # the compiled kernels, on the GPU
        inputs = {k: v.detach().to(pick_device("cuda")).requires_grad_() for k, v in inputs.items()}
    out, grads = run(inputs, backend, *flags)
    out, grads = out.cpu(), {k: v.cpu() for k, v in grads.items()}
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, **TOL)
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name], **TOL, msg=lambda m: f"grad of {name}: {m}")


def test_long_sequence_keeps_memory_and_strong_decay():
    """L = 2000 with channels that forget within a step and channels that remember ~1000 steps."""
    inputs = make_inputs(1, 2, 2000, 2, seed=3)
    with torch.no_grad():
        inputs["delta"][:, 0] = 3.0                      # delta*A in [-60, -1.5]: exp(-cumsum) overflows
        inputs["delta"][:, 1] = 1e-3                     # delta*A in [-0.02, -5e-4]: long memory
        inputs["u"][:, :, 1:] = 0.0                      # only an impulse at t = 0
    out, grads = run(inputs, "parallel", False, False, False, False)
    ref, ref_grads = run(inputs, "sequential", False, False, False, False)
    torch.testing.assert_close(out, ref, **TOL)
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name], **TOL)
    # the slow channel still carries the impulse at the end, the fast one has forgotten it
    assert out[0, 1, -1].abs() > 1e-6 and out[0, 0, -1].abs() == 0


@pytest.mark.parametrize("reverse", [False, True])
def test_linear_scan_every_length(reverse):
    """Chunks, carries and the tail: all lengths 1..40 against the plain recurrence."""
    g = torch.Generator().manual_seed(0)
    for length in range(1, 41):
        a, x = torch.rand(length, 3, generator=g), torch.randn(length, 3, generator=g)
        expect, h = torch.empty_like(x), torch.zeros(3)
        for i in (range(length - 1, -1, -1) if reverse else range(length)):
            h = a[i] * h + x[i]
            expect[i] = h
        torch.testing.assert_close(linear_scan_(x.clone(), a.clone(), reverse=reverse), expect, msg=f"L={length}")


def test_gradcheck_hand_written_backward():
    inputs = make_inputs(2, 3, 11, 2, seed=5, dtype=torch.float64)
    core = [inputs[k] for k in ("u", "delta", "A", "B", "C")]
    assert torch.autograd.gradcheck(scan.parallel_scan, core)
    full = lambda *t: selective_scan(*t[:5], D=t[5], z=t[6], delta_bias=t[7], delta_softplus=True, backend="parallel")  # noqa: E731
    assert torch.autograd.gradcheck(full, [inputs[k] for k in NAMES])


def mambapy_reference(t: dict[str, torch.Tensor]) -> torch.Tensor:
    """The same scan built on mambapy's independent Blelloch pscan (h_t = A_t h_{t-1} + X_t)."""
    from mambapy.pscan import pscan

    delta = F.softplus(t["delta"] + t["delta_bias"][:, None]).transpose(1, 2)           # (b, l, d)
    deltaA = torch.exp(delta.unsqueeze(-1) * t["A"])                                     # (b, l, d, n)
    deltaB_u = (delta * t["u"].transpose(1, 2)).unsqueeze(-1) * t["B"].transpose(1, 2).unsqueeze(2)
    hs = pscan(deltaA, deltaB_u)
    y = (hs @ t["C"].transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)          # (b, d, l)
    return (y + t["D"][:, None] * t["u"]) * F.silu(t["z"])


@pytest.mark.parametrize("length", [16, 45])
def test_parallel_matches_mambapy_pscan(length):
    inputs = make_inputs(2, 6, length, 4, seed=7)
    ref = mambapy_reference(inputs)
    out = selective_scan(*(inputs[k] for k in NAMES[:5]), D=inputs["D"], z=inputs["z"],
                         delta_bias=inputs["delta_bias"], delta_softplus=True, backend="parallel")
    torch.testing.assert_close(out, ref, **TOL)
    up = torch.randn_like(out)
    g_ref = torch.autograd.grad(ref, [inputs[k] for k in NAMES], up)
    g_out = torch.autograd.grad(out, [inputs[k] for k in NAMES], up)
    for name, a, b in zip(NAMES, g_out, g_ref):
        torch.testing.assert_close(a, b, **TOL, msg=lambda m: f"grad of {name}: {m}")


def test_low_precision_inputs_return_their_dtype():
    inputs = make_inputs(1, 4, 20, 3)
    args = [inputs[k].detach() for k in NAMES[:5]]
    out = selective_scan(*(a.bfloat16() for a in args), backend="parallel")
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), selective_scan(*args, backend="parallel"), rtol=5e-2, atol=5e-2)


def test_errors_are_clear():
    t = {k: v.detach() for k, v in make_inputs(2, 3, 5, 4).items()}
    core = [t[k] for k in NAMES[:5]]
    with pytest.raises(ValueError, match="unknown selective_scan backend"):
        selective_scan(*core, backend="cuda")
    with pytest.raises(ValueError, match="u must be"):
        selective_scan(t["u"][0], *core[1:])
    with pytest.raises(ValueError, match="A must be"):
        selective_scan(core[0], core[1], t["A"][:2], *core[3:])
    with pytest.raises(ValueError, match="B must have shape"):
        selective_scan(*core[:3], t["B"].transpose(1, 2), core[4])
    with pytest.raises(ValueError, match="delta_bias must have shape"):
        selective_scan(*core, delta_bias=torch.zeros(4))
    with pytest.raises(ValueError, match="z must have shape"):
        selective_scan(*core, z=t["z"][:, :, :3])
    if not any(b.name == "mamba_ssm" and b.available for b in available_backends()):
        with pytest.raises(RuntimeError, match="mamba_ssm"):
            selective_scan(*core, backend="mamba_ssm")


def test_auto_reports_its_choice_once(monkeypatch, capsys, caplog):
    """Once per process, to the "hmrm.ssm" logger at INFO: nothing on a student's screen by default."""
    caplog.set_level(logging.INFO, logger="hmrm.ssm")
    monkeypatch.setattr(scan, "_reported", set())
    t = {k: v.detach() for k, v in make_inputs(1, 2, 3, 2).items()}
    for _ in range(3):
        selective_scan(*(t[k] for k in NAMES[:5]))
    lines = [r.getMessage() for r in caplog.records if r.name == "hmrm.ssm"]
    assert len(lines) == 1 and "'fused'" in lines[0]   # float32 on the CPU: the compiled loops
    assert capsys.readouterr().err == ""


def test_auto_prefers_the_kernel_only_where_it_can_run(monkeypatch, caplog):
    """Dispatch logic with a stand-in kernel: CUDA float32 -> mamba_ssm; CPU float32 -> fused;
    float64 -> parallel."""
    caplog.set_level(logging.INFO, logger="hmrm.ssm")
    monkeypatch.setattr(scan, "_mamba_ssm_kernel", lambda: (lambda *a, **k: None, ""))
    monkeypatch.setattr(scan, "_reported", set())
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert scan.resolve_backend("auto", cuda) == "mamba_ssm"
    assert scan.resolve_backend("auto", cuda, torch.float64) == "parallel"
    assert scan.resolve_backend("auto", cpu) == "fused"
    assert scan.resolve_backend("auto", cpu, torch.float64) == "parallel"
    assert scan.resolve_backend("sequential", cuda) == "sequential"
    with pytest.raises(RuntimeError, match="needs CUDA"):
        scan.resolve_backend("mamba_ssm", cpu)
    with pytest.raises(RuntimeError, match="fused.*CPU"):
        scan.resolve_backend("fused", cuda)
    assert len([r for r in caplog.records if r.name == "hmrm.ssm"]) == 3   # one line per choice made


def test_auto_takes_triton_on_cuda_only_once_it_compiled_and_agreed(monkeypatch):
    """Without mamba-ssm, CUDA float32 -> triton if the kernels ran and agreed with the parallel scan
    on that device, else parallel; never on the CPU; explicit "triton" says why it cannot run."""
    from hmrm.ssm import triton_scan

    if not triton_scan.triton_status()[0]:
        pytest.skip("Triton is not importable here")
    monkeypatch.setattr(scan, "_mamba_ssm_kernel", lambda: (None, "mamba_ssm not importable"))
    monkeypatch.setattr(scan, "_reported", set())
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    monkeypatch.setattr(scan, "_triton_checked", lambda device: (True, ""))
    assert scan.resolve_backend("auto", cuda) == "triton"
    assert scan.resolve_backend("auto", cuda, torch.float64) == "parallel"
    assert scan.resolve_backend("auto", cpu) == "fused"                 # the interpreter is for checking only
    monkeypatch.setattr(scan, "_triton_checked", lambda device: (False, "they disagree"))
    assert scan.resolve_backend("auto", cuda) == "parallel"
    with pytest.raises(RuntimeError, match="float32 only"):
        scan.resolve_backend("triton", cpu, torch.float64)
    monkeypatch.setattr(triton_scan, "interpreting", lambda: False)
    with pytest.raises(RuntimeError, match="Triton compiles for GPUs.*TRITON_INTERPRET"):
        scan.resolve_backend("triton", cpu)
    info = {b.name: b for b in available_backends()}["triton"]
    assert info.available == torch.cuda.is_available()


def test_triton_self_check_runs_the_kernels():
    """The check ``auto`` runs before it trusts the kernels on a device passes where they work."""
    if not _triton_here():
        pytest.skip("Triton cannot run here")
    scan._triton_checked.cache_clear()
    assert scan._triton_checked(_triton_here()) == (True, "")


@pytest.mark.gpu
def test_triton_on_cuda_matches_sequential():
    if not torch.cuda.is_available() or _triton_here() != "cuda":
        pytest.skip("needs CUDA and Triton")
    for shape, flags in CASES:
        test_backend_matches_sequential(shape, flags, "triton")


def test_fused_against_float64_reference():
    """Tighter than the fp32 tolerance: the float32 loops against the float64 parallel scan,
    at the demo's shapes (state 16, sequences of 64 and 16 tokens)."""
    for length in (64, 16):
        inputs = make_inputs(4, 6, length, 16, seed=5)
        wide = {k: v.detach().double().requires_grad_() for k, v in inputs.items()}
        outs = []
        for t, backend in ((inputs, "fused"), (wide, "parallel")):
            out = selective_scan(*(t[k] for k in NAMES[:5]), D=t["D"], z=t["z"], delta_bias=t["delta_bias"],
                                 delta_softplus=True, backend=backend)
            up = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out.dtype)
            outs.append((out, torch.autograd.grad(out, [t[k] for k in NAMES], up)))
        (out, grads), (ref, ref_grads) = outs
        torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-5)
        for name, g, r in zip(NAMES, grads, ref_grads):
            torch.testing.assert_close(g.double(), r, rtol=1e-3, atol=1e-4, msg=lambda m: f"grad of {name}: {m}")


def test_fused_exponential_is_accurate():
    """The vectorisable exp of the fused loops, over every decay a scan meets."""
    from hmrm.ssm.fused_loops import exp_into

    x = np.linspace(-87.0, 0.0, 200_001, dtype=np.float32)
    out, bits = np.empty_like(x), np.empty(x.shape, np.int32)
    exp_into(x, out, bits)
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(out - exact) / exact) < 2e-7          # about one unit in the last place
    far = np.array([-500.0, -88.0], dtype=np.float32)
    out2, bits2 = np.empty_like(far), np.empty(far.shape, np.int32)
    exp_into(far, out2, bits2)
    assert np.all(out2 < 2e-38) and np.all(out2 >= 0)           # clamped: a full decay, never garbage


def test_fused_is_the_same_bits_on_one_or_two_threads():
    inputs = {k: v.detach() for k, v in make_inputs(8, 6, 64, 16, seed=2).items()}
    results = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            x = {k: v.clone().requires_grad_() for k, v in inputs.items()}
            results.append(run(x, "fused", True, True, True, True))
    finally:
        torch.set_num_threads(before)
    (o1, g1), (o2, g2) = results
    assert torch.equal(o1, o2) and all(torch.equal(g1[k], g2[k]) for k in g1)


def test_fused_refuses_what_it_cannot_run():
    from hmrm.ssm import fused_scan

    t = {k: v.detach() for k, v in make_inputs(1, 2, 3, 2).items()}
    with pytest.raises(ValueError, match="float32 CPU"):
        fused_scan(*(t[k].double() for k in NAMES[:5]))


def test_available_backends():
    info = {b.name: b for b in available_backends()}
    assert tuple(info) == BACKENDS
    assert info["sequential"].available and info["parallel"].available and info["fused"].available
    if not torch.cuda.is_available():
        assert not info["mamba_ssm"].available and info["mamba_ssm"].detail


@pytest.mark.gpu
def test_mamba_ssm_kernel_matches_parallel():
    if not torch.cuda.is_available() or not any(b.name == "mamba_ssm" and b.available for b in available_backends()):
        pytest.skip("needs CUDA and the mamba-ssm kernel")
    # gradient tolerances as in mamba-ssm's tests/ops/test_selective_scan.py: looser for delta
    # (it sits in an exponential) and for the weights summed over batch and length (A, delta_bias)
    grad_tol = {"delta": dict(rtol=5 * 6e-4, atol=10 * 2e-3), "A": dict(rtol=1e-3, atol=5 * 2e-3),
                "delta_bias": dict(rtol=1e-3, atol=5 * 2e-3)}
    for shape in [(2, 8, 1, 4), (2, 16, 196, 16), (1, 8, 1000, 8)]:
        inputs = make_inputs(*shape, device="cuda")
        ref, ref_grads = run(inputs, "parallel", True, True, True, True)
        out, grads = run(inputs, "mamba_ssm", True, True, True, True)
        torch.testing.assert_close(out, ref, **TOL)
        for name in ref_grads:
            torch.testing.assert_close(grads[name], ref_grads[name], **grad_tol.get(name, TOL),
                                       msg=lambda m: f"grad of {name}: {m}")


@pytest.mark.gpu
def test_parallel_on_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    cpu = make_inputs(2, 8, 50, 4)
    gpu = make_inputs(2, 8, 50, 4, device="cuda")
    out_c, g_c = run(cpu, "parallel", True, True, True, True)
    out_g, g_g = run(gpu, "parallel", True, True, True, True)
    torch.testing.assert_close(out_g.cpu(), out_c, **TOL)
    for name in g_c:
        torch.testing.assert_close(g_g[name].cpu(), g_c[name], **TOL)


def test_parallel_scan_under_vmap_matches_one_network_at_a_time():
    """Stacked networks (torch.func.vmap over a leading axis of every input, A included, as stacked
    folds do): the same outputs and gradients as a loop over the stack, with no slow fallback."""
    import warnings

    from torch.func import grad, vmap

    stack = [make_inputs(2, 4, 13, 3, seed=s) for s in range(3)]  # 13: not a multiple of the chunk
    names = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
    stacked = {k: torch.stack([s[k].detach() for s in stack]) for k in names}
    w = torch.randn(2, 4, 13, generator=torch.Generator().manual_seed(5))

    def loss(u, delta, A, B, C, D, z, delta_bias):
        y = selective_scan(u, delta, A, B, C, D, z, delta_bias=delta_bias, delta_softplus=True, backend="parallel")
        return (y * w).sum()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "There is a performance drop ..." would fail here
        grads = vmap(grad(loss, argnums=tuple(range(8))))(*(stacked[k] for k in names))
    for i, s in enumerate(stack):
        inputs = {k: s[k].detach().clone().requires_grad_() for k in names}
        loss(*(inputs[k] for k in names)).backward()
        for j, k in enumerate(names):
            torch.testing.assert_close(grads[j][i], inputs[k].grad, rtol=1e-5, atol=1e-5, msg=lambda m: f"{k}: {m}")
