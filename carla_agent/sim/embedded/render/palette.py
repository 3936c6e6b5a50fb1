"""Colours of the embedded renderer: surface albedos, label values, and the blends between colours.

Albedos are what each surface shows under clear-noon light (ground_light ~ 1);
the renderer lights and fogs them per weather. Label values are the
:class:`~carla_agent.sim.observation.SemanticClass` numbers as plain ints, as
OpenCV's drawing calls take them.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from carla_agent.sim.observation import SemanticClass

RGB = Tuple[int, int, int]

# Albedo: what each surface shows under clear-noon light (ground_light ~ 1).
ASPHALT: RGB = (86, 86, 90)
ASPHALT_TRACK: RGB = (79, 79, 83)
ASPHALT_PATCHES: Tuple[RGB, RGB] = ((74, 74, 78), (97, 96, 98))
SHOULDER: RGB = (108, 105, 100)
CURB: RGB = (168, 166, 158)
SIDEWALK: RGB = (150, 147, 140)
GRASS: RGB = (84, 116, 54)
GRASS_PATCHES: Tuple[RGB, RGB] = ((72, 104, 48), (106, 122, 62))
DIRT: RGB = (138, 116, 86)
DIRT_PATCHES: Tuple[RGB, RGB] = ((124, 103, 76), (150, 130, 98))
GRAVEL_EDGE: RGB = (128, 120, 104)
MARK_WHITE: RGB = (236, 236, 230)
MARK_YELLOW: RGB = (232, 178, 46)
HILLS: RGB = (58, 84, 52)
TRUNK: RGB = (84, 64, 46)
WINDOW: RGB = (48, 58, 70)
GLASS: RGB = (34, 40, 48)
TYRES: RGB = (28, 28, 30)
TAIL_LIGHT: RGB = (150, 20, 20)
HEAD_LIGHT: RGB = (215, 215, 205)
SIGN_BORDER: RGB = (190, 30, 30)
POST: RGB = (110, 110, 115)
LAMP_HEAD: RGB = (60, 60, 64)

_L = SemanticClass
L_ROAD, L_MARK, L_SHOULDER = int(_L.ROAD), int(_L.LANE_MARKING), int(_L.SHOULDER)
L_TERRAIN, L_SKY, L_VEHICLE, L_OBJECT = int(_L.TERRAIN), int(_L.SKY), int(_L.VEHICLE), int(_L.OBJECT)
L_SIDEWALK, L_TRAFFIC_LIGHT = int(_L.SIDEWALK), int(_L.TRAFFIC_LIGHT)
TRUNK_F = np.array(TRUNK, np.float64)
LAMP_HEAD_F = np.array(LAMP_HEAD, np.float64)
LAMP_GLOW_F = np.array((255.0, 214.0, 150.0))
WINDOW_F = np.array(WINDOW, np.float64)


def mix_rgb(a, b, k: float) -> RGB:
    return tuple(int(round(x + (y - x) * k)) for x, y in zip(a, b))  # type: ignore[return-value]


def scale_rgb(rgb, gain) -> RGB:
    return tuple(int(min(255, max(0, round(c * g)))) for c, g in zip(rgb, gain))  # type: ignore[return-value]


def smoothstep(x):
    x = np.minimum(np.maximum(x, 0.0), 1.0)  # (np.clip's Python wrapper costs more than the maths)
    return x * x * (3.0 - 2.0 * x)
