"""Static props (``static.prop.*``): the obstacles, signs and debris CARLA's scenarios place.

ScenarioRunner's and the Leaderboard's scenarios spawn props (``ControlLoss`` three
``static.prop.dirtdebris01`` on the lane, ``ParkedObstacle`` a ``warningaccident`` sign,
``DynamicObjectCrossing`` a ``vendingmachine`` blocker...). Served props are the ids those
scenarios use (ScenarioRunner 0.9.16 and its ``leaderboard-2.0`` branch), each with CARLA's tags
(``static``, ``prop``, its name) and attributes (``role_name``, ``size``), and a bounding box of
half sizes in metres (x forward, y left, z up) close to, not measured from, CARLA's meshes.

A spawned prop is a client vehicle that never moves (``vehicles``: its pose in ``world.vehicles``,
physics off; teleports, ``set_simulate_physics``, destroy work as for vehicles): it is drawn as a
box and hit as one (a collision with a ``static.prop`` actor, which ScenarioRunner's
``CollisionTest`` counts as a static collision), except debris, which lies flat on the road and is
driven over, as in CARLA, where ``ControlLoss`` puts it in the ego's lane on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

from carla_agent.server.wire import A_STRING, attr

Extent = Tuple[float, float, float]
PREFIX = "static.prop."


@dataclass(frozen=True)
class PropModel:
    """One prop: ``id`` (``static.prop.NAME``), ``extent`` (half sizes, m), ``size`` (CARLA's
    ``small``/``medium``/``big`` attribute), ``solid`` (False: driven over, never a collision)."""

    id: str
    extent: Extent
    size: str
    solid: bool = True


MODELS = (
    PropModel("static.prop.dirtdebris01", (1.20, 1.00, 0.05), "medium", solid=False),
    PropModel("static.prop.dirtdebris02", (1.20, 1.00, 0.05), "medium", solid=False),
    PropModel("static.prop.dirtdebris03", (1.20, 1.00, 0.05), "medium", solid=False),
    PropModel("static.prop.warningaccident", (0.40, 0.60, 0.90), "medium"),
    PropModel("static.prop.warningconstruction", (0.40, 0.60, 0.90), "medium"),
    PropModel("static.prop.trafficwarning", (1.40, 1.20, 1.60), "big"),
    PropModel("static.prop.constructioncone", (0.20, 0.20, 0.40), "small"),
    PropModel("static.prop.streetbarrier", (0.30, 1.00, 0.55), "medium"),
    PropModel("static.prop.chainbarrier", (0.20, 1.50, 0.50), "medium"),
    PropModel("static.prop.vendingmachine", (0.50, 0.60, 1.00), "medium"),
    PropModel("static.prop.container", (0.90, 0.60, 0.70), "medium"),
    PropModel("static.prop.advertisement", (0.25, 1.20, 1.50), "big"),
    PropModel("static.prop.busstoplb", (1.20, 3.00, 1.50), "big"),
    PropModel("static.prop.foodcart", (1.20, 0.80, 1.20), "big"),
    PropModel("static.prop.haybalelb", (0.60, 0.60, 0.60), "medium"),
)
BY_ID: Dict[str, PropModel] = {m.id: m for m in MODELS}
#: Drawn as a box of this colour (grey-brown for debris).
COLOR = (150, 140, 120)
DEBRIS_COLOR = (110, 95, 70)


def is_prop(type_id: str) -> bool:
    return type_id.startswith(PREFIX)


def model(type_id: str) -> PropModel:
    """The prop ``type_id``; an unknown id is refused with the served ones listed."""
    from carla_agent.server.rpc import RpcError

    m = BY_ID.get(type_id)
    if m is None:
        raise RpcError(f"the embedded server cannot spawn {type_id}; its props: {', '.join(sorted(BY_ID))}")
    return m


def solid(actor) -> bool:
    """Whether a client actor (a vehicle or a prop) is hit: props are unless they are debris."""
    return not is_prop(actor.type_id) or BY_ID[actor.type_id].solid


def box_size(actor, length_m: float, width_m: float, height_m: float) -> Tuple[float, float, float]:
    """``(length, width, height)`` in metres of a client actor's box: a prop's own, a vehicle's the given."""
    if not is_prop(actor.type_id):
        return length_m, width_m, height_m
    ex, ey, ez = BY_ID[actor.type_id].extent
    return 2.0 * ex, 2.0 * ey, 2.0 * ez


def color(actor) -> Tuple[int, int, int]:
    return COLOR if solid(actor) else DEBRIS_COLOR


def definitions(uid0: int) -> list:
    """The ``ActorDefinition`` ``[uid, id, tags, attributes]`` of every prop, uids from ``uid0``."""
    return [[uid0 + k, m.id, "static,prop," + m.id[len(PREFIX):], [
        attr("role_name", A_STRING, "prop", (), True),
        attr("size", A_STRING, m.size),
    ]] for k, m in enumerate(MODELS)]
