"""``sensor.other.gnss``: latitude, longitude and altitude of the sensor from the map's geo-reference.

The conversion is the one of the carla 0.9.16 wheel (LibCarla ``geom/GeoLocation.cpp``,
``Transform``): a spherical transverse Mercator with ``k0 = 0.9996`` about the OpenDRIVE header's
``+lat_0``/``+lon_0`` (CARLA's defaults 42, 2 when the header has none), taking CARLA's ``x`` and
``y`` as they are. So in 0.9.16 latitude grows with CARLA's +y (checked against the wheel's own
``Map.transform_to_geolocation``). Noise as CARLA's: ``bias + normal(0, stddev)`` per axis.
Wire (``GnssSerializer``): msgpack ``[latitude, longitude, altitude]`` (float64 degrees, metres).
"""

from __future__ import annotations

import math
import re
from typing import List, Tuple

import msgpack
import numpy as np

from carla_agent.server.sensors.base import TYPE_GNSS, Sensor
from carla_agent.server.wire import A_FLOAT, A_INT

EARTH_RADIUS_M = 6378137.0
K0 = 0.9996


def geo_reference(xodr: str) -> Tuple[float, float]:
    """``(lat_0, lon_0)`` degrees of an OpenDRIVE text's geoReference (42, 2 when absent, as CARLA)."""
    lat = re.search(r"\+lat_0=([-+0-9.eE]+)", xodr)
    lon = re.search(r"\+lon_0=([-+0-9.eE]+)", xodr)
    if lat is None or lon is None:
        return 42.0, 2.0
    return float(lat.group(1)), float(lon.group(1))


def to_geolocation(x_m: float, y_m: float, z_m: float, lat0_deg: float, lon0_deg: float) -> Tuple[float, float, float]:
    """CARLA 0.9.16's ``GeoLocation::Transform`` of a location (CARLA frame, m): degrees, degrees, m."""
    d = x_m / (K0 * EARTH_RADIUS_M)
    e = y_m / (K0 * EARTH_RADIUS_M) + math.radians(lat0_deg)
    lat = math.asin(math.sin(e) / math.cosh(d))
    lon = math.radians(lon0_deg) + math.atan2(math.sinh(d), math.cos(e))
    return math.degrees(lat), math.degrees(lon), z_m


class Gnss(Sensor):
    TYPE_ID = "sensor.other.gnss"
    SENSOR_TYPE = TYPE_GNSS
    TAGS = "sensor,other,gnss"
    ATTRIBUTES = (("noise_alt_bias", A_FLOAT, "0.0"), ("noise_alt_stddev", A_FLOAT, "0.0"),
                  ("noise_lat_bias", A_FLOAT, "0.0"), ("noise_lat_stddev", A_FLOAT, "0.0"),
                  ("noise_lon_bias", A_FLOAT, "0.0"), ("noise_lon_stddev", A_FLOAT, "0.0"),
                  ("noise_seed", A_INT, "0"))

    def __init__(self, attrs) -> None:
        super().__init__(attrs)
        self.bias = [self.number(f"noise_{k}_bias", -1e6, 1e6) for k in ("lat", "lon", "alt")]
        self.stddev = [self.number(f"noise_{k}_stddev", 0.0, 1e6) for k in ("lat", "lon", "alt")]
        self.rng = np.random.default_rng(self.integer("noise_seed", -2 ** 31, 2 ** 31 - 1) & 0xFFFFFFFF)
        self._ref = None  # (xodr text id, lat0, lon0)

    def measure(self, world, actor, view, dt_s: float) -> List[bytes]:
        if self._ref is None or self._ref[0] is not world.sim.road:
            self._ref = (world.sim.road, *geo_reference(world.sim.xodr()))
        x, y, z = (float(v) for v in view.pose.origin_m)
        geo = list(to_geolocation(x, y, z, self._ref[1], self._ref[2]))
        for k in range(3):
            geo[k] += self.bias[k] + (self.rng.normal(0.0, self.stddev[k]) if self.stddev[k] > 0 else 0.0)
        return [msgpack.packb(geo)]
