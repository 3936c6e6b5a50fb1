"""What every served sensor shares: its blueprint attributes, their checks, ``sensor_tick`` and sending.

A sensor type is a subclass of :class:`Sensor` with ``TYPE_ID``, ``ATTRIBUTES`` (name, type, default,
modifiable) and ``SENSOR_TYPE`` (its index in CARLA 0.9.16's serializer registry, which the wheel
decodes by: ``LibCarla/source/carla/sensor/SensorRegistry.h``). Its ``__init__`` reads and checks
the spawned actor's attributes (a bad value is an ``RpcError`` naming the attribute, the value and
what is allowed) and :meth:`Sensor.measure` makes one tick's message body.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from carla_agent.server.rpc import RpcError
from carla_agent.server.wire import A_FLOAT, A_INT, A_STRING, attr

# CARLA 0.9.16's SensorRegistry positions (the sensor header's type id)
TYPE_DEPTH, TYPE_GNSS, TYPE_IMU, TYPE_OBSTACLE = 1, 4, 5, 7
TYPE_RADAR, TYPE_SEMANTIC_LIDAR, TYPE_LIDAR, TYPE_IMAGE = 9, 10, 11, 13

#: ``(name, ActorAttributeType, default)``: attributes every sensor blueprint has.
COMMON = (("role_name", A_STRING, ""), ("sensor_tick", A_FLOAT, "0.0"))


@dataclass
class TickView:
    """What the served world tells a sensor at a tick (built by :mod:`carla_agent.server.publish`).

    ``pose``: the sensor's :class:`~.pose.SensorPose`; ``traffic``: ``(actor id, TrafficVehicle)`` of
    the traffic on the map; ``parent_velocity_mps``: the parent's velocity (CARLA frame, m/s; zeros
    when it has none); ``parent_yaw_deg``: its yaw (0 when none); ``wire``: ``rpc::Actor`` of an actor
    id, or None when no actor has it; ``now_s``: simulation time."""

    pose: object
    traffic: Sequence[tuple]
    parent_velocity_mps: Tuple[float, float, float]
    wire: Callable[[int], Optional[list]]
    now_s: float


class Sensor:
    """One spawned sensor of a served type. ``attrs``: the actor's attributes ``{name: value}``."""

    TYPE_ID = ""
    SENSOR_TYPE = 0
    #: ``(name, ActorAttributeType, default)`` beyond :data:`COMMON`.
    ATTRIBUTES: Tuple[Tuple[str, int, str], ...] = ()
    TAGS = "sensor"
    #: Cameras honour ``no_rendering_mode`` (they send nothing while it is on), as in CARLA.
    IS_CAMERA = False

    def __init__(self, attrs: Dict[str, str]) -> None:
        self.attrs = attrs
        self.sensor_tick_s = self.number("sensor_tick", 0.0, 3600.0)
        self.last_s: Optional[float] = None  # simulation time of the last measurement

    # -- blueprint ---------------------------------------------------------------
    @classmethod
    def blueprint(cls, uid: int) -> list:
        """``ActorDefinition`` ``[uid, id, tags, attributes]`` of this type."""
        attrs = [attr(n, t, v, (v,), True) for n, t, v in COMMON + cls.ATTRIBUTES]  # CARLA: the default recommended
        return [uid, cls.TYPE_ID, cls.TAGS, attrs]

    # -- attribute checks --------------------------------------------------------------
    def _raw(self, name: str) -> str:
        defaults = {n: v for n, _, v in COMMON + self.ATTRIBUTES}
        return self.attrs.get(name, defaults[name])

    def _bad(self, name: str, raw: str, allowed: str) -> RpcError:
        return RpcError(f"invalid value {raw!r:.40} for attribute '{name}' of {self.TYPE_ID}: it must be {allowed}")

    def number(self, name: str, lo: float, hi: float, lo_open: bool = False, unit: str = "") -> float:
        raw = self._raw(name)
        try:
            v = float(raw)
        except ValueError:
            v = math.nan
        if not (math.isfinite(v) and (lo < v if lo_open else lo <= v) and v <= hi):
            raise self._bad(name, raw, f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}]{unit}")
        return v

    def integer(self, name: str, lo: int, hi: int) -> int:
        raw = self._raw(name)
        try:
            v = float(raw)
        except ValueError:
            v = math.nan
        if not (math.isfinite(v) and v == int(v) and lo <= v <= hi):
            raise self._bad(name, raw, f"an integer in [{lo}, {hi}]")
        return int(v)

    def flag(self, name: str) -> bool:
        raw = self._raw(name)
        if raw.lower() not in ("true", "false", "1", "0"):
            raise self._bad(name, raw, "true or false")
        return raw.lower() in ("true", "1")

    # -- ticks -------------------------------------------------------------------
    def due(self, now_s: float, tick_dt_s: float) -> Optional[float]:
        """The time since the last measurement (s; the tick's step for the first one) when one is due
        now, else None: with ``sensor_tick`` > 0 a measurement comes once that much time has passed."""
        if self.last_s is None:
            self.last_s = now_s
            return tick_dt_s
        dt = now_s - self.last_s
        if dt + 1e-9 < self.sensor_tick_s:
            return None
        self.last_s = now_s
        return dt

    def measure(self, world, actor, view: TickView, dt_s: float) -> Optional[List[bytes]]:
        """One tick's body (after the sensor header) as byte parts, or None to send nothing."""
        raise NotImplementedError


class Declined:
    """A CARLA sensor the embedded world cannot produce truthfully: a blueprint whose spawn fails."""

    def __init__(self, type_id: str, instead: str, why: str, attributes=()) -> None:
        self.TYPE_ID, self.instead, self.why, self.attributes = type_id, instead, why, attributes

    def blueprint(self, uid: int) -> list:
        attrs = [attr(n, t, v, (), True) for n, t, v in COMMON + tuple(self.attributes)]
        return [uid, self.TYPE_ID, "sensor,camera," + self.TYPE_ID.split(".")[-1], attrs]

    def error(self) -> RpcError:
        return RpcError(f"the embedded server cannot spawn {self.TYPE_ID}: {self.why}; use {self.instead} instead")


CAMERA_ATTRIBUTES = (("image_size_x", A_INT, "800"), ("image_size_y", A_INT, "600"), ("fov", A_FLOAT, "90"),
                     ("lens_circle_falloff", A_FLOAT, "5.0"), ("lens_circle_multiplier", A_FLOAT, "0.0"),
                     ("lens_k", A_FLOAT, "-1.0"), ("lens_kcube", A_FLOAT, "0.0"), ("lens_x_size", A_FLOAT, "0.08"),
                     ("lens_y_size", A_FLOAT, "0.08"))
