"""A road network in OpenDRIVE: roads linked through junctions (the towns' ground truth).

* :mod:`.model`: the typed network (roads, links, junctions, signals, crosswalks);
* :mod:`.writer` / :mod:`.reader`: OpenDRIVE 1.4 text of the subset CARLA's
  client-side ``carla.Map(name, xodr_text)`` parses, and back;
* :mod:`.builder`: a network from nodes and edges (the towns' compact form);
* :mod:`.lanes`: the network's driving lanes as a
  :class:`~carla_agent.sim.routing.lane_graph.LaneGraph` for the route planner;
* :mod:`.spawn`: spawn points on every driving lane.
"""
