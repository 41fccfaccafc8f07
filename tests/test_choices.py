"""The paper apart from us: every box renders from the committed results, names its sources, and
says what a measurement shows rather than what we hoped."""
import re
from pathlib import Path

import pytest

from hmrm import choices as C

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("part", list(C.PARTS))
def test_every_box_renders_from_the_committed_results(part):
    text = C.choices_markdown(part)
    assert text.count("\n|") == len(C.choices(part)) + 1          # header rule + one row per choice
    for source in re.findall(r"`((?:figures|benchmarks/results|hmrm/flow/weights)/[^`]+)`", text):
        assert (REPO / source).is_file(), f"{part}: the box cites {source}, which is not committed"


def test_each_chapter_part_has_a_box_and_unknown_parts_are_refused():
    assert {"faces", "gru_aofe", "motionmix", "selective_scan", "mamba_block", "encoder_rffs", "training"} <= set(C.PARTS)
    with pytest.raises(KeyError, match="unknown part"):
        C.choices("nonsense")


def test_what_the_paper_leaves_open_is_marked_silent_and_the_papers_figures_are_its_own():
    paper = " ".join((REPO / "docs" / "paper.md").read_text().split())
    training = {c.topic: c for c in C.choices("training")}
    assert training["batch size"].paper == C.SILENT and "batch size" in paper.split("Not given:")[1]
    assert "0.0005" in training["optimiser and rate"].paper and "0.0005" in paper
    assert C.choices_markdown("training").count("*silent*") >= 3


def test_the_flow_parts_verdicts_follow_the_intervals(monkeypatch):
    from hmrm.resultfiles import Interval

    noise = "the difference is inside the noise (its interval contains 0)"
    values = {0: (Interval(0.0001, -0.0003, 0.0005), noise), 2: (Interval(-0.0002, -0.0006, 0.0001), noise)}
    monkeypatch.setattr(C, "_part", lambda label, seed=0: values[seed])
    text = C._measured_parts("GRU-AOFE without refinement minus tuned DIS", "the GRU minus its warm start")
    assert text.count("inside the noise") == 2 and "+0.0001 [-0.0003, +0.0005] px" in text
    values[0] = (Interval(-0.0150, -0.0200, -0.0100), "the difference is supported by the data (its interval excludes 0)")
    text = C._measured_parts("GRU-AOFE without refinement minus tuned DIS", "the GRU minus its warm start")
    assert "supported by the data: better" in text and "-0.0150 [-0.0200, -0.0100] px" in text


def test_the_demo_recipe_is_read_not_typed():
    from hmrm.demo import DEMO_RECIPES

    rows = {c.topic: c for c in C.choices("training")}
    assert f"{DEMO_RECIPES['hmrm']['lr']:g}" in rows["optimiser and rate"].ours
    assert f"{DEMO_RECIPES['hmrm']['ema']:g} per step" in rows["weight averaging"].ours
