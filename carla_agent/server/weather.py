"""The weather calls of the served world: CARLA's ``WeatherParameters`` (14 floats, wire order)
onto the embedded weather presets and back.

Each call is a function of the :class:`~carla_agent.server.world_service.WorldService` ``world``
(its lock held).
"""

from __future__ import annotations

from typing import Dict, Optional

from carla_agent.server import checks
from carla_agent.server.rpc import VOID

# carla::rpc::WeatherParameters in declaration (wire) order, 0.9.16
WEATHER_FIELDS = ("cloudiness", "precipitation", "precipitation_deposits", "wind_intensity", "sun_azimuth_angle",
                  "sun_altitude_angle", "fog_density", "fog_distance", "fog_falloff", "wetness",
                  "scattering_intensity", "mie_scattering_scale", "rayleigh_scattering_scale", "dust_storm")


def _weather_key(params) -> tuple:
    return tuple(round(float(v), 3) for v in params[:14])


_PRESET_INVERSE: Optional[Dict[tuple, str]] = None


def _carla_preset_inverse() -> Dict[tuple, str]:
    """CARLA WeatherParameters (as carla_backend maps each embedded preset) -> embedded preset name.

    Needs the carla wheel (for the presets' values); without it, empty."""
    global _PRESET_INVERSE
    if _PRESET_INVERSE is None:
        from carla_agent.errors import BackendError
        from carla_agent.sim.carla_backend.weather import embedded_preset_weathers

        table: Dict[tuple, str] = {}
        try:
            weathers = embedded_preset_weathers(WEATHER_FIELDS)
        except BackendError:  # no carla wheel
            _PRESET_INVERSE = table
            return table
        for preset, values in weathers.items():
            key = _weather_key([values[f] for f in WEATHER_FIELDS])
            table.setdefault(key, preset)
        _PRESET_INVERSE = table
    return _PRESET_INVERSE


def get_weather_parameters(world, *a) -> list:
    """The 14 values in ``WEATHER_FIELDS`` order: those last set, else the embedded weather's."""
    if world.weather_params is not None:
        return list(world.weather_params)
    from carla_agent.sim.embedded.weather import resolve_weather

    w = resolve_weather(world.sim._weather_spec)
    return [w.cloudiness * 100.0, w.rain * 100.0, w.wetness * 100.0, 10.0, float(w.sun_azimuth_deg),
            float(w.sun_elevation_deg), w.fog_density * 100.0, float(w.fog_start_m), 0.2, w.wetness * 100.0,
            1.0, 0.03, 0.0331, 0.0]


def set_weather_parameters(world, p, *a):
    """Map CARLA's WeatherParameters onto the nearest embedded preset plus its explicit overrides."""
    from carla_agent.sim.scenario import WeatherSpec

    p = checks.weather(p, WEATHER_FIELDS)  # 14 finite numbers, or an error before anything changes
    cloud, rain, _, _, _, sun_alt, fog = p[:7]
    exact = _carla_preset_inverse().get(_weather_key(p))
    if exact is not None:  # the weather our CARLA backend sends for an embedded preset: that preset
        world.sim.set_weather(WeatherSpec(preset=exact))
        for actor in world.actors.values():
            actor.renderer = None
        world.weather_params = list(p)
        return VOID
    if sun_alt < -5.0:
        preset = "night_rain" if rain > 30.0 else "night"
    elif sun_alt < 5.0:
        preset = "dusk"
    elif sun_alt < 20.0:
        preset = "sunset"
    elif rain > 30.0:
        preset = "rain"
    elif fog > 30.0:
        preset = "fog"
    elif cloud > 60.0:
        preset = "overcast"
    else:
        preset = "clear_noon"
    from carla_agent.sim.embedded.weather import resolve_weather

    base = resolve_weather(WeatherSpec(preset=preset))

    def override(value: float, preset_value: float):
        """Keep the preset's own value unless CARLA's differs clearly (so ClearNoon is clear_noon)."""
        v = min(max(value / 100.0, 0.0), 1.0)
        return v if abs(v - preset_value) > 0.15 else None

    spec = WeatherSpec(preset=preset, fog_density=override(fog, base.fog_density),
                       rain=override(rain, base.rain), cloudiness=override(cloud, base.cloudiness))
    world.sim.set_weather(spec)
    for actor in world.actors.values():
        actor.renderer = None
    world.weather_params = list(p)
    return VOID
