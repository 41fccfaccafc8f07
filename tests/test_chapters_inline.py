"""Every chapter shows its figures to a student: executed as JupyterLab executes it (the inline backend,
no MPLBACKEND), no pyplot figure is still open after any cell (the inline backend shows and closes each
one; a figure still open was drawn but never shown), the backend is still inline at the end (library
code never switches it), and no cell but the flow explorer leaves a widget behind (a progress bar is
one, and a saved notebook shows it frozen at 0 %)."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))

WATCH = '''
import matplotlib.pyplot as _hmrm_plt
_hmrm_unshown = []

def _hmrm_check_figures(result):
    open_figures = _hmrm_plt.get_fignums()
    if open_figures:
        _hmrm_unshown.append({"cell": result.info.raw_cell.strip()[:80], "figures": len(open_figures)})
        _hmrm_plt.close("all")

get_ipython().events.register("post_run_cell", _hmrm_check_figures)
'''
REPORT = '''
import json as _hmrm_json, matplotlib as _hmrm_mpl
print("HMRM-FIGURES", _hmrm_json.dumps({"backend": _hmrm_mpl.get_backend(), "unshown": _hmrm_unshown}))
'''


def _images(cell) -> int:
    return sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_shows_every_figure_it_draws(path, monkeypatch, tmp_path):
    from nbclient import NotebookClient

    monkeypatch.delenv("MPLBACKEND", raising=False)  # what a student's kernel gets
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if "flow_explorer(" not in c.source]
    nb.cells.insert(1, nbformat.v4.new_code_cell(WATCH))  # after the parameters cell
    nb.cells.append(nbformat.v4.new_code_cell(REPORT))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    report = next(json.loads(line.split(" ", 1)[1]) for out in nb.cells[-1].outputs if out.get("name") == "stdout"
                  for line in out["text"].splitlines() if line.startswith("HMRM-FIGURES"))
    assert "inline" in report["backend"], f"{path.name}: the backend was switched to {report['backend']}"
    assert not report["unshown"], f"{path.name}: figures drawn but never shown: {report['unshown']}"
    widgets = [c.source.strip()[:60] for c in nb.cells
               if any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in c.get("outputs", []))]
    assert not widgets, f"{path.name}: widget outputs (progress bars?) that a saved notebook shows frozen: {widgets}"
    drawn = sum(_images(c) for c in nb.cells)
    source = path.with_suffix(".py").read_text()
    if "plt." in source or "show_" in source:
        assert drawn > 0, f"{path.name} draws figures but recorded none"
