"""Checks of a scenario that names a ``town:`` and a ``route:`` instead of a road.

Kept apart from :mod:`carla_agent.sim.scenario` (which calls it) so that the
scenario reader stays one concept; it reads only the town catalogue, never
builds the town (the embedded simulator does, and checks that the route's
points lie on driving lanes then).
"""

from __future__ import annotations

from pathlib import Path

from carla_agent.errors import ScenarioError
from carla_agent.sim.embedded.roadnet.catalog import shipped_towns


def check_town_scenario(sc) -> None:
    """Raise ``ScenarioError`` (file, field, value, fix) for a bad town scenario."""
    src = sc.source
    if sc.town is None:
        raise ScenarioError(f"{src}: field 'route': a route needs a town; add 'town: NAME' "
                            f"(known towns: {', '.join(shipped_towns().names())})")
    if sc.road.segments or sc.road.xodr is not None:
        raise ScenarioError(f"{src}: field 'road': give either 'road' or 'town', not both")
    if sc.backend != "embedded":
        raise ScenarioError(f"{src}: field 'backend': towns run on the embedded backend (and through 'serve'), "
                            f"got {sc.backend!r}")
    towns = shipped_towns()
    if sc.town.endswith((".yaml", ".yml", ".xodr")):
        if not Path(sc.town).is_file():
            raise ScenarioError(f"{src}: field 'town': file {sc.town} does not exist")
    elif sc.town not in towns:
        raise ScenarioError(f"{src}: field 'town': unknown town {sc.town!r}; known towns: "
                            f"{', '.join(towns.names())}")
    if sc.route is None or sc.route.start is None or sc.route.end is None:
        raise ScenarioError(f"{src}: field 'route': a town scenario needs 'route: {{start: [x_m, y_m], "
                            "end: [x_m, y_m]}' (optional 'via: [[x_m, y_m], ...]')")
    if len(sc.route.via) > 50:
        raise ScenarioError(f"{src}: field 'route.via': {len(sc.route.via)} points; at most 50")
