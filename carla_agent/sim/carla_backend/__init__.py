"""The CARLA 0.9.x backend."""
