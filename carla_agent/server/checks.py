"""Checks on what a client sends, made where it enters the served world, before anything of the
call is applied: every number finite, every attribute in its range, every size within a cap that
bounds memory and time. A failed check raises :class:`~carla_agent.server.rpc.RpcError` naming the
field, the value and what is allowed; the client gets CARLA's error result and raises it as
``RuntimeError`` (calls the wheel sends asynchronously, such as ``set_transform`` or
``apply_control``, get the error result too, which the wheel drops: the call is simply refused).

Camera limits (measured on the embedded renderer, see docs/serve.md): its memory grows with the
pixels and, for a lens narrower than 90 degrees, with the focal length (the sky is drawn from a
panorama ``2 pi focal`` pixels round); a 2048x2048 image peaks at about 1.8 GB, 8192x4096 at 7 GB.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

from carla_agent.server.rpc import RpcError

#: Largest image side, pixels.
MAX_IMAGE_SIDE = 4096
#: Largest image, pixels (2048 x 2048; 1920 x 1080 is 2.07 MP). Below 90 degrees of fov the pixels
#: count ``1 / tan(fov / 2)`` times: :func:`camera_cost`.
MAX_IMAGE_PIXELS = 2048 * 2048
#: All cameras of the world together, in the same units.
MAX_CAMERA_PIXELS_TOTAL = 4 * MAX_IMAGE_PIXELS
#: Focal length ``image_size_x / (2 tan(fov / 2))``, pixels: within these (a 1x1 image at fov 90 has 0.5).
MIN_FOCAL_PX, MAX_FOCAL_PX = 0.5, 4096.0
#: Sensors in the world at most.
MAX_SENSORS = 64
#: Positions (spawn, teleport), metres from the origin, per coordinate.
MAX_COORD_M = 100_000.0
#: A sensor's mount, metres from its parent, per coordinate.
MAX_MOUNT_M = 100.0
#: Velocities, m/s per component.
MAX_SPEED_MPS = 1000.0
#: ``fixed_delta_seconds``: in (0, this] (CARLA's ``lidar_to_camera.py`` ticks 3 s steps).
MAX_FIXED_DELTA_S = 10.0
#: An actor description's attributes at most, and the longest text in it.
MAX_ATTRIBUTES = 64
MAX_TEXT = 256
#: Cameras whose size is checked (the last two are :mod:`carla_agent.server.sensors`').
CAMERAS = ("sensor.camera.rgb", "sensor.camera.semantic_segmentation", "sensor.camera.depth",
           "sensor.camera.instance_segmentation")


def _interval(lo: float, hi: float, lo_open: bool, hi_open: bool) -> str:
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def number(value: Any, what: str, lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False,
           hi_open: bool = False, unit: str = "") -> float:
    """``value`` as a finite float within the interval, or an :class:`RpcError` that says so."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RpcError(f"{what} is {value!r:.60}; it must be a number")
    v = float(value)
    allowed = _interval(lo, hi, lo_open, hi_open) + unit
    if not math.isfinite(v):
        bounded = f" in {allowed}" if math.isfinite(hi - lo) else ""
        raise RpcError(f"{what} is {v}; allowed: a finite number{bounded}")
    if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        raise RpcError(f"{what} is {v:g}{unit}; allowed: {allowed}")
    return v


def integer(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RpcError(f"{what} is {value!r:.60}; it must be an integer in [{lo}, {hi}]")
    return int(value)


def text(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise RpcError(f"{what} is {value!r:.60}; it must be a string of at most {MAX_TEXT} characters")
    return value


def flag(value: Any, what: str) -> bool:
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise RpcError(f"{what} is {value!r:.60}; it must be true or false")


def _seq(value: Any, n: int, what: str) -> list:
    if not isinstance(value, (list, tuple)) or len(value) < n:
        raise RpcError(f"{what} is {value!r:.80}; it must be a list of {n} values")
    return list(value)


def vector3(value: Any, what: str, limit: float, unit: str = "") -> Tuple[float, float, float]:
    v = _seq(value, 3, what)
    return tuple(number(v[k], f"{what}.{axis}", -limit, limit, unit=unit)  # type: ignore[return-value]
                 for k, axis in enumerate("xyz"))


def transform(value: Any, what: str = "transform", limit: float = MAX_COORD_M) -> tuple:
    """``[[x, y, z], [pitch, yaw, roll]]``: metres within ``limit`` of the origin, finite degrees."""
    loc, rot = _seq(value, 2, what)[:2]
    xyz = vector3(loc, f"{what}.location", limit, " m")
    r = _seq(rot, 3, f"{what}.rotation")
    pyr = tuple(number(r[k], f"{what}.rotation.{name}", -1e6, 1e6, unit=" deg")
                for k, name in enumerate(("pitch", "yaw", "roll")))
    return xyz, pyr


def velocity(value: Any, what: str = "velocity") -> Tuple[float, float, float]:
    return vector3(value, what, MAX_SPEED_MPS, " m/s")


def vehicle_control(c: Any) -> list:
    """``[throttle, steer, brake, hand_brake, reverse, manual_gear_shift, gear]`` (5 to 7 values),
    checked and normalised (numbers finite; CARLA's ranges are clamped later, as CARLA does)."""
    c = _seq(c, 5, "VehicleControl")
    out = [number(c[0], "VehicleControl.throttle"), number(c[1], "VehicleControl.steer"),
           number(c[2], "VehicleControl.brake"), flag(c[3], "VehicleControl.hand_brake"),
           flag(c[4], "VehicleControl.reverse")]
    out.append(flag(c[5], "VehicleControl.manual_gear_shift") if len(c) > 5 else False)
    out.append(integer(c[6], "VehicleControl.gear", -100, 100) if len(c) > 6 else 0)
    return out


def weather(p: Any, names: Tuple[str, ...]) -> list:
    """The ``WeatherParameters`` values (``names``: the fields in wire order), finite."""
    p = _seq(p, len(names), "WeatherParameters")
    return [number(p[k], f"WeatherParameters.{name}", -1e6, 1e6) for k, name in enumerate(names)]


def episode_settings(s: Any) -> Tuple[bool, bool, Optional[float]]:
    """``(synchronous_mode, no_rendering_mode, fixed_delta_seconds or None)`` of ``EpisodeSettings``."""
    s = _seq(s, 3, "EpisodeSettings")
    fd = s[2]
    if isinstance(fd, (list, tuple)) and fd and fd[0]:
        if len(fd) < 2:
            raise RpcError(f"fixed_delta_seconds is {fd!r:.40}; it must be [true, seconds] or [false]")
        fixed = number(fd[1], "fixed_delta_seconds", 0.0, MAX_FIXED_DELTA_S, lo_open=True, unit=" s")
    elif fd is None or (isinstance(fd, (list, tuple)) and (not fd or not fd[0])):
        fixed = None
    else:
        raise RpcError(f"fixed_delta_seconds is {fd!r:.40}; it must be [true, seconds] or [false]")
    return flag(s[0], "synchronous_mode"), flag(s[1], "no_rendering_mode"), fixed


def actor_description(d: Any) -> Tuple[int, str, list]:
    """``[uid, type_id, [[id, type, value], ...]]`` checked (it is echoed to every client that
    lists the actors, so nothing malformed may be kept)."""
    d = _seq(d, 3, "ActorDescription")
    uid = integer(d[0], "ActorDescription.uid", 0, 2 ** 32 - 1)
    type_id = text(d[1], "ActorDescription.id")
    attrs = d[2]
    if not isinstance(attrs, (list, tuple)) or len(attrs) > MAX_ATTRIBUTES:
        raise RpcError(f"the attributes of {type_id} are {attrs!r:.60}; at most {MAX_ATTRIBUTES} are allowed")
    out = []
    for a in attrs:
        a = _seq(a, 3, f"an attribute of {type_id}")
        out.append([text(a[0], f"an attribute name of {type_id}"),
                    integer(a[1], f"the type of attribute {a[0]!r:.40}", 0, 255),
                    text(a[2], f"attribute {a[0]!r:.40} of {type_id}")])
    return uid, type_id, out


def _attr_int(attrs: Dict[str, str], name: str, default: str, type_id: str) -> int:
    raw = attrs.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value == int(value) and 1 <= value <= MAX_IMAGE_SIDE):
        raise RpcError(f"invalid value {raw!r:.40} for attribute '{name}' of {type_id}: "
                       f"it must be an integer in [1, {MAX_IMAGE_SIDE}] (pixels)")
    return int(value)


def camera(type_id: str, attrs: Dict[str, str], others_cost: float = 0.0) -> Tuple[int, int, float]:
    """A camera's ``(image_size_x, image_size_y, fov)``, checked; ``others_cost``: what the other
    cameras of the world already use (:func:`camera_cost`)."""
    w = _attr_int(attrs, "image_size_x", "800", type_id)
    h = _attr_int(attrs, "image_size_y", "600", type_id)
    raw = attrs.get("fov", "90")
    try:
        fov = float(raw)
    except ValueError:
        fov = math.nan
    if not (math.isfinite(fov) and 0.0 < fov < 180.0):
        raise RpcError(f"invalid value {raw!r:.40} for attribute 'fov' of {type_id}: "
                       "it must be a number in (0, 180) (degrees, both ends excluded)")
    focal = w / (2.0 * math.tan(math.radians(fov) / 2.0))
    if not MIN_FOCAL_PX <= focal <= MAX_FOCAL_PX:
        fix = "narrow the fov or widen the image" if focal < MIN_FOCAL_PX else "widen the fov or narrow the image"
        raise RpcError(f"fov {fov:g} on an image {w} px wide gives a focal length of {focal:.3g} px; the embedded "
                       f"renderer allows [{MIN_FOCAL_PX:g}, {MAX_FOCAL_PX:g}] px (focal = image_size_x / "
                       f"(2 tan(fov / 2))): {fix}")
    cost = camera_cost(w, h, fov)
    if cost > MAX_IMAGE_PIXELS:
        raise RpcError(f"image_size_x x image_size_y = {w} x {h} at fov {fov:g} counts {cost:.0f} px; a camera may "
                       f"have at most {MAX_IMAGE_PIXELS} px (2048 x 2048; below fov 90 the pixels count "
                       "1 / tan(fov / 2) times), which bounds the memory the embedded renderer needs")
    if others_cost + cost > MAX_CAMERA_PIXELS_TOTAL:
        raise RpcError(f"the cameras in the world would count {others_cost + cost:.0f} px together; at most "
                       f"{MAX_CAMERA_PIXELS_TOTAL} px are allowed: destroy one first or use smaller images")
    return w, h, fov


def camera_cost(w: int, h: int, fov: float) -> float:
    """What a camera costs the embedded renderer, in pixels: ``w h max(1, 1 / tan(fov / 2))``."""
    return w * h * max(1.0, 1.0 / math.tan(math.radians(fov) / 2.0))
