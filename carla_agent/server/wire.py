"""CARLA 0.9.16's wire vocabulary as the served world writes it: enum values, the episode stream's
packed layouts and the msgpack form of an actor (``rpc::Actor``, ``ActorAttribute``).

Wire layouts are those of the carla 0.9.16 wheel (see docs/serve.md); nothing here holds world state.
"""

from __future__ import annotations

import struct

import numpy as np

EPISODE_STREAM = 1
#: Episode k > 1 streams its state on ``EPISODE_STREAM_BASE + k`` (far above actor ids).
EPISODE_STREAM_BASE = 3_000_000
SENSOR_TYPE_COLLISION = 0
SENSOR_TYPE_RGB = 13
SENSOR_TYPE_EPISODE = 17
# ActorAttributeType
A_BOOL, A_INT, A_FLOAT, A_STRING, A_RGB = 1, 2, 3, 4, 5
TAG_CAR = 14  # CityObjectLabel::Car in 0.9.16
TAGS = {"vehicle": TAG_CAR, "walker": 12, "traffic": 7, "static": 20}  # Pedestrians 12, TrafficLight 7, Static 20
# SemanticClass (carla_agent.sim.observation) -> CityObjectLabel (the red channel of CARLA's semantic camera)
# (SIDEWALK -> Sidewalks 2, TRAFFIC_LIGHT -> TrafficLight 7; CARLA >= 0.9.14 numbering)
SEMANTIC_TO_CARLA = np.array([0, 1, 24, 2, 10, 11, 14, 20, 2, 7] + [0] * 246, np.uint8)
CMD_APPLY_VEHICLE_CONTROL = 2  # index in carla::rpc::Command's variant (0.9.16)

EPISODE_HEADER = struct.Struct("<QdfiiiI")  # 36 bytes, packed
ACTOR_RECORD = struct.Struct("<IB6f3f3f3f")  # 65 bytes; + 54-byte union = 119
UNION_BYTES = 54
# VehicleData (30 bytes at the union's start): PackedVehicleControl (19), speed_limit km/h,
# traffic_light_state, has_traffic_light, traffic_light_id, failure_state
VEHICLE_DATA = struct.Struct("<fffBBBifBBIB")
WALKER_DATA = struct.Struct("<3ffB")  # PackedWalkerControl: direction, speed, jump (17 bytes)
# TrafficLightData: sign_id[32], green, yellow, red, elapsed s, pole_index, time_is_frozen, state (54 bytes)
TRAFFIC_LIGHT_DATA = struct.Struct("<32sffffIBB")
assert EPISODE_HEADER.size == 36 and ACTOR_RECORD.size + UNION_BYTES == 119


def attr(id_: str, type_: int, value: str, recommended=(), modifiable=False) -> list:
    """One ``ActorAttribute``: ``[id, type (A_*), value, recommended values, modifiable, restricted]``."""
    return [id_, type_, value, list(recommended), bool(modifiable), False]


def actor_wire(actor, token) -> list:
    """``rpc::Actor`` of a served actor (an ``actors.Actor``): ``[id, parent, description, bounding box,
    semantic tags, stream token]``; the token (a bare bin, ``token(stream_id)``) only for sensors."""
    if actor.type_id.startswith(("vehicle.", "walker.", "traffic.", "static.prop.")):
        loc = getattr(actor, "trigger_offset", None) or (0.0, 0.0, float(actor.extent[2]))
        bbox = [[float(v) for v in loc], [float(e) for e in actor.extent], [0.0, 0.0, 0.0]]
        tags = bytes([TAGS.get(actor.type_id.split(".")[0], TAG_CAR)])
    else:
        bbox = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
        tags = b""
    return [actor.id, actor.parent, [actor.uid, actor.type_id, actor.attributes], bbox, tags,
            token(actor.id) if actor.is_sensor else b""]
