"""CARLA weather: ``carla.WeatherParameters`` from a preset name or a mapping of fields,
the embedded simulator's weather presets mapped onto CARLA's, and the vehicle lights
the weather asks for (headlights at night).

``carla`` comes from :func:`~carla_agent.sim.carla_backend.client.import_carla`.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

from carla_agent.errors import ScenarioError
from carla_agent.sim.carla_backend.client import import_carla


#: The embedded weather presets mapped onto CARLA's, with field overrides.
_WEATHER_OF_PRESET: Dict[str, Tuple[str, Dict[str, float]]] = {
    "clear_noon": ("ClearNoon", {}),
    "overcast": ("CloudyNoon", {}),
    "fog": ("CloudyNoon", {"fog_density": 60.0, "fog_distance": 10.0}),
    "rain": ("MidRainyNoon", {}),
    "sunset": ("ClearSunset", {}),
    "night": ("ClearNight", {}),
    "night_rain": ("HardRainNight", {}),
    "dusk": ("CloudySunset", {}),
}


#: Below this sun altitude (degrees) it is night: vehicles drive with headlights on.
NIGHT_SUN_ALTITUDE_DEG = 0.0


def vehicle_lights(weather) -> Optional[object]:
    """The ``carla.VehicleLightState`` vehicles should show in ``weather``: position lights and
    low beams when the sun is below :data:`NIGHT_SUN_ALTITUDE_DEG` (``ClearNight``,
    ``HardRainNight``, the ``night`` presets), else None (lights left as they are)."""
    if float(weather.sun_altitude_angle) >= NIGHT_SUN_ALTITUDE_DEG:
        return None
    carla = import_carla()
    return carla.VehicleLightState(carla.VehicleLightState.Position | carla.VehicleLightState.LowBeam)


def _weather_fields(carla) -> List[str]:
    probe = carla.WeatherParameters()
    return sorted(n for n in dir(probe) if not n.startswith("_") and n[0].islower()
                  and isinstance(getattr(probe, n), (int, float)))


def _weather_presets(carla) -> List[str]:
    return sorted(n for n in dir(carla.WeatherParameters)
                  if n[0].isupper() and isinstance(getattr(carla.WeatherParameters, n), carla.WeatherParameters))


def weather_parameters(weather: Union[str, dict], source: str = "<memory>"):
    """A ``carla.WeatherParameters`` from a preset name or a mapping of fields.

    The mapping may name a ``preset`` as its base; other keys override fields,
    e.g. ``{preset: WetNoon, fog_density: 40}``.
    """
    carla = import_carla()
    presets = _weather_presets(carla)
    if isinstance(weather, str):
        if weather not in presets:
            raise ScenarioError(f"{source}: field 'carla.weather': unknown preset {weather!r}; "
                                f"known: {', '.join(presets)}, or a mapping of WeatherParameters fields")
        return getattr(carla.WeatherParameters, weather)
    fields = _weather_fields(carla)
    base = weather.get("preset", "ClearNoon")
    if base not in presets:
        raise ScenarioError(f"{source}: field 'carla.weather.preset': unknown preset {base!r}; known: {', '.join(presets)}")
    src = getattr(carla.WeatherParameters, base)
    params = carla.WeatherParameters(**{name: getattr(src, name) for name in fields})
    for key, value in weather.items():
        if key == "preset":
            continue
        if key not in fields:
            raise ScenarioError(f"{source}: field 'carla.weather.{key}': not a WeatherParameters field; "
                                f"known: preset, {', '.join(fields)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScenarioError(f"{source}: field 'carla.weather.{key}': expected a number, got {value!r}")
        setattr(params, key, float(value))
    return params


def scenario_weather(scenario, spec) -> Tuple[object, str]:
    """``(carla.WeatherParameters, name)`` for a scenario: ``carla.weather``, else its ``weather:``.

    ``spec`` is the scenario's :class:`~carla_agent.sim.carla_backend.spec.CarlaSpec` (not
    imported here: validating it needs this module).
    """
    carla = import_carla()
    if spec.weather is not None:
        name = spec.weather if isinstance(spec.weather, str) else "custom"
        return weather_parameters(spec.weather, scenario.source), name
    w = scenario.weather
    preset, overrides = _WEATHER_OF_PRESET.get(w.preset, ("ClearNoon", {}))
    values = dict(overrides)
    if w.fog_density is not None:
        values["fog_density"] = 100.0 * w.fog_density
    if w.rain is not None:
        values["precipitation"] = 100.0 * w.rain
        values["precipitation_deposits"] = 100.0 * w.rain
        values["wetness"] = 100.0 * w.rain
    if w.cloudiness is not None:
        values["cloudiness"] = 100.0 * w.cloudiness
    params = weather_parameters(dict(values, preset=preset), scenario.source) if values else \
        getattr(carla.WeatherParameters, preset)
    return params, w.preset


def embedded_preset_weathers(fields: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """What :func:`scenario_weather` sends for each embedded preset with no overrides:
    preset name -> ``{field: value}`` for the ``carla.WeatherParameters`` ``fields`` asked for.

    Raises BackendError when the carla wheel is missing (the values are its presets').
    """
    carla = import_carla()
    weathers: Dict[str, Dict[str, float]] = {}
    for preset, (name, overrides) in _WEATHER_OF_PRESET.items():
        w = getattr(carla.WeatherParameters, name)
        values = {f: float(getattr(w, f)) for f in fields}
        values.update(overrides)
        weathers[preset] = values
    return weathers
