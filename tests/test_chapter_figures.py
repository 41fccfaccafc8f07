"""The chapter figure check that the repository's conftest.py adds to nbval's run fails where it should:
on a figure drawn but never shown, on a progress-bar widget left in a cell's output and on a chapter
whose source plots but shows nothing; a chapter that shows its figures passes. Run as a student's
notebooks folder would be, in a pytest of its own."""
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]

CHAPTERS = {
    "01_shown": ["import matplotlib.pyplot as plt", "plt.plot([0, 1]); plt.show()"],
    "02_unshown": ["import matplotlib.pyplot as plt", "plt.plot([0, 1]); plt.show()",  # the first figure starts inline
                   "plt.ioff()\nfig = plt.figure()\nfig.gca().plot([0, 1])", "x = 1"],  # not interactive: not shown
    "03_widget": ["import ipywidgets\ndisplay(ipywidgets.IntProgress(value=0, max=10))"],
    "04_nothing_shown": ["# plt. draws nothing here\nx = 1"],
    "solutions_are_not_chapters": ["import matplotlib.pyplot as plt", "plt.ioff()\nfig = plt.figure()"],
}


def _notebook(folder: Path, name: str, sources: list[str]):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / f"{name}.ipynb")
    (folder / f"{name}.py").write_text("\n".join(sources) + "\n")


def test_the_figure_check_catches_unshown_figures_and_widgets(tmp_path):
    shutil.copy(REPO / "conftest.py", tmp_path / "conftest.py")
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name, sources in CHAPTERS.items():
        _notebook(folder, name, sources)
    run = subprocess.run([sys.executable, "-m", "pytest", "notebooks", "--nbval-lax", "-p", "no:cacheprovider",
                          "-rA", "-q", "--rootdir", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    out = run.stdout
    assert "PASSED notebooks/01_shown.ipynb::figures: report" in out, out
    assert "FAILED notebooks/02_unshown.ipynb::figures: report" in out and "drawn but never shown" in out, out
    assert "FAILED notebooks/03_widget.ipynb::figures: report" in out and "widget outputs" in out, out
    assert "FAILED notebooks/04_nothing_shown.ipynb::figures: report" in out and "showed none" in out, out
    assert "solutions_are_not_chapters.ipynb::figures" not in out, out  # only numbered chapters
    assert run.returncode == 1 and "3 failed" in out, out
