"""Routes over a lane graph: the global route planner and its high-level commands.

Backend-neutral: :class:`~.lane_graph.LaneGraph` is plain NumPy, built from
the embedded towns (:mod:`carla_agent.sim.embedded.roadnet.lanes`) or, later,
from a real CARLA map's topology.
"""
