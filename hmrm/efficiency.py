"""Efficiency of HMRM, its ablations and the baselines: parameters, FLOPs per sample, CPU latency.

Conventions (stated in every table this module writes)
------------------------------------------------------
* **Parameters**: trainable parameters of the recognition network. Optical flow (GRU-AOFE) is
  not included: it runs once per sample before the network, as in the paper's accounting.
* **FLOPs** per sample, forward pass only (inference), with one multiply-add = 2 FLOPs:

  - dense operations (linear layers, convolutions, matrix products, attention) are counted by
    ``torch.utils.flop_counter.FlopCounterMode``;
  - each selective scan is counted explicitly as ``9 B L D N`` (per direction of a Mamba block;
    batch ``B``, length ``L``, channels ``D``, state ``N``: discretisation, input, state update
    and read-out), plus ``B L D`` for the skip term ``D u`` and ``B L D`` for the gate. This is
    the convention of the FLOP counters published with vision Mamba models (e.g. VMamba's
    ``flops_selective_scan_ref``). The scan's own matrix product (the read-out, which the
    PyTorch backends compute with ``matmul`` and the counter would see as ``2 B L D N``) is
    *not* counted again: while counting, the scan is replaced by a stub that records its FLOPs
    and returns a tensor of the right shape (FLOPs depend on shapes only);
  - element-wise operations (normalisation, activations, softmax, softplus, pooling, resizing)
    are not counted, by either part.
* **Latency**: wall-clock time of one forward pass in ``torch.inference_mode`` on the CPU, the
  median of ``repeats`` runs after ``warmup`` runs (the models take turns, run by run), with the
  number of threads in the header.
  It depends on the machine and on whatever else runs on it; compare rows of one table only.

``hmrm efficiency`` (see ``hmrm efficiency --help``) prints the table, and writes it where ``--out``
says; ``make figures`` writes the committed ``figures/efficiency.md``.
"""
from __future__ import annotations

import contextlib
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from .demo import DEMO_INPUT_SIZE, DEMO_RECIPES
from .markdown import markdown_table
from .model import ABLATIONS, build_model
from .model.encoder import STEM_NAMES
from .model.hmrm import count_parameters
from .resultfiles import write_results
from .ssm import mamba
from .train.loso import build_fold_model, recipe_config

SCAN_FLOPS_PER_ELEMENT = 9
DEFAULT_BATCHES = (1, 32)


def scan_flops(batch: int, channels: int, length: int, state: int, skip: bool = True, gate: bool = True) -> int:
    """FLOPs of one selective scan: ``9 B L D N`` (+ ``B L D`` for the skip term, + ``B L D`` for the gate)."""
    bld = batch * length * channels
    return SCAN_FLOPS_PER_ELEMENT * bld * state + bld * int(skip) + bld * int(gate)


@contextlib.contextmanager
def scans_counted(record: list[int]) -> Iterator[None]:
    """Within the block, the Mamba blocks' selective scans append their FLOPs to ``record`` and
    return zeros of the right shape instead of computing (for FLOP counting only)."""
    def stub(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, backend="auto"):
        batch, channels, length = u.shape
        record.append(scan_flops(batch, channels, length, A.shape[1], D is not None, z is not None))
        return torch.zeros_like(u)

    original = mamba.selective_scan
    mamba.selective_scan = stub
    try:
        yield
    finally:
        mamba.selective_scan = original


def count_flops(model: nn.Module, x: torch.Tensor, boxes: torch.Tensor | None = None) -> dict[str, float]:
    """Forward FLOPs **per sample** of ``model(x, boxes)``: ``{"dense", "scan", "total"}``.

    See the module docstring for the convention. ``x`` may hold one sample or several; the counts
    are divided by the batch size.
    """
    from torch.utils.flop_counter import FlopCounterMode

    record: list[int] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), scans_counted(record), FlopCounterMode(display=False) as counter:
            model(x, boxes)
    finally:
        model.train(was_training)
    n = x.shape[0]
    dense, scan = counter.get_total_flops() / n, sum(record) / n
    return {"dense": dense, "scan": scan, "total": dense + scan}


def measure_latency(model: nn.Module, x: torch.Tensor, boxes: torch.Tensor | None = None, repeats: int = 5,
                    warmup: int = 2) -> float:
    """Median wall-clock milliseconds of ``model(x, boxes)`` in inference mode (after ``warmup`` runs)."""
    was_training = model.training
    model.eval()
    times = []
    try:
        with torch.inference_mode():
            for i in range(warmup + max(1, repeats)):
                start = time.perf_counter()
                model(x, boxes)
                if i >= warmup:
                    times.append(1e3 * (time.perf_counter() - start))
    finally:
        model.train(was_training)
    return statistics.median(times)


def example_inputs(batch: int, input_size: int, in_channels: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flow maps (batch, in_channels, S, S) and plausible region boxes (batch, 4, 4) at size S.

    The boxes are fixed fractions of an aligned face (right eye, left eye, nose, mouth, in image
    coordinates), so that every model pools the same number of tokens as on real faces.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, in_channels, input_size, input_size, generator=g)
    fractions = torch.tensor([[0.18, 0.22, 0.46, 0.44], [0.54, 0.22, 0.82, 0.44],
                              [0.38, 0.40, 0.62, 0.66], [0.30, 0.66, 0.70, 0.86]])
    boxes = (fractions * input_size).round().long().expand(batch, -1, -1).clone()
    return x, boxes


@dataclass
class EfficiencyRow:
    """One line of the table. ``latency_ms``: batch size -> median ms per forward pass."""

    name: str
    params: int
    flops: float
    scan_flops: float
    latency_ms: dict[int, float] = field(default_factory=dict)
    note: str = ""
    input_size: int | None = None   # the side of the model's input, when it is not the table's


DEMO_NETWORK = "hmrm (demo)"


def demo_network():
    """The small HMRM that ``make demo`` trains and scores, built as a demo fold builds it: the demo's
    recipe (:data:`hmrm.demo.DEMO_RECIPES`: convolutional stem, width 48, depth 1) at the demo's input
    size, three classes and three input channels."""
    return build_fold_model(recipe_config("hmrm", DEMO_RECIPES["hmrm"], "gt", DEMO_INPUT_SIZE), 3, 3)


def demo_network_description() -> str:
    """The demo network's options in words (``convolutional stem, width 48, depth 1``)."""
    r = DEMO_RECIPES["hmrm"]
    return f"{STEM_NAMES[r.get('stem', 'patch')]}, width {r['d_model']}, depth {r['depth']}"


def default_models(input_size: int | None = None, demo: bool = True) -> dict[str, Callable[[], nn.Module]]:
    """Builders of HMRM (``hmrm``, the paper's size), each ablation (``hmrm/<name>``), the network the
    demo trains (:data:`DEMO_NETWORK`, at its own input size; ``demo=False`` leaves it out) and each
    baseline, by name."""
    extra = {} if input_size is None else {"input_size": input_size}
    models: dict[str, Callable[[], nn.Module]] = {}
    for ablation, overrides in ABLATIONS.items():
        name = "hmrm" if ablation == "full" else f"hmrm/{ablation}"
        models[name] = lambda o=overrides: build_model("hmrm", **o, **extra)
    if demo:
        models[DEMO_NETWORK] = demo_network
    models["ststnet"] = lambda: build_model("ststnet")
    return models


def _network_key(model: nn.Module) -> str | None:
    """A key equal for two HMRM models of the same configuration (an ablation may build the full network)."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "replace"):
        return None
    return repr(config)


def efficiency_rows(models: dict[str, Callable[[], nn.Module]] | None = None, input_size: int = 112,
                    batches: Sequence[int] = DEFAULT_BATCHES, repeats: int = 5, warmup: int = 2,
                    progress: Callable[[str], None] | None = None) -> list[EfficiencyRow]:
    """Measure every model (default: :func:`default_models`) on ``input_size`` inputs.

    Latency: for each batch size every model runs ``warmup`` times, then the models take turns,
    one timed run each per round for ``repeats`` rounds, so that load from other processes
    affects them alike; the median per model is kept. Networks identical to one already measured
    (``hmrm/no_motionmix``, which differs from ``hmrm`` only in its training data) reuse its
    numbers and say so. ``batches`` may be empty (no latency).
    """
    models = models if models is not None else default_models(input_size)
    rows: list[EfficiencyRow] = []
    measured: dict[str, tuple[nn.Module, int]] = {}        # row name -> (model, input size)
    seen: dict[str, EfficiencyRow] = {}
    torch.manual_seed(0)
    for name, build in models.items():
        model = build().eval()
        size = getattr(getattr(model, "config", None), "input_size", input_size)
        key = _network_key(model)
        if key is not None and key in seen:
            first = seen[key]
            rows.append(EfficiencyRow(name, first.params, first.flops, first.scan_flops, first.latency_ms,
                                      f"same network as {first.name} (MotionMix changes the training data only)",
                                      first.input_size))
            continue
        flops = count_flops(model, *example_inputs(1, size))
        row = EfficiencyRow(name, count_parameters(model), flops["total"], flops["scan"],
                            input_size=size if size != input_size else None)
        rows.append(row)
        measured[name] = (model, size)
        if key is not None:
            seen[key] = row
    by_name = {r.name: r for r in rows}
    for b in batches:
        inputs = {name: example_inputs(b, size) for name, (_, size) in measured.items()}
        times: dict[str, list[float]] = {name: [] for name in measured}
        with torch.inference_mode():
            for name, (model, _) in measured.items():
                for _ in range(warmup):
                    model(*inputs[name])
            for _ in range(max(1, repeats)):
                for name, (model, _) in measured.items():
                    start = time.perf_counter()
                    model(*inputs[name])
                    times[name].append(1e3 * (time.perf_counter() - start))
        for name, t in times.items():
            by_name[name].latency_ms[b] = statistics.median(t)   # shared with rows that reuse it
    if progress is not None:
        for r in rows:
            progress(f"{r.name}: {r.params:,} parameters, {r.flops / 1e6:.1f} MFLOPs"
                     + "".join(f", batch {b} {ms:.1f} ms" for b, ms in r.latency_ms.items()))
    return rows


def _machine() -> str:
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return name


def efficiency_markdown(rows: Iterable[EfficiencyRow], input_size: int = 112, repeats: int = 5, warmup: int = 2,
                        threads: int | None = None, command: str | None = None) -> str:
    """The markdown table (with its conventions) for ``rows``."""
    rows = list(rows)
    threads = torch.get_num_threads() if threads is None else threads
    batches = sorted({b for r in rows for b in r.latency_ms})
    head = ["model", "parameters", "MFLOPs / sample", "of which scan"]
    head += [f"CPU ms, batch {b}" + (" (per sample)" if b > 1 else "") for b in batches]
    lines = [
        "# Efficiency of HMRM, its ablations and the baselines",
        "",
        f"Input: flow maps 3 x S x S (S = {input_size} unless the input column says otherwise) and 4 region boxes. "
        f"`{DEMO_NETWORK}` is the small HMRM that `make demo` trains and scores ({demo_network_description()}); "
        "`hmrm` and its ablations are the paper's size (width 192, depth 4). Parameters: trainable, recognition "
        "network only (optical flow not included). FLOPs: forward pass per sample, one multiply-add = 2 FLOPs; "
        "dense operations counted by `torch.utils.flop_counter.FlopCounterMode`, each selective scan counted "
        f"explicitly as {SCAN_FLOPS_PER_ELEMENT}·B·L·D·N per direction (+ B·L·D skip, + B·L·D gate) and not "
        "counted twice; element-wise operations not counted (see `hmrm/efficiency.py`).",
        "",
        f"Latency: CPU forward pass in inference mode, median of {repeats} runs after {warmup} warm-up runs "
        "(the models take turns, run by run), "
        f"{threads} thread(s), torch {torch.__version__}, {_machine()}. Compare rows of this table only.",
        "",
    ]
    head.insert(1, "input")
    notes, table = [], []
    for r in rows:
        cells = [f"`{r.name}`", f"{r.input_size} px" if r.input_size else f"{input_size} px", f"{r.params:,}",
                 f"{r.flops / 1e6:,.1f}", f"{r.scan_flops / 1e6:,.1f}"]
        for b in batches:
            ms = r.latency_ms.get(b)
            cells.append("" if ms is None else (f"{ms:,.1f}" if b == 1 else f"{ms:,.0f} ({ms / b:,.1f})"))
        if r.note:
            cells[0] += "*"
            notes.append(f"\\* `{r.name}`: {r.note}.")
        table.append(cells)
    lines.append(markdown_table(head, table, "ll" + "r" * (len(head) - 2)))
    if notes:
        lines += [""] + notes
    if command:
        lines += ["", f"Written by `{command}`."]
    return "\n".join(lines) + "\n"


def write_efficiency(path: str | Path | None, input_size: int = 112, batches: Sequence[int] = DEFAULT_BATCHES,
                     repeats: int = 5, warmup: int = 2, models: dict[str, Callable[[], nn.Module]] | None = None,
                     command: str | None = None, progress: Callable[[str], None] | None = None) -> str:
    """Measure (:func:`efficiency_rows`) and write the markdown table to ``path`` atomically, with its
    JSON twin (:func:`hmrm.resultfiles.write_results`); return it. ``path`` None: only return it."""
    rows = efficiency_rows(models, input_size, batches, repeats, warmup, progress)
    text = efficiency_markdown(rows, input_size, repeats, warmup, command=command)
    if path is not None:
        write_results(path, text)
    return text
