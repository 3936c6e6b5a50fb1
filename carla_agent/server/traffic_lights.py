"""The town's traffic lights as ``traffic.traffic_light`` actors, and the one place their state comes from.

Each light of the town (:mod:`carla_agent.sim.embedded.roadnet.traffic_lights`: every junction's
phases take turns on a fixed timer) is an actor, id ``LIGHT_ID0 + k``, standing at its pole, facing
the traffic it governs, with CARLA's trigger volume (its bounding box: the arriving lanes just before
the stop line). :func:`states` is the single source of truth for what every light shows: the timer
at the junction's own clock, unless a client set or froze it. The cameras draw :func:`states`, and
the episode state carries each light's state, times and frozen flag, so every client agrees.

CARLA semantics kept: ``set_state`` holds until the junction's cycle moves the group on (here: until
``reset_group``, ``reset_all`` or unfreezing with a new timer phase), ``freeze`` stops the junction's
clock, the green/yellow/red times are the group's phase lengths.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional

from carla_agent.server import checks
from carla_agent.server.rpc import VOID, RpcError
from carla_agent.server.wire import A_STRING, attr

LIGHT_ID0 = 2_000_000
#: ``carla.TrafficLightState``: Red, Yellow, Green, Off, Unknown.
STATES = ("Red", "Yellow", "Green", "Off", "Unknown")


class Light:
    """One light: its signal, junction, pose (CARLA frame) and the client's overrides."""

    def __init__(self, actor_id: int, signal, junction, road, pose, pole_index: int) -> None:
        self.id, self.signal, self.junction, self.road = actor_id, signal, junction, road
        self.pose = pose  # (x, y, z m, yaw deg), CARLA frame
        self.pole_index = pole_index
        self.forced: Optional[str] = None


class LightTable:
    """Every light of the served town, with per-junction clocks (seconds) and frozen flags."""

    def __init__(self, world) -> None:
        self.lights: Dict[int, Light] = {}
        self.by_signal: Dict[int, Light] = {}
        self.offset: Dict[int, float] = {}  # junction clock = simulator time + offset, seconds
        self.now_s = 0.0  # the simulator's time (its frame x dt), set each tick
        self.touched = False  # a client changed a light: the cameras draw this table, not the bare timer
        self.frozen: Dict[int, bool] = {}
        self.cycle: Dict[int, list] = {}
        town = getattr(world.sim, "town", None)
        if town is None:
            return
        net = town.network
        road_of = {sig.id: r for r in net.roads.values() for sig in r.signals}
        k = 0
        for j in net.junctions.values():
            self.offset[j.id], self.frozen[j.id] = 0.0, False
            self.cycle[j.id] = list(town.spec.traffic_light_cycle_s)
            pole = 0
            for cid in j.controller_ids:
                for sid in net.controllers[cid].signal_ids:
                    r = road_of[sid]
                    sig = next(s for s in r.signals if s.id == sid)
                    x, y = r.road.to_world(sig.s_m, sig.t_m)
                    h = r.road.heading_at(sig.s_m) + (0.0 if sig.orientation == "+" else math.pi)
                    light = Light(LIGHT_ID0 + k, sig, j, r, (float(x), -float(y), 0.0, -math.degrees(h)), pole)
                    self.lights[light.id] = light
                    self.by_signal[sid] = light
                    k += 1
                    pole += 1

    def timer_state(self, light: Light) -> str:
        from carla_agent.sim.embedded.roadnet.traffic_lights import phase_state

        j = light.junction
        phase = next(i for i, cid in enumerate(j.controller_ids) if light.signal.id in self._signals(cid))
        return phase_state(phase, len(j.controller_ids), self.clock(j.id), tuple(self.cycle[j.id]))

    def clock(self, jid: int) -> float:
        return max(self.now_s + self.offset[jid], 0.0)

    def _signals(self, cid):
        return self._net_controllers[cid].signal_ids

    def state(self, light: Light) -> str:
        return light.forced or self.timer_state(light)

    def tick(self, now_s: float) -> None:
        """The simulator's time is ``now_s``: frozen junctions keep their clock."""
        for jid in self.offset:
            if self.frozen[jid]:
                self.offset[jid] -= now_s - self.now_s
        self.now_s = now_s


def table(world) -> LightTable:
    """The world's light table (made for the map served; remade after ``load_world``)."""
    t = getattr(world, "light_table", None)
    key = world.sim.scenario.name
    if t is None or t.key != key:
        t = LightTable(world)
        t.key = key
        town = getattr(world.sim, "town", None)
        t._net_controllers = town.network.controllers if town is not None else {}
        world.light_table = t
    return t


def states(world) -> Optional[Dict[int, str]]:
    """Signal id -> ``Red``/``Yellow``/``Green``/``Off`` of every light now (None: no town)."""
    t = table(world)
    if not t.lights:
        return None
    return {light.signal.id: t.state(light) for light in t.lights.values()}


def drawn(world) -> Optional[Dict[int, str]]:
    """What the cameras draw: None (the renderer's own timer, the same states) until a client changes a light."""
    return states(world) if table(world).touched else None


def tick(world) -> None:
    table(world).tick(world.sim.frame * float(world.sim.scenario.dt_s))


def actors(world, Actor) -> list:
    """The lights as served actors (``Actor``: :class:`~carla_agent.server.actors.Actor`), made once per map."""
    t = table(world)
    if getattr(t, "actors", None) is None:
        t.actors = []
        for light in t.lights.values():
            a = Actor(light.id, 0, "traffic.traffic_light", [attr("role_name", A_STRING, "")],
                      extent=_trigger_extent(light))
            a.trigger_offset = _trigger_offset(light)
            a.light = light
            t.actors.append(a)
    return t.actors


def _lanes_width(light: Light) -> float:
    road = light.road.road
    lanes = road.right_lanes if light.signal.orientation == "+" else road.left_lanes
    return sum(l.width_m for l in lanes if l.type == "driving")


def _trigger_extent(light: Light):
    return (1.5, max(0.5 * _lanes_width(light), 0.5), 1.0)


def _trigger_offset(light: Light):
    """The trigger volume's centre in the light's frame (x ahead, y right): over the arriving lanes."""
    return (-1.5, -(abs(light.signal.t_m) - 0.5 * _lanes_width(light)), 1.0)


def find(world, actor_id_, function: str) -> Light:
    from carla_agent.server.vehicles import carla_error

    i = checks.integer(actor_id_, "actor id", 0, 2 ** 32 - 1)
    light = table(world).lights.get(i)
    if light is None:
        raise carla_error(function, i, "Actor is not a traffic light" if i in world.actors else
                          "Actor could not be found in the registry")
    return light


def record(world, light: Light) -> tuple:
    """``(state index, green, yellow, red, elapsed s, frozen)`` for the episode state."""
    t = table(world)
    j = light.junction
    green, yellow, red_all = t.cycle[j.id]
    n = len(j.controller_ids)
    red = (n - 1) * (green + yellow + red_all) + red_all
    slot = green + yellow + red_all
    elapsed = t.clock(j.id) % (slot * n)
    return STATES.index(t.state(light)), green, yellow, red, elapsed, t.frozen[j.id]


def _state_arg(state) -> str:
    i = checks.integer(state, "TrafficLightState", 0, len(STATES) - 1)
    return STATES[i]


def handlers(world) -> dict:
    def set_state(actor_id, state, *a):
        find(world, actor_id, "set_traffic_light_state").forced = _state_arg(state)
        table(world).touched = True
        return VOID

    def freeze(actor_id, frozen, *a):
        light = find(world, actor_id, "freeze_traffic_light")
        table(world).frozen[light.junction.id] = checks.flag(frozen, "freeze")
        table(world).touched = True
        return VOID

    def freeze_all(frozen, *a):
        t = table(world)
        for jid in t.frozen:
            t.frozen[jid] = checks.flag(frozen, "freeze")
        t.touched = True
        return VOID

    def reset_group(actor_id, *a):
        light = find(world, actor_id, "reset_traffic_light_group")
        t = table(world)
        t.offset[light.junction.id], t.touched = -t.now_s, True
        for other in t.lights.values():
            if other.junction is light.junction:
                other.forced = None
        return VOID

    def reset_all(*a):
        t = table(world)
        for jid in t.offset:
            t.offset[jid] = -t.now_s
        t.touched = True
        for light in t.lights.values():
            light.forced = None
        return VOID

    def set_time(index: int, name: str):
        def run(actor_id, seconds, *a):
            light = find(world, actor_id, name)
            table(world).cycle[light.junction.id][index] = checks.number(seconds, name, 0.1, 3600.0, unit=" s")
            table(world).touched = True
            return VOID
        return run

    def group(actor_id, *a) -> List[int]:
        light = find(world, actor_id, "get_group_traffic_lights")
        return [o.id for o in table(world).lights.values() if o.junction is light.junction]

    def from_opendrive_id(sign_id, *a) -> int:
        light = table(world).by_signal.get(int(sign_id)) if str(sign_id).lstrip("-").isdigit() else None
        if light is None:
            raise RpcError(f"no traffic light with OpenDRIVE id {sign_id!r:.40}")
        return light.id

    def light_boxes(actor_id, *a) -> list:
        light = find(world, actor_id, "get_light_boxes")
        x, y, z, yaw = light.pose
        return [[[x, y, 3.0], [0.2, 0.2, 0.5], [0.0, yaw, 0.0]]]

    def in_junction(junction_id, *a) -> List[int]:
        return [o.id for o in table(world).lights.values() if o.junction.id == junction_id]

    return {
        "set_traffic_light_state": set_state,
        "freeze_traffic_light": freeze,
        "freeze_all_traffic_lights": freeze_all,
        "reset_traffic_light_group": reset_group,
        "reset_all_traffic_lights": reset_all,
        "set_traffic_light_green_time": set_time(0, "set_traffic_light_green_time"),
        "set_traffic_light_yellow_time": set_time(1, "set_traffic_light_yellow_time"),
        "set_traffic_light_red_time": set_time(2, "set_traffic_light_red_time"),
        "get_group_traffic_lights": group,
        "get_traffic_light_from_opendrive_id": from_opendrive_id,
        "get_light_boxes": light_boxes,
        "get_traffic_lights_in_junction": in_junction,
    }
