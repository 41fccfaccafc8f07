"""Pictures: flow colour coding, overlays of landmarks and regions, montages."""
from .flow import flow_to_color, flow_wheel
from .overlays import draw_landmarks, draw_regions

__all__ = ["draw_landmarks", "draw_regions", "flow_to_color", "flow_wheel"]
