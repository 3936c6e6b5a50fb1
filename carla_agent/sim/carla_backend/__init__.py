"""The CARLA 0.9.x backend: the simulator contract against a real CARLA 0.9.16 server.

Importing it needs neither the ``carla`` wheel nor a server: only
:mod:`~carla_agent.sim.carla_backend.client` imports ``carla``, lazily, in
:func:`import_carla`. The modules:

* ``client``: ``import carla``, connecting, version check, map names;
* ``spec``: the scenario's ``carla:`` block; ``weather``: CARLA weather;
* ``sensors``: sensor frames matched to ticks, images as arrays;
* ``truth``: ground truth on the client-side map; ``route``: the route driven;
* ``session``: what one run changed on the server, and its cleanup; ``spawn``: ego and NPCs;
* ``simulator``: :class:`CarlaSimulator`; ``replay``: re-rendering a recording.
* ``watchdog``: every blocking call (tick, map load) bounded in time.
"""

from carla_agent.sim.carla_backend.client import (CARLA_VERSION, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TM_PORT,
                                                  connect, import_carla, map_key, match_map, server_hint)
from carla_agent.sim.carla_backend.replay import CarlaReplay, ReplayFrame, find_hero, replay
from carla_agent.sim.carla_backend.route import Route, RouteProjection
from carla_agent.sim.carla_backend.sensors import (CITYSCAPES_IDS, SEMANTIC_LUT, SensorQueue, bgra_to_rgb,
                                                   collision_kind, semantic_labels)
from carla_agent.sim.carla_backend.session import Session
from carla_agent.sim.carla_backend.simulator import CarlaInfo, CarlaSimulator
from carla_agent.sim.carla_backend.spec import (CarlaSpec, ExposureSpec, TrafficManagerSpec, TransformSpec, carla_spec,
                                               exposure_attributes)
from carla_agent.sim.carla_backend.truth import (heading_error, lane_waypoint, lanes_same_way, off_road,
                                                 signed_offset, wrap_pi)
from carla_agent.sim.carla_backend.weather import embedded_preset_weathers, scenario_weather, weather_parameters

__all__ = [
    "CARLA_VERSION", "DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_TM_PORT", "connect", "import_carla", "map_key",
    "match_map", "server_hint",
    "CarlaReplay", "ReplayFrame", "find_hero", "replay",
    "Route", "RouteProjection",
    "CITYSCAPES_IDS", "SEMANTIC_LUT", "SensorQueue", "bgra_to_rgb", "collision_kind", "semantic_labels",
    "Session",
    "CarlaInfo", "CarlaSimulator",
    "CarlaSpec", "ExposureSpec", "TrafficManagerSpec", "TransformSpec", "carla_spec", "exposure_attributes",
    "heading_error", "lane_waypoint", "lanes_same_way", "off_road", "signed_offset", "wrap_pi",
    "embedded_preset_weathers", "scenario_weather", "weather_parameters",
]
