"""Results files: every committed markdown table has a JSON twin that says the same, and the writer
behind every measuring command writes both."""
import json
from pathlib import Path

import pytest

from hmrm.resultfiles import (Change, Count, Interval, committed_results_files, parse_cell, parse_results_markdown,
                              read_results, twin_path, twin_text, verdict, write_results)

REPO = Path(__file__).resolve().parents[1]
COMMITTED = committed_results_files(REPO)


def test_cells_become_numbers_intervals_counts_and_text():
    assert parse_cell("0.7205") == 0.7205 and parse_cell("1,519,881") == 1519881
    assert parse_cell("+0.0133 [-0.10, +0.13]") == Interval(0.0133, -0.10, 0.13)
    assert parse_cell("−0.0612 [−0.14, +0.00]") == Interval(-0.0612, -0.14, 0.0)
    assert parse_cell("[-0.09, 0.07]") == Interval(None, -0.09, 0.07)
    assert parse_cell("71%") == 0.71 and parse_cell("6/16") == Count(6, 16)
    assert parse_cell("0.708 -> 0.697") == Change(0.708, 0.697)
    assert parse_cell("**0.1111**") == 0.1111 and parse_cell("") is None
    assert parse_cell("NOT met") == "NOT met" and parse_cell("595 (18.6)") == "595 (18.6)"
    assert Interval(0.08, 0.02, 0.16).excludes_zero and not Interval(0.01, -0.1, 0.13).excludes_zero
    assert "supported" in verdict(Interval(0.08, 0.02, 0.16)) and "noise" in verdict([-0.1, 0.13])


def test_a_document_parses_into_captions_and_tables():
    text = ("Caption one\nstill caption one.\n\n| model | UF1 [95%] | n |\n|---|---|---:|\n| a | 0.5 [0.4, 0.6] | 3 |\n"
            "| b \\| c | 0.7 [0.6, 0.8] | 4 |\n\nAfter the table.\n")
    rec = parse_results_markdown(text)
    assert rec["text"] == ["Caption one still caption one.", "After the table."]
    (table,) = rec["tables"]
    assert table["caption"] == "Caption one still caption one." and table["header"] == ["model", "UF1 [95%]", "n"]
    assert table["values"][0] == ["a", {"value": 0.5, "low": 0.4, "high": 0.6}, 3]
    assert table["cells"][1][0] == "b \\| c"


def test_write_results_writes_the_markdown_and_its_twin(tmp_path):
    md = tmp_path / "out" / "table.md"
    twin = write_results(md, "Numbers.\n\n| row | UF1 |\n|---|---|\n| x | 0.25 [0.1, 0.4] |")
    assert md.read_text().endswith("|\n") and twin == md.with_suffix(".json")
    back = read_results(md)
    assert back.table("row").value("x", "UF1") == Interval(0.25, 0.1, 0.4)
    assert back.tables[0].cell("x", "UF1") == "0.25 [0.1, 0.4]"
    with pytest.raises(KeyError, match="row 'y'"):
        back.tables[0].value("y", "UF1")


def test_a_missing_twin_says_how_to_make_it(tmp_path):
    (tmp_path / "t.md").write_text("| a |\n|---|\n| 1 |\n")
    with pytest.raises(FileNotFoundError, match="python -m hmrm.resultfiles"):
        read_results(tmp_path / "t.md")


def test_there_are_committed_results_files():
    names = {p.name for p in COMMITTED}
    assert {"demo_results.md", "demo_ablations.md", "efficiency.md", "seed0.md", "recipe_search.md"} <= names


@pytest.mark.parametrize("md", COMMITTED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_committed_table_has_a_twin_that_says_the_same(md):
    twin = twin_path(md)
    assert twin.is_file(), f"{twin.relative_to(REPO)} is missing: `python -m hmrm.resultfiles {md.relative_to(REPO)}`"
    assert twin.read_text() == twin_text(md.read_text()), (
        f"{twin.relative_to(REPO)} no longer matches {md.name}: rerun the command that wrote it, or "
        f"`python -m hmrm.resultfiles {md.relative_to(REPO)}`")
    assert json.loads(twin.read_text())["tables"], f"{md.name} holds no table"


def test_the_demo_writes_its_tables_through_the_twin_writer(tmp_path, monkeypatch):
    """The demo's outputs go through write_results: a twin appears beside each table it writes."""
    from hmrm import demo

    calls = []
    monkeypatch.setattr("hmrm.demo.write_results", lambda path, text: calls.append(Path(path).name))
    monkeypatch.setattr("hmrm.demo.plot_demo_confusions", lambda *a, **k: None)
    monkeypatch.setattr("hmrm.demo.plot_demo_training", lambda *a, **k: None)
    demo._write_outputs({"rows": []}, "| a |\n|---|\n| 1 |", "| b |\n|---|\n| 2 |", tmp_path, tmp_path, None)
    assert calls == ["demo_results.md", "demo_ablations.md"]
