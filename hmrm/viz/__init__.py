"""Pictures: flow colour coding (with its colour wheel), overlays of landmarks and regions, montages."""
from .flow import add_flow_wheel, flow_to_color
from .overlays import draw_landmarks, draw_regions

__all__ = ["add_flow_wheel", "draw_landmarks", "draw_regions", "flow_to_color"]
