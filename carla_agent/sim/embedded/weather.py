"""Weather and light for the embedded renderer.

:func:`resolve_weather` turns a scenario's :class:`~carla_agent.sim.scenario.WeatherSpec`
(a preset name plus optional overrides) into a :class:`Weather`: everything the
renderer needs to light, fog and wet a frame. Presets follow CARLA's
``carla.WeatherParameters`` in spirit (``ClearNoon``, ``CloudyNoon``,
``HardRainNoon``, ``ClearSunset``, night), tuned for this renderer's look.

Light model (linear multipliers on the colours a surface shows at clear noon):
a horizontal surface in the open receives ``ambient_rgb + sun_rgb * sin(elevation)``;
in shadow only ``ambient_rgb``; a vertical face
``0.8 * ambient_rgb + sun_rgb * max(0, n . sun)``. Fog/haze blends toward
``fog_rgb`` by ``1 - exp(-extinction * max(0, d - fog_start_m))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Dict, Tuple

import numpy as np

RGB = Tuple[int, int, int]
Gain = Tuple[float, float, float]


@dataclass(frozen=True)
class Weather:
    """Resolved weather and light. All colours are RGB in 0..255.

    Attributes:
        name: the preset it came from.
        sky_top_rgb: sky colour high above the horizon (about 40 degrees up).
        sky_horizon_rgb: sky colour at the horizon.
        fog_rgb: colour distant things fade to (haze, fog); matches the sky at
            the horizon so ground and sky meet without a seam.
        fog_density: 0 (clear air, light haze only) .. 1 (visibility ~25 m).
        fog_start_m: distance before which there is no haze, metres.
        ambient_rgb: sky light on every surface (linear multiplier).
        sun_rgb: direct sunlight on a surface facing the sun (linear multiplier).
        sun_elevation_deg: sun height above the horizon (negative: below it).
        sun_azimuth_deg: direction to the sun in the world frame, degrees
            counter-clockwise from +x (OpenDRIVE frame).
        cloudiness: 0..1, greys the sky and weakens the sun.
        rain: 0..1, density of rain streaks.
        wetness: 0..1, darker, glossier road.
        shadows: cast shadows of objects and vehicles.
        headlights: the ego's headlights are on (a pool of light ahead).
        headlight_gain: brightness of the headlight pool at its peak (0..1).
        glare: 0..1, lens glare around a low sun in view.
    """

    name: str
    sky_top_rgb: RGB
    sky_horizon_rgb: RGB
    fog_rgb: RGB
    fog_density: float
    fog_start_m: float
    ambient_rgb: Gain
    sun_rgb: Gain
    sun_elevation_deg: float
    sun_azimuth_deg: float
    cloudiness: float = 0.0
    rain: float = 0.0
    wetness: float = 0.0
    shadows: bool = True
    headlights: bool = False
    headlight_gain: float = 0.0
    glare: float = 0.0

    # -- derived quantities ------------------------------------------------
    @property
    def fog_extinction_per_m(self) -> float:
        """Extinction coefficient: light haze at density 0, visibility ~60 m at 0.5, ~25 m at 1."""
        return 0.0015 + 0.12 * self.fog_density ** 1.3

    def fog_fraction(self, distance_m):
        """Fraction of ``fog_rgb`` mixed into a surface ``distance_m`` away (scalar or array)."""
        d = np.maximum(np.asarray(distance_m, dtype=np.float64) - self.fog_start_m, 0.0)
        return 1.0 - np.exp(-self.fog_extinction_per_m * d)

    @cached_property
    def sun_direction(self) -> Tuple[float, float, float]:
        """Unit vector from the scene toward the sun, world frame (x, y, z up)."""
        el = math.radians(self.sun_elevation_deg)
        az = math.radians(self.sun_azimuth_deg)
        return (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))

    @cached_property
    def ground_light(self) -> Gain:
        """Light on horizontal ground in the open (ambient + direct)."""
        k = max(0.0, math.sin(math.radians(self.sun_elevation_deg)))
        return tuple(a + s * k for a, s in zip(self.ambient_rgb, self.sun_rgb))  # type: ignore[return-value]

    @cached_property
    def casts_shadows(self) -> bool:
        """Shadows are drawn only when asked for and the sun is up and strong enough to show them."""
        return self.shadows and self.sun_elevation_deg > 1.0 and max(self.sun_rgb) > 0.15

    @cached_property
    def shadow_gain(self) -> Gain:
        """Multiplier of a shadowed horizontal surface relative to the open."""
        return tuple(a / max(g, 1e-6) for a, g in zip(self.ambient_rgb, self.ground_light))  # type: ignore[return-value]

    @cached_property
    def is_dark(self) -> bool:
        """Little daylight: vehicles show their lamps."""
        return max(self.ground_light) < 0.45


_PRESETS: Dict[str, Weather] = {
    "clear_noon": Weather(
        name="clear_noon", sky_top_rgb=(62, 118, 204), sky_horizon_rgb=(178, 205, 232), fog_rgb=(178, 205, 232),
        fog_density=0.0, fog_start_m=25.0, ambient_rgb=(0.42, 0.45, 0.52), sun_rgb=(0.64, 0.62, 0.56),
        sun_elevation_deg=58.0, sun_azimuth_deg=125.0, cloudiness=0.3),
    "overcast": Weather(
        name="overcast", sky_top_rgb=(138, 144, 156), sky_horizon_rgb=(196, 199, 204), fog_rgb=(196, 199, 204),
        fog_density=0.08, fog_start_m=15.0, ambient_rgb=(0.84, 0.85, 0.88), sun_rgb=(0.08, 0.08, 0.08),
        sun_elevation_deg=50.0, sun_azimuth_deg=125.0, cloudiness=0.85, shadows=False),
    "fog": Weather(
        name="fog", sky_top_rgb=(178, 182, 188), sky_horizon_rgb=(196, 199, 203), fog_rgb=(196, 199, 203),
        fog_density=0.5, fog_start_m=2.0, ambient_rgb=(0.82, 0.83, 0.86), sun_rgb=(0.05, 0.05, 0.05),
        sun_elevation_deg=40.0, sun_azimuth_deg=125.0, cloudiness=0.9, shadows=False),
    "rain": Weather(
        name="rain", sky_top_rgb=(92, 98, 110), sky_horizon_rgb=(150, 156, 164), fog_rgb=(150, 156, 164),
        fog_density=0.22, fog_start_m=5.0, ambient_rgb=(0.62, 0.64, 0.68), sun_rgb=(0.03, 0.03, 0.03),
        sun_elevation_deg=45.0, sun_azimuth_deg=125.0, cloudiness=1.0, rain=0.7, wetness=1.0, shadows=False),
    "sunset": Weather(
        name="sunset", sky_top_rgb=(62, 84, 150), sky_horizon_rgb=(252, 176, 108), fog_rgb=(236, 168, 112),
        fog_density=0.03, fog_start_m=20.0, ambient_rgb=(0.42, 0.36, 0.40), sun_rgb=(1.05, 0.62, 0.30),
        sun_elevation_deg=5.0, sun_azimuth_deg=14.0, cloudiness=0.15, glare=1.0),
    "dusk": Weather(
        name="dusk", sky_top_rgb=(36, 46, 92), sky_horizon_rgb=(196, 118, 96), fog_rgb=(120, 86, 90),
        fog_density=0.05, fog_start_m=15.0, ambient_rgb=(0.30, 0.27, 0.32), sun_rgb=(0.0, 0.0, 0.0),
        sun_elevation_deg=-3.0, sun_azimuth_deg=200.0, cloudiness=0.2, shadows=False,
        headlights=True, headlight_gain=0.55),
    "night": Weather(
        name="night", sky_top_rgb=(4, 6, 14), sky_horizon_rgb=(18, 22, 36), fog_rgb=(16, 19, 30),
        fog_density=0.03, fog_start_m=10.0, ambient_rgb=(0.05, 0.055, 0.08), sun_rgb=(0.0, 0.0, 0.0),
        sun_elevation_deg=-30.0, sun_azimuth_deg=0.0, cloudiness=0.1, shadows=False,
        headlights=True, headlight_gain=0.95),
    "night_rain": Weather(
        name="night_rain", sky_top_rgb=(8, 9, 14), sky_horizon_rgb=(30, 32, 42), fog_rgb=(26, 28, 36),
        fog_density=0.18, fog_start_m=4.0, ambient_rgb=(0.055, 0.058, 0.075), sun_rgb=(0.0, 0.0, 0.0),
        sun_elevation_deg=-30.0, sun_azimuth_deg=0.0, cloudiness=1.0, rain=0.7, wetness=1.0, shadows=False,
        headlights=True, headlight_gain=0.9),
}

#: Names of the presets, in the order of :data:`carla_agent.sim.scenario.WEATHER_PRESETS`.
PRESETS = tuple(_PRESETS)

_OVERCAST_GREY: RGB = (150, 154, 162)


def _mix(a, b, k: float) -> RGB:
    return tuple(int(round(x + (y - x) * k)) for x, y in zip(a, b))  # type: ignore[return-value]


def resolve_weather(spec) -> Weather:
    """The :class:`Weather` of a :class:`~carla_agent.sim.scenario.WeatherSpec`.

    The preset gives every value; the spec's explicit ``fog_density``,
    ``rain``, ``cloudiness`` and ``shadows`` override it. Clouds grey the sky
    and weaken direct sunlight (so shadows fade); rain wets the road. An
    override equal to the preset's own value changes nothing, so reading a
    weather's values back and setting them again is the identity.

    Raises:
        KeyError: unknown preset, with the valid names.
    """
    if isinstance(spec, Weather):
        return spec
    preset = getattr(spec, "preset", spec)
    if preset not in _PRESETS:
        raise KeyError(f"unknown weather preset {preset!r}; valid: {', '.join(PRESETS)}")
    w = _PRESETS[preset]
    fog = getattr(spec, "fog_density", None)
    rain = getattr(spec, "rain", None)
    clouds = getattr(spec, "cloudiness", None)
    shadows = getattr(spec, "shadows", None)
    same = lambda a, b: abs(float(a) - b) < 1e-6  # noqa: E731
    fog = None if fog is None or same(fog, w.fog_density) else fog
    rain = None if rain is None or same(rain, w.rain) else rain
    clouds = None if clouds is None or same(clouds, w.cloudiness) else clouds
    if fog is not None:
        w = replace(w, fog_density=float(fog), fog_start_m=min(w.fog_start_m, 2.0 + 20.0 * (1.0 - float(fog))))
    if rain is not None:
        rain = float(rain)
        # Rain wets the road quickly; a road stays wet when an override stops the rain.
        w = replace(w, rain=rain, wetness=max(w.wetness, min(1.0, 2.0 * rain)))
    if clouds is not None:
        clouds = float(clouds)
        # Direct sunlight scales with the clear fraction of the sky; the preset's own clouds are the reference.
        k_sun = (1.0 - 0.85 * clouds) / (1.0 - 0.85 * w.cloudiness)
        k_sun = min(k_sun, 1.1 / max(max(w.sun_rgb), 0.1))
        extra = max(0.0, clouds - w.cloudiness)
        grey = tuple(int(0.55 * sum(w.sky_top_rgb) / 3 + 0.45 * g) for g in _OVERCAST_GREY)
        w = replace(
            w, cloudiness=clouds,
            sky_top_rgb=_mix(w.sky_top_rgb, grey, 0.8 * extra),
            sky_horizon_rgb=_mix(w.sky_horizon_rgb, grey, 0.5 * extra),
            fog_rgb=_mix(w.fog_rgb, grey, 0.5 * extra),
            sun_rgb=tuple(s * k_sun for s in w.sun_rgb),
            # Clouds scatter the lost sunlight into the ambient term, so the scene dims only a little.
            ambient_rgb=tuple(a + 0.5 * s * max(0.0, 1.0 - k_sun) for a, s in zip(w.ambient_rgb, w.sun_rgb)),
        )
    if shadows is not None:
        w = replace(w, shadows=bool(shadows))
    return w
