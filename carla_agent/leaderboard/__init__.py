"""carla_agent as a CARLA Leaderboard agent (``--agent``), and the pieces it is built from.

The evaluator loads :mod:`carla_agent.leaderboard.entry.pilotnet_agent` by its file path
(``leaderboard_evaluator.py --agent .../pilotnet_agent.py --agent-config agent.yaml``). That
file is the only one that imports the Leaderboard; the rest is plain Python and NumPy:

* :mod:`~carla_agent.leaderboard.config`: the ``--agent-config`` YAML;
* :mod:`~carla_agent.leaderboard.geo`: CARLA's GNSS <-> map-frame conversion;
* :mod:`~carla_agent.leaderboard.route_follower`: where the car is along the global plan, and
  the route command ahead;
* :mod:`~carla_agent.leaderboard.driver`: one route's drive: model, HUD, drive log and video.

Importing this package needs neither the Leaderboard nor ``carla``.
"""
