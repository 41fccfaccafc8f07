"""An interactive flow explorer for notebooks (ipywidgets + matplotlib).

``flow_explorer(samples)`` shows one clip at a time: pick a sample and a method, scrub the frame
from onset to offset (the flow is always onset -> that frame), switch the view between the colour
wheel, arrows over the face and the magnitude, toggle the facial regions. At the apex frame of a
clip with ground truth (SynthME) it also shows the ground truth and the end-point error.

The work is done by pure functions, :func:`compute_view` (numbers) and :func:`draw_view`
(matplotlib), so they can be tested without a browser; the widget only wires them together.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.synthme import load_frame, load_gt_flow
from ..face.regions import region_boxes
from ..flow import classic_flow, endpoint_error
from ..flow.pretrained import load_pretrained
from .flow import add_flow_wheel, flow_to_color
from .overlays import draw_flow_arrows, draw_regions

VIEWS = ("colour", "arrows", "magnitude")


@dataclass
class ExplorerState:
    sample: int = 0
    method: str = "dis_tuned"
    frame: int = 0  # index into the clip, onset..offset
    view: str = "colour"
    regions: bool = True


def default_flow_fn(method: str):
    """A flow function (first, second) -> (H, W, 2) for a method name: a classical one, or
    ``gru_aofe`` (the shipped weights)."""
    if method == "gru_aofe":
        model = load_pretrained()
        return model.estimate
    if method == "zero":
        return lambda a, b: np.zeros(a.shape[:2] + (2,), np.float32)
    return lambda a, b: classic_flow(a, b, method)


def compute_view(samples, state: ExplorerState, flow_fns: dict, cache: dict | None = None) -> dict:
    """Everything the picture needs for ``state``: frames, flow, magnitude, regions, and the
    ground truth and EPE when the frame is the apex of a sample that has them."""
    cache = {} if cache is None else cache
    s = samples[state.sample]
    if state.view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, not {state.view!r}")
    t = int(np.clip(state.frame, 0, s.n_frames - 1))
    onset = load_frame(s.onset_path)
    frame = load_frame(s.frames[t])
    key = (s.key, state.method, t)
    if key not in cache:
        cache[key] = flow_fns[state.method](onset, frame) if t != s.onset else np.zeros(onset.shape[:2] + (2,), np.float32)
    flow = cache[key]
    view = {"sample": s, "t": t, "onset": onset, "frame": frame, "flow": flow, "magnitude": np.linalg.norm(flow, axis=-1),
            "view": state.view, "regions": None, "gt": None, "epe": None, "title": f"{s.key} {s.emotion} | {state.method} | onset -> frame {t}"}
    gt_path = s.meta.get("gt_flow")
    if gt_path is not None:
        g = load_gt_flow(s)
        if state.regions:
            view["regions"] = region_boxes(g["landmarks_onset"], onset.shape[0])
        if t == s.apex:
            view["gt"] = g["flow"]
            view["epe"] = endpoint_error(flow, g["flow"], g["face_mask"])
            view["title"] += f" (apex) | face EPE {view['epe']:.3f} px"
    return view


def draw_view(view: dict, fig=None, max_mag: float = 2.0):
    """Draw a :func:`compute_view` result: frame, flow in the chosen view, and the ground truth if any."""
    import matplotlib.pyplot as plt

    panels = 3 if view["gt"] is not None else 2
    if fig is None:
        fig = plt.figure(figsize=(3.2 * panels, 3.4))
    fig.clf()
    axes = fig.subplots(1, panels)
    axes[0].imshow(view["frame"])
    axes[0].set_title(f"frame {view['t']}", fontsize=8)

    def show(ax, flow, name):
        if view["view"] == "colour":
            ax.imshow(flow_to_color(flow, max_mag))
            add_flow_wheel(ax, max_mag)
        elif view["view"] == "magnitude":
            im = ax.imshow(np.linalg.norm(flow, axis=-1), cmap="magma", vmin=0, vmax=max_mag)
            fig.colorbar(im, ax=ax, fraction=0.046, label="px")
        else:
            ax.imshow(view["onset"].mean(-1), cmap="gray")
            draw_flow_arrows(ax, flow, step=16, scale=10)
        ax.set_title(name, fontsize=8)

    show(axes[1], view["flow"], "estimated flow")
    if view["gt"] is not None:
        show(axes[2], view["gt"], "ground truth")
    for ax in axes:
        if view["regions"]:
            draw_regions(ax, view["regions"], labels=False)
        ax.axis("off")
    fig.suptitle(view["title"], fontsize=8)
    return fig


class FlowExplorer:
    """The widget. ``.widgets`` holds the controls; ``.last_view`` the latest computed view."""

    def __init__(self, samples, methods=("dis_tuned", "farneback", "dis", "tvl1"), flow_fns: dict | None = None):
        import ipywidgets as W
        import matplotlib.pyplot as plt

        if not len(samples):
            raise ValueError("flow_explorer needs at least one sample")
        self.samples = list(samples)
        self.flow_fns = flow_fns or {m: default_flow_fn(m) for m in methods}
        self.cache: dict = {}
        s0 = self.samples[0]
        self.widgets = {
            "sample": W.Dropdown(options=[(s.key, i) for i, s in enumerate(self.samples)], value=0, description="sample"),
            "method": W.Dropdown(options=list(self.flow_fns), value=list(self.flow_fns)[0], description="method"),
            "frame": W.IntSlider(min=s0.onset, max=s0.offset, value=s0.apex, description="frame"),
            "view": W.ToggleButtons(options=list(VIEWS), value="colour", description="view"),
            "regions": W.Checkbox(value=True, description="regions"),
        }
        self.output = W.Output()
        with self.output:
            self.fig = plt.figure(figsize=(9.6, 3.4))
            plt.close(self.fig)
        self.last_view = None
        for name, w in self.widgets.items():
            w.observe(self._on_change, names="value")
        self.box = W.VBox([W.HBox([self.widgets["sample"], self.widgets["method"]]), self.widgets["frame"],
                           W.HBox([self.widgets["view"], self.widgets["regions"]]), self.output])
        self.update()

    def state(self) -> ExplorerState:
        w = self.widgets
        return ExplorerState(w["sample"].value, w["method"].value, w["frame"].value, w["view"].value, w["regions"].value)

    def _on_change(self, change) -> None:
        if change["owner"] is self.widgets["sample"]:
            s = self.samples[change["new"]]
            fr = self.widgets["frame"]
            fr.unobserve(self._on_change, names="value")
            fr.min, fr.max = 0, max(fr.max, s.offset)  # widen first so value stays valid
            fr.max, fr.min, fr.value = s.offset, s.onset, s.apex
            fr.observe(self._on_change, names="value")
        self.update()

    def update(self) -> dict:
        self.last_view = compute_view(self.samples, self.state(), self.flow_fns, self.cache)
        draw_view(self.last_view, self.fig)
        self.output.clear_output(wait=True)
        with self.output:
            from IPython.display import display

            display(self.fig)
        return self.last_view

    def _ipython_display_(self):
        from IPython.display import display

        display(self.box)


def flow_explorer(samples, methods=("dis_tuned", "farneback", "dis", "tvl1"), flow_fns: dict | None = None) -> FlowExplorer:
    """Build the explorer for ``samples`` (display it as the last expression of a cell)."""
    return FlowExplorer(samples, methods, flow_fns)
