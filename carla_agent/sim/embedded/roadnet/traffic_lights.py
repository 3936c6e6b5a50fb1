"""Traffic lights on a fixed timer: each junction's controllers take turns.

A junction with controllers ``c0, c1, ...`` (its phases, in ``sequence``
order) runs a cycle of ``len(phases) * (green + yellow + all_red)`` seconds:
phase i shows green, then yellow, then red while the junction is all red and
the other phases have their turn. At most one phase of a junction is ever
green or yellow. The state is a pure function of simulation time, so every
frame (and a replay) agrees. States are CARLA's names (``carla.TrafficLightState``).
"""

from __future__ import annotations

from typing import Dict, Tuple

from carla_agent.sim.embedded.roadnet.model import RoadNetwork

GREEN, YELLOW, RED = "Green", "Yellow", "Red"


def phase_state(phase: int, phases: int, time_s: float, cycle_s: Tuple[float, float, float]) -> str:
    """The state of phase ``phase`` of ``phases`` at ``time_s`` (seconds, >= 0)."""
    green, yellow, all_red = cycle_s
    slot = green + yellow + all_red
    t = time_s % (slot * phases) - phase * slot
    if 0 <= t < green:
        return GREEN
    if green <= t < green + yellow:
        return YELLOW
    return RED


def light_states(net: RoadNetwork, time_s: float, cycle_s: Tuple[float, float, float]) -> Dict[int, str]:
    """Signal id -> state for every traffic light of ``net`` at ``time_s``."""
    out: Dict[int, str] = {}
    for j in net.junctions.values():
        n = len(j.controller_ids)
        for phase, cid in enumerate(j.controller_ids):
            state = phase_state(phase, n, time_s, cycle_s)
            for sid in net.controllers[cid].signal_ids:
                out[sid] = state
    return out
