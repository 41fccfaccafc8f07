"""Every chapter is committed without outputs, opens with a papermill `parameters` cell of literals, and
its notebook matches the jupytext percent-format `.py` it is paired with."""

import ast
import re
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(ROOT.glob("*.ipynb"))  # the chapters
ALL = sorted(ROOT.glob("**/*.ipynb"))  # chapters, their solutions, the job notebook


def test_chapters_exist_and_are_numbered():
    names = [p.name for p in NOTEBOOKS]
    assert "00_course_map.ipynb" in names and "01_faces_and_synthme.ipynb" in names
    for n in names:
        assert n[:2].isdigit() and n[2] == "_", n
    numbers = [int(n[:2]) for n in names]
    assert numbers == list(range(len(names))), f"chapters must be numbered 00, 01, ... without gaps or repeats: {names}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    first = cells[0]
    assert first["cell_type"] == "code" and "parameters" in first["metadata"].get("tags", []), (
        f"{path.name}: the first cell must be a code cell tagged 'parameters'"
    )
    tree = ast.parse("".join(first["source"]))
    for node in tree.body:
        assert isinstance(node, ast.Assign), f"{path.name}: parameters cell holds only assignments"
        ast.literal_eval(node.value)  # raises if a value is not a literal papermill can override
    for c in cells:
        if c["cell_type"] == "code":
            assert c.get("outputs") == [] and c.get("execution_count") is None, (
                f"{path.name}: commit notebooks without outputs (clear them before committing)"
            )
    assert any(c["cell_type"] == "markdown" and c["source"] for c in cells), path.name


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_matches_its_paired_script(path):
    import jupytext

    script = path.with_suffix(".py")
    assert script.is_file(), f"{path.name} has no paired {script.name}: run `make chapters`"
    nb = json.loads(path.read_text())
    assert nb["metadata"].get("jupytext", {}).get("formats") == "ipynb,py:percent", (
        f"{path.name} is not paired: run `.venv/bin/jupytext --set-formats ipynb,py:percent {path}`")
    text = jupytext.read(script)

    def cells(cs):
        return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"],
                 c.get("metadata", {}).get("tags", [])) for c in cs]

    assert cells(nb["cells"]) == cells(text.cells), (
        f"{path.name} and {script.name} have drifted apart: run `make chapters` (jupytext --sync) and commit both")


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_calls_only_public_package_code(path):
    """A chapter teaches with the package's public functions: no `obj._name` and no `from hmrm... import _name`."""
    nb = json.loads(path.read_text())
    for c in nb["cells"]:
        if c["cell_type"] != "code":
            continue
        src = "".join(c["source"])
        tree = ast.parse("\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                pytest.fail(f"{path.name}: private attribute .{node.attr} in {src.strip()[:60]!r}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hmrm"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name}: imports private {private} from {node.module}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_ends_with_a_self_check_and_exercises_with_solutions(path):
    nb = json.loads(path.read_text())
    text = ["".join(c["source"]) for c in nb["cells"]]
    heads = [i for i, t in enumerate(text) if t.lstrip().startswith("## Check yourself")]
    assert heads, f"{path.name}: no '## Check yourself' section"
    after = [c for c in nb["cells"][heads[-1] + 1:] if c["cell_type"] == "code"]
    assert after and "assert" in "".join(after[0]["source"]), f"{path.name}: the self-check cell asserts nothing"
    assert any(t.lstrip().startswith("## Exercises") for t in text), f"{path.name}: no '## Exercises' section"
    solutions = ROOT / "solutions" / f"{path.stem}_solutions.ipynb"
    assert solutions.is_file(), f"{path.name}: no {solutions.relative_to(ROOT.parent)}"
    assert any(solutions.name in t for t in text), f"{path.name}: the exercises do not point to {solutions.name}"


def _exercises(chapter: Path) -> list[int]:
    """The numbers of a chapter's exercises (the numbered items of its '## Exercises' cell)."""
    nb = json.loads(chapter.read_text())
    cell = next("".join(c["source"]) for c in nb["cells"] if "".join(c["source"]).lstrip().startswith("## Exercises"))
    return [int(n) for n in re.findall(r"^(\d+)\. \*\*", cell, re.M)]


def _solution_sections(solutions: Path) -> dict[int, list[tuple[str, str]]]:
    """Exercise number -> its (cell type, text) pieces, from its heading (``## Exercise N``, ``## N.``, in
    a markdown cell) to the next one; a markdown cell may end one section and start the next."""
    sections, current = {}, None
    for c in json.loads(solutions.read_text())["cells"]:
        text = "".join(c["source"])
        pieces = [(None, text)]
        if c["cell_type"] == "markdown":
            parts = re.split(r"^(?=##\s+(?:Exercise\s+)?\d+\b)", text, flags=re.M)
            pieces = [(re.match(r"##\s+(?:Exercise\s+)?(\d+)\b", part), part) for part in parts]
        for heading, part in pieces:
            if heading:
                current = int(heading.group(1))
                sections[current] = []
            if current is not None:
                sections[current].append((c["cell_type"], part))
    return sections


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_an_answer_and_a_check_in_its_solution(path):
    solutions = ROOT / "solutions" / f"{path.stem}_solutions.ipynb"
    sections = _solution_sections(solutions)
    for n in _exercises(path):
        cells = sections.get(n)
        assert cells, f"{solutions.name}: no markdown heading '## Exercise {n}' (headings belong in markdown cells)"
        prose = "\n".join(text for kind, text in cells if kind == "markdown")
        code = "\n".join(text for kind, text in cells if kind == "code")
        assert "**Answer.**" in prose, f"{solutions.name}, exercise {n}: no written answer ('**Answer.**')"
        assert re.search(r"\bassert", code), f"{solutions.name}, exercise {n}: no check (an assert)"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_papermill_sees_every_parameter(path):
    """papermill reads the parameters cell with its own parser, which gives up on a line whose comment
    holds an "=" (and then calls a parameter passed with -p "unknown"): it must see every name."""
    import logging

    import papermill as pm

    nb = json.loads(path.read_text())
    names = {t.id for node in ast.parse("".join(nb["cells"][0]["source"])).body for t in node.targets}
    logging.getLogger("papermill").setLevel(logging.ERROR)
    assert set(pm.inspect_notebook(str(path))) == names, f"{path.name}: papermill misses some parameters"
