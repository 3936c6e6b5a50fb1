"""Vehicle controls and the controllers that make them: plain NumPy, no simulator, no model."""

from carla_agent.control.vehicle_control import VehicleControl

__all__ = ["VehicleControl"]
