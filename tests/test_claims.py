"""The course says only what it measured: every measured-looking figure typed into the README, the
docs, or a chapter's or solution's markdown is found in a committed results file that its paragraph
names, in the paper's record, among the code's settings, or on the allow-list with a reason
(``tests/claims.py`` explains the rules)."""
import pytest

import claims
from claims import Figure, figures_in, prose_figures, prose_files, traced, untraced

FILES = prose_files()


def test_the_detector_finds_decimals_percentages_counts_and_factors():
    text = ("HMRM scores 0.7205 (95 % interval), beats DIS on 14/16 pairs and is 30x slower; a 28 x 28 grid, "
            "torch 2.14.1, `code 0.123` and\n```\n0.999\n```\nare not figures.")
    found = [(f.text, f.kind) for f in figures_in(text, "x.md")]
    assert found == [("0.7205", "dec"), ("95 %", "pct"), ("14/16", "count"), ("30x", "factor")]


def test_a_paragraph_cites_the_table_its_figures_come_from():
    (fig,) = figures_in("Tuned DIS scores 0.0574 px (`figures/flow_error_sources.md`).", "x.md")
    assert fig.cites == ("figures/flow_error_sources",)
    (fig,) = figures_in("Tuned DIS scores 0.0574 px.\n\nThe table: `figures/flow_error_sources.md`.", "x.md")
    assert fig.cites == ()


def test_a_figure_is_traced_only_to_its_own_table_and_only_when_it_is_there():
    src = ("figures/flow_error_sources",)
    assert traced(Figure("x.md", 1, "0.0574", "dec", "", src))
    assert traced(Figure("x.md", 1, "0.057", "dec", "", src))       # rounded from 0.0574
    assert not traced(Figure("x.md", 1, "0.0584", "dec", "", src))  # a changed figure
    assert not traced(Figure("x.md", 1, "0.0574", "dec", "", ()))   # no table named
    assert not traced(Figure("x.md", 1, "0.0574", "dec", "", ("figures/demo_results",)))  # another table


def test_settings_and_the_papers_figures_are_not_claims_of_ours():
    assert traced(Figure("x.md", 1, "0.9561", "dec", "", ()))        # docs/paper.md: the paper's CASME II UF1
    assert traced(Figure("x.md", 1, "0.0005", "dec", "", ()))        # the paper's learning rate
    assert traced(Figure("x.md", 1, "0.95", "dec", "", ()))          # a literal of the package (the demo's EMA)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(claims.REPO)))
def test_every_figure_in_the_prose_is_traced(path):
    missing = untraced(path)
    assert not missing, (
        f"{len(missing)} figure(s) of {path.name} are not found in a results file their paragraph names, in "
        "docs/paper.md or among the code's settings; print them from the results file in a cell, name the table "
        "they come from, or add them to tests/claims_allowlist.yaml with a reason:\n  "
        + "\n  ".join(map(str, missing)))


def test_cited_results_files_exist():
    figures = [f for p in FILES for f in prose_figures(p)]
    assert not claims.missing_citations(figures)


def test_every_allowlist_entry_has_a_reason_and_is_still_used():
    used = {(f.file, f.text) for p in FILES for f in prose_figures(p)}
    stale = [key for key in claims.allowlist() if key not in used]
    assert not stale, f"entries of tests/claims_allowlist.yaml that no prose uses any more: {stale}"
