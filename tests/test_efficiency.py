"""hmrm.efficiency: FLOP convention (scan counted once), the table, the CLI."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from hmrm.cli import main
from hmrm.efficiency import (
    count_flops,
    efficiency_markdown,
    efficiency_rows,
    example_inputs,
    measure_latency,
    scan_flops,
    write_efficiency,
)
from hmrm.model import HMRM, STSTNet, build_model, count_parameters

TINY = dict(input_size=32, patch_sizes=(4, 8), d_model=16, depth=2, n_heads=2, backend="parallel")


def test_scan_flops_convention():
    assert scan_flops(2, 8, 10, 4) == 9 * 2 * 10 * 8 * 4 + 2 * (2 * 10 * 8)
    assert scan_flops(1, 8, 10, 4, skip=False, gate=False) == 9 * 10 * 8 * 4


@pytest.mark.parametrize("bidirectional", [True, False])
def test_the_scan_is_counted_once(bidirectional):
    """Plain FlopCounterMode sees the scan's read-out matmul (2 B L D N); count_flops replaces it
    by the explicit 9 B L D N (+ skip and gate) and counts nothing of the scan twice."""
    model = HMRM(**TINY, bidirectional=bidirectional).eval()
    x, boxes = example_inputs(2, 32)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, boxes)
    flops = count_flops(model, x, boxes)
    d_inner, n, directions = 2 * 16, 16, 2 if bidirectional else 1
    scans = [(2, d_inner, length) for length in (64, 16) for _ in range(2 * directions)]  # depth 2
    readout = sum(2 * b * length * d * n for b, d, length in scans)
    assert counter.get_total_flops() / 2 == flops["dense"] + readout / 2
    assert flops["scan"] == sum(scan_flops(b, d, length, n) for b, d, length in scans) / 2
    assert flops["total"] == flops["dense"] + flops["scan"]
    # per sample: the same for a batch of one
    assert count_flops(model, *example_inputs(1, 32)) == flops


def test_dense_flops_of_the_baseline_by_hand():
    model = STSTNet()
    flops = count_flops(model, *example_inputs(1, 28))
    conv = 2 * 28 * 28 * (3 + 5 + 8) * 3 * 9                    # multiply-adds of the three streams
    assert flops == {"dense": conv + 2 * 400 * 3, "scan": 0.0, "total": conv + 2 * 400 * 3}


def test_latency_is_a_positive_median():
    model = STSTNet()
    assert measure_latency(model, *example_inputs(2, 28), repeats=3, warmup=1) > 0
    assert model.training  # the mode is restored


def test_table_for_a_tiny_config(tmp_path):
    models = {"tiny": lambda: HMRM(**TINY), "tiny/no_motionmix": lambda: build_model("hmrm", ablation="no_motionmix", **TINY),
              "tiny/unidirectional": lambda: HMRM(**TINY, bidirectional=False), "ststnet": STSTNet}
    rows = efficiency_rows(models, input_size=32, batches=(1, 4), repeats=1, warmup=0)
    assert [r.name for r in rows] == list(models)
    tiny = rows[0]
    assert tiny.params == count_parameters(HMRM(**TINY)) and tiny.flops > tiny.scan_flops > 0
    assert set(tiny.latency_ms) == {1, 4} and all(ms > 0 for ms in tiny.latency_ms.values())
    assert rows[1].params == tiny.params and rows[1].flops == tiny.flops and "same network as tiny" in rows[1].note
    assert rows[2].params < tiny.params and rows[2].scan_flops == tiny.scan_flops / 2
    assert rows[3].scan_flops == 0 and rows[3].params == 1651
    text = efficiency_markdown(rows, input_size=32, repeats=1, warmup=0, threads=1, command="hmrm efficiency --test")
    for needle in ("| model | input | parameters | MFLOPs / sample | of which scan | CPU ms, batch 1 | "
                   "CPU ms, batch 4 (per sample) |", "`tiny` | 32 px |", "`tiny/no_motionmix`*", "`ststnet` | 32 px | 1,651 |",
                   "multiply-add = 2 FLOPs", "9·B·L·D·N", "1 thread(s)", "3 x S x S (S = 32", "Written by `hmrm efficiency --test`."):
        assert needle in text, needle
    assert len([line for line in text.splitlines() if line.startswith("| `")]) == 4
    out = tmp_path / "sub" / "eff.md"
    written = write_efficiency(out, input_size=32, batches=(), repeats=1, warmup=0, models={"tiny": models["tiny"]})
    assert out.read_text() == written and "CPU ms" not in written and "`tiny`" in written
    assert sorted(p.name for p in out.parent.iterdir()) == ["eff.json", "eff.md"]  # its twin, no temporary file
    from hmrm.resultfiles import read_results

    assert read_results(out).tables[0].value("`tiny`", "parameters") == tiny.params


def test_cli_writes_the_table(tmp_path, capsys):
    out = tmp_path / "efficiency.md"
    assert main(["efficiency", "--out", str(out), "--batch", "1", "--repeats", "1", "--warmup", "0",
                 "--input-size", "32", "--quiet"]) == 0
    text = out.read_text()
    for name in ("`hmrm`", "`hmrm/no_motionmix`*", "`hmrm/single_grain`", "`hmrm/unidirectional`", "`hmrm/no_rffs`",
                 "`hmrm/plain_ce`", "`hmrm (demo)` | 64 px", "`ststnet`"):
        assert name in text, name
    assert "--input-size 32" in text and f"written to {out}" in capsys.readouterr().out


def test_cli_help_explains_the_options():
    out = subprocess.run([sys.executable, "-m", "hmrm.cli", "efficiency", "--help"], capture_output=True, text=True).stdout
    for opt in ("--out", "--batch", "--repeats", "--warmup", "--input-size", "--threads", "figures/efficiency.md",
                "9*B*L*D*N", "FLOPs", "latency"):
        assert opt in out, opt
