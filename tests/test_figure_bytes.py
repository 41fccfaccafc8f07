"""A figure's bytes depend on what it shows, not on the last bits of the floats behind it."""
import numpy as np

from hmrm.viz.plots import plot_demo_training


def _rows(eps: float):
    rng = np.random.default_rng(0)
    return [{"label": name, "losses": [list(3 - np.linspace(0, 2, 12) + rng.normal(0, 0.05, 12) + eps) for _ in range(3)],
             "curve": list(np.linspace(0.2, 0.6, 12) + eps), "uf1": 0.6 + eps} for name in ("HMRM", "STSTNet")]


def test_demo_training_figure_ignores_last_bit_differences(tmp_path):
    plot_demo_training(_rows(0.0), tmp_path / "a.png")
    plot_demo_training(_rows(1e-7), tmp_path / "b.png")  # another machine's float rounding (last bits)
    plot_demo_training(_rows(0.01), tmp_path / "c.png")  # a real difference
    a, b, c = ((tmp_path / f"{x}.png").read_bytes() for x in "abc")
    assert a == b
    assert a != c
