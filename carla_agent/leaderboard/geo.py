"""CARLA's GNSS coordinates and its map frame, both ways.

CARLA (``LibCarla/source/carla/geom/GeoLocation.cpp``) and the Leaderboard
(``leaderboard/utils/route_manipulation.py``, ``_location_to_gps``) turn a map
location into latitude and longitude with a Mercator projection scaled at the
map's reference latitude (the OpenDRIVE ``<geoReference>``; 42.0, 2.0 where a map
has none). :func:`location_to_gps` is that formula, :func:`gps_to_location` its
inverse, and :func:`solve_reference` recovers the reference from one known pair,
so an agent given the global plan in both forms needs no map to localise itself.

Locations are CARLA's frame (x forward/east, y right/south, metres); latitude and
longitude in degrees.
"""

from __future__ import annotations

import math
from typing import Tuple

#: [m] CARLA's equatorial Earth radius.
EARTH_RADIUS_M = 6378137.0


def _mercator(lat_ref_deg: float, lon_ref_deg: float) -> Tuple[float, float, float]:
    scale = math.cos(math.radians(lat_ref_deg))
    mx = scale * math.radians(lon_ref_deg) * EARTH_RADIUS_M
    my = scale * EARTH_RADIUS_M * math.log(math.tan(math.radians(90.0 + lat_ref_deg) / 2.0))
    return scale, mx, my


def location_to_gps(lat_ref_deg: float, lon_ref_deg: float, x_m: float, y_m: float) -> Tuple[float, float]:
    """``(latitude, longitude)`` in degrees of the map location ``(x_m, y_m)`` (CARLA's frame)."""
    scale, mx, my = _mercator(lat_ref_deg, lon_ref_deg)
    mx += x_m
    my -= y_m
    lon = math.degrees(mx / (EARTH_RADIUS_M * scale))
    lat = 360.0 * math.atan(math.exp(my / (EARTH_RADIUS_M * scale))) / math.pi - 90.0
    return lat, lon


def gps_to_location(lat_ref_deg: float, lon_ref_deg: float, lat_deg: float, lon_deg: float) -> Tuple[float, float]:
    """The map location ``(x_m, y_m)`` (CARLA's frame) of ``(lat_deg, lon_deg)``; inverse of
    :func:`location_to_gps`."""
    scale, mx0, my0 = _mercator(lat_ref_deg, lon_ref_deg)
    mx = scale * math.radians(lon_deg) * EARTH_RADIUS_M
    my = scale * EARTH_RADIUS_M * math.log(math.tan(math.radians(90.0 + lat_deg) / 2.0))
    return mx - mx0, my0 - my


def solve_reference(lat_deg: float, lon_deg: float, x_m: float, y_m: float, iterations: int = 8) -> Tuple[float, float]:
    """The map's reference ``(lat_ref, lon_ref)`` from one location and its GNSS reading.

    A fixed point: the projection's scale depends on the reference latitude only
    through ``cos``, so a few iterations from the reading's own latitude reach it to
    well under a millimetre on a map a few kilometres wide.
    """
    lat_ref = lat_deg
    for _ in range(iterations):
        scale = math.cos(math.radians(lat_ref))
        mx = scale * math.radians(lon_deg) * EARTH_RADIUS_M - x_m
        my = scale * EARTH_RADIUS_M * math.log(math.tan(math.radians(90.0 + lat_deg) / 2.0)) + y_m
        lon_ref = math.degrees(mx / (EARTH_RADIUS_M * scale))
        lat_ref = 360.0 * math.atan(math.exp(my / (EARTH_RADIUS_M * scale))) / math.pi - 90.0
    return lat_ref, lon_ref


__all__ = ["EARTH_RADIUS_M", "gps_to_location", "location_to_gps", "solve_reference"]
