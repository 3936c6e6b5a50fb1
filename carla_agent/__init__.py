"""carla_agent: a simulator-in-the-loop steering agent with live saliency maps.

Importing the package needs no CARLA server, display, GPU or TensorFlow:
heavy dependencies are imported lazily by the modules that own them
(``carla`` in :mod:`carla_agent.sim.carla_backend.client`, ``pygame`` in the HUD,
TensorFlow in the model and saliency code).
"""

__version__ = "0.1.0"
