"""The evidence chapter 09 shows: comparisons read from the committed results, judged by the interval rule."""
import pytest

from hmrm import evidence as E
from hmrm.resultfiles import Interval, write_results


def test_every_committed_comparison_is_read_with_its_verdict():
    comparisons = E.all_comparisons()
    groups = {c.group for c in comparisons}
    assert len([c for c in comparisons if c.group.startswith("HMRM against")]) == 6   # three questions, two seeds
    assert {"HMRM against the baseline, and the flow", "HMRM's own parts (ablations)"} <= groups
    for c in comparisons:
        assert c.supported == (c.delta.low > 0 or c.delta.high < 0)
        assert c.verdict.startswith("supported") == c.supported
        assert (E.REPO / c.source).is_file()
    seed0 = E.demo_comparisons()
    assert seed0[2].delta == Interval(0.0542, 0.01, 0.12)                   # figures/demo_results.md, as written


def test_subjects_to_resolve_grows_as_the_square_of_half_width_over_difference():
    assert E.subjects_to_resolve(Interval(0.05, -0.05, 0.15), 10) == 40       # half-width 0.1, twice the difference
    assert E.subjects_to_resolve(Interval(0.2, 0.1, 0.3), 10) == 10           # already resolved: no more needed
    assert E.subjects_to_resolve(Interval(0.0, -0.1, 0.1), 10) is None         # nothing to resolve


def _c(group, question, value, low, high):
    return E.Comparison(group, question, "SynthME seed 0", Interval(value, low, high), 10, "figures/demo_results.md")


def test_the_plain_verdict_says_what_the_intervals_say():
    parts = [_c("HMRM's own parts (ablations)", "does the second grain matter?", -0.01, -0.09, 0.07)]
    flow = [_c("HMRM against the baseline, and the flow", "does better flow lift HMRM (exact)?", 0.08, 0.02, 0.16)]
    net = [_c("HMRM against the baseline, and the flow", "does HMRM beat STSTNet on the same flow?", -0.06, -0.14, 0.0)]
    text = E.plain_verdict(parts + flow + net)
    assert "No part of HMRM is shown to matter" in text and "No comparison between HMRM and STSTNet is resolved" in text
    assert "Better flow is the measured lever" in text
    parts = [_c("HMRM's own parts (ablations)", "does the second grain matter?", -0.1, -0.15, -0.05)]
    assert "Parts of HMRM shown to matter: the second grain matter (-0.1000" in E.plain_verdict(parts + net)
    lines = E.verdict_lines(parts + flow + net)
    assert lines[0].startswith("3 paired comparisons") and "2 supported" in lines[0]


def test_interval_verdicts_skip_reference_rows(tmp_path):
    md = tmp_path / "t.md"
    write_results(md, "| model | variant | ΔUF1 [95%, paired] |\n|---|---|---|\n| A | ref | reference |\n"
                      "| A | x | -0.1000 [-0.20, -0.01] |\n| A | y | +0.0100 [-0.05, +0.07] |")
    lines = E.interval_verdicts(str(md), "model", "ΔUF1", ("model", "variant"))
    assert lines == ["A, x: -0.1000 [-0.20, -0.01], supported by the data: lower",
                     "A, y: +0.0100 [-0.05, +0.07], inside the noise"]
    with pytest.raises(KeyError):
        E.interval_verdicts(str(md), "nonsense", "ΔUF1")
