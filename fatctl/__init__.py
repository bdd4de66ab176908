"""fatctl: the control plane of a fleet of dedicated OpenClaw agent boxes."""

__version__ = "0.1.0"
