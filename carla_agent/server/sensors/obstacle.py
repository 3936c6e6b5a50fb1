"""``sensor.other.obstacle``: the first thing ahead of the sensor within ``distance`` metres, as
CARLA's ``ObstacleDetectionSensor`` (a sphere of ``hit_radius`` swept along the sensor's forward axis).

The sweep is a ray against the boxes of :mod:`.scene` grown by ``hit_radius`` on every side; the
ground and the sensor's own parent are never hit. ``only_dynamics``: vehicles only. An event goes out
at each tick something is found. Wire (``ObstacleDetectionEventSerializer``): msgpack
``[self actor, other actor, distance]`` (``rpc::Actor`` twice, float metres). A roadside object is not
an actor in the served world: it comes as actor id 0 with type ``static.building``, ``static.pole``,
``static.vegetation`` or ``static.sign``.
"""

from __future__ import annotations

from typing import List, Optional

import msgpack

from carla_agent.server.sensors import raycast, scene
from carla_agent.server.sensors.base import TYPE_OBSTACLE, Sensor
from carla_agent.server.wire import A_BOOL, A_FLOAT

STATIC_TYPES = {scene.TAG_BUILDING: "static.building", scene.TAG_POLE: "static.pole",
                scene.TAG_VEGETATION: "static.vegetation", scene.TAG_SIGN: "static.sign"}


class Obstacle(Sensor):
    TYPE_ID = "sensor.other.obstacle"
    SENSOR_TYPE = TYPE_OBSTACLE
    TAGS = "sensor,other,obstacle"
    ATTRIBUTES = (("distance", A_FLOAT, "5"), ("hit_radius", A_FLOAT, "0.5"), ("only_dynamics", A_BOOL, "false"),
                  ("debug_linetrace", A_BOOL, "false"))

    def __init__(self, attrs) -> None:
        super().__init__(attrs)
        self.distance_m = self.number("distance", 0.0, 10_000.0, lo_open=True, unit=" m")
        self.radius_m = self.number("hit_radius", 0.0, 100.0, unit=" m")
        self.only_dynamics = self.flag("only_dynamics")
        self.flag("debug_linetrace")  # accepted; nothing is drawn

    def measure(self, world, actor, view, dt_s: float) -> Optional[List[bytes]]:
        pose = view.pose
        boxes = scene.scene_boxes(world, view.traffic, pose.origin_m, self.distance_m + self.radius_m,
                                  exclude=actor.parent)
        if self.only_dynamics:
            boxes = boxes.select(boxes.ids != 0)
        if not len(boxes):
            return None
        grown = scene.Boxes(boxes.center_m, boxes.half_m + self.radius_m, boxes.yaw_rad, boxes.ids, boxes.tags,
                            boxes.velocity_mps)
        forward = pose.rot[:, 0]
        hits = raycast.cast(pose.origin_m, forward[None, :], grown, self.distance_m)
        k = int(hits.index[0])
        if k < 0:  # nothing, or the ground first
            return None
        other = view.wire(int(boxes.ids[k])) if boxes.ids[k] else None
        if other is None:
            kind = STATIC_TYPES.get(int(boxes.tags[k]), "static.prop")
            other = [0, 0, [0, kind, []], [[0.0] * 3] * 3, bytes([int(boxes.tags[k])]), b""]
        me = view.wire(actor.parent) if actor.parent else None
        if me is None:
            me = view.wire(actor.id)
        return [msgpack.packb([me, other, float(hits.t[0])], use_bin_type=True)]
