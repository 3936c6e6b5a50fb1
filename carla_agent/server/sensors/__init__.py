"""The sensors the served world offers beyond the RGB and semantic cameras and the collision and
lane-invasion sensors (those live in :mod:`carla_agent.server.publish`): one module per sensor type,
registered here by CARLA 0.9.16 blueprint id.

- :func:`blueprints` feeds ``actors.blueprints()`` (the blueprint library);
- :func:`make` is called when a sensor is spawned: the sensor's state (its attributes checked), None
  for a type this registry does not own, or CARLA's error for a declined type (dvs, optical flow);
- :func:`publish` sends one sensor's tick (sensor header + its body) on its stream.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

from carla_agent.server.sensors.base import CAMERA_ATTRIBUTES, Declined, Sensor, TickView
from carla_agent.server.sensors.depth import DepthCamera, InstanceCamera
from carla_agent.server.sensors.gnss import Gnss
from carla_agent.server.sensors.imu import Imu
from carla_agent.server.sensors.lidar import Lidar, SemanticLidar
from carla_agent.server.sensors.obstacle import Obstacle
from carla_agent.server.sensors.radar import Radar
from carla_agent.server.streams import sensor_header
from carla_agent.server.wire import A_BOOL, A_FLOAT

SENSORS: Dict[str, Type[Sensor]] = {cls.TYPE_ID: cls for cls in (
    DepthCamera, InstanceCamera, Lidar, SemanticLidar, Radar, Gnss, Imu, Obstacle)}
#: Cameras whose images the embedded world cannot make truthfully: blueprints whose spawn fails.
DECLINED: Dict[str, Declined] = {d.TYPE_ID: d for d in (
    Declined("sensor.camera.dvs", "sensor.camera.rgb (and difference its frames)",
             "a dynamic vision sensor needs per-pixel brightness changes at microsecond rates, which the "
             "embedded renderer does not model",
             CAMERA_ATTRIBUTES + (("positive_threshold", A_FLOAT, "0.3"),
                                  ("negative_threshold", A_FLOAT, "0.3"), ("sigma_positive_threshold", A_FLOAT, "0"),
                                  ("sigma_negative_threshold", A_FLOAT, "0"),
                                  ("refractory_period_ns", A_FLOAT, "0.0"), ("use_log", A_BOOL, "true"),
                                  ("log_eps", A_FLOAT, "0.001"))),
    Declined("sensor.camera.optical_flow", "sensor.camera.depth or sensor.camera.instance_segmentation "
             "(geometry per pixel, from which motion can be derived)",
             "the embedded renderer has no per-pixel motion vectors", CAMERA_ATTRIBUTES),
    Declined("sensor.camera.normals", "sensor.camera.depth (and difference neighbouring pixels)",
             "the embedded renderer has no per-pixel surface normals", CAMERA_ATTRIBUTES),
)}
#: Camera-like sensors (their size is checked and capped as the RGB camera's).
CAMERAS = tuple(t for t, cls in SENSORS.items() if cls.IS_CAMERA)


def blueprints(uid0: int) -> list:
    """``ActorDefinition``s of the registry's sensors (served and declined), uids from ``uid0``."""
    kinds = list(SENSORS.values()) + list(DECLINED.values())
    return [kind.blueprint(uid0 + k) for k, kind in enumerate(kinds)]


def make(type_id: str, attrs: Dict[str, str]) -> Optional[Sensor]:
    """The state of a sensor being spawned, its attributes checked (``RpcError`` naming the bad one);
    None for a type not in this registry; a declined type's ``RpcError`` naming what serve offers."""
    if type_id in DECLINED:
        raise DECLINED[type_id].error()
    cls = SENSORS.get(type_id)
    return cls(attrs) if cls is not None else None


def publish(world, actor, view: TickView, dt_s: float) -> None:
    """Measure ``actor.sensor`` (a :class:`Sensor`) if due and send it: sensor header + body."""
    sensor = actor.sensor
    since = sensor.due(view.now_s, dt_s)
    if since is None:
        return
    body = sensor.measure(world, actor, view, since)
    if body is None:
        return
    head = sensor_header(sensor.SENSOR_TYPE, world.frame, world.elapsed_s, view.pose.transform)
    world.streams.publish(actor.id, head + bytes(body[0]), *body[1:])


__all__ = ["CAMERAS", "DECLINED", "SENSORS", "Sensor", "TickView", "blueprints", "make", "publish"]
