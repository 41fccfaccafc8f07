"""What pytest adds to every run in this repository: ``import hmrm`` before anything else (so NumPy,
OpenCV and torch load with the SIMD kernels the command line holds them to), and, when nbval validates
the chapters, a check that each chapter shows a student every figure it draws, in the same kernel and
the same execution (so the chapters run once, not twice).

nbval runs a chapter's cells one by one in a kernel started here without ``MPLBACKEND`` (what a
student's JupyterLab kernel gets: the inline backend, which shows and closes each figure at the end
of its cell). Two checks are added to every chapter's cells:

- ``figures: watch`` (before the first cell) registers a hook that notes any pyplot figure still
  open after a cell: a figure drawn but never shown;
- ``figures: report`` (after the last cell) fails if any was, if the backend is no longer inline
  (library code never switches it), if a cell other than the flow explorer left a widget in its
  output (a progress bar is one, and a saved notebook shows it frozen at 0 %), or if a chapter whose
  source plots recorded no image at all.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

# Before NumPy, OpenCV or torch load (tests/conftest.py imports them): `import hmrm` holds their SIMD
# kernels as the command line does, so that this process, its workers and its subprocesses compute
# the same last bits. Loaded earlier by a plugin, one of them would keep its native kernels here only.
_early = [name for name in ("numpy", "torch", "cv2") if name in sys.modules]
import hmrm  # noqa: E402,F401

if _early and hmrm.SIMD_HELD:
    raise pytest.UsageError(f"{', '.join(_early)} loaded before hmrm could hold its SIMD kernels; run pytest "
                            "with HMRM_NATIVE_SIMD=1 or without the plugin that imports it")

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
WIDGET = "application/vnd.jupyter.widget-view+json"


def _execute(kernel, code: str, timeout: float = 120) -> str:
    """Run ``code`` in nbval's kernel for this notebook; return its stdout, raise on an error."""
    msg_id = kernel.execute_cell_input(code, allow_stdin=False)
    kernel.await_reply(msg_id, timeout=timeout)
    out, error = [], None
    while True:
        msg = kernel.get_message("iopub", timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue  # what an earlier cell still had in flight
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status" and content["execution_state"] == "idle":
            break
        if kind == "stream" and content["name"] == "stdout":
            out.append(content["text"])
        elif kind == "error":
            error = f"{content['ename']}: {content['evalue']}"
    if error:
        raise AssertionError(f"the figure check could not run in the chapter's kernel: {error}")
    return "".join(out)


class ChapterFigures(pytest.Item):
    """One of the two figure checks of a chapter run by nbval (``stage`` is "watch" or "report")."""

    def __init__(self, *, stage: str, cells: list, **kwargs):
        super().__init__(**kwargs)
        self.stage, self.cells = stage, cells

    def runtest(self):
        notebook = self.parent
        if notebook.kernel is None or not notebook.kernel.is_alive() or notebook.timed_out:
            pytest.skip("the chapter's kernel is not running (an earlier cell failed or timed out)")
        if self.stage == "watch":
            _execute(notebook.kernel, WATCH)
            notebook.hmrm_watched = True
            return
        if not getattr(notebook, "hmrm_watched", False):
            pytest.skip("the watch before the chapter's first cell did not run (deselected?)")
        printed = _execute(notebook.kernel, REPORT)
        report = next(json.loads(line.split(" ", 1)[1]) for line in printed.splitlines()
                      if line.startswith("HMRM-FIGURES"))
        name = Path(str(notebook.path)).name
        assert "inline" in report["backend"], f"{name}: the backend was switched to {report['backend']}"
        assert not report["unshown"], f"{name}: figures drawn but never shown: {report['unshown']}"
        outputs = [(cell.cell.source, getattr(cell, "test_outputs", [])) for cell in self.cells]
        widgets = [source.strip()[:60] for source, outs in outputs if "flow_explorer(" not in source
                   and any(WIDGET in out.get("data", {}) for out in outs)]
        assert not widgets, f"{name}: widget outputs (progress bars?) that a saved notebook shows frozen: {widgets}"
        source = Path(str(notebook.path)).with_suffix(".py")
        text = source.read_text() if source.is_file() else ""
        if "plt." in text or "show_" in text:
            drawn = sum("image/png" in out.get("data", {}) for _, outs in outputs for out in outs)
            assert drawn > 0, f"{name} draws figures but showed none"

    def reportinfo(self):
        return self.path, None, f"{self.parent.name}::{self.name}"


CHAPTERS = Path(__file__).resolve().parent / "notebooks"


def _is_chapter_cell(item) -> bool:
    """A cell of a numbered chapter (not of a job notebook or a solution) as nbval collected it."""
    if type(item).__name__ != "IPyNbCell" or type(item.parent).__name__ != "IPyNbFile":
        return False
    path = Path(str(item.parent.path)).resolve()
    return path.parent == CHAPTERS and path.name[:1].isdigit()


def pytest_collection_modifyitems(session, config, items):
    """Around each notebook's cells (as nbval collected them): the watch before, the report after."""
    result, i = [], 0
    while i < len(items):
        if not _is_chapter_cell(items[i]):
            result.append(items[i])
            i += 1
            continue
        notebook, cells = items[i].parent, []
        while i < len(items) and _is_chapter_cell(items[i]) and items[i].parent is notebook:
            cells.append(items[i])
            i += 1
        result.append(ChapterFigures.from_parent(notebook, name="figures: watch", stage="watch", cells=cells))
        result.extend(cells)
        result.append(ChapterFigures.from_parent(notebook, name="figures: report", stage="report", cells=cells))
    items[:] = result


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """Start a chapter's kernel (nbval does, in the notebook's setup) without MPLBACKEND: the kernel a
    student's JupyterLab starts, with the inline backend; the tests themselves keep their Agg."""
    if isinstance(item, ChapterFigures) and item.stage == "watch":
        saved = os.environ.pop("MPLBACKEND", None)
        try:
            yield
        finally:
            if saved is not None:
                os.environ["MPLBACKEND"] = saved
    else:
        yield
