"""`hmrm.markdown.markdown_table`: the one table writer."""
import pytest

from hmrm.markdown import markdown_table


def test_header_alignment_and_rows():
    text = markdown_table(["name", "UF1", "n"], [["a|b", 0.5, 3], ["c", "0.25", 10]], align="lr")
    assert text.splitlines() == ["| name | UF1 | n |", "|---|---:|---|", "| a|b | 0.5 | 3 |", "| c | 0.25 | 10 |"]
    assert not text.endswith("\n")


def test_refuses_a_ragged_row_or_a_bad_alignment():
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        markdown_table(["a", "b", "c"], [[1, 2]])
    with pytest.raises(ValueError, match="one letter l or r per column"):
        markdown_table(["a"], [], align="c")
    with pytest.raises(ValueError, match="one letter l or r per column"):
        markdown_table(["a"], [], align="lr")
