import numpy as np
import pytest

from hmrm.data.synthme import load_synthme
from hmrm.viz.widgets import VIEWS, ExplorerState, compute_view, draw_view, flow_explorer


@pytest.fixture
def samples(tiny_synthme):
    return load_synthme(tiny_synthme)[:2]


def _fast():
    from hmrm.flow import classic_flow

    return {"dis": lambda a, b: classic_flow(a, b, "dis"), "zero": lambda a, b: np.zeros(a.shape[:2] + (2,), np.float32)}


def test_compute_view_shows_epe_at_apex_only(samples):
    s = samples[0]
    v = compute_view(samples, ExplorerState(0, "zero", s.apex, "colour", True), _fast())
    assert v["gt"] is not None and v["epe"] > 0 and set(v["regions"]) == {"right_eye", "left_eye", "nose", "mouth"}
    v_dis = compute_view(samples, ExplorerState(0, "dis", s.apex, "colour", True), _fast())
    assert v_dis["epe"] < v["epe"]  # a real estimate beats "no motion"
    v0 = compute_view(samples, ExplorerState(0, "dis", s.onset, "arrows", False), _fast())
    assert v0["gt"] is None and v0["regions"] is None and not v0["flow"].any()
    with pytest.raises(ValueError, match="view must be one of"):
        compute_view(samples, ExplorerState(view="3d"), _fast())


def test_every_view_draws(samples):
    for view in VIEWS:
        v = compute_view(samples, ExplorerState(0, "dis", samples[0].apex, view, True), _fast())
        fig = draw_view(v)
        assert len(fig.axes) >= 3
        insets = [c for a in fig.axes for c in a.child_axes]
        keys = [a for a in insets if a.get_title().endswith(" px") and a.get_title()[0].isdigit()]
        assert len(keys) == (2 if view == "colour" else 0)  # a colour wheel beside each colour-coded flow


def test_widget_sweeps_every_control(samples):
    ex = flow_explorer(samples, flow_fns=_fast())
    w = ex.widgets
    for i in range(len(samples)):
        w["sample"].value = i
        s = samples[i]
        assert (w["frame"].min, w["frame"].max, w["frame"].value) == (s.onset, s.offset, s.apex)
        for t in range(w["frame"].min, w["frame"].max + 1):
            w["frame"].value = t
            assert ex.last_view["t"] == t and ex.last_view["sample"] is s
            assert (ex.last_view["epe"] is not None) == (t == s.apex)
    for m in w["method"].options:
        w["method"].value = m
        assert ex.last_view["title"].split(" | ")[1] == m
    for view in VIEWS:
        w["view"].value = view
        assert ex.last_view["view"] == view
    w["regions"].value = False
    assert ex.last_view["regions"] is None
